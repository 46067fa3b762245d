"""The IR-SNN (Ponghiran and Roy 2022): an independent float64 numpy reference of its equations, the
quantiser on hand-built values, its straight-through gradient, the range it learns, and training.

The reference is written from the paper's public code (v2), never calls rc_snn::

    [wz; wc] = BN(W x[t]);  z = sigmoid(wz + U_z s[t-1]);  c = relu(wc + U_c s[t-1])
    h[t] = (1 - z) c + z h[t-1];  v = a[t-1] + h[t];  s[t] = Q(v);  a[t] = v - s[t]
    Q(v) = q * delta,  q = trunc(clip(v, lo, r) / delta) (0 where |q| <= dead zone),
    delta = r / ((L + 1)(1 - 1e-4)),  L = 2**(bits-1) - 1 and lo = -r (1 bit: L = 1, lo = 0)
"""

import numpy as np
import pytest
import torch

from rc_snn.models import IRSNN
from rc_snn.neuron import irsnn as IR
from rc_snn.neuron.irsnn import IRParams
from rc_snn.neuron.layers import IRLayer, SpikeQuantiser
from rc_snn.training.config import TrainConfig
from rc_snn.training.early_exit import run_until_decision, select_decision
from rc_snn.training.step import training_step


def to_np(t):
    return t.detach().numpy().astype(np.float64)


def reference_quantise(v, r, bits, dead_zone):
    levels = 1 if bits == 1 else 2 ** (bits - 1) - 1
    delta = r / ((levels + 1) * (1 - 1e-4))
    q = np.trunc(np.clip(v, 0.0 if bits == 1 else -r, r) / delta)
    q[np.abs(q) <= dead_zone] = 0
    return q * delta


def reference_layer(x, w, mean, var, gamma, shift, u, r, bits, dead_zone, eps=1e-5):
    """float64 numpy IR-SNN layer over ``x [T, B, n_in]`` (batch norm with fixed statistics)."""
    sigmoid = lambda value: 1 / (1 + np.exp(-value))  # noqa: E731
    n = u.shape[1]
    encoded = (x @ w.T - mean) / np.sqrt(var + eps) * gamma + shift
    h, a, s = (np.zeros((x.shape[1], n)) for _ in range(3))
    trace = {"h": [], "a": [], "s": []}
    for t in range(x.shape[0]):
        gates = encoded[t] + s @ u.T
        z = sigmoid(gates[:, :n])
        h = (1 - z) * np.maximum(gates[:, n:], 0) + z * h
        v = a + h
        s = reference_quantise(v, r, bits, dead_zone)
        a = v - s
        for key, value in (("h", h), ("a", a), ("s", s)):
            trace[key].append(value)
    return {key: np.stack(values) for key, values in trace.items()}


def deployed_layer(n_in=7, n=6, bits=6, dead_zone=3, value_range=0.8):
    layer = IRLayer(n_in, n, IRParams(bits=bits, dead_zone=dead_zone)).double()
    with torch.no_grad():
        layer.norm.running_mean.uniform_(-0.3, 0.3)
        layer.norm.running_var.uniform_(0.5, 2.0)
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.2, 0.6)
        layer.quantiser.value_range.fill_(value_range)
    return layer.eval()


@pytest.mark.parametrize("bits, dead_zone", [(6, 3), (4, 0), (2, 0), (1, 0)])
def test_layer_matches_numpy_reference(bits, dead_zone):
    layer = deployed_layer(bits=bits, dead_zone=dead_zone)
    x = (torch.rand(40, 3, 7, dtype=torch.float64) < 0.3).double()
    outputs, _ = layer(x)
    state = layer.initial_state(3, dtype=torch.float64)
    trace = {"h": [], "a": [], "s": []}
    for encoded in layer.encode(x):
        state = layer.step_current(encoded, state)
        for key in trace:
            trace[key].append(to_np(getattr(state, key)))
    norm = layer.norm
    expected = reference_layer(to_np(x), to_np(layer.w_in.weight), to_np(norm.running_mean), to_np(norm.running_var),
                               to_np(norm.weight), to_np(norm.bias), to_np(layer.w_rec.weight), 0.8, bits, dead_zone)
    for key in trace:
        np.testing.assert_allclose(np.stack(trace[key]), expected[key], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(outputs), expected["s"], rtol=1e-10, atol=1e-12)
    sent = expected["s"][expected["s"] != 0]
    assert sent.size > 20  # the trajectory sends, and at 1 and 2 bits only binary spikes (v >= 0: the sign is unused)
    if bits <= 2:
        np.testing.assert_array_equal(np.unique(sent), [0.8 / (2 * (1 - 1e-4))])
    else:
        assert np.unique(sent).size > 1


