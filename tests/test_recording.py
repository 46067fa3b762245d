import numpy as np
import torch

from deploy.activity import activities_from_batch
from rc_snn.models import ALIFRSNN
from rc_snn.pipeline.recording import record_run
from rc_snn.training.early_exit import run_until_decision


@torch.no_grad()
def test_recorded_activity_cut_at_each_decision_equals_counts_from_the_layers_own_forward():
    model = ALIFRSNN(10, [20, 12], 3).double()
    with torch.no_grad():
        model.readout.linear.weight.mul_(10.0)
        for layer in model.layers:
            layer.w_in.weight.mul_(3.0)
    x = (torch.rand(25, 8, 10, dtype=torch.float64) < 0.4).double()

    # What the layers compute, layer by layer over the whole sequence (no step interface).
    spikes_first, _ = model.layers[0](x)
    spikes_second, _ = model.layers[1](spikes_first)
    outputs_expected, _ = model.readout(spikes_second)

    outputs, spikes = record_run(model, x)
    torch.testing.assert_close(outputs, outputs_expected, rtol=0, atol=0)
    assert torch.equal(spikes[0], spikes_first) and torch.equal(spikes[1], spikes_second)

    decision = run_until_decision(model, x, 0.7, chunk_size=4)  # what early exit computes
    assert len(set(decision.steps.tolist())) > 1, "test needs several decision steps"
    activities = activities_from_batch(x.numpy(), [s.numpy() for s in spikes], decision.steps.numpy())
    assert sum(int(a.spike_counts[1].sum()) for a in activities) > 0, "test needs spikes in the second layer"
    for sample, (activity, step) in enumerate(zip(activities, decision.steps.tolist())):
        assert activity.n_steps == step + 1
        np.testing.assert_array_equal(activity.input_counts, (x[:step + 1, sample] != 0).sum(0).numpy())
        for counts, layer_spikes in zip(activity.spike_counts, (spikes_first, spikes_second)):
            np.testing.assert_array_equal(counts, layer_spikes[:step + 1, sample].sum(0).numpy())
