"""deploy.simulate: the Lava network equals the numpy reference exactly (float and fixed point),
early exit stops at the decision step, and counts come from the processes. Each Lava run is small."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deploy import quantize, reference, simulate
from rc_snn.pipeline.recording import record_run
from rc_snn.pipeline.export import export_model
from helpers import LAVA_TIMEOUT, assert_same_activity, assert_same_trains, lively_alif, lively_irsnn, random_frames, snntorch_network


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_float_lava_equals_reference_and_exits_early():
    model = lively_alif(30, [20, 16], 5)
    net = export_model(model, decision_threshold=0.32)
    frames = random_frames(4, 40, 30, graded=True)
    ref = reference.simulate(net, frames)
    assert ref.decision_steps.max() < 39, "test wants every sample to decide before the end"
    result = simulate.record_batch(net, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 2)
    # early exit: the run ended at the step in which the readout saw the last decision
    assert result.lava_steps == ref.decision_steps.max() + 1 + len(net.layers) + 1
    for layer in range(2):
        np.testing.assert_array_equal(result.spike_counts[layer],
                                      np.stack([ref.spike_counts(n)[layer] for n in range(4)]))


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_fixed_lava_equals_fixed_reference():
    model = lively_alif(30, [20], 5, seed=1)
    net = export_model(model, decision_threshold=0.4)
    frames = random_frames(4, 40, 30, graded=True, seed=1)
    fixed = quantize.to_device(net)
    ref = reference.simulate(fixed, frames)
    result = simulate.record_batch(fixed, frames)
    np.testing.assert_array_equal(result.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(result.predictions, ref.predictions)
    assert_same_trains(result, ref, 1)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("fixed_point", [False, True])
def test_yins_adaptive_output_layer_runs_in_lava_as_in_the_reference(fixed_point):
    """Every step of the recorded output (m, as a per-step task reads it) equals the reference's."""
    net = export_model(lively_alif(30, [16], 5, seed=7, output_layer="adaptive"), decision_threshold=1.0)
    frames = random_frames(3, 30, 30, rate=0.2, seed=7)
    network = quantize.to_device(net, u_headroom=1024) if fixed_point else net
    ref = reference.simulate(network, frames)
    assert np.ptp(ref.outputs.argmax(-1)) > 0, "the test wants outputs whose argmax changes"
    result = simulate.record_batch(network, frames)
    assert_same_trains(result, ref, 1)
    predicted = simulate.predict_every_step(network, frames)  # packed by the readout, not monitored
    np.testing.assert_array_equal(predicted.step_predictions, ref.outputs.argmax(-1))


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_no_crossing_runs_to_the_last_step():
    net = export_model(lively_alif(30, [12], 4, seed=2), decision_threshold=1.0)  # softmax never exceeds 1
    frames = random_frames(3, 20, 30, seed=2)
    evaluation = simulate.evaluate(net, frames, np.zeros(3, dtype=int), progress=False)
    assert evaluation.decision_steps.tolist() == [19, 19, 19]
    assert evaluation.lava_steps == evaluation.max_lava_steps == 20 + 2
    ref = reference.simulate(net, frames)
    np.testing.assert_array_equal(evaluation.predictions, ref.predictions)
    assert_same_activity(evaluation.activities, ref.activities(frames))


