"""Magnitude pruning (rc_snn.training.prune): the schedule, zeros that stay zero through training,
the weight average, resuming, export, fixed point and counting, for the ALIF network and the LSTM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy import quantize
from deploy.activity import activities_from_batch
from deploy.baselines import count_recurrent_from_activity, recurrent_weights
from deploy.counting import count_snn, fan_out
from rc_snn.models import ALIFRSNN, LSTMBaseline
from rc_snn.pipeline.export import export_model
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.prune import connection_sparsity, fraction_at, prunable, prune_to
from rc_snn.training.run import load_run

TOY = TrainConfig(dataset="toy", hidden=8, batch_size=32, lr=1e-2, limit_train=128, limit_val=32, device="cpu")


def test_the_schedule_is_zhu_and_gupta_s_cubic_ramp():
    assert fraction_at(0, 0.8, 0) == fraction_at(5, 0.8, 0) == pytest.approx(0.8)
    assert [fraction_at(e, 0.8, 4) for e in range(6)] == pytest.approx(
        [0.8 * (1 - (1 - k / 4) ** 3) for k in (1, 2, 3, 4, 4, 4)])
    assert fraction_at(3, 0.0, 4) == 0.0


def test_each_matrix_loses_exactly_its_smallest_weights():
    torch.manual_seed(0)
    model = ALIFRSNN(6, [10, 7], 3)
    before = [w.detach().clone() for w in prunable(model)]
    others = {name: p.detach().clone() for name, p in model.named_parameters() if p.dim() != 2}
    prune_to(model, 0.6)
    for old, new in zip(before, prunable(model)):
        n_pruned = int(0.6 * old.numel())
        assert int((new == 0).sum()) == n_pruned
        kept = new != 0
        assert float(old.abs()[~kept].max()) <= float(old.abs()[kept].min())  # the smallest went
        torch.testing.assert_close(new[kept], old[kept], rtol=0, atol=0)  # the rest untouched
    for name, p in model.named_parameters():  # biases and time constants are not pruned
        if p.dim() != 2:
            assert torch.equal(p, others[name]), name


@pytest.mark.parametrize("model", ["alif", "lstm"])
def test_pruned_weights_stay_zero_through_training_the_average_and_resuming(tmp_path, model):
    config = TOY.replace(model=model, prune_fraction=0.5, prune_epochs=2, ema_decay=0.9, epochs=3)
    run = train(config.replace(epochs=2), tmp_path / "run", progress=False, log=lambda *a: None)
    assert connection_sparsity(run.model) == pytest.approx(0.5, abs=0.02)  # reached at epoch 2 of 2
    payload = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    trained = {name: value for name, value in payload["trained_model"].items() if value.dim() == 2}
    for name, value in trained.items():  # the averaged weights are zero exactly where the trained ones are
        assert torch.equal(payload["model"][name] == 0, value == 0), name
    resumed = train(config, tmp_path / "run", progress=False, log=lambda *a: None)
    for before, after in zip(prunable(run.model), prunable(resumed.model)):
        assert bool(((before == 0) <= (after == 0)).all())  # what was pruned stays pruned
    assert connection_sparsity(resumed.model) == pytest.approx(0.5, abs=0.02)


def test_pruned_weights_reach_the_network_file_fixed_point_and_counts_as_absent(tmp_path):
    train(TOY.replace(prune_fraction=0.6, epochs=1), tmp_path / "run", progress=False, log=lambda *a: None)
    run = load_run(tmp_path / "run")
    network = export_model(run.model, decision_threshold=0.9)
    torch_zeros = [(w == 0).numpy() for w in prunable(run.model)]
    file_zeros = [network.layers[0].w_in == 0, network.layers[0].w_rec == 0, network.readout.weight == 0]
    for a, b in zip(torch_zeros, file_zeros):
        np.testing.assert_array_equal(a, b)
    fixed = quantize.to_device(network)
    assert bool(np.all(fixed.layers[0].w_rec_mant[network.layers[0].w_rec == 0] == 0))
    assert bool(np.all(fixed.readout.weight_mant[network.readout.weight == 0] == 0))
    fan = fan_out(network)
    np.testing.assert_array_equal(fan.recurrent[0], np.count_nonzero(network.layers[0].w_rec, axis=0))
    frames = np.ones((4, 1, 1))  # [time, batch, inputs]
    spikes = [np.ones((4, 1, 8))]  # every neuron spikes every step
    counts = count_snn(fan, activities_from_batch(frames, spikes, [3]))
    synapses = np.count_nonzero(network.layers[0].w_rec) + np.count_nonzero(network.readout.weight)
    assert counts.effective_acs == 4 * np.count_nonzero(network.layers[0].w_in) + 4 * synapses


def test_a_pruned_lstm_counts_only_its_nonzero_weights():
    torch.manual_seed(1)
    model = LSTMBaseline(5, 6, 3)
    prune_to(model, 0.7)
    w_ih, w_hh = model.lstm.weight_ih_l0.detach().numpy(), model.lstm.weight_hh_l0.detach().numpy()
    readout = model.readout.weight.detach().numpy()
    weights = recurrent_weights([w_ih], [w_hh], readout)
    x = (np.random.default_rng(0).random((7, 2, 5)) < 0.4).astype(np.float64)  # [time, batch, inputs]
    activities = activities_from_batch(x, [], [6, 3])
    pruned = count_recurrent_from_activity(6, 1, 3, activities, weights=weights)
    dense = count_recurrent_from_activity(6, 1, 3, activities)
    steps = 7 + 4
    used = (x[:7, 0] != 0).sum(0) + (x[:4, 1] != 0).sum(0)  # nonzero values per input channel
    assert pruned.effective_macs == int(used @ np.count_nonzero(w_ih, axis=0)) + steps * (
        np.count_nonzero(w_hh) + np.count_nonzero(readout))
    assert pruned.event_driven_macs == steps * (np.count_nonzero(w_ih) + np.count_nonzero(w_hh)
                                                + np.count_nonzero(readout))
    assert pruned.dense_synaptic_ops == dense.dense_synaptic_ops  # dense: every weight, pruned or not
    assert pruned.effective_macs < 0.5 * dense.effective_macs
    unpruned = recurrent_weights([np.ones_like(w_ih)], [np.ones_like(w_hh)], np.ones_like(readout))
    assert count_recurrent_from_activity(6, 1, 3, activities, weights=unpruned) == dense