def test_quantiser_on_hand_built_values():
    r = torch.tensor(1.0, dtype=torch.float64)
    # 3 bits: L = 3 levels each side, delta = 1 / (4 * 0.9999) = 0.250025...
    delta = IR.quantiser_step(r, 3)
    v = torch.tensor([-2.0, -0.8, -0.26, -0.2, 0.0, 0.24, 0.26, 0.5, 0.76, 1.0, 3.0], dtype=torch.float64)
    q = IR.quantise(v, delta, r, 3, 0) / delta
    torch.testing.assert_close(q, torch.tensor([-3.0, -3, -1, 0, 0, 0, 1, 1, 3, 3, 3], dtype=torch.float64))
    # dead zone 1: levels |q| <= 1 are not sent
    q = IR.quantise(v, delta, r, 3, 1) / delta
    torch.testing.assert_close(q, torch.tensor([-3.0, -3, 0, 0, 0, 0, 0, 0, 3, 3, 3], dtype=torch.float64))
    # 1 bit: a binary spike of size delta = r / (2 * 0.9999) from v >= delta, never negative
    delta1 = IR.quantiser_step(r, 1)
    q = IR.quantise(v, delta1, r, 1, 0) / delta1
    torch.testing.assert_close(q, torch.tensor([0.0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=torch.float64))
    assert IR.max_level(1) == 1 and IR.max_level(2) == 1 and IR.max_level(6) == 31


@pytest.mark.parametrize("bits", [1, 3])
def test_quantiser_backward_is_straight_through_inside_the_range(bits):
    r = torch.tensor(1.0, dtype=torch.float64)
    v = torch.tensor([-2.0, -0.5, 0.1, 0.3, 0.9, 1.5], dtype=torch.float64, requires_grad=True)
    IR.quantise(v, IR.quantiser_step(r, bits), r, bits, 1 if bits == 3 else 0).backward(
        torch.arange(1.0, 7.0, dtype=torch.float64))
    inside = [0, 0, 3, 4, 5, 0] if bits == 1 else [0, 2, 3, 4, 5, 0]  # dead-zone values pass gradient too
    torch.testing.assert_close(v.grad, torch.tensor(inside, dtype=torch.float64))


def test_gradients_equal_finite_differences_of_the_straight_through_network():
    """The layer's autograd gradient is that of the network whose s[t] is clamp(v) plus the fixed
    offset Q(v) - clamp(v) of the forward pass (the straight-through estimator), checked against
    float64 finite differences of that network, which never calls the layer's backward."""
    layer = deployed_layer(n_in=5, n=4)
    x = (torch.rand(12, 2, 5, dtype=torch.float64) < 0.4).double()
    weights = [layer.w_in.weight, layer.w_rec.weight]
    outputs, _ = layer(x)
    loss_weights = torch.randn_like(outputs)
    grads = torch.autograd.grad((outputs * loss_weights).sum(), weights)

    offsets, state = [], layer.initial_state(2, dtype=torch.float64)
    with torch.no_grad():
        for encoded in layer.encode(x):
            before = state
            state = layer.step_current(encoded, state)
            v = before.a + state.h
            offsets.append(state.s - v.clamp(-0.8, 0.8))

    def surrogate_loss(w_in, w_rec):
        norm = layer.norm
        encoded = (x @ w_in.T - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
        h = a = s = torch.zeros(2, 4, dtype=torch.float64)
        total = 0.0
        for t in range(x.shape[0]):
            gates = encoded[t] + s @ w_rec.T
            z = torch.sigmoid(gates[:, :4])
            h = (1 - z) * torch.relu(gates[:, 4:]) + z * h
            v = a + h
            s = v.clamp(-0.8, 0.8) + offsets[t]
            a = v - s
            total = total + (s * loss_weights[t]).sum()
        return total

    with torch.no_grad():
        for weight, grad in zip(weights, grads):
            numeric = torch.zeros_like(weight)
            for index in np.ndindex(*weight.shape):
                original = weight[index].item()
                weight[index] = original + 1e-6
                up = surrogate_loss(*weights)
                weight[index] = original - 1e-6
                down = surrogate_loss(*weights)
                weight[index] = original
                numeric[index] = (up - down) / 2e-6
            torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)
            assert grad.abs().sum() > 0


def test_range_is_the_bias_corrected_moving_average_of_max_abs_v():
    quantiser = SpikeQuantiser(IRParams(bits=4, dead_zone=0, range_momentum=0.1)).double()
    maxima = [2.0, 1.0, 4.0]
    biased = 0.0
    for step, maximum in enumerate(maxima, start=1):
        quantiser(torch.tensor([[0.5, -maximum], [maximum / 2, 0.0]], dtype=torch.float64))
        biased = 0.9 * biased + 0.1 * maximum
        assert float(quantiser.value_range) == pytest.approx(biased / (1 - 0.9 ** step), rel=1e-12)
    assert float(quantiser.value_range) == pytest.approx((0.2 * 0.81 + 0.1 * 0.9 + 0.4) / (1 - 0.9 ** 3))
    frozen = float(quantiser.value_range)
    quantiser.eval()
    quantiser(torch.full((2, 2), 100.0, dtype=torch.float64))
    assert float(quantiser.value_range) == frozen


def test_quantiser_params_are_validated():
    for bad in [dict(bits=0), dict(bits=25), dict(bits=1, dead_zone=1), dict(bits=3, dead_zone=3),
                dict(bits=6, dead_zone=-1), dict(range_momentum=0.0)]:
        with pytest.raises(ValueError, match="expected"):
            IRParams(**bad)
    with pytest.raises(ValueError, match="bits/dead_zone"):
        TrainConfig(model="irsnn", bits=2, dead_zone=3)
    assert TrainConfig(model="irsnn", bits=1, dead_zone=0).ir_params() == IRParams(bits=1, dead_zone=0)


def test_early_exit_equals_the_full_run_in_evaluation():
    model = IRSNN(7, [8, 6], 4).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.quantiser.value_range.fill_(0.5)
        model.readout.linear.weight.mul_(30)
    model.eval()
    x = (torch.rand(30, 5, 7, dtype=torch.float64) < 0.3).double() * 3
    full = select_decision(model(x)[0], 0.5)
    early = run_until_decision(model, x, 0.5, chunk_size=4)
    torch.testing.assert_close(early.logits, full.logits, rtol=1e-10, atol=1e-12)
    assert torch.equal(early.steps, full.steps) and early.steps.min() < 29


@pytest.mark.parametrize("loss", ["rank", "full"])
def test_training_runs_whole_sequences_and_learns(loss):
    """The batch norm's statistics are over time and batch: one training step equals the loss of a
    full forward pass read at each sample's t*; a few steps fit a toy task."""
    torch.manual_seed(3)
    config = TrainConfig(model="irsnn", loss=loss, decision_threshold=0.6, hidden=16, bits=4, dead_zone=1)
    model = IRSNN(10, 16, 2, config.ir_params())
    x = torch.zeros(15, 32, 10)
    y = torch.randint(0, 2, (32,))
    x[:, :, :5] = (torch.rand(15, 32, 5) < 0.4) * (y == 0)[None, :, None]
    x[:, :, 5:] = (torch.rand(15, 32, 5) < 0.4) * (y == 1)[None, :, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        result = training_step(model, x, y, config)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        losses.append(float(result.loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert (result.decision.predictions == y).float().mean() > 0.9
    assert float(model.layers[0].quantiser.value_range) != 1.0  # the range was learnt


def test_two_bits_send_what_one_bit_sends():
    """v >= 0 in this model (c = relu(.) >= 0), so the 2-bit quantiser's level -1 is never used: its
    outputs, gradients and learnt range equal the 1-bit binary spike's."""
    x = (torch.rand(20, 6, 7) < 0.3).float()
    runs = []
    for bits in (1, 2):
        torch.manual_seed(5)
        model = IRSNN(7, [8, 6], 3, IRParams(bits=bits, dead_zone=0))
        outputs, _ = model(x)
        outputs.square().sum().backward()
        runs.append((outputs.detach(), [p.grad.clone() for p in model.parameters()],
                     [float(layer.quantiser.value_range) for layer in model.layers]))
    (out1, grads1, ranges1), (out2, grads2, ranges2) = runs
    assert torch.equal(out1, out2) and ranges1 == ranges2 and out1.abs().sum() > 0
    for g1, g2 in zip(grads1, grads2):
        assert torch.equal(g1, g2)
