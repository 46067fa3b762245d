"""Pure step functions of the adaptive LIF (ALIF) neuron and the leaky readout.

These are the single source of the network's equations; the modules in
:mod:`rc_snn.neuron.layers` loop over time by calling them, and ``deploy.kernels`` implements the
same equations in numpy. :class:`ALIFParams` holds the neuron's constants and initial time
constants, once for layers, models and the training config.

Discrete time, dt = 1 step, per neuron j (Yin, Corradi and Bohte, "Accurate and efficient
time-domain classification with adaptive spiking recurrent neural networks", Nature Machine
Intelligence 2021; arXiv 2103.12593)::

    alpha = exp(-dt / tau_m)                      membrane decay
    rho   = exp(-dt / tau_adp)                    adaptation decay
    b[t]  = rho * b[t-1] + (1 - rho) * s[t-1]     adaptation variable
    B[t]  = b0 + beta * b[t]                      adaptive threshold
    u[t]  = alpha * u[t-1] + (1 - alpha) * I[t] - B[t] * s[t-1]     soft reset
    s[t]  = H(u[t] - B[t])                        H(x) = 1 if x > 0 else 0

with input current ``I[t] = W_in x[t] + W_rec s[t-1] + bias`` (formed by the layer) and the
non-spiking leaky readout::

    m[t] = alpha_o * m[t-1] + (1 - alpha_o) * (W_o s[t] + bias_o)

beta = 0 gives a plain LIF neuron with threshold b0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Tuple

import torch
from torch import Tensor

from .surrogate import SpikeFn

TauInit = Tuple[float, float]  # (mean, standard deviation) of the initial draw, in steps


@dataclass(frozen=True)
class ALIFParams:
    """The ALIF network's neuron constants: the one place their defaults are written.

    ``b0`` and ``beta`` enter the equations above; ``tau_m``, ``tau_adp`` (hidden neurons) and
    ``tau_out`` (readout) are ``(mean, sd)`` in steps of the normal draw that initialises each
    neuron's trainable time constant. Defaults are Yin et al.'s code's values.
    """

    b0: float = 0.01
    beta: float = 1.8
    tau_m: TauInit = (20.0, 5.0)
    tau_adp: TauInit = (150.0, 10.0)
    tau_out: TauInit = (20.0, 5.0)


class ALIFState(NamedTuple):
    """State of a population of ALIF neurons, each ``[batch, neurons]``."""

    u: Tensor  # membrane potential u[t]
    b: Tensor  # adaptation variable b[t]
    s: Tensor  # spikes s[t]


class ALIFWeights(NamedTuple):
    """One ALIF layer's trainable tensors, as the gradient engines and export read them:
    ``I[t] = w_in x[t] + bias + w_rec s[t-1]`` (``w_in [H, inputs]``, ``w_rec [H, H]``) and the decays
    ``alpha``, ``rho`` ``[H]`` (:meth:`rc_snn.neuron.layers.ALIFLayer.weights`). The same fields hold
    numpy arrays in the compiled engine and gradients where an engine returns them."""

    w_in: Tensor
    bias: Tensor
    w_rec: Tensor
    alpha: Tensor
    rho: Tensor


def decay(tau: Tensor, dt: float = 1.0) -> Tensor:
    """Decay factor ``exp(-dt / tau)`` of a time constant ``tau`` (same units as ``dt``)."""
    return torch.exp(-dt / tau)


def adaptive_threshold(b: Tensor, b0: float, beta: float) -> Tensor:
    """Adaptive threshold ``B = b0 + beta * b``."""
    return b0 + beta * b


def alif_initial_state(batch_size: int, n_neurons: int, *, device=None, dtype=torch.float32) -> ALIFState:
    """Resting state: u = 0, b = 0, no spikes."""
    zeros = torch.zeros(batch_size, n_neurons, device=device, dtype=dtype)
    return ALIFState(u=zeros, b=zeros, s=zeros)


def alif_step(
    current: Tensor,
    state: ALIFState,
    alpha: Tensor,
    rho: Tensor,
    b0: float,
    beta: float,
    spike_fn: SpikeFn,
) -> ALIFState:
    """One ALIF step: the module docstring's equations for b, B, u and s.

    Args:
        current: input current ``I[t]``, ``[batch, neurons]`` (already includes ``W_rec s[t-1]``).
        state: ``(u[t-1], b[t-1], s[t-1])``.
        alpha, rho: per-neuron decays ``[neurons]``, from :func:`decay`.
        b0, beta: baseline threshold and adaptation strength.
        spike_fn: Heaviside forward with a surrogate backward (see :mod:`rc_snn.neuron.surrogate`).

    Returns:
        The new state ``(u[t], b[t], s[t])``; ``s[t]`` is the layer's output.
    """
    u_prev, b_prev, s_prev = state
    b = rho * b_prev + (1.0 - rho) * s_prev
    threshold_b = adaptive_threshold(b, b0, beta)
    u = alpha * u_prev + (1.0 - alpha) * current - threshold_b * s_prev
    # snnTorch's surrogates return float32 spikes whatever the input; keep the state's dtype
    # (a no-op, no copy, when the dtypes already agree).
    s = spike_fn(u - threshold_b).to(u.dtype)
    return ALIFState(u=u, b=b, s=s)


def readout_step(current: Tensor, m_prev: Tensor, alpha: Tensor) -> Tensor:
    """Leaky readout ``m[t] = alpha * m[t-1] + (1 - alpha) * current`` with ``current = W_o s[t] + bias_o``."""
    return alpha * m_prev + (1.0 - alpha) * current
