"""The ALIF equations: an independent float64 numpy reference against the layers and the functional core.

The reference below is written from the equations (Yin, Corradi and Bohte 2021), dt = 1::

    alpha = exp(-1/tau_m), rho = exp(-1/tau_adp)
    b[t] = rho b[t-1] + (1 - rho) s[t-1];   B[t] = b0 + beta b[t]
    u[t] = alpha u[t-1] + (1 - alpha) I[t] - B[t] s[t-1];   s[t] = H(u[t] - B[t]),  H(x) = [x > 0]
    I[t] = W_in x[t] + W_rec s[t-1] + bias;   m[t] = alpha_o m[t-1] + (1 - alpha_o)(W_o s[t] + b_o)

and never calls rc_snn, so a change of the library's equations shows up here.
"""

import math

import numpy as np
import pytest
import torch

from rc_snn.models import ALIFRSNN
from rc_snn.neuron import alif as F
from rc_snn.neuron.alif import ALIFParams
from rc_snn.neuron.layers import ALIFLayer
from rc_snn.neuron.surrogate import multi_gaussian


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(1234)


def to_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def reference_alif(x, w_in, bias, w_rec, tau_m, tau_adp, b0, beta, reset="soft"):
    """float64 numpy ALIF layer over ``x [T, B, n_in]``; returns spikes, u and B, each ``[T, B, n]``.

    ``reset="hard"`` is a deliberately wrong variant (u set to 0 after a spike) used to show that
    the comparisons can fail.
    """
    steps, batch, _ = x.shape
    n = w_in.shape[0]
    alpha, rho = np.exp(-1.0 / tau_m), np.exp(-1.0 / tau_adp)
    u, b, s = np.zeros((batch, n)), np.zeros((batch, n)), np.zeros((batch, n))
    spikes, potentials, thresholds = [], [], []
    for t in range(steps):
        current = x[t] @ w_in.T + bias + s @ w_rec.T
        b = rho * b + (1.0 - rho) * s
        big_b = b0 + beta * b
        if reset == "soft":
            u = alpha * u + (1.0 - alpha) * current - big_b * s
        else:
            u = (alpha * u + (1.0 - alpha) * current) * (1.0 - s)
        s = (u - big_b > 0).astype(np.float64)
        spikes.append(s)
        potentials.append(u)
        thresholds.append(big_b)
    return np.stack(spikes), np.stack(potentials), np.stack(thresholds)


def reference_readout(spikes, w_o, b_o, tau_o):
    alpha = np.exp(-1.0 / tau_o)
    m = np.zeros((spikes.shape[1], w_o.shape[0]))
    outputs = []
    for s in spikes:
        m = alpha * m + (1.0 - alpha) * (s @ w_o.T + b_o)
        outputs.append(m)
    return np.stack(outputs)


def layer_reference_args(layer: ALIFLayer):
    return dict(
        w_in=to_np(layer.w_in.weight), bias=to_np(layer.w_in.bias), w_rec=to_np(layer.w_rec.weight),
        tau_m=to_np(layer.log_tau_m.exp()), tau_adp=to_np(layer.log_tau_adp.exp()), b0=layer.b0, beta=layer.beta,
    )


def random_layer(n_in, n, beta):
    layer = ALIFLayer(n_in, n, ALIFParams(beta=beta)).double()
    with torch.no_grad():  # a non-zero bias, so that the reference's bias term is exercised
        layer.w_in.bias.uniform_(-0.2, 0.2)
    return layer


def run_layer_by_steps(layer: ALIFLayer, x: torch.Tensor):
    state = layer.initial_state(x.shape[1], dtype=x.dtype)
    spikes, potentials, thresholds = [], [], []
    for x_t in x:
        state = layer.step(x_t, state)
        spikes.append(state.s)
        potentials.append(state.u)
        thresholds.append(layer.b0 + layer.beta * state.b)
    return to_np(torch.stack(spikes)), to_np(torch.stack(potentials)), to_np(torch.stack(thresholds))


