"""ALIFRSNN, IRSNN and the LSTM and GRU baselines behind the shared step interface."""

import pytest
import torch
from torch import nn

from rc_snn.models import ALIFRSNN, IRSNN, GRUBaseline, LSTMBaseline, LSTMState, RSNNState
from rc_snn.neuron.alif import ALIFParams
from rc_snn.neuron.state import detach, select_rows


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(42)


N_IN, N_OUT = 6, 4


def make_model(kind: str):
    if kind == "alif":
        return ALIFRSNN(N_IN, 9, N_OUT).double()
    if kind == "alif2":
        return ALIFRSNN(N_IN, [9, 7], N_OUT).double()
    if kind == "lstm":
        return LSTMBaseline(N_IN, 9, N_OUT).double()
    if kind == "lstm2":
        return LSTMBaseline(N_IN, 9, N_OUT, n_layers=2).double()
    if kind in ("gru", "gru2"):
        return GRUBaseline(N_IN, 9, N_OUT, n_layers=1 if kind == "gru" else 2).double()
    if kind in ("irsnn", "irsnn2"):
        return evaluated_irsnn([9] if kind == "irsnn" else [9, 7])
    raise ValueError(kind)


def evaluated_irsnn(sizes, bits=6, dead_zone=3):
    """An IR-SNN in evaluation mode (its batch norm then a fixed affine map, as deployed), with
    non-trivial norm statistics and quantiser ranges."""
    from rc_snn.neuron.irsnn import IRParams

    model = IRSNN(N_IN, sizes, N_OUT, IRParams(bits=bits, dead_zone=dead_zone)).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.norm.running_mean.uniform_(-0.5, 0.5)
            layer.norm.running_var.uniform_(0.5, 2.0)
            layer.norm.bias.uniform_(-0.3, 0.3)
            layer.quantiser.value_range.fill_(1.5)
    return model.eval()


def busy_input(steps=30, batch=3):
    return torch.randn(steps, batch, N_IN, dtype=torch.float64) * 2.0


def flat(state):
    """All tensors of a (nested) state, in order."""
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for item in state for t in flat(item)]


