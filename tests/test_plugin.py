"""rc-snn as an snnTorch plugin: ALIF/RALIF as snnTorch neurons, the rank-coded loss and accuracy on
recorded outputs, and the runner that stops a batch at its last decision."""

from __future__ import annotations

import pytest
import snntorch as snn
import snntorch.functional as SF
import torch
from snntorch import surrogate, utils
from torch import nn

from rc_snn.neuron.alif import ALIFParams
from rc_snn.neuron.layers import ALIFLayer
from rc_snn.plugin import ALIF, RALIF, accuracy_rank, ce_rank_loss, run_to_last_decision
from rc_snn.training.early_exit import select_decision


def ralif_like(layer: ALIFLayer, **kwargs) -> RALIF:
    """A RALIF holding ``layer``'s recurrent weights and time constants (its input Linear is the caller's)."""
    neuron = RALIF(layer.n_neurons, ALIFParams(b0=layer.b0, beta=layer.beta), **kwargs).double()
    with torch.no_grad():
        neuron.recurrent.weight.copy_(layer.w_rec.weight)
        neuron.log_tau_m.copy_(layer.log_tau_m)
        neuron.log_tau_adp.copy_(layer.log_tau_adp)
    return neuron


@pytest.mark.parametrize("init_hidden", [False, True])
def test_ralif_equals_alif_layer_on_a_random_trajectory(init_hidden):
    torch.manual_seed(0)
    layer = ALIFLayer(5, 7).double()
    with torch.no_grad():
        layer.w_in.weight.mul_(4)
    x = (torch.rand(40, 3, 5, dtype=torch.float64) < 0.4).double()
    expected, state = [], layer.initial_state(3, dtype=torch.float64)
    for x_t in x:
        state = layer.step(x_t, state)
        expected.append(state)
    neuron = ralif_like(layer, init_hidden=init_hidden, output=True)
    state = None
    for x_t, want in zip(x, expected):
        if init_hidden:
            spk, state = neuron(layer.w_in(x_t))
        else:
            spk, state = neuron(layer.w_in(x_t), state)
        assert torch.equal(spk, want.s)
        for got, reference in zip(state, want):
            torch.testing.assert_close(got, reference, rtol=0, atol=0)
    assert 0.05 < torch.stack([e.s for e in expected]).mean() < 0.9


def test_feed_forward_alif_has_no_recurrence():
    torch.manual_seed(1)
    layer = ALIFLayer(4, 6).double()
    with torch.no_grad():
        layer.w_rec.weight.zero_()
        layer.w_in.weight.mul_(4)
    neuron = ALIF(6).double()
    with torch.no_grad():
        neuron.log_tau_m.copy_(layer.log_tau_m)
        neuron.log_tau_adp.copy_(layer.log_tau_adp)
    x = (torch.rand(25, 2, 4, dtype=torch.float64) < 0.5).double()
    state, mine = layer.initial_state(2, dtype=torch.float64), None
    for x_t in x:
        state = layer.step(x_t, state)
        spk, mine = neuron(layer.w_in(x_t), mine)
        assert torch.equal(spk, state.s) and torch.equal(mine.u, state.u)


def tutorial_network(hidden=12, classes=3, **neuron_options):
    """The snnTorch tutorial's shape with an RALIF hidden layer, states kept inside."""
    return nn.Sequential(nn.Linear(8, hidden), RALIF(hidden, init_hidden=True, **neuron_options),
                         nn.Linear(hidden, classes), snn.Leaky(beta=0.9, init_hidden=True, output=True))


def toy_task(batch=48, steps=20):
    generator = torch.Generator().manual_seed(7)
    y = torch.randint(0, 3, (batch,), generator=generator)
    x = (torch.rand(steps, batch, 8, generator=generator) < 0.1).float()
    for label in range(3):  # each class drives its own pair of channels
        rows = y == label
        x[:, rows, 2 * label:2 * label + 2] += (torch.rand(steps, int(rows.sum()), 2, generator=generator) < 0.6)
    return x.clamp(max=1), y


def record(net, x):
    utils.reset(net)
    spikes, mems = [], []
    for x_t in x:
        spk, mem = net(x_t)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("loss_name", ["ce_rate_loss", "ce_rank_loss"])
def test_an_snntorch_sequential_with_ralif_trains(loss_name):
    torch.manual_seed(2)
    net = tutorial_network(spike_grad=surrogate.fast_sigmoid(slope=25))
    x, y = toy_task()
    loss_fn = SF.ce_rate_loss() if loss_name == "ce_rate_loss" else ce_rank_loss(0.8)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-2)
    losses = []
    for _ in range(60):
        spikes, mems = record(net, x)
        loss = loss_fn(spikes if loss_name == "ce_rate_loss" else mems, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]
    spikes, mems = record(net, x)
    accuracy = SF.accuracy_rate(spikes, y) if loss_name == "ce_rate_loss" else accuracy_rank(mems, y, 0.8)[0]
    assert accuracy > 0.8
    assert net[1].log_tau_m.grad is not None and net[1].recurrent.weight.grad.abs().sum() > 0


def test_snntorch_reset_clears_the_kept_state():
    net = tutorial_network()
    with torch.no_grad():
        net[0].weight.mul_(10)
    x, _ = toy_task(batch=4)
    record(net, x[:5])
    kept = net[1].state
    assert kept is not None and kept.u.abs().sum() > 0 and kept.b.abs().sum() > 0
    utils.reset(net)
    assert all(t.abs().sum() == 0 for t in net[1].state) and not net[1].mem.requires_grad
    net[1].reset_hidden()
    with pytest.raises(TypeError, match="init_hidden"):
        net[1](torch.zeros(4, 12), net[1].state)


def test_the_runner_stops_at_the_last_decision_with_the_full_runs_gradients():
    torch.manual_seed(4)
    net = tutorial_network().double()
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    x, y = toy_task(batch=6, steps=40)
    x = x.double()
    loss_fn = ce_rank_loss(0.45)

    run = run_to_last_decision(net, x, 0.45)  # resets net; reads the output's membrane, (spk, mem)[-1]
    assert run.outputs.shape[0] == int(run.decision.steps.max()) + 1 < 40
    loss_fn(run.outputs, y).backward()
    truncated = [p.grad.clone() for p in net.parameters()]

    net.zero_grad()
    utils.reset(net)
    full = torch.stack([net(x_t)[1] for x_t in x])
    full_decision = select_decision(full.detach(), 0.45)
    assert torch.equal(full_decision.steps, run.decision.steps)
    loss_fn(full, y).backward()
    for got, want in zip(truncated, (p.grad for p in net.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert any(g.abs().sum() > 0 for g in truncated)


def test_spike_outputs_are_scored_by_their_running_count():
    spikes = torch.zeros(6, 2, 3)
    spikes[[0, 1, 2], 0, 1] = 1  # sample 0: class 1 fires three times
    spikes[[1, 3, 5], 1, 2] = 1
    accuracy, steps = accuracy_rank(spikes * 3, torch.tensor([1, 2]), 0.9, accumulate=True)
    assert accuracy == 1.0 and steps.tolist() == [0, 1]  # softmax of counts 3 > 0.9 after one spike of 3
    with pytest.raises(ValueError, match="decision threshold"):
        ce_rank_loss(1.5)
    with pytest.raises(ValueError, match=r"\[time >= 1, batch >= 1, classes >= 1\]"):
        accuracy_rank(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="input current of shape"):
        RALIF(4)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="linear_features"):
        RALIF(linear_features=0)
    assert RALIF(linear_features=4).recurrent.weight.shape == (4, 4)  # snnTorch's RLeaky name for the size
