"""The IR-SNN deployed: export (batch norm and the senders' steps folded), the network file, the
numpy reference against PyTorch, counting of graded spikes, and Lava (float) against the reference."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deploy import counting, quantize, reference, simulate
from deploy.activity import activities_from_batch
from deploy.ir import IRLayerIR, load_network, networks_equal, save_network
from rc_snn.pipeline.export import export_model
from rc_snn.pipeline.recording import record_run
from helpers import LAVA_TIMEOUT, assert_same_activity, assert_same_trains, lively_irsnn, random_frames




def torch_levels(model, frames):
    """PyTorch float64: outputs ``[N, T, C]`` and each layer's levels ``q = s / delta`` ``[N, T, H]``."""
    model64 = copy.deepcopy(model).double()
    state = model64.initial_state(frames.shape[0], dtype=torch.float64)
    outputs, levels = [], [[] for _ in model64.layers]
    with torch.no_grad():
        for current in model64.encode(torch.from_numpy(frames).transpose(0, 1)):
            output, state = model64.step_encoded(current, state)
            outputs.append(output)
            for recorded, layer, layer_state in zip(levels, model64.layers, state.layers):
                recorded.append(layer_state.s / layer.quantiser.delta())
    return (torch.stack(outputs).transpose(0, 1).numpy(),
            [torch.stack(layer).transpose(0, 1).numpy() for layer in levels])


@pytest.mark.parametrize("hidden, bits, dead_zone", [([20], 6, 3), ([16, 12], 4, 1), ([16, 12], 1, 0)])
def test_reference_equals_pytorch_float64(hidden, bits, dead_zone):
    frames = random_frames(6, 40, 30, graded=True)
    model = lively_irsnn(30, hidden, 5, bits=bits, dead_zone=dead_zone, frames=frames)
    net = export_model(model, decision_threshold=0.5)
    assert all(isinstance(layer, IRLayerIR) and layer.bits == bits for layer in net.layers)
    run = reference.simulate(net, frames)
    outputs, levels = torch_levels(model, frames)
    np.testing.assert_allclose(run.outputs, outputs, rtol=1e-9, atol=1e-11)
    for layer, torch_q in enumerate(levels):
        np.testing.assert_allclose(run.spikes[layer], torch_q, atol=1e-9)  # the same integer levels
        assert np.array_equal(run.spikes[layer], np.trunc(run.spikes[layer]))
        assert 0.02 < np.mean(run.spikes[layer] != 0) < 0.95
        top = 1 if bits == 1 else 2 ** (bits - 1) - 1
        assert run.spikes[layer].max() <= top and run.spikes[layer].min() >= 0
    if bits == 1:
        assert set(np.unique(run.spikes[0])) == {0.0, 1.0}
    else:
        assert np.unique(run.spikes[0]).size > 2
    from rc_snn.training.early_exit import select_decision

    decision = select_decision(torch.from_numpy(outputs).transpose(0, 1), 0.5)
    np.testing.assert_array_equal(run.decision_steps, decision.steps.numpy())
    assert run.decision_steps.min() < 39


def test_network_file_round_trip_keeps_the_kind(tmp_path):
    model = lively_irsnn(30, [10, 8], 4, bits=4, dead_zone=1)
    net = export_model(model, decision_threshold=0.7, dt_ms=5.0)
    loaded = load_network(save_network(net, tmp_path / "net.npz"))
    assert networks_equal(net, loaded) and isinstance(loaded.layers[1], IRLayerIR)
    assert (loaded.layers[0].bits, loaded.layers[0].dead_zone) == (4, 1)
    assert loaded.layers[0].delta == float(copy.deepcopy(model).double().layers[0].quantiser.delta())
    with pytest.raises(ValueError, match="w_rec"):
        IRLayerIR(np.ones((4, 3)), np.zeros(4), np.ones((4, 4)), 1.0, 0.5, 2, 0)
    with pytest.raises(ValueError, match="bits"):
        IRLayerIR(np.ones((4, 3)), np.zeros(4), np.ones((4, 2)), 1.0, 0.5, 0, 0)


