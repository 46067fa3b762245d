"""NeuroBench 2.3.0 as an independent oracle for the project's operation counts.

The same networks and inputs go through NeuroBench's ``SynapticOperations`` (its hooks on every
``nn.Linear`` / ``nn.LSTMCell`` call) and through ``deploy.counting``. The two agree term by term,
up to differences that are conventions, each computed here exactly from the recorded activity:

* ALIF, ACs: a spike is charged its recurrent fan-out when emitted here, when consumed (the next
  step's ``W_rec s[t-1]``) there, so the spikes of the last step differ by their recurrent fan-out.
* ALIF, ACs versus MACs: NeuroBench decides per layer call (here: per step, one sample per call)
  whether the input is binary; the project decides per sample. A sample with graded values in some
  steps has all its input operations as MACs here, only those steps' there.
* LSTM: NeuroBench skips zero hidden values (the zero state at step 0) where the project counts
  the hidden products dense, and counts the element-wise update (``f*c + i*g``, ``o*tanh(c)``)
  inside its synaptic figure, skipping ``f*c`` where ``c`` is 0, where the project counts 3 MACs per
  unit and step as neuron-update MACs. Its "dense" count for ``LSTMCell`` skips zero hidden values
  too (its all-ones copy of the inputs does not reach the nested ``(h, c)`` tuple).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurobench.metrics.workload import SynapticOperations  # a test dependency (setup.cfg [test])
from neurobench.models import TorchModel

from deploy.activity import activities_from_batch
from deploy.baselines import count_recurrent_from_activity
from deploy.counting import count_snn, fan_out
from rc_snn.models import ALIFRSNN, LSTMBaseline
from rc_snn.pipeline.export import export_model
from rc_snn.pipeline.recording import record_run
from rc_snn.training.prune import prune_to

N_IN, HIDDEN, N_OUT, STEPS, SAMPLES = 24, 10, 3, 12, 4


class StepLoop(nn.Module):
    """A model's ``step`` over time: every weight product is an ``nn.Linear`` call NeuroBench hooks."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):  # [batch, time, features], NeuroBench's layout
        state = self.model.initial_state(batch.shape[0])
        outputs = []
        for x_t in batch.transpose(0, 1):
            output, state = self.model.step(x_t, state)
            outputs.append(output)
        return torch.stack(outputs, 1)


class LSTMCellLoop(nn.Module):
    """``LSTMBaseline``'s weights as an ``nn.LSTMCell`` loop (NeuroBench does not count ``nn.LSTM``),
    recording ``h`` and ``c`` of each step."""

    def __init__(self, baseline: LSTMBaseline):
        super().__init__()
        self.cell = nn.LSTMCell(baseline.n_inputs, baseline.n_hidden)
        lstm = baseline.lstm
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.cell, name).copy_(getattr(lstm, f"{name}_l0"))
        self.readout = baseline.readout
        self.states = []

    def forward(self, batch):
        h = c = torch.zeros(batch.shape[0], self.cell.hidden_size)
        outputs = []
        for x_t in batch.transpose(0, 1):
            self.states.append((h, c))  # the state this step reads
            h, c = self.cell(x_t, (h, c))
            outputs.append(self.readout(h))
        return torch.stack(outputs, 1)


def neurobench_counts(net: nn.Module, inputs: torch.Tensor) -> dict:
    """NeuroBench's totals over the samples, one sample per call (its AC/MAC choice is per call)."""
    model = TorchModel(net)
    model.register_hooks()
    metric = SynapticOperations()
    with torch.no_grad():
        for sample in inputs.transpose(0, 1):  # [time, batch, F] -> one [1, time, F] batch each
            batch = sample[None]
            model.reset_hooks()
            metric(model, net(batch), (batch, torch.zeros(1)))
    model.cleanup_hooks()
    return {key: value * inputs.shape[1] for key, value in metric.compute().items()}


def events(graded: bool, seed: int = 0) -> torch.Tensor:
    """``[time, samples, inputs]`` event counts; graded ones hold 2s in some steps only."""
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(STEPS, SAMPLES, N_IN, generator=generator) < 0.3).float()
    if graded:
        x[2:4] *= 2.0
    return x


