"""The hand-written BPTT (rc_snn.training.bptt) against autograd through the model's own step functions.

Networks of one, two and three layers (of different widths) are checked on both engines of
``run_alif``: the compiled kernels of rc_snn.training.compiled (``compiled=True``) and the torch loop
(``compiled=False``).
"""

import pytest
import torch

from rc_snn.neuron.surrogate import surrogate_vjp
from rc_snn.training.bptt import run_alif
from rc_snn.training.config import BACKWARDS, TrainConfig
from rc_snn.training.early_exit import run_until_decision
from rc_snn.training.losses import rank_coded_loss
from rc_snn.models import ALIFRSNN, LSTMBaseline
from rc_snn.neuron.surrogate import multi_gaussian
from rc_snn.training.step import training_step
from helpers import lively_alif64, random_spikes






def gradients(model, loss_fn):
    model.zero_grad()
    loss_fn().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def assert_same_gradients(expected, got, rtol=1e-9):
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=rtol, atol=1e-12, msg=name)


ENGINES = [([16], True), ([16], False), ([12, 9], True), ([12, 9], False), ([10, 13, 6], True),
           ([10, 13, 6], False)]  # (hidden, compiled)


@pytest.mark.parametrize("hidden,compiled", ENGINES)
def test_full_sequence_outputs_and_gradients_equal_autograd(hidden, compiled):
    model, x = lively_alif64(hidden), random_spikes()
    outputs, decision = run_alif(model, x, compiled=compiled)
    torch.testing.assert_close(outputs, model(x)[0], rtol=0, atol=1e-13)
    assert decision.steps.tolist() == [29] * 10 and decision.steps_simulated == 30

    def loss(outputs):  # depends on every step, so every step's gradient is checked
        return (outputs ** 2).mean() + outputs[-1, :, 0].sum()

    expected = gradients(model, lambda: loss(model(x)[0]))
    assert any(g.abs().max() > 0 for g in expected.values())
    assert_same_gradients(expected, gradients(model, lambda: loss(run_alif(model, x, compiled=compiled)[0])))


@pytest.mark.parametrize("hidden,compiled", ENGINES)
def test_rank_coded_decisions_and_gradients_equal_the_step_by_step_runner(hidden, compiled):
    model, x, threshold = lively_alif64(hidden), random_spikes(), {1: 0.5, 2: 0.3, 3: 0.45}[len(hidden)]
    y = torch.randint(0, 4, (10,))
    reference = run_until_decision(model, x, threshold, chunk_size=7, track_entropy=True)
    _, decision = run_alif(model, x, threshold, chunk_size=7, track_entropy=True, compiled=compiled)
    assert 0 < int(decision.crossed.sum()) < 10  # some rows leave early (some mid-chunk), some never cross
    assert decision.steps.tolist() == reference.steps.tolist()
    assert decision.crossed.tolist() == reference.crossed.tolist()
    assert (decision.steps_simulated, decision.sample_steps) == (reference.steps_simulated, reference.sample_steps)
    torch.testing.assert_close(decision.logits, reference.logits, rtol=0, atol=1e-13)
    torch.testing.assert_close(decision.mean_entropy, reference.mean_entropy)

    def loss(d):
        return rank_coded_loss(d.logits, y, d.mean_entropy, entropy_weight=0.3)

    expected = gradients(model, lambda: loss(run_until_decision(model, x, threshold, chunk_size=7, track_entropy=True)))
    got = gradients(model, lambda: loss(run_alif(model, x, threshold, chunk_size=7, track_entropy=True,
                                                 compiled=compiled)[1]))
    assert_same_gradients(expected, got)


@pytest.mark.parametrize("compiled", [True, False])
def test_outputs_are_held_after_each_decision_and_their_gradient_reaches_the_decision_step(compiled):
    model, x = lively_alif64([16]), random_spikes()
    outputs, decision = run_alif(model, x, 0.4, chunk_size=4, compiled=compiled)
    steps = decision.steps
    assert decision.steps_simulated == int(steps.max()) + 1 < 30  # stopped at the batch's last decision
    held = torch.minimum(torch.arange(outputs.shape[0])[:, None], steps[None, :])
    full = model(x)[0][:outputs.shape[0]]
    expected_outputs = full.gather(0, held[..., None].expand(-1, -1, 4))
    torch.testing.assert_close(outputs, expected_outputs, rtol=0, atol=1e-13)

    weights = torch.randn_like(outputs)  # a loss on every held output, so the tail sums are checked
    expected = gradients(model, lambda: (model(x)[0][:outputs.shape[0]].gather(
        0, held[..., None].expand(-1, -1, 4)) * weights).sum())
    got = gradients(model, lambda: (run_alif(model, x, 0.4, chunk_size=4, compiled=compiled)[0] * weights).sum())
    assert_same_gradients(expected, got)