@pytest.mark.parametrize("bits", [1, 6])
def test_counts_charge_graded_spikes_as_macs(bits):
    frames = random_frames(3, 25, 30)
    model = lively_irsnn(30, [12, 10], 4, bits=bits, dead_zone=0 if bits == 1 else 2, frames=frames)
    net = export_model(model, decision_threshold=0.5)
    run = reference.simulate(net, frames)
    counts = counting.count_snn(net, run.activities(frames))
    # by hand: each layer's spikes (nonzero levels) times its fan-out (recurrent 2H rows + next layer)
    fan_rec = [np.count_nonzero(layer.w_rec, axis=0) for layer in net.layers]
    fan_next = [np.count_nonzero(net.layers[1].w_in, axis=0), np.count_nonzero(net.readout.weight, axis=0)]
    spike_ops = sum(int(sum(run.spike_counts(n)[layer] @ (fan_rec[layer] + fan_next[layer]) for n in range(3)))
                    for layer in range(2))
    input_ops = sum(int(np.count_nonzero(frames[n, : run.decision_steps[n] + 1], axis=0)
                        @ np.count_nonzero(net.layers[0].w_in, axis=0)) for n in range(3))
    steps = int((run.decision_steps + 1).sum())
    assert spike_ops > 0 and counts.spikes > 0
    if bits == 1:
        assert (counts.effective_acs, counts.effective_macs) == (input_ops + spike_ops, 0)
        assert (counts.event_driven_acs, counts.event_driven_macs) == (input_ops + spike_ops, 0)
    else:
        assert (counts.effective_acs, counts.effective_macs) == (input_ops, spike_ops)
        assert (counts.event_driven_acs, counts.event_driven_macs) == (input_ops, spike_ops)
    assert counts.neuron_update_macs == (22 * 4 + 4 * 2) * steps
    assert counts.activations == 22 * steps  # one sigmoid per neuron per step
    assert counts.dense_synaptic_ops == (24 * 30 + 24 * 12 + 20 * 12 + 20 * 10 + 4 * 10) * steps
    # the same counts from the PyTorch run's recording
    logits, spikes = record_run(copy.deepcopy(model).double(), torch.from_numpy(frames).transpose(0, 1))
    recorded = activities_from_batch(frames.transpose(1, 0, 2), [s.numpy() for s in spikes], run.decision_steps)
    assert counting.count_snn(net, recorded) == counts


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_float_lava_equals_reference_exactly():
    frames = random_frames(4, 35, 30, graded=True, seed=4)
    model = lively_irsnn(30, [16, 12], 5, bits=6, dead_zone=3, seed=4, frames=frames)
    net = export_model(model, decision_threshold=0.5)
    ref = reference.simulate(net, frames)
    assert ref.decision_steps.max() < 34, "test wants every sample to decide before the end"
    result = simulate.record_batch(net, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 2)  # graded levels, value for value
    assert np.unique(ref.spikes[0]).size > 3
    assert result.lava_steps == ref.decision_steps.max() + 1 + len(net.layers) + 1
    for layer in range(2):
        np.testing.assert_array_equal(result.spike_counts[layer],
                                      np.stack([ref.spike_counts(n)[layer] for n in range(4)]))


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_real_nmnist_lava_equals_reference_and_pytorch(nmnist_small):
    from rc_snn.data import load_dataset

    dataset, info = load_dataset("nmnist", "val", data_dir=nmnist_small, bin_ms=5.0, limit=6, first_saccade=True)
    frames = np.stack([dataset[i][0].numpy() for i in range(len(dataset))]).astype(np.float64)
    labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    model = lively_irsnn(info.n_inputs, [24], 10, seed=5, frames=frames)
    net = export_model(model, decision_threshold=0.3, dt_ms=info.dt_ms)
    ref = reference.simulate(net, frames)
    outputs, levels = torch_levels(model, frames)
    np.testing.assert_allclose(ref.spikes[0], levels[0], atol=1e-9)
    assert 0.01 < np.mean(ref.spikes[0] != 0) < 0.9

    evaluation = simulate.evaluate(net, frames, labels, batch_size=3, progress=False)  # two batches
    np.testing.assert_array_equal(evaluation.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(evaluation.predictions, ref.predictions)
    np.testing.assert_array_equal(evaluation.predictions, outputs[np.arange(6), ref.decision_steps].argmax(-1))
    assert_same_activity(evaluation.activities, ref.activities(frames))
    assert evaluation.counts == counting.count_snn(net, ref.activities(frames))


def test_both_sides_count_the_same_levels():
    from deploy.ir import max_level
    from rc_snn.neuron import irsnn

    assert [irsnn.max_level(bits) for bits in range(1, 25)] == [max_level(bits) for bits in range(1, 25)]


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("bits, dead_zone", [(6, 3), (1, 0)])
def test_fixed_point_lava_equals_the_fixed_reference_and_stays_near_float(bits, dead_zone):
    frames = random_frames(6, 35, 30, graded=True, seed=6)
    model = lively_irsnn(30, [16, 12], 5, bits=bits, dead_zone=dead_zone, seed=6, frames=frames)
    net = export_model(model, decision_threshold=0.5)
    fixed = quantize.to_device(net)
    ref = reference.simulate(fixed, frames)
    result = simulate.record_batch(fixed, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 2)
    assert ref.saturated == 0 and np.unique(ref.spikes[0]).size > (1 if bits == 1 else 3)
    # Close to the float network (an untrained, lively one amplifies differences; trained networks on
    # real N-MNIST agree on 98.5 % of predictions: benchmarks/bench_fixed_point.py)
    float_run = reference.simulate(net, frames)
    for layer in range(2):
        assert np.mean(np.abs(ref.spikes[layer] - float_run.spikes[layer]) <= 1) > 0.7