def assert_busy(spikes):
    """The trajectory must exercise both branches of H, or a comparison proves little."""
    rate = spikes.mean()
    assert 0.02 < rate < 0.9, f"spike rate {rate:.3f}: the random trajectory does not exercise the reset"


@pytest.mark.parametrize("beta", [1.8, 0.0])
def test_layer_matches_numpy_reference(beta):
    layer = random_layer(6, 9, beta)
    x = torch.randn(60, 4, 6, dtype=torch.float64) * 2.0
    spikes, potentials, thresholds = run_layer_by_steps(layer, x)
    ref_s, ref_u, ref_b = reference_alif(to_np(x), **layer_reference_args(layer))
    assert_busy(ref_s)
    np.testing.assert_array_equal(spikes, ref_s)
    np.testing.assert_allclose(potentials, ref_u, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(thresholds, ref_b, rtol=1e-10, atol=1e-12)
    if beta == 0.0:
        np.testing.assert_allclose(thresholds, layer.b0)  # plain LIF: a fixed threshold
    else:
        assert thresholds.max() > layer.b0 + 0.05  # adaptation raised the threshold


def test_layer_forward_matches_numpy_reference():
    layer = random_layer(6, 9, 1.8)
    x = torch.randn(40, 3, 6, dtype=torch.float64) * 2.0
    spikes, state = layer(x)
    ref_s, ref_u, ref_b = reference_alif(to_np(x), **layer_reference_args(layer))
    np.testing.assert_array_equal(to_np(spikes), ref_s)
    np.testing.assert_allclose(to_np(state.u), ref_u[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.b0 + layer.beta * to_np(state.b), ref_b[-1], rtol=1e-10, atol=1e-12)


def test_wrong_references_do_not_match():
    """The comparison has teeth: hard reset, or dropping adaptation, is detected."""
    layer = random_layer(6, 9, 1.8)
    x = torch.randn(60, 4, 6, dtype=torch.float64) * 2.0
    spikes, potentials, _ = run_layer_by_steps(layer, x)
    args = layer_reference_args(layer)
    hard_s, hard_u, _ = reference_alif(to_np(x), **args, reset="hard")
    assert not np.allclose(potentials, hard_u, atol=1e-6)
    no_adaptation_s, _, _ = reference_alif(to_np(x), **{**args, "beta": 0.0})
    assert not np.array_equal(spikes, no_adaptation_s)


@pytest.mark.parametrize("hidden", [[8], [8, 7]])
@pytest.mark.parametrize("beta", [1.8, 0.0])
def test_stacked_network_and_readout_match_numpy_reference(hidden, beta):
    model = ALIFRSNN(5, hidden, 3, ALIFParams(beta=beta)).double()
    for layer in model.layers:
        with torch.no_grad():
            layer.w_in.bias.uniform_(-0.2, 0.2)
    with torch.no_grad():
        model.readout.linear.bias.uniform_(-0.5, 0.5)
    x = torch.randn(50, 4, 5, dtype=torch.float64) * 2.0

    state = model.initial_state(4, dtype=torch.float64)
    outputs, layer_spikes, layer_potentials = [], [[] for _ in hidden], [[] for _ in hidden]
    for x_t in x:
        m, state = model.step(x_t, state)
        outputs.append(m)
        for index, layer_state in enumerate(state.layers):
            layer_spikes[index].append(layer_state.s)
            layer_potentials[index].append(layer_state.u)

    layer_input = to_np(x)
    for index, layer in enumerate(model.layers):
        ref_s, ref_u, _ = reference_alif(layer_input, **layer_reference_args(layer))
        assert_busy(ref_s)
        np.testing.assert_array_equal(to_np(torch.stack(layer_spikes[index])), ref_s)
        np.testing.assert_allclose(to_np(torch.stack(layer_potentials[index])), ref_u, rtol=1e-10, atol=1e-12)
        layer_input = ref_s  # layer l+1 sees layer l's spikes of the same step
    readout = model.readout
    ref_m = reference_readout(layer_input, to_np(readout.linear.weight), to_np(readout.linear.bias),
                              to_np(readout.log_tau.exp()))
    np.testing.assert_allclose(to_np(torch.stack(outputs)), ref_m, rtol=1e-10, atol=1e-12)
    forward_outputs, _ = model(x)
    np.testing.assert_allclose(to_np(forward_outputs), ref_m, rtol=1e-10, atol=1e-12)


def test_hand_computed_single_neuron():
    """Two steps of one neuron, worked out by hand: a spike, then the soft reset and adaptation."""
    tau_m, tau_adp, b0, beta = 4.0, 10.0, 0.01, 1.8
    alpha, rho = math.exp(-1 / tau_m), math.exp(-1 / tau_adp)
    state = F.alif_initial_state(1, 1, dtype=torch.float64)
    a, r = torch.tensor([alpha], dtype=torch.float64), torch.tensor([rho], dtype=torch.float64)
    spike_fn = multi_gaussian()

    state = F.alif_step(torch.tensor([[1.0]], dtype=torch.float64), state, a, r, b0, beta, spike_fn)
    u1 = (1 - alpha) * 1.0  # b1 = 0, B1 = b0
    assert state.u.item() == pytest.approx(u1, rel=1e-14)
    assert state.b.item() == 0.0 and state.s.item() == 1.0

    state = F.alif_step(torch.tensor([[0.5]], dtype=torch.float64), state, a, r, b0, beta, spike_fn)
    b2 = (1 - rho) * 1.0
    big_b2 = b0 + beta * b2
    u2 = alpha * u1 + (1 - alpha) * 0.5 - big_b2 * 1.0
    assert state.b.item() == pytest.approx(b2, rel=1e-14)
    assert state.u.item() == pytest.approx(u2, rel=1e-14)
    assert state.s.item() == float(u2 - big_b2 > 0)


def test_decay_threshold_and_readout_step():
    tau = torch.tensor([1.0, 20.0, 150.0], dtype=torch.float64)
    torch.testing.assert_close(F.decay(tau), torch.exp(-1.0 / tau))
    torch.testing.assert_close(F.decay(tau, dt=0.5), torch.exp(-0.5 / tau))
    b = torch.tensor([0.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(F.adaptive_threshold(b, 0.01, 1.8), torch.tensor([0.01, 0.91], dtype=torch.float64))
    m = F.readout_step(torch.tensor([[2.0]]), torch.tensor([[1.0]]), torch.tensor([0.25]))
    assert m.item() == pytest.approx(0.25 * 1.0 + 0.75 * 2.0)


def test_functional_step_equals_module_step():
    layer = random_layer(5, 6, 1.8)
    x = torch.randn(10, 3, 5, dtype=torch.float64) * 2.0
    module_state = functional_state = layer.initial_state(3, dtype=torch.float64)
    alpha, rho = torch.exp(-1.0 / layer.log_tau_m.exp()), torch.exp(-1.0 / layer.log_tau_adp.exp())
    for x_t in x:
        module_state = layer.step(x_t, module_state)
        current = x_t @ layer.w_in.weight.T + layer.w_in.bias + functional_state.s @ layer.w_rec.weight.T
        functional_state = F.alif_step(current, functional_state, alpha, rho, layer.b0, layer.beta, layer.spike_fn)
        for got, expected in zip(module_state, functional_state):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_alif_step_does_not_mutate_inputs():
    state = F.ALIFState(u=torch.randn(3, 4), b=torch.rand(3, 4), s=(torch.rand(3, 4) > 0.5).float())
    current = torch.randn(3, 4)
    copies = [t.clone() for t in (current, *state)]
    F.alif_step(current, state, torch.rand(4), torch.rand(4), 0.01, 1.8, multi_gaussian())
    for original, copy in zip((current, *state), copies):
        assert torch.equal(original, copy)