@pytest.mark.parametrize("compiled,rtol", [(False, 1e-9), (True, 1e-6)])
def test_a_surrogate_without_a_derivative_goes_through_autograd(compiled, rtol):
    from snntorch import surrogate

    model, x = lively_alif64([16], spike_grad=surrogate.atan()), random_spikes()
    expected = gradients(model, lambda: (model(x)[0] ** 2).mean())
    # snnTorch's atan returns float32 spikes, so autograd (and the torch loop, which multiplies the
    # incoming gradient through it) round sigma'(v) * g to float32; the kernels take sigma'(v) alone.
    got = gradients(model, lambda: (run_alif(model, x, compiled=compiled)[0] ** 2).mean())
    assert_same_gradients(expected, got, rtol=rtol)


def test_surrogate_vjp_uses_the_derivative_and_agrees_with_autograd():
    v, g = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    spike_fn = multi_gaussian()
    v_leaf = v.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(spike_fn(v_leaf), v_leaf, g)
    torch.testing.assert_close(surrogate_vjp(spike_fn, v, g), expected)
    torch.testing.assert_close(surrogate_vjp(lambda u: spike_fn(u), v, g), expected)  # no derivative: autograd


@pytest.mark.parametrize("loss, last_step_weight, hidden", [("rank", 0.0, [16]), ("full", 0.0, [16]),
                                                            ("rank", 0.5, [16]), ("rank", 0.5, [12, 9])])
def test_training_step_gives_the_same_loss_and_gradients_with_either_backward(loss, last_step_weight, hidden):
    config = TrainConfig(loss=loss, decision_threshold=0.5, entropy_weight=0.1, hidden=hidden[0], layers=len(hidden), chunk_size=5,
                         last_step_weight=last_step_weight)
    model, x = lively_alif64(hidden).float(), random_spikes().float()
    y = torch.randint(0, 4, (10,))
    results = {}
    for backward in BACKWARDS:
        model.zero_grad()
        loss, decision, _ = training_step(model, x, y, config.replace(backward=backward))
        loss.backward()
        results[backward] = (loss.detach(), decision.steps, [p.grad.clone() for p in model.parameters()])
    loss_a, steps_a, grads_a = results["autograd"]
    for backward in ("manual", "compiled"):
        loss_m, steps_m, grads_m = results[backward]
        torch.testing.assert_close(loss_m, loss_a)
        assert steps_m.tolist() == steps_a.tolist()
        for a, m in zip(grads_a, grads_m):
            torch.testing.assert_close(m, a, rtol=1e-4, atol=1e-6)


def test_bad_input_is_refused_with_a_clear_error():
    model = lively_alif64([8])
    with pytest.raises(ValueError, match="chunk_size"):
        run_alif(model, random_spikes(), 0.5, chunk_size=0)
    with pytest.raises(ValueError, match="expected x_seq with 7 features"):
        run_alif(model, torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="ALIFRSNN"):
        run_alif(LSTMBaseline(7, 8, 4), random_spikes().float())
    with pytest.raises(ValueError, match="on the CPU, in float32 or float64"):
        run_alif(model, random_spikes().to(torch.float16), compiled=True)
    x = random_spikes()
    x[0, 3, 2] = float("nan")
    for compiled in (True, False):
        with pytest.raises(ValueError, match="finite"):
            run_alif(model, x, compiled=compiled)
    with pytest.raises(ValueError, match="one dtype"):
        run_alif(model, random_spikes().float(), compiled=True)  # float64 parameters, float32 input


