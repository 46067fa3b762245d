"""snnTorch networks to the network file and Lava: snnTorch's equations reproduced spike for spike,
unsupported modules refused by name, and counts equal to those of the PyTorch run."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from deploy import counting, reference, simulate
from deploy.activity import activities_from_batch
from deploy.ir import ALIFLayerIR, LIFLayerIR, load_network, networks_equal, save_network
from rc_snn.pipeline.snntorch_export import export_snntorch, record_snntorch
from rc_snn.training.early_exit import select_decision
from helpers import LAVA_TIMEOUT, assert_same_activity, assert_same_trains, random_frames, snntorch_network






@pytest.mark.parametrize("kind", ["rleaky", "rleaky-zero", "rleaky-one-to-one", "leaky-zero", "ralif"])
def test_reference_reproduces_snntorch(kind):
    net = snntorch_network(kind)
    frames = random_frames(5, 40, 30, rate=0.2, seed=1)
    mem, spikes = record_snntorch(net, torch.from_numpy(frames).float().transpose(0, 1))
    ir = export_snntorch(net, decision_threshold=0.5)
    assert isinstance(ir.layers[0], ALIFLayerIR if kind == "ralif" else LIFLayerIR)
    run = reference.simulate(ir, frames)
    torch_spikes = spikes[0].transpose(0, 1).numpy()
    assert 0.02 < torch_spikes.mean() < 0.9
    np.testing.assert_array_equal(run.spikes[0], torch_spikes)  # spike for spike (snnTorch in float32)
    np.testing.assert_allclose(run.outputs, mem.transpose(0, 1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(run.decision_steps, select_decision(mem, 0.5).steps.numpy())


def test_the_network_file_round_trip(tmp_path):
    ir = export_snntorch(snntorch_network("rleaky-zero"), decision_threshold=0.7, dt_ms=5.0)
    loaded = load_network(save_network(ir, tmp_path / "net.npz"))
    assert networks_equal(ir, loaded) and loaded.layers[0].reset == 2  # RLeaky's zero reset: "zero-step"


@pytest.mark.parametrize("change, message", [
    (lambda net: net.insert(0, nn.Conv1d(1, 1, 1)), "module 0 \\(Conv1d\\)"),
    (lambda net: net.__setitem__(1, snn.Synaptic(alpha=0.9, beta=0.8, init_hidden=True)), "module 1 \\(Synaptic\\)"),
    (lambda net: net.__setitem__(3, snn.Leaky(beta=0.9, init_hidden=True)), "module 3 \\(Leaky\\): the output must be"),
    (lambda net: net.__setitem__(1, snn.Leaky(beta=0.9)), "init_hidden=True"),
    (lambda net: net.__setitem__(1, snn.Leaky(beta=0.9, init_hidden=True, graded_spikes_factor=2.0)), "graded"),
    (lambda net: net.__setitem__(1, snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="none")),
     "reset_mechanism 'none'"),
])
def test_unsupported_modules_are_refused_by_name(change, message):
    net = snntorch_network("rleaky")
    change(net)
    with pytest.raises(ValueError, match=message):
        export_snntorch(net, decision_threshold=0.5)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_float_lava_equals_reference_exactly():
    net = snntorch_network("rleaky", seed=2)
    ir = export_snntorch(net, decision_threshold=0.5)
    frames = random_frames(4, 40, 30, rate=0.2, seed=2, graded=True)
    ref = reference.simulate(ir, frames)
    assert ref.decision_steps.max() < 39
    result = simulate.record_batch(ir, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 1)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_real_nmnist_rleaky_in_lava_equals_snntorch_with_the_same_counts(nmnist_small):
    from rc_snn.data import load_dataset

    dataset, info = load_dataset("nmnist", "val", data_dir=nmnist_small, bin_ms=5.0, limit=6, first_saccade=True)
    frames = np.stack([dataset[i][0].numpy() for i in range(len(dataset))]).astype(np.float64)
    labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    net = snntorch_network("rleaky", n_inputs=info.n_inputs, hidden=32, classes=10, seed=3, gain=6.0)
    x_seq = torch.from_numpy(frames).float().transpose(0, 1)
    mem, spikes = record_snntorch(net, x_seq)
    torch_spikes = spikes[0].transpose(0, 1).numpy()
    assert 0.01 < torch_spikes.mean() < 0.9
    ir = export_snntorch(net, decision_threshold=0.3, dt_ms=info.dt_ms)
    evaluation = simulate.evaluate(ir, frames, labels, batch_size=3, progress=False)
    decision = select_decision(mem, 0.3)
    np.testing.assert_array_equal(evaluation.decision_steps, decision.steps.numpy())
    np.testing.assert_array_equal(evaluation.predictions, decision.predictions.numpy())
    ref = reference.simulate(ir, frames)
    np.testing.assert_array_equal(ref.spikes[0], torch_spikes)  # Lava = reference (activity below) = snnTorch
    assert_same_activity(evaluation.activities, ref.activities(frames))
    recorded = activities_from_batch(frames.transpose(1, 0, 2), [s.numpy() for s in spikes], decision.steps.numpy())
    assert evaluation.counts == counting.count_snn(ir, recorded)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("kind", ["rleaky", "leaky-zero", "rleaky-zero"])
def test_fixed_point_lava_equals_the_fixed_reference_and_stays_near_float(kind):
    from deploy import quantize

    net = snntorch_network(kind, seed=5)
    ir = export_snntorch(net, decision_threshold=0.5)
    frames = random_frames(6, 40, 30, rate=0.2, seed=5, graded=True)
    fixed = quantize.to_device(ir)
    ref = reference.simulate(fixed, frames)
    result = simulate.record_batch(fixed, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 1)
    float_run = reference.simulate(ir, frames)
    assert np.mean(ref.spikes[0] == float_run.spikes[0]) > 0.98  # 8-bit weights: a few spikes move
    assert np.mean(ref.predictions == float_run.predictions) >= 5 / 6
    # from_device is the float network the integers stand for: its float run is the fixed run
    np.testing.assert_allclose(reference.simulate(quantize.from_device(fixed), frames).outputs[:, :5],
                               ref.outputs[:, :5], rtol=0.02, atol=0.02)
