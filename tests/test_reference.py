"""deploy.reference equals PyTorch (float64): same spikes in every layer, outputs, decisions, activity."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deploy import quantize, reference
from deploy.activity import activities_from_batch
from rc_snn.pipeline.recording import record_run
from rc_snn.training.early_exit import select_decision
from rc_snn.pipeline.export import export_model
from helpers import lively_alif, random_frames






@pytest.mark.parametrize("hidden, graded, output_layer, threshold", [
    ([24], False, "leaky", 0.4), ([20, 16], True, "leaky", 0.4),
    ([24], True, "adaptive", 0.22),  # Yin's output neurons reset at their threshold: softmax stays near 1/5
])
def test_reference_equals_pytorch_float64(hidden, graded, output_layer, threshold):
    model = lively_alif(30, hidden, 5, output_layer=output_layer)
    net = export_model(model, decision_threshold=threshold)
    frames = random_frames(6, 50, 30, graded=graded)
    run = reference.simulate(net, frames)

    model64 = copy.deepcopy(model).double()
    x_seq = torch.from_numpy(frames).transpose(0, 1)
    outputs, spikes = record_run(model64, x_seq)
    for index, layer_spikes in enumerate(spikes):
        torch_spikes = layer_spikes.transpose(0, 1).numpy() > 0
        mismatches = int(np.sum(torch_spikes != run.spikes[index]))
        assert mismatches == 0, f"layer {index}: {mismatches} spikes differ"
        assert 0.02 < torch_spikes.mean() < 0.9, "test network should spike in every layer"
    np.testing.assert_allclose(run.outputs, outputs.transpose(0, 1).numpy(), rtol=0, atol=1e-12)

    decision = select_decision(outputs, threshold)
    np.testing.assert_array_equal(run.decision_steps, decision.steps.numpy())
    np.testing.assert_array_equal(run.predictions, decision.predictions.numpy())
    assert len(set(run.decision_steps.tolist())) > 1, "want samples that decide at different steps"

    torch_activity = activities_from_batch(x_seq.numpy(), [s.numpy() for s in spikes], decision.steps.numpy())
    for ours, theirs in zip(run.activities(frames), torch_activity):
        assert ours.n_steps == theirs.n_steps and ours.input_is_binary == theirs.input_is_binary
        np.testing.assert_array_equal(ours.input_counts, theirs.input_counts)
        for a, b in zip(ours.spike_counts, theirs.spike_counts):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fixed_point", [False, True])
def test_samples_are_independent_of_their_batch(fixed_point):
    net = export_model(lively_alif(30, [16], 4), decision_threshold=0.5)
    frames = random_frames(5, 30, 30)
    full = reference.simulate(quantize.to_device(net) if fixed_point else net, frames)
    part = reference.simulate(quantize.to_device(net) if fixed_point else net, frames[2:4])
    np.testing.assert_array_equal(full.outputs[2:4], part.outputs)
    np.testing.assert_array_equal(full.spikes[0][2:4], part.spikes[0])


def test_frames_are_checked():
    net = export_model(lively_alif(30, [8], 3), decision_threshold=0.5)
    with pytest.raises(ValueError, match=r"\[N >= 1, T >= 1, 30\]"):
        reference.simulate(net, np.zeros((2, 5, 29)))
    with pytest.raises(ValueError, match="finite"):
        reference.simulate(net, np.full((1, 3, 30), np.nan))
    with pytest.raises(ValueError, match="integer event counts"):
        reference.simulate(quantize.to_device(net), np.full((1, 3, 30), 0.5))


def test_frames_not_mutated():
    net = export_model(lively_alif(30, [8], 3), decision_threshold=0.5)
    frames = random_frames(2, 10, 30)
    copy_ = frames.copy()
    reference.simulate(net, frames)
    reference.simulate(quantize.to_device(net), frames)
    np.testing.assert_array_equal(frames, copy_)
