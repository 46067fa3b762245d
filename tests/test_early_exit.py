import math

import pytest
import torch

from rc_snn.training.early_exit import crossed_threshold, output_entropy, run_until_decision, select_decision
from rc_snn.training.losses import rank_coded_loss
from rc_snn.models import ALIFRSNN, LSTMBaseline
from replay import ReplayModel

THRESHOLD = 0.9
BIG = 10.0  # softmax([10, 0, 0]) = 0.9999 > 0.9; softmax of zeros = 1/3 < 0.9


def hand_built_outputs():
    """Three classes, three samples: t* = 0 (a genuine crossing), t* = 3, and never (read at t = 5)."""
    z = torch.zeros(6, 3, 3, dtype=torch.float64)
    z[0, 0, 1] = BIG  # sample 0 crosses at step 0
    z[3, 1, 2] = BIG  # sample 1 crosses at step 3 ...
    z[4, 1, 0] = BIG  # ... and would cross again later, for another class
    z[:, 2, 0] = 0.5  # sample 2 never crosses
    return z, torch.tensor([0, 3, 5]), torch.tensor([True, True, False])


def test_decision_rule_on_hand_built_outputs():
    z, steps, crossed = hand_built_outputs()
    decision = select_decision(z, THRESHOLD)
    assert decision.steps.tolist() == steps.tolist()
    assert decision.crossed.tolist() == crossed.tolist()
    assert decision.predictions.tolist() == [1, 2, 0]


def test_a_crossing_at_step_zero_is_not_mistaken_for_no_crossing():
    z = torch.zeros(4, 1, 2)
    z[0, 0, 0] = BIG
    decision = select_decision(z, THRESHOLD)
    assert decision.steps.item() == 0 and decision.crossed.item()


def test_runner_on_hand_built_outputs_picks_each_samples_step_and_stops_at_the_last_crossing():
    z, steps, crossed = hand_built_outputs()
    z = z[:, :2]  # samples crossing at 0 and 3: the batch must stop after step 3
    model = ReplayModel(3).double()
    decision = run_until_decision(model, z, THRESHOLD, chunk_size=2)
    assert decision.steps.tolist() == [0, 3]
    assert decision.crossed.tolist() == [True, True]
    assert decision.steps_simulated == 4 and model.steps_called == 4
    assert decision.sample_steps == 1 + 4  # sample 0 left the batch after its step 0


def test_sample_that_never_crosses_is_read_at_the_last_step():
    z, _, _ = hand_built_outputs()
    model = ReplayModel(3).double()
    decision = run_until_decision(model, z, THRESHOLD, chunk_size=4)
    assert decision.steps.tolist() == [0, 3, 5]
    assert decision.crossed.tolist() == [True, True, False]
    assert torch.equal(decision.logits[2], z[5, 2])
    assert model.steps_called == 6


@pytest.mark.parametrize("entropy_weight", [0.0, 0.3])
def test_loss_gradients_after_each_decision_step_are_zero(entropy_weight):
    z, steps, _ = hand_built_outputs()
    z = z.clone().requires_grad_(True)
    decision = run_until_decision(ReplayModel(3).double(), z, THRESHOLD, track_entropy=entropy_weight > 0)
    loss = rank_coded_loss(decision.logits, torch.tensor([1, 2, 0]), decision.mean_entropy, entropy_weight)
    loss.backward()
    for sample, t_star in enumerate(steps.tolist()):
        assert z.grad[t_star + 1:, sample].abs().sum() == 0, f"gradient after t*={t_star} for sample {sample}"
        assert z.grad[t_star, sample].abs().sum() > 0, f"no gradient at t*={t_star} for sample {sample}"
        before = z.grad[:t_star, sample].abs().sum()
        assert (before > 0) == (entropy_weight > 0 and t_star > 0)


def test_loss_is_cross_entropy_at_the_decision_step_minus_weighted_mean_entropy():
    z, _, _ = hand_built_outputs()
    targets = torch.tensor([1, 2, 0])
    decision = run_until_decision(ReplayModel(3).double(), z, THRESHOLD, track_entropy=True)
    expected_ce = torch.nn.functional.cross_entropy(torch.stack([z[0, 0], z[3, 1], z[5, 2]]), targets)
    entropies = output_entropy(z)  # [time, batch]
    expected_h = torch.stack([entropies[:1, 0].mean(), entropies[:4, 1].mean(), entropies[:6, 2].mean()])
    assert torch.allclose(decision.mean_entropy, expected_h)
    loss = rank_coded_loss(decision.logits, targets, decision.mean_entropy, 0.5)
    assert torch.allclose(loss, expected_ce - 0.5 * expected_h.mean())


def test_entropy_of_uniform_output_is_log_classes():
    assert torch.allclose(output_entropy(torch.zeros(2, 5)), torch.full((2,), math.log(5)))
    assert crossed_threshold(torch.tensor([[0.0, 0.0]]), 0.5).item() is False


@pytest.mark.parametrize("make_model, readout_gain", [
    (lambda: ALIFRSNN(12, [24, 16], 4), 8.0),
    (lambda: LSTMBaseline(12, 16, 4, n_layers=2), 40.0),
])
def test_runner_equals_the_decision_rule_on_the_full_forward_pass_with_equal_gradients(make_model, readout_gain):
    model = make_model().double()
    with torch.no_grad():  # a confident readout, so samples decide at different steps
        (model.readout.linear if hasattr(model.readout, "linear") else model.readout).weight.mul_(readout_gain)
    x = (torch.rand(30, 16, 12, dtype=torch.float64) < 0.3).double()
    targets = torch.randint(0, 4, (16,))

    full = select_decision(model(x)[0], 0.6)
    loss_full = rank_coded_loss(full.logits, targets)
    grads_full = torch.autograd.grad(loss_full, list(model.parameters()), allow_unused=True)

    early = run_until_decision(model, x, 0.6, chunk_size=7)
    loss_early = rank_coded_loss(early.logits, targets)
    grads_early = torch.autograd.grad(loss_early, list(model.parameters()), allow_unused=True)

    assert len(set(full.steps.tolist())) > 2, "test needs samples deciding at several steps"
    assert torch.equal(full.steps, early.steps)
    assert torch.allclose(full.logits, early.logits, atol=1e-12)
    for g_full, g_early in zip(grads_full, grads_early):
        if g_full is not None:
            assert torch.allclose(g_full, g_early, atol=1e-10)
    assert early.sample_steps == int(early.steps.sum()) + 16 < 30 * 16


def test_runner_rejects_bad_input():
    model = ALIFRSNN(4, 8, 2)
    with pytest.raises(ValueError, match="rank 3"):
        run_until_decision(model, torch.zeros(5, 4), 0.9)
    with pytest.raises(ValueError, match="chunk_size"):
        run_until_decision(model, torch.zeros(5, 2, 4), 0.9, chunk_size=0)