def assert_states_close(a, b):
    for x, y in zip(flat(a), flat(b), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


KINDS = ["alif", "alif2", "irsnn", "irsnn2", "lstm", "lstm2", "gru", "gru2"]


@pytest.mark.parametrize("kind", KINDS)
def test_chunked_run_equals_one_run(kind):
    model = make_model(kind)
    x = busy_input()
    outputs, final = model(x)
    first, state = model(x[:13])
    second, state = model(x[13:], state)
    torch.testing.assert_close(torch.cat([first, second]), outputs, rtol=1e-10, atol=1e-12)
    assert_states_close(state, final)
    restarted, _ = model(x[13:])
    assert not torch.allclose(restarted, outputs[13:], atol=1e-6)  # the carried state mattered


@pytest.mark.parametrize("kind", KINDS)
def test_step_path_equals_forward(kind):
    model = make_model(kind)
    x = busy_input()
    outputs, final = model(x)
    state = model.initial_state(3, dtype=torch.float64)
    stepped = []
    for x_t in x:
        y_t, state = model.step(x_t, state)
        stepped.append(y_t)
    torch.testing.assert_close(torch.stack(stepped), outputs, rtol=1e-10, atol=1e-12)
    assert_states_close(state, final)
    # encode a whole chunk at once, then step_encoded: what an early-exit runner does.
    currents = model.encode(x)
    state = model.initial_state(3, dtype=torch.float64)
    encoded = []
    for current in currents:
        y_t, state = model.step_encoded(current, state)
        encoded.append(y_t)
    torch.testing.assert_close(torch.stack(encoded), outputs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_rows_are_independent(kind):
    model = make_model(kind)
    x = busy_input()
    outputs, _ = model(x)
    changed = x.clone()
    changed[:, 0] = busy_input(batch=1)[:, 0]
    outputs_changed, _ = model(changed)
    assert not torch.allclose(outputs_changed[:, 0], outputs[:, 0], atol=1e-6)
    torch.testing.assert_close(outputs_changed[:, 1:], outputs[:, 1:], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_selecting_rows_of_the_state_continues_those_rows(kind):
    model = make_model(kind)
    x = busy_input()
    outputs, _ = model(x)
    _, state = model(x[:10])
    rows = torch.tensor([2, 0])
    continued, _ = model(x[10:, rows], select_rows(state, rows))
    torch.testing.assert_close(continued, outputs[10:, rows], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_and_state_are_not_mutated(kind):
    model = make_model(kind)
    x = busy_input()
    _, state = model(x[:5])
    x_copy, state_copy = x.clone(), [t.clone() for t in flat(state)]
    model(x, state)
    model.step(x[0], state)
    assert torch.equal(x, x_copy)
    for original, copy in zip(flat(state), state_copy):
        assert torch.equal(original, copy)


def test_initial_state_shapes_and_types():
    model = ALIFRSNN(N_IN, [9, 7], N_OUT)
    state = model.initial_state(5)
    assert isinstance(state, RSNNState) and len(state.layers) == 2
    assert [tuple(s.u.shape) for s in state.layers] == [(5, 9), (5, 7)]
    assert state.readout.shape == (5, N_OUT) and all(t.count_nonzero() == 0 for t in flat(state))
    lstm_state = LSTMBaseline(N_IN, 9, N_OUT, n_layers=2).initial_state(5, dtype=torch.float64)
    assert isinstance(lstm_state, LSTMState) and len(lstm_state.layers) == 2
    assert all(t.shape == (5, 9) and t.dtype == torch.float64 for t in flat(lstm_state))


def test_lstm_step_equals_nn_lstm_independently():
    """The hand-written cell reproduces nn.LSTM (gate order i, f, g, o) with the module's own weights."""
    model = make_model("lstm2")
    x = busy_input()
    hidden, _ = model.lstm(x)
    torch.testing.assert_close(model(x)[0], model.readout(hidden), rtol=1e-12, atol=1e-14)
    state = model.initial_state(3, dtype=torch.float64)
    hs = []
    for x_t in x:
        _, state = model.step(x_t, state)
        hs.append(state.layers[-1].h)
    torch.testing.assert_close(torch.stack(hs), hidden, rtol=1e-10, atol=1e-12)


def test_gru_step_equals_nn_gru_independently():
    """The hand-written cell reproduces nn.GRU (gate order r, z, n; b_hn inside r * (.)) with its own weights."""
    model = make_model("gru2")
    with torch.no_grad():  # distinct biases, so a b_hn outside r * (.) would show
        for name, parameter in model.gru.named_parameters():
            if name.startswith("bias"):
                parameter.uniform_(-1, 1)
    x = busy_input()
    hidden, _ = model.gru(x)
    torch.testing.assert_close(model(x)[0], model.readout(hidden), rtol=1e-12, atol=1e-14)
    state = model.initial_state(3, dtype=torch.float64)
    hs = []
    for x_t in x:
        _, state = model.step(x_t, state)
        hs.append(state.layers[-1])
    torch.testing.assert_close(torch.stack(hs), hidden, rtol=1e-10, atol=1e-12)


def test_truncated_backprop_through_detached_state():
    model = ALIFRSNN(N_IN, 9, N_OUT)
    x = busy_input().float()
    _, state = model(x[:10])
    outputs, _ = model(x[10:], detach(state))
    outputs.sum().backward()
    assert all(not t.requires_grad for t in flat(detach(state)))
    assert model.layers[0].w_in.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("beta", [1.8, 0.0])
def test_time_constants_get_gradients_and_stay_finite_under_large_steps(beta):
    model = ALIFRSNN(N_IN, [9, 7], N_OUT, ALIFParams(beta=beta))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e3)
    x, target = busy_input(40, 4).float(), torch.randint(N_OUT, (4,))
    taus = [model.layers[0].log_tau_m, model.layers[1].log_tau_m, model.readout.log_tau]
    if beta:
        taus += [model.layers[0].log_tau_adp, model.layers[1].log_tau_adp]
    for step in range(5):
        optimizer.zero_grad()
        outputs, _ = model(x)
        nn.functional.cross_entropy(outputs.mean(0), target).backward()
        if step == 0:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in taus)
        optimizer.step()
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all(), name
        assert param.grad is None or torch.isfinite(param.grad).all(), name
    outputs, _ = model(x)
    assert torch.isfinite(outputs).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_snntorch_surrogate_in_model(dtype):
    """snnTorch surrogates return float32 spikes; a float64 model must still run in float64."""
    from snntorch import surrogate as snn_surrogate

    model = ALIFRSNN(N_IN, [9, 7], N_OUT, spike_grad=snn_surrogate.atan()).to(dtype)
    outputs, state = model(busy_input().to(dtype))
    assert outputs.dtype == dtype and all(t.dtype == dtype for t in flat(state))
    outputs.sum().backward()
    assert model.layers[0].w_in.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["alif", "lstm"])
@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(4, N_IN), rf"rank 3 \[time, batch, {N_IN}\]"),
        (torch.randn(4, 2, N_IN + 1), f"{N_IN} features"),
        (torch.full((4, 2, N_IN), float("nan")), "finite"),
        (torch.ones(4, 2, N_IN, dtype=torch.int32), "floating-point"),
    ],
)
def test_bad_sequences_raise_value_error(kind, x, match):
    with pytest.raises(ValueError, match=match):
        make_model(kind).float()(x)


