"""Thin modules over :mod:`rc_snn.neuron.alif` and :mod:`rc_snn.neuron.irsnn`: they hold parameters and loop over time.

Tensors are time-first, ``[time, batch, features]``; the caller passes and receives state, so a
sequence can be run in chunks (``out2, s = layer(x[k:], s)`` continues ``out1, s = layer(x[:k])``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from . import alif as F
from . import irsnn as IR
from .alif import ALIFParams, TauInit
from .surrogate import SpikeFn, resolve
from .validation import check_sequence

#: Smallest time constant drawn at initialisation (in steps); a draw below it is clamped up.
TAU_INIT_MIN = 1.0

#: Range of ``log(tau)`` used to form the decays. Outside it ``exp(log_tau)`` overflows (float32
#: above ~88.7) or ``1/tau**2`` in the backward pass does, and a single large optimiser step turns
#: every gradient into NaN. Inside it the decays already saturate: ``exp(-1/e**20) == 1.0`` and
#: ``exp(-1/e**-20) == 0.0`` in float32, so the clamp changes no forward value, only gives a zero
#: gradient instead of NaN beyond the range.
LOG_TAU_RANGE = (-20.0, 20.0)


def time_constant(log_tau: Tensor) -> Tensor:
    """``tau = exp(log_tau)`` with ``log_tau`` clamped to :data:`LOG_TAU_RANGE` (always positive and finite)."""
    return log_tau.clamp(*LOG_TAU_RANGE).exp()


def init_log_tau(n: int, mean_sd: TauInit) -> nn.Parameter:
    """Per-neuron ``log(tau)`` with ``tau ~ N(mean, sd)`` clamped to ``>= TAU_INIT_MIN``.

    Storing ``log(tau)`` keeps ``tau = exp(log_tau)`` positive under any gradient step.
    """
    mean, sd = mean_sd
    if mean <= 0 or sd < 0:
        raise ValueError(f"expected a time constant (mean > 0, sd >= 0); got mean={mean}, sd={sd}")
    tau = torch.empty(n).normal_(mean, sd).clamp_(min=TAU_INIT_MIN)
    return nn.Parameter(tau.log())


class ALIFLayer(nn.Module):
    """Recurrent layer of ALIF neurons (equations in :mod:`rc_snn.neuron.alif`).

    ``I[t] = W_in x[t] + W_rec s[t-1] + bias``; ``W_in`` is Xavier-uniform, ``W_rec`` orthogonal,
    ``b0``, ``beta`` and the initial ``tau_m``, ``tau_adp`` from ``params`` (``tau_out`` is the
    readout's and is not used here).
    """

    def __init__(
        self,
        n_inputs: int,
        n_neurons: int,
        params: ALIFParams = ALIFParams(),
        *,
        spike_grad: Optional[SpikeFn] = None,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_neurons < 1:
            raise ValueError(f"expected positive sizes; got n_inputs={n_inputs}, n_neurons={n_neurons}")
        self.n_inputs, self.n_neurons = n_inputs, n_neurons
        self.b0, self.beta = float(params.b0), float(params.beta)
        self.spike_fn = resolve(spike_grad)
        self.w_in = nn.Linear(n_inputs, n_neurons)
        self.w_rec = nn.Linear(n_neurons, n_neurons, bias=False)
        nn.init.xavier_uniform_(self.w_in.weight)
        nn.init.zeros_(self.w_in.bias)
        nn.init.orthogonal_(self.w_rec.weight)
        # W_in kept input by input: [inputs, neurons] in memory, the [neurons, inputs] weight its
        # transposed view (the same values, drawn as above). The compiled engine reads W_in^T and
        # sums its gradient in that layout, so neither pass copies the matrix (2,312 x 256 on N-MNIST).
        self.w_in.weight = nn.Parameter(self.w_in.weight.detach().T.contiguous().T)
        self.log_tau_m = init_log_tau(n_neurons, params.tau_m)
        self.log_tau_adp = init_log_tau(n_neurons, params.tau_adp)

    def decays(self) -> Tuple[Tensor, Tensor]:
        """``(alpha, rho)``, each ``[neurons]``."""
        return F.decay(time_constant(self.log_tau_m)), F.decay(time_constant(self.log_tau_adp))

    def weights(self) -> F.ALIFWeights:
        """The layer's tensors as the engines and export read them (decays computed, in the graph)."""
        return F.ALIFWeights(self.w_in.weight, self.w_in.bias, self.w_rec.weight, *self.decays())

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> F.ALIFState:
        dtype = dtype or self.w_in.weight.dtype
        return F.alif_initial_state(batch_size, self.n_neurons, device=device or self.w_in.weight.device, dtype=dtype)

    def step_current(self, input_current: Tensor, state: F.ALIFState, decays=None) -> F.ALIFState:
        """One step given ``W_in x[t] + bias`` (``[batch, neurons]``); adds the recurrent term."""
        alpha, rho = decays if decays is not None else self.decays()
        current = input_current + self.w_rec(state.s)
        return F.alif_step(current, state, alpha, rho, self.b0, self.beta, self.spike_fn)

    def step(self, x_t: Tensor, state: F.ALIFState) -> F.ALIFState:
        """One step from the layer's input ``x[t]`` (``[batch, n_inputs]``)."""
        return self.step_current(self.w_in(x_t), state)

    def forward(self, x_seq: Tensor, state: Optional[F.ALIFState] = None) -> Tuple[Tensor, F.ALIFState]:
        """Run ``x_seq [time, batch, n_inputs]``; returns spikes ``[time, batch, neurons]`` and the final state."""
        check_sequence(x_seq, self.n_inputs)
        return self.forward_current(self.w_in(x_seq), state)

    def forward_current(self, currents: Tensor, state: Optional[F.ALIFState] = None) -> Tuple[Tensor, F.ALIFState]:
        """Run precomputed input currents ``[time, batch, neurons]`` (one matmul for all steps)."""
        if state is None:
            state = self.initial_state(currents.shape[1], device=currents.device, dtype=currents.dtype)
        decays = self.decays()
        spikes = []
        for current in currents:
            state = self.step_current(current, state, decays)
            spikes.append(state.s)
        return torch.stack(spikes), state

    def extra_repr(self) -> str:
        return f"{self.n_inputs}, {self.n_neurons}, b0={self.b0}, beta={self.beta}"


class LeakyReadout(nn.Module):
    """Non-spiking leaky integrator ``m[t] = alpha_o m[t-1] + (1 - alpha_o)(W_o s[t] + bias_o)``.

    Per-output trainable ``tau_o``, initialised from ``tau`` (``ALIFParams.tau_out`` by default).
    """

    def __init__(self, n_inputs: int, n_outputs: int, *, tau: TauInit = ALIFParams.tau_out) -> None:
        super().__init__()
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.linear = nn.Linear(n_inputs, n_outputs)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.log_tau = init_log_tau(n_outputs, tau)

    def decay(self) -> Tensor:
        return F.decay(time_constant(self.log_tau))

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> Tensor:
        weight = self.linear.weight
        return torch.zeros(batch_size, self.n_outputs, device=device or weight.device, dtype=dtype or weight.dtype)

    def step(self, s_t: Tensor, m_prev: Tensor, alpha: Optional[Tensor] = None) -> Tensor:
        return F.readout_step(self.linear(s_t), m_prev, self.decay() if alpha is None else alpha)

    def forward(self, s_seq: Tensor, m: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Integrate ``s_seq [time, batch, n_inputs]``; returns ``m [time, batch, n_outputs]`` and the last ``m``."""
        if m is None:
            m = self.initial_state(s_seq.shape[1], device=s_seq.device, dtype=s_seq.dtype)
        alpha = self.decay()
        outputs = []
        for current in self.linear(s_seq):
            m = F.readout_step(current, m, alpha)
            outputs.append(m)
        return torch.stack(outputs), m


class AdaptiveReadout(nn.Module):
    """Yin et al.'s ECG output layer: ALIF neurons without recurrence, one per class, fed the last
    layer's spikes of the same step (``I[t] = W_o s[t] + bias_o``), whose membrane ``u[t]`` is read as
    class scores. They spike and reset like any ALIF neuron (:func:`rc_snn.neuron.alif.alif_step`,
    with ``params``' ``b0``, ``beta``, ``tau_m`` and ``tau_adp``); their spikes go nowhere.
    """

    def __init__(self, n_inputs: int, n_outputs: int, params: ALIFParams, *, spike_grad: Optional[SpikeFn] = None):
        super().__init__()
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.b0, self.beta = float(params.b0), float(params.beta)
        self.spike_fn = resolve(spike_grad)
        self.linear = nn.Linear(n_inputs, n_outputs)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.log_tau_m = init_log_tau(n_outputs, params.tau_m)
        self.log_tau_adp = init_log_tau(n_outputs, params.tau_adp)

    def decay(self) -> Tuple[Tensor, Tensor]:
        """``(alpha, rho)``, each ``[outputs]``."""
        return F.decay(time_constant(self.log_tau_m)), F.decay(time_constant(self.log_tau_adp))

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> F.ALIFState:
        weight = self.linear.weight
        return F.alif_initial_state(batch_size, self.n_outputs, device=device or weight.device,
                                    dtype=dtype or weight.dtype)

    def weights(self) -> F.ALIFWeights:
        """As an ALIF layer's (:meth:`ALIFLayer.weights`), with ``w_rec`` a constant 0: no recurrence."""
        weight = self.linear.weight
        return F.ALIFWeights(weight, self.linear.bias, weight.new_zeros(self.n_outputs, self.n_outputs), *self.decay())

    def step(self, s_t: Tensor, state: F.ALIFState, decays=None) -> F.ALIFState:
        alpha, rho = decays if decays is not None else self.decay()
        return F.alif_step(self.linear(s_t), state, alpha, rho, self.b0, self.beta, self.spike_fn)

    def forward(self, s_seq: Tensor, state: Optional[F.ALIFState] = None) -> Tuple[Tensor, F.ALIFState]:
        """Run ``s_seq [time, batch, n_inputs]``; returns ``u [time, batch, n_outputs]`` and the last state."""
        if state is None:
            state = self.initial_state(s_seq.shape[1], device=s_seq.device, dtype=s_seq.dtype)
        decays = self.decay()
        outputs = []
        for current in self.linear(s_seq):
            state = F.alif_step(current, state, *decays, self.b0, self.beta, self.spike_fn)
            outputs.append(state.u)
        return torch.stack(outputs), state


class SpikeQuantiser(nn.Module):
    """``v -> Q(v)`` (:func:`rc_snn.neuron.irsnn.quantise`) with the range ``r`` it learns.

    In training every call first updates ``r``: the bias-corrected exponential moving average
    (momentum ``params.range_momentum``) of ``max |v|`` over the call's batch (Jacob et al. 2018's
    range tracking, as the paper's ``FakeSpikeQuantization``). Before any update ``r = 1``.
    """

    def __init__(self, params: IR.IRParams = IR.IRParams()) -> None:
        super().__init__()
        self.bits, self.dead_zone, self.momentum = params.bits, params.dead_zone, params.range_momentum
        self.register_buffer("value_range", torch.tensor(1.0))
        self.register_buffer("range_biased", torch.tensor(0.0))
        self.register_buffer("range_updates", torch.tensor(0, dtype=torch.long))

    def delta(self) -> Tensor:
        """The quantisation step ``r / ((L + 1)(1 - 1e-4))``."""
        return IR.quantiser_step(self.value_range, self.bits)

    def forward(self, v: Tensor) -> Tensor:
        if self.training:
            with torch.no_grad():  # new tensors, not in-place: earlier steps' graphs hold the old range
                self.range_updates = self.range_updates + 1
                self.range_biased = (1 - self.momentum) * self.range_biased + self.momentum * v.abs().max()
                updates = self.range_updates.to(self.range_biased.dtype)
                self.value_range = self.range_biased / (1 - (1 - self.momentum) ** updates)
        value_range = self.value_range.to(v.dtype)
        return IR.quantise(v, IR.quantiser_step(value_range, self.bits), value_range, self.bits, self.dead_zone)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, dead_zone={self.dead_zone}, range={float(self.value_range):.4g}"


class IRLayer(nn.Module):
    """Recurrent layer of IR-SNN neurons (equations in :mod:`rc_snn.neuron.irsnn`).

    ``W`` (``w_in``, ``[2H, n_inputs]``, no bias) is kaiming-uniform with the sigmoid's gain and
    followed by ``BatchNorm1d(2H)`` (``norm``; its shift is the gates' bias), ``U`` (``w_rec``,
    ``[2H, H]``, no bias) orthogonal with the relu's gain, as the paper's code. :meth:`encode`
    normalises over every leading axis at once: in training, over time and batch when given a
    whole sequence (as the paper), which a step-by-step run cannot do; so the model trains on whole
    sequences (:attr:`rc_snn.models.IRSNN.needs_full_sequence`) and exits early in evaluation,
    where the normalisation is a fixed affine map.
    """

    def __init__(self, n_inputs: int, n_neurons: int, params: IR.IRParams = IR.IRParams()) -> None:
        super().__init__()
        if n_inputs < 1 or n_neurons < 1:
            raise ValueError(f"expected positive sizes; got n_inputs={n_inputs}, n_neurons={n_neurons}")
        self.n_inputs, self.n_neurons = n_inputs, n_neurons
        self.w_in = nn.Linear(n_inputs, 2 * n_neurons, bias=False)
        self.norm = nn.BatchNorm1d(2 * n_neurons, momentum=params.range_momentum)
        self.w_rec = nn.Linear(n_neurons, 2 * n_neurons, bias=False)
        self.quantiser = SpikeQuantiser(params)
        nn.init.kaiming_uniform_(self.w_in.weight, nonlinearity="sigmoid")
        nn.init.orthogonal_(self.w_rec.weight, gain=nn.init.calculate_gain("relu"))

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> IR.IRState:
        weight = self.w_in.weight
        return IR.ir_initial_state(batch_size, self.n_neurons, device=device or weight.device,
                                   dtype=dtype or weight.dtype)

    def encode(self, x: Tensor) -> Tensor:
        """``BN(W x)`` for ``x [..., n_inputs]`` (statistics over all leading axes in training)."""
        projected = self.w_in(x)
        return self.norm(projected.reshape(-1, projected.shape[-1])).reshape(projected.shape)

    def step_current(self, encoded: Tensor, state: IR.IRState) -> IR.IRState:
        """One step given ``BN(W x[t])`` (``[batch, 2H]``); adds the recurrent ``U s[t-1]``."""
        return IR.ir_step(encoded + self.w_rec(state.s), state, self.quantiser)

    def forward(self, x_seq: Tensor, state: Optional[IR.IRState] = None) -> Tuple[Tensor, IR.IRState]:
        """Run ``x_seq [time, batch, n_inputs]``; returns outputs ``s [time, batch, neurons]`` and the final state."""
        check_sequence(x_seq, self.n_inputs)
        return self.forward_current(self.encode(x_seq), state)

    def forward_current(self, encoded: Tensor, state: Optional[IR.IRState] = None) -> Tuple[Tensor, IR.IRState]:
        """Run precomputed ``BN(W x)`` ``[time, batch, 2H]``."""
        if state is None:
            state = self.initial_state(encoded.shape[1], device=encoded.device, dtype=encoded.dtype)
        outputs = []
        for current in encoded:
            state = self.step_current(current, state)
            outputs.append(state.s)
        return torch.stack(outputs), state

    def extra_repr(self) -> str:
        return f"{self.n_inputs}, {self.n_neurons}"
