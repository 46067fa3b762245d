"""The ALIF neuron (Yin, Corradi and Bohte 2021) as snnTorch neurons: :class:`ALIF` and :class:`RALIF`.

They follow snnTorch's conventions (``snn.Leaky``, ``snn.RLeaky``): stepped one time step at a
time by the caller, ``spk, state = neuron(input_, state)``; with ``init_hidden=True`` the state is
kept inside the module (``spk = neuron(input_)``, or ``spk, state`` with ``output=True``), so they
fit in an ``nn.Sequential``, and ``snntorch.utils.reset(net)`` (or ``reset_hidden()``) clears it.
``spike_grad`` takes any snnTorch surrogate (default: rc-snn's multi-Gaussian, as ``ALIFLayer``).

The equations are not written again here: every step calls
:func:`rc_snn.neuron.alif.alif_step`, the function :class:`rc_snn.neuron.layers.ALIFLayer` calls,
with ``I[t] = input_`` (``ALIF``) or ``input_ + W_rec s[t-1]`` (``RALIF``, whose ``recurrent`` is
``ALIFLayer``'s ``w_rec``). The input layer (``nn.Linear``, with its bias) is the user's.

snnTorch's reset protocol zeroes and detaches a neuron's ``mem`` buffer; an ALIF neuron's state
is three tensors (``u``, ``b``, ``s``), so ``mem`` holds them stacked, ``[3, batch, neurons]``
(:attr:`state` reads it as an :class:`~rc_snn.neuron.alif.ALIFState`). These classes subclass
``snn.Leaky`` so that ``snntorch.utils.reset`` recognises them; ``Leaky``'s own ``beta`` (one
membrane decay) is replaced by per-neuron trainable time constants, and its ``threshold`` is the
baseline ``b0`` of the adaptive threshold ``B = b0 + beta * b``.
"""

from __future__ import annotations

from typing import Optional

import snntorch as snn
import torch
from torch import Tensor, nn

from ..neuron import alif as F
from ..neuron.alif import ALIFParams, ALIFState
from ..neuron.layers import init_log_tau, time_constant
from ..neuron.surrogate import SpikeFn, resolve
from .private_api import drop_membrane_decay


class ALIF(snn.Leaky):
    """Feed-forward adaptive LIF neurons, snnTorch style (module docstring).

    Args:
        linear_features: neurons in the layer, the input's last dimension (snnTorch's name in
            ``RLeaky``: the ``out_features`` of the ``nn.Linear`` before it).
        params: ``b0``, ``beta`` (adaptation strength) and the initial ``tau_m``, ``tau_adp``
            (:class:`~rc_snn.neuron.alif.ALIFParams`).
        spike_grad: a spike function (any ``snntorch.surrogate``) or its name.
        init_hidden, output: snnTorch's meaning.
        learn_tau_m, learn_tau_adp: train the per-neuron time constants (snnTorch's ``learn_beta``).
    """

    def __init__(self, linear_features: int, params: ALIFParams = ALIFParams(), *,
                 spike_grad: Optional[SpikeFn] = None, init_hidden: bool = False, output: bool = False,
                 learn_tau_m: bool = True, learn_tau_adp: bool = True) -> None:
        if isinstance(linear_features, bool) or not isinstance(linear_features, int) or linear_features < 1:
            raise ValueError(f"expected linear_features (the layer's neurons) as a positive integer; got "
                             f"{linear_features!r}")
        n_neurons = linear_features
        super().__init__(beta=0.0, threshold=params.b0, spike_grad=resolve(spike_grad), init_hidden=init_hidden,
                         output=output, reset_mechanism="subtract")
        drop_membrane_decay(self)  # snnTorch's single membrane decay: the decays here are per neuron, exp(-1/tau_m)
        self.n_neurons, self.b0, self.adaptation = n_neurons, float(params.b0), float(params.beta)
        for name, mean_sd, learn in (("log_tau_m", params.tau_m, learn_tau_m),
                                     ("log_tau_adp", params.tau_adp, learn_tau_adp)):
            value = init_log_tau(n_neurons, mean_sd)
            if learn:
                self.register_parameter(name, value)
            else:
                self.register_buffer(name, value.detach())

    def decays(self):
        """``(alpha, rho)``, each ``[neurons]``."""
        return F.decay(time_constant(self.log_tau_m)), F.decay(time_constant(self.log_tau_adp))

    def recurrent_current(self, s_prev: Tensor) -> Tensor:
        """``W_rec s[t-1]``: none in a feed-forward layer."""
        return torch.zeros_like(s_prev)

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> ALIFState:
        return F.alif_initial_state(batch_size, self.n_neurons, device=device or self.log_tau_m.device,
                                    dtype=dtype or self.log_tau_m.dtype)

    @property
    def state(self) -> Optional[ALIFState]:
        """The state kept inside (``init_hidden=True``), or None before the first step."""
        return ALIFState(*self.mem.unbind(0)) if self.mem.dim() == 3 else None

    def forward(self, input_: Tensor, state: Optional[ALIFState] = None):
        """One step: ``input_ = I[t]`` ``[batch, neurons]``; returns ``spk`` (and the state; module docstring)."""
        if input_.dim() != 2 or input_.shape[1] != self.n_neurons:
            raise ValueError(f"expected an input current of shape [batch, {self.n_neurons}]; got {tuple(input_.shape)}")
        if self.init_hidden and state is not None:
            raise TypeError("`state` should not be passed as an argument while `init_hidden=True`")
        if state is None:
            kept = self.state if self.init_hidden else None
            state = kept if kept is not None and kept.u.shape == input_.shape else \
                self.initial_state(input_.shape[0], device=input_.device, dtype=input_.dtype)
        alpha, rho = self.decays()
        state = F.alif_step(input_ + self.recurrent_current(state.s), state, alpha, rho, self.b0, self.adaptation,
                            self.spike_grad)
        if self.init_hidden:
            self.mem = torch.stack(tuple(state))
            return (state.s, state) if self.output else state.s
        return state.s, state

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, b0={self.b0}, beta={self.adaptation}"


class RALIF(ALIF):
    """Recurrent adaptive LIF neurons, like ``snn.RLeaky(all_to_all=True, linear_features=...)``:
    ``I[t] = input_ + W_rec s[t-1]`` with ``recurrent`` (``nn.Linear``, no bias) orthogonal as in
    :class:`~rc_snn.neuron.layers.ALIFLayer`. ``learn_recurrent=False`` freezes it (snnTorch's name)."""

    def __init__(self, linear_features: int, params: ALIFParams = ALIFParams(), *, learn_recurrent: bool = True,
                 **kwargs) -> None:
        super().__init__(linear_features, params, **kwargs)
        self.recurrent = nn.Linear(self.n_neurons, self.n_neurons, bias=False)
        nn.init.orthogonal_(self.recurrent.weight)
        self.recurrent.weight.requires_grad_(learn_recurrent)

    def recurrent_current(self, s_prev: Tensor) -> Tensor:
        return self.recurrent(s_prev)
