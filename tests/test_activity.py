import numpy as np
import torch

from deploy.counting import activities_from_batch
from rc_snn.activity import record_activity
from rc_snn.early_exit import select_decision
from rc_snn.models import ALIFRSNN


@torch.no_grad()
def test_recorded_activity_equals_counts_from_a_full_recording_cut_at_each_decision():
    model = ALIFRSNN(10, [20, 12], 3).double()
    with torch.no_grad():
        model.readout.linear.weight.mul_(10.0)
        for layer in model.layers:
            layer.w_in.weight.mul_(3.0)
    x = (torch.rand(25, 8, 10, dtype=torch.float64) < 0.4).double()

    # Full recording by stepping the model by hand, then cut by deploy.counting.
    state, spikes, outputs = model.initial_state(8), [[], []], []
    for x_t in x:
        out, state = model.step(x_t, state)
        outputs.append(out)
        for index, layer_state in enumerate(state.layers):
            spikes[index].append(layer_state.s)
    decision_full = select_decision(torch.stack(outputs), 0.7)
    expected = activities_from_batch(x.numpy(), [torch.stack(s).numpy() for s in spikes], decision_full.steps.numpy())

    decision, activities = record_activity(model, x, 0.7, chunk_size=4)
    assert torch.equal(decision.steps, decision_full.steps)
    assert len(set(decision.steps.tolist())) > 1, "test needs several decision steps"
    assert sum(int(a.spike_counts[1].sum()) for a in activities) > 0, "test needs spikes in the second layer"
    for got, want in zip(activities, expected):
        assert got.n_steps == want.n_steps
        np.testing.assert_array_equal(got.input_counts, want.input_counts)
        for got_layer, want_layer in zip(got.spike_counts, want.spike_counts):
            np.testing.assert_array_equal(got_layer, want_layer)