def test_the_last_step_term_trains_steps_after_the_decision_and_vanishes_with_weight_zero():
    """Gradient of the loss with respect to each input step, through the model's own forward (float64)."""
    model, y = lively_alif64([16]), torch.randint(0, 4, (10,))
    x = random_spikes().requires_grad_(True)
    reference = run_until_decision(model, x.detach(), 0.5)
    after = torch.arange(x.shape[0])[:, None] > reference.steps[None, :]  # [time, batch]: steps after t*
    assert bool(reference.crossed.any()) and bool(after.any())

    def input_grad(weight):
        config = TrainConfig(decision_threshold=0.5, hidden=16, last_step_weight=weight, backward="autograd")
        x.grad = None
        training_step(model, x, y, config).loss.backward()
        return x.grad.abs().sum(-1)  # [time, batch]

    assert float(input_grad(0.0)[after].sum()) == 0.0  # BPTT starts at t*
    assert float(input_grad(0.5)[after].sum()) > 0.0  # the last-step term reaches past t*
    with_weight = TrainConfig(decision_threshold=0.5, hidden=16, last_step_weight=1e-300, backward="autograd")
    model.zero_grad()
    training_step(model, x.detach(), y, with_weight).loss.backward()
    vanishing = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    training_step(model, x.detach(), y, with_weight.replace(last_step_weight=0.0)).loss.backward()
    for a, b in zip(vanishing, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("hidden,compiled", ENGINES)
def test_spike_counts_and_their_gradient_equal_autograd(hidden, compiled):
    """The activity penalty's input: each sample's spikes per layer up to t*, and its gradient in each engine."""
    model, x, threshold = lively_alif64(hidden), random_spikes(), {1: 0.5, 2: 0.3, 3: 0.45}[len(hidden)]
    weights = torch.rand(10, len(hidden), dtype=torch.float64)  # a different weight per sample and layer

    # The counts from the model's own forward: spikes of every layer summed over neurons and steps <= t*.
    reference = run_until_decision(model, x, threshold, chunk_size=7, track_spikes=True)
    state, counts = model.initial_state(10, dtype=torch.float64), []
    with torch.no_grad():
        for t in range(x.shape[0]):
            _, state = model.step(x[t], state)
            counts.append(torch.stack([layer.s.sum(-1) for layer in state.layers], -1))
    upto = torch.arange(x.shape[0])[:, None] <= reference.steps[None, :]
    expected_counts = (torch.stack(counts) * upto[..., None]).sum(0)
    assert float(expected_counts.min()) > 0  # every sample spikes in every layer before deciding
    torch.testing.assert_close(reference.spike_counts, expected_counts, rtol=0, atol=0)
    _, decision = run_alif(model, x, threshold, chunk_size=7, compiled=compiled)
    torch.testing.assert_close(decision.spike_counts, expected_counts, rtol=0, atol=0)

    def loss(d):  # the counts alone, so their gradient is checked apart from the readout's
        return (d.spike_counts * weights).sum() + d.logits.sum() * 0.0

    expected = gradients(model, lambda: loss(run_until_decision(model, x, threshold, chunk_size=7, track_spikes=True)))
    assert expected["layers.0.w_in.weight"].abs().max() > 0
    got = gradients(model, lambda: loss(run_alif(model, x, threshold, chunk_size=7, compiled=compiled)[1]))
    assert_same_gradients(expected, got)


@pytest.mark.parametrize("loss, last_step_weight", [("rank", 0.0), ("full", 0.0), ("rank", 0.5)])
def test_the_activity_penalty_gives_the_same_loss_and_gradients_with_either_backward(loss, last_step_weight):
    config = TrainConfig(loss=loss, decision_threshold=0.5, hidden=12, layers=2, chunk_size=5, activity_weight=0.05,
                         last_step_weight=last_step_weight)
    model, x, y = lively_alif64([12, 12]).float(), random_spikes().float(), torch.randint(0, 4, (10,))
    results = {}
    backwards = BACKWARDS if loss == "rank" and last_step_weight == 0 else ("manual", "compiled")
    for backward in backwards:
        model.zero_grad()
        loss_value, _, _ = training_step(model, x, y, config.replace(backward=backward))
        loss_value.backward()
        results[backward] = (loss_value.detach(), [p.grad.clone() for p in model.parameters()])
    model.zero_grad()
    without, _, _ = training_step(model, x, y, config.replace(activity_weight=0.0))
    assert float(results["manual"][0]) > float(without.detach()) + 1e-3  # the penalty is there
    loss_m, grads_m = results["manual"]
    for backward in backwards:
        torch.testing.assert_close(results[backward][0], loss_m)
        for a, m in zip(results[backward][1], grads_m):
            torch.testing.assert_close(a, m, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("hidden", [[12], [12, 9]])
@pytest.mark.parametrize("activity_weight", [0.0, 0.05])
def test_the_per_step_loss_gives_autograds_gradients_in_every_engine(hidden, activity_weight):
    """A label at every step (the ECG task): every step's output carries gradient, in float64."""
    config = TrainConfig(loss="per-step", hidden=hidden[0], layers=len(hidden), activity_weight=activity_weight,
                         chunk_size=4)
    model, x = lively_alif64(hidden), random_spikes()
    y = torch.randint(0, 4, (10, 30))
    results = {}
    for backward in BACKWARDS if activity_weight == 0 else ("manual", "compiled"):
        model.zero_grad()
        loss_value, decision, score = training_step(model, x, y, config.replace(backward=backward), burn_in=5)
        loss_value.backward()
        results[backward] = (loss_value.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, score)
    expected_loss, expected, expected_score = results["manual" if activity_weight else "autograd"]
    assert expected["layers.0.w_in.weight"].abs().max() > 0
    for loss_value, grads, score in results.values():
        torch.testing.assert_close(loss_value, expected_loss, rtol=1e-12, atol=0)
        assert_same_gradients(expected, grads)
        torch.testing.assert_close(score, expected_score)
    if activity_weight == 0:  # autograd through the model's own forward
        outputs = model(x)[0]
        manual = sum(torch.nn.functional.cross_entropy(outputs[t], y[:, t]) for t in range(5, 30)) / 25
        torch.testing.assert_close(expected_loss, manual.detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("hidden, threshold", [([12], 0.4), ([12, 9], 0.31)])
def test_the_compiled_engine_runs_yins_adaptive_output_layer_as_autograd_does(hidden, threshold):
    """The adaptive output layer (spiking ALIF neurons read by their membrane) in the compiled kernels:
    outputs, rank-coded decisions and every gradient (the output neurons' time constants included)
    equal autograd through the model's own forward, in float64; the torch loop refuses it."""
    from rc_snn.neuron.alif import ALIFParams

    torch.manual_seed(3)
    output = ALIFParams(b0=0.01, beta=1.8, tau_m=(20.0, 5.0), tau_adp=(100.0, 10.0))
    model = ALIFRSNN(7, hidden, 4, output_layer="adaptive", output_params=output).double()
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(4.0)
        model.readout.linear.weight.mul_(3.0)
    x = random_spikes()
    outputs, decision = run_alif(model, x)
    reference = model(x)[0]
    torch.testing.assert_close(outputs, reference, rtol=0, atol=1e-13)
    assert decision.spike_counts.shape == (10, len(hidden))  # the hidden layers' spikes only
    output_spikes = ((reference - 0.01) > 0).double().mean()  # roughly: the output neurons do spike
    assert output_spikes > 0.01

    def loss(outputs):
        return (outputs ** 2).mean() + outputs[-1, :, 0].sum()

    expected = gradients(model, lambda: loss(model(x)[0]))
    assert expected["readout.log_tau_adp"].abs().max() > 0 and expected["readout.log_tau_m"].abs().max() > 0
    assert_same_gradients(expected, gradients(model, lambda: loss(run_alif(model, x)[0])))

    y = torch.randint(0, 4, (10,))
    reference_decision = run_until_decision(model, x, threshold, chunk_size=7)
    _, decision = run_alif(model, x, threshold)
    assert 0 < int(decision.crossed.sum()) < 10 and decision.steps.tolist() == reference_decision.steps.tolist()
    expected = gradients(model, lambda: rank_coded_loss(run_until_decision(model, x, threshold).logits, y))
    assert_same_gradients(expected, gradients(model, lambda: rank_coded_loss(run_alif(model, x, threshold)[1].logits, y)))
    with pytest.raises(ValueError, match="compiled kernels"):
        run_alif(model, x, compiled=False)