@pytest.fixture
def nmnist_frames(nmnist_small):
    from rc_snn.data import load_dataset

    dataset, info = load_dataset("nmnist", "val", data_dir=nmnist_small, bin_ms=5.0, limit=6)
    frames = np.stack([dataset[i][0].numpy() for i in range(len(dataset))]).astype(np.float64)
    labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    return frames, labels, info


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_real_nmnist_lava_equals_reference_and_pytorch(nmnist_frames):
    frames, labels, info = nmnist_frames
    torch.manual_seed(3)
    model = lively_alif(info.n_inputs, [32], 10, seed=3)
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(0.5)
    net = export_model(model, decision_threshold=0.3, dt_ms=info.dt_ms)
    ref = reference.simulate(net, frames)
    outputs, spikes = record_run(copy.deepcopy(model).double(), torch.from_numpy(frames).transpose(0, 1))
    torch_spikes = spikes[0].transpose(0, 1).numpy() > 0
    assert 0.01 < torch_spikes.mean() < 0.9
    assert int(np.sum(torch_spikes != ref.spikes[0])) == 0

    float_eval = simulate.evaluate(net, frames, labels, batch_size=3, progress=False)  # two batches
    np.testing.assert_array_equal(float_eval.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(float_eval.predictions, ref.predictions)
    assert_same_activity(float_eval.activities, ref.activities(frames))
    report = float_eval.to_json()
    assert report["n_samples"] == 6 and report["accuracy"] == float(np.mean(ref.predictions == labels))

    fixed_eval = simulate.evaluate(quantize.to_device(net), frames, labels, batch_size=6, progress=False)
    fixed_ref = reference.simulate(quantize.to_device(net), frames)
    np.testing.assert_array_equal(fixed_eval.decision_steps, fixed_ref.decision_steps)
    np.testing.assert_array_equal(fixed_eval.predictions, fixed_ref.predictions)
    assert_same_activity(fixed_eval.activities, fixed_ref.activities(frames))
    # The fixed-point criterion: at most one prediction in six differs from floating point.
    assert np.mean(fixed_eval.predictions == float_eval.predictions) >= 5 / 6


def test_evaluate_validates_before_any_lava_process():
    net = export_model(lively_alif(30, [8], 3), decision_threshold=0.5)
    frames = random_frames(2, 5, 30)
    with pytest.raises(ValueError, match="labels"):
        simulate.evaluate(net, frames, np.zeros(3, dtype=int), progress=False)
    with pytest.raises(ValueError, match="frames of shape"):
        simulate.evaluate(net, frames[:, :, :10], np.zeros(2, dtype=int), progress=False)
    with pytest.raises(ValueError, match="integer event counts"):
        simulate.evaluate(quantize.to_device(net), frames * 0.5, np.zeros(2, dtype=int), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        simulate.evaluate(net, frames, np.zeros(2, dtype=int), batch_size=0, progress=False)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("fixed_point", [False, True])
def test_a_stream_gives_each_sample_what_it_gives_alone(fixed_point):
    """Nine samples streamed through three slots: each slot takes the next sample when its current
    one decides, so samples follow long and short ones; every decision, prediction and spike count
    equals the reference run of the sample alone (the slot is reset for each new sample)."""
    model = lively_alif(30, [20, 16], 5, seed=3)
    net = export_model(model, decision_threshold=0.32)
    frames = random_frames(9, 40, 30, graded=True, seed=3)
    network = quantize.to_device(net) if fixed_point else net  # the type selects the precision
    ref = reference.simulate(network, frames)
    assert len(set(ref.decision_steps.tolist())) > 3, "the test wants samples of different lengths"
    streamed = simulate.run_stream(network, frames, slots=3)
    np.testing.assert_array_equal(streamed.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(streamed.predictions, ref.predictions)
    for layer in range(2):
        np.testing.assert_array_equal(streamed.spike_counts[layer],
                                      np.stack([ref.spike_counts(n)[layer] for n in range(9)]))
    batches = [simulate.run_batch(network, frames[a:a + 3]) for a in (0, 3, 6)]
    assert streamed.lava_steps < sum(batch.lava_steps for batch in batches)  # slots do not wait for the slowest


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_evaluate_streams_by_default_and_counts_as_the_batch_mode():
    model = lively_alif(30, [16], 5, seed=4)
    net = export_model(model, decision_threshold=0.32)
    frames = random_frames(7, 30, 30, seed=4)
    labels = np.arange(7) % 5
    streamed = simulate.evaluate(net, frames, labels, batch_size=2, progress=False)
    batched = simulate.evaluate(net, frames, labels, batch_size=2, stream=False, progress=False)
    assert streamed.streamed and not batched.streamed
    np.testing.assert_array_equal(streamed.decision_steps, batched.decision_steps)
    np.testing.assert_array_equal(streamed.predictions, batched.predictions)
    assert streamed.counts == batched.counts
    assert streamed.lava_steps <= batched.lava_steps


@pytest.mark.parametrize("n_steps", [1, 20, 300, 4000])
def test_packed_spike_counts_unpack_to_themselves(n_steps):
    from deploy.kernels import count_packing, pack_counts, unpack_counts

    counts = np.random.default_rng(n_steps).integers(0, n_steps + 1, (6, 37))
    counts[0, :] = n_steps  # the largest count fits
    words = pack_counts(counts, n_steps)
    assert words.shape == (6, -(-37 // count_packing(n_steps)[1])) and words.max() < 2**52  # exact in float64
    np.testing.assert_array_equal(unpack_counts(words.astype(np.float64), 37, n_steps), counts)


def _irsnn_network(frames):

    return export_model(lively_irsnn(30, [16, 12], 5, bits=6, dead_zone=3, seed=6, frames=frames[:8]),
                        decision_threshold=0.5)


def _snntorch_network(frames):
    from rc_snn.pipeline.snntorch_export import export_snntorch

    return export_snntorch(snntorch_network("rleaky-zero", seed=2), decision_threshold=0.5)


def _yin_network(frames):
    return export_model(lively_alif(30, [16], 5, seed=6, output_layer="adaptive"), decision_threshold=0.3)


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("kind", ["irsnn", "snntorch", "adaptive-output"])
@pytest.mark.parametrize("fixed_point", [False, True])
def test_every_layer_kind_streams_as_it_runs_alone(kind, fixed_point):
    """IR-SNN and snnTorch layers, and Yin's adaptive output layer: streamed, each sample as alone."""
    frames = random_frames(8, 35, 30, graded=kind == "irsnn", rate=0.2, seed=6)
    net = {"irsnn": _irsnn_network, "snntorch": _snntorch_network, "adaptive-output": _yin_network}[kind](frames)
    network = quantize.to_device(net) if fixed_point else net  # the type selects the precision
    ref = reference.simulate(network, frames)
    assert len(set(ref.decision_steps.tolist())) > 2, "the test wants samples of different lengths"
    streamed = simulate.run_stream(network, frames, slots=3)
    np.testing.assert_array_equal(streamed.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(streamed.predictions, ref.predictions)
    for layer in range(len(net.layers)):
        np.testing.assert_array_equal(streamed.spike_counts[layer],
                                      np.stack([ref.spike_counts(n)[layer] for n in range(8)]))
