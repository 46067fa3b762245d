"""ALIFLayer and LeakyReadout: state carrying, batch independence, gradients, initialisation, input checks."""

import pytest
import torch

from rc_snn.neuron.alif import ALIFParams, ALIFState
from rc_snn.neuron.layers import LOG_TAU_RANGE, ALIFLayer, LeakyReadout, init_log_tau, time_constant


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(7)


def busy_input(steps, batch, n_in, dtype=torch.float64):
    return torch.randn(steps, batch, n_in, dtype=dtype) * 2.0


def test_chunked_run_equals_one_run():
    layer = ALIFLayer(5, 8).double()
    x = busy_input(30, 3, 5)
    spikes, final = layer(x)
    assert 0.02 < spikes.mean() < 0.9
    first, state = layer(x[:11])
    second, state = layer(x[11:], state)
    assert torch.equal(torch.cat([first, second]), spikes)
    for got, expected in zip(state, final):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    # Teeth: restarting from rest instead of carrying the state changes the second chunk.
    restarted, _ = layer(x[11:])
    assert not torch.equal(restarted, spikes[11:])


def test_step_path_equals_forward():
    layer = ALIFLayer(5, 8).double()
    x = busy_input(25, 3, 5)
    spikes, final = layer(x)
    state = layer.initial_state(3, dtype=torch.float64)
    stepped = []
    for x_t in x:
        state = layer.step(x_t, state)
        stepped.append(state.s)
    assert torch.equal(torch.stack(stepped), spikes)
    for got, expected in zip(state, final):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_batch_rows_are_independent():
    layer = ALIFLayer(5, 8).double()
    x = busy_input(30, 3, 5)
    spikes, final = layer(x)
    changed = x.clone()
    changed[:, 0] = busy_input(30, 1, 5)[:, 0]
    spikes_changed, final_changed = layer(changed)
    assert not torch.equal(spikes_changed[:, 0], spikes[:, 0])
    torch.testing.assert_close(spikes_changed[:, 1:], spikes[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(final_changed.u[1:], final.u[1:], rtol=1e-12, atol=1e-14)


def test_inputs_and_state_are_not_mutated():
    layer = ALIFLayer(5, 8)
    x = busy_input(10, 2, 5, dtype=torch.float32)
    state = ALIFState(u=torch.randn(2, 8), b=torch.rand(2, 8), s=(torch.rand(2, 8) > 0.5).float())
    x_copy, state_copy = x.clone(), [t.clone() for t in state]
    layer(x, state)
    layer.step(x[0], state)
    assert torch.equal(x, x_copy)
    for original, copy in zip(state, state_copy):
        assert torch.equal(original, copy)


def test_output_is_binary_with_input_dtype():
    layer = ALIFLayer(5, 8)
    spikes, state = layer(busy_input(10, 2, 5, dtype=torch.float32))
    assert spikes.shape == (10, 2, 8) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert all(t.shape == (2, 8) for t in state)


def test_time_constants_get_gradients_and_stay_positive_under_large_steps():
    layer = ALIFLayer(5, 8)
    readout = LeakyReadout(8, 3)
    params = list(layer.parameters()) + list(readout.parameters())
    optimizer = torch.optim.SGD(params, lr=1e3)
    x = busy_input(40, 4, 5, dtype=torch.float32)
    target = torch.randint(3, (4,))
    for step in range(5):
        optimizer.zero_grad()
        spikes, _ = layer(x)
        outputs, _ = readout(spikes)
        loss = torch.nn.functional.cross_entropy(outputs.mean(0), target)
        loss.backward()
        if step == 0:
            for name, param in (("tau_m", layer.log_tau_m), ("tau_adp", layer.log_tau_adp), ("tau_o", readout.log_tau)):
                assert param.grad is not None and torch.isfinite(param.grad).all(), name
                assert param.grad.abs().sum() > 0, f"{name} received no gradient"
        optimizer.step()
    for param in (*params, *[p.grad for p in params]):
        assert torch.isfinite(param).all()
    for param in (layer.log_tau_m, layer.log_tau_adp, readout.log_tau):
        tau = time_constant(param.detach())
        assert torch.isfinite(tau).all() and (tau > 0).all()
    for alpha in (*layer.decays(), readout.decay()):
        assert torch.isfinite(alpha).all() and ((alpha >= 0) & (alpha <= 1)).all()


def test_time_constant_is_finite_with_finite_gradient_at_extremes():
    log_tau = torch.tensor([-1000.0, -30.0, 0.0, 3.0, 5.0, 30.0, 1000.0], requires_grad=True)
    tau = time_constant(log_tau)
    assert torch.isfinite(tau).all() and (tau > 0).all()
    inside = (log_tau > LOG_TAU_RANGE[0]) & (log_tau < LOG_TAU_RANGE[1])
    torch.testing.assert_close(tau[inside], log_tau[inside].exp())
    torch.exp(-1.0 / tau).sum().backward()
    assert torch.isfinite(log_tau.grad).all()
    assert (log_tau.grad[2:5] > 0).all()  # a longer time constant means a slower decay
    # Teeth: the unclamped decay gives NaN gradients at the same extremes.
    raw = log_tau.detach().clone().requires_grad_(True)
    torch.exp(-1.0 / raw.exp()).sum().backward()
    assert not torch.isfinite(raw.grad).all()


def test_plain_lif_gives_no_adaptation_gradient():
    """beta = 0 removes b from the dynamics, so tau_adp gets exactly zero gradient (and tau_m does not)."""
    layer = ALIFLayer(5, 8, ALIFParams(beta=0.0))
    spikes, state = layer(busy_input(30, 4, 5, dtype=torch.float32))
    (spikes.sum() + state.u.sum()).backward()
    assert torch.count_nonzero(layer.log_tau_adp.grad) == 0
    assert torch.count_nonzero(layer.log_tau_m.grad) > 0


def test_snntorch_surrogate_changes_the_gradient_not_the_forward():
    from snntorch import surrogate as snn_surrogate

    default = ALIFLayer(5, 8)
    atan = ALIFLayer(5, 8, spike_grad=snn_surrogate.atan())
    atan.load_state_dict(default.state_dict())
    x = busy_input(20, 3, 5, dtype=torch.float32)
    grads = []
    for layer in (default, atan):
        spikes, _ = layer(x)
        spikes.sum().backward()
        grads.append(layer.w_in.weight.grad)
    assert torch.equal(default(x)[0], atan(x)[0])
    assert not torch.allclose(grads[0], grads[1])


def test_initialisation():
    layer = ALIFLayer(300, 400)
    tau_m, tau_adp = layer.log_tau_m.exp(), layer.log_tau_adp.exp()
    assert abs(tau_m.mean().item() - 20.0) < 1.5 and abs(tau_m.std().item() - 5.0) < 1.0
    assert abs(tau_adp.mean().item() - 150.0) < 2.0 and abs(tau_adp.std().item() - 10.0) < 2.0
    w_rec = layer.w_rec.weight.detach()
    torch.testing.assert_close(w_rec @ w_rec.T, torch.eye(400), atol=1e-4, rtol=0)
    bound = (6.0 / (300 + 400)) ** 0.5  # Xavier-uniform
    assert layer.w_in.weight.abs().max() <= bound and layer.w_in.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(layer.w_in.bias) == 0
    assert (init_log_tau(1000, (1.0, 5.0)).exp() >= 1.0 - 1e-6).all()  # clamped draws stay >= 1 step


def test_bad_construction_raises_value_error():
    with pytest.raises(ValueError, match="positive sizes"):
        ALIFLayer(0, 4)
    with pytest.raises(ValueError, match="mean > 0"):
        init_log_tau(4, (-1.0, 1.0))
    with pytest.raises(ValueError, match="sd >= 0"):
        init_log_tau(4, (1.0, -1.0))


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(4, 5), r"rank 3 \[time, batch, 5\]"),
        (torch.randn(2, 4, 3, 5), r"rank 3 \[time, batch, 5\]"),
        (torch.randn(4, 2, 6), "5 features"),
        (torch.full((4, 2, 5), float("nan")), "finite"),
        (torch.tensor([[[0.0, 1.0, float("inf"), 0.0, 0.0]]]), "finite"),
        (torch.ones(4, 2, 5, dtype=torch.int64), "floating-point"),
        ([[[0.0] * 5]], "torch.Tensor"),
    ],
)
def test_bad_inputs_raise_value_error(x, match):
    with pytest.raises(ValueError, match=match):
        ALIFLayer(5, 8)(x)


def test_large_finite_inputs_are_accepted():
    """Finite values whose sum overflows float32 are still finite inputs."""
    x = torch.full((4, 2, 5), 3e38)
    spikes, _ = ALIFLayer(5, 8)(x)
    assert spikes.shape == (4, 2, 8)


def test_readout_chunked_and_step_equal_forward():
    readout = LeakyReadout(6, 3).double()
    s = (torch.rand(20, 2, 6) > 0.6).double()
    outputs, final = readout(s)
    first, m = readout(s[:7])
    second, m = readout(s[7:], m)
    torch.testing.assert_close(torch.cat([first, second]), outputs, rtol=1e-12, atol=1e-14)
    m = readout.initial_state(2, dtype=torch.float64)
    stepped = []
    for s_t in s:
        m = readout.step(s_t, m)
        stepped.append(m)
    torch.testing.assert_close(torch.stack(stepped), outputs, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(final, outputs[-1])