@pytest.mark.parametrize("kind", ["alif", "lstm"])
@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(1, 2, N_IN), rf"rank 2 \[batch, {N_IN}\]"),
        (torch.randn(2, N_IN - 1), f"{N_IN} features"),
        (torch.tensor([[float("inf")] * N_IN]), "finite"),
        (torch.ones(2, N_IN, dtype=torch.int64), "floating-point"),
    ],
)
def test_bad_steps_raise_value_error(kind, x, match):
    model = make_model(kind).float()
    with pytest.raises(ValueError, match=match):
        model.step(x, model.initial_state(x.shape[0] if x.dim() == 2 else 2))


def test_bad_construction_raises_value_error():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        ALIFRSNN(N_IN, [], N_OUT)
    with pytest.raises(ValueError, match="n_layers >= 1"):
        LSTMBaseline(N_IN, 9, N_OUT, n_layers=0)


def test_the_adaptive_output_layer_is_yins_ecg_network_in_float64():
    """4 inputs -> non-adaptive recurrent ALIF layer -> adaptive spiking output neurons read by their
    membrane, against the equations of Yin et al.'s ECG script written out in numpy."""
    import numpy as np

    from rc_snn.neuron.alif import ALIFParams
    from rc_snn.training.config import TrainConfig

    torch.manual_seed(0)
    hidden, output = ALIFParams(b0=0.01, beta=0.0, tau_m=(20.0, 0.0), tau_adp=(7.0, 0.0)), \
        ALIFParams(b0=0.01, beta=1.8, tau_m=(20.0, 0.0), tau_adp=(100.0, 0.0))
    model = ALIFRSNN(4, 12, 6, hidden, output_layer="adaptive", output_params=output).double()
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(3.0)
    x = torch.randint(-1, 2, (60, 3, 4)).double()
    u_seq = model(x)[0].detach().numpy()

    def alif(current, state, tau_m, tau_adp, beta):  # the script's mem_update_adp, dt = R_m = 1
        u, b, s = state
        alpha, rho = np.exp(-1.0 / tau_m), np.exp(-1.0 / tau_adp)  # tau: the model's (20, 7, 100 in float32)
        b = rho * b + (1 - rho) * s
        big_b = 0.01 + beta * b
        u = u * alpha + (1 - alpha) * current - big_b * s
        return u, b, (u - big_b > 0).astype(float)

    layer, head = model.layers[0], model.readout
    w_in, b_in = layer.w_in.weight.detach().numpy(), layer.w_in.bias.detach().numpy()
    w_rec = layer.w_rec.weight.detach().numpy()
    w_o, b_o = head.linear.weight.detach().numpy(), head.linear.bias.detach().numpy()
    tau = {name: p.detach().exp().numpy() for name, p in model.named_parameters() if "log_tau" in name}
    np.testing.assert_allclose(tau["readout.log_tau_adp"], 100.0, rtol=1e-6)
    h, o, expected, output_spikes = (np.zeros((3, 12)),) * 3, (np.zeros((3, 6)),) * 3, [], []
    for x_t in x.numpy():
        h = alif(x_t @ w_in.T + b_in + h[2] @ w_rec.T, h, tau["layers.0.log_tau_m"], tau["layers.0.log_tau_adp"], 0.0)
        o = alif(h[2] @ w_o.T + b_o, o, tau["readout.log_tau_m"], tau["readout.log_tau_adp"], 1.8)
        expected.append(o[0])
        output_spikes.append(o[2])
    assert 0.02 < model.layers[0](x)[0].mean().item() < 0.9 and np.mean(output_spikes) > 0.01  # both layers spike
    np.testing.assert_allclose(u_seq, np.stack(expected), rtol=1e-10, atol=1e-12)
    state, stepped = model.initial_state(3, dtype=torch.float64), []
    for x_t in x:
        out, state = model.step(x_t, state)
        stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped), model(x)[0])
    with pytest.raises(ValueError, match="output_layer"):
        TrainConfig(output_layer="adaptive", backward="manual")  # the torch BPTT loop runs the leaky readout only
    TrainConfig(output_layer="adaptive", output_beta=1.8)