def alif_network() -> ALIFRSNN:
    torch.manual_seed(3)
    model = ALIFRSNN(N_IN, HIDDEN, N_OUT).eval()
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(4.0)  # enough drive for a few spikes per step
        model.layers[0].w_in.weight[:, :3] = 0.0  # pruned synapses are not counted by either
    return model


@pytest.mark.parametrize("graded, pruned", [(False, False), (True, False), (False, True)])
def test_alif_counts_equal_neurobench_term_by_term(graded, pruned):
    """``pruned``: half of every weight matrix (inputs, recurrent, readout) at zero, binary inputs."""
    model, x = alif_network(), events(graded)
    if pruned:
        prune_to(model, 0.5)
    _, spikes = record_run(model, x)
    assert spikes[0].sum() > 20, "the oracle needs spikes to compare"
    activities = activities_from_batch(x.numpy(), [s.numpy() for s in spikes], [STEPS - 1] * SAMPLES)
    fan = fan_out(export_model(model, decision_threshold=0.9))
    ours = count_snn(fan, activities)
    theirs = neurobench_counts(StepLoop(model), x)

    last_step_recurrent = int((spikes[0][-1].numpy() @ fan.recurrent[0]).sum())  # [samples, H] @ [H]
    graded_steps = ((x != 0) & (x != 1)).any(-1)  # [time, samples]: steps whose input call is graded
    input_ops = (x != 0).float() @ torch.from_numpy(fan.inputs).float()  # [time, samples]
    theirs_input_macs = int(input_ops[graded_steps].sum())
    input_ops_total = int(input_ops.sum())
    ours_input_macs = ours.effective_macs
    assert ours_input_macs == (input_ops_total if graded else 0)
    assert theirs["Effective_MACs"] == pytest.approx(theirs_input_macs)
    assert theirs["Effective_ACs"] == pytest.approx(
        ours.effective_acs - last_step_recurrent + (ours_input_macs - theirs_input_macs))
    assert theirs["Dense"] == pytest.approx(ours.dense_synaptic_ops)
    assert graded == (theirs_input_macs > 0)


def test_lstm_counts_equal_neurobench_term_by_term():
    torch.manual_seed(5)
    baseline = LSTMBaseline(N_IN, HIDDEN, N_OUT).eval()
    x = events(graded=True, seed=1)
    activities = activities_from_batch(x.numpy(), [], [STEPS - 1] * SAMPLES)
    ours = count_recurrent_from_activity(HIDDEN, 1, N_OUT, activities)
    loop = LSTMCellLoop(baseline)
    theirs = neurobench_counts(loop, x)
    with torch.no_grad():  # the loop computes what nn.LSTM computes
        torch.testing.assert_close(loop(x.transpose(0, 1)), baseline(x)[0].transpose(0, 1))
    loop.states.clear()
    neurobench_counts(loop, x)  # once more, recording the states of the counted run

    h_prev = torch.stack([h for h, _ in loop.states])  # [time * samples (by sample), 1, H]
    c_prev = torch.stack([c for _, c in loop.states])
    zero_h_prev = int((h_prev == 0).sum())  # hidden values NeuroBench skips in W_hh h[t-1]
    zero_c_prev = int((c_prev == 0).sum())  # units where it skips f*c
    assert zero_h_prev == HIDDEN * SAMPLES  # the zero state of step 0; no h[t] is exactly 0 after it
    units_steps = HIDDEN * STEPS * SAMPLES
    update_ops_theirs = 3 * units_steps - zero_c_prev  # f*c (where c != 0), i*g, o*tanh(c)
    assert ours.neuron_update_macs == 3 * units_steps
    theirs_total = theirs["Effective_MACs"] + theirs["Effective_ACs"]
    assert theirs_total == pytest.approx(
        ours.effective_macs - 4 * HIDDEN * zero_h_prev + update_ops_theirs)
    assert theirs["Dense"] == pytest.approx(
        ours.dense_synaptic_ops - 4 * HIDDEN * zero_h_prev + update_ops_theirs)
