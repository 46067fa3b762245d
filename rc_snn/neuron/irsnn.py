"""Pure step function of the spiking neuron with improved inherent recurrence (IR-SNN).

Ponghiran and Roy, "Spiking Neural Networks with Improved Inherent Recurrence Dynamics for
Sequential Learning", AAAI 2022 (arXiv 2109.01905), as their public code's v2 model defines it
(``improved_spiking_model_v2.py``, ``fake_spike_quantization.py`` of wponghiran/imp-snns-for-sl).
Per layer of H neurons and step t::

    [wz; wc] = BN(W x[t])                         input projection, batch-normalised (the layer's)
    z[t] = sigmoid(wz + U_z s[t-1])               learned, input-dependent leak (a forget gate)
    c[t] = relu(wc + U_c s[t-1])                  candidate input
    h[t] = (1 - z[t]) * c[t] + z[t] * h[t-1]      leaky state
    v[t] = a[t-1] + h[t]                          integrate (error feedback)
    s[t] = Q(v[t])                                multi-bit output
    a[t] = v[t] - s[t]                            keep what was not sent (soft reset)

The recurrence ``U = [U_z; U_c]`` is fed by the sent ``s``, not by ``h``. ``Q`` is the paper's fake
spike quantisation with ``L = max_level(bits)`` levels on each side of 0 and step
``delta = r / ((L + 1)(1 - 1e-4))`` for a range ``r``::

    q = trunc(clamp(v, lo, r) / delta),  q = 0 where |q| <= dead_zone,  s = q * delta

with ``lo = -r`` for ``bits >= 2`` (``L = 2**(bits-1) - 1``: their signed levels). At ``bits = 1``
their quantiser sends nothing at all (``n = 1``, so ``|q| < 1`` always truncates to 0); here one
bit is a true binary spike: ``L = 1`` and ``lo = 0``, the non-negative half of the 2-bit quantiser,
so ``s = delta`` when ``v >= delta`` and 0 otherwise (an integrate-and-fire neuron with soft reset).
``h`` and hence ``v`` are never negative in this model (``c >= 0``), so the negative levels of
``bits >= 2`` stay unused (2 bits send exactly what 1 bit sends); they are kept to match the
paper's bit counts and levels (6 bits: 31 levels, dead zone 3). The backward pass is
straight-through inside ``[lo, r]`` and zero where clamped.

The range ``r`` is learnt as in the paper: in training, a bias-corrected exponential moving
average (momentum ``range_momentum``) of ``max |v|`` over the batch at every step; frozen in
evaluation. :class:`rc_snn.neuron.layers.SpikeQuantiser` owns it and applies :func:`quantise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

#: ``delta = r / ((L + 1) (1 - QUANTISER_MARGIN))``: the paper's margin, keeping ``|q| <= L`` at ``|v| = r``.
QUANTISER_MARGIN = 1e-4


@dataclass(frozen=True)
class IRParams:
    """The IR-SNN's quantiser constants: the one place their defaults (the paper's configs) are written."""

    bits: int = 6
    dead_zone: int = 3
    range_momentum: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 24:
            raise ValueError(f"expected bits as an integer in 1..24 (Loihi 2's graded spikes); got {self.bits!r}")
        if isinstance(self.dead_zone, bool) or not isinstance(self.dead_zone, int) \
                or not 0 <= self.dead_zone < max_level(self.bits):
            raise ValueError(f"expected dead_zone as an integer 0 <= d < {max_level(self.bits)} (the levels of "
                             f"{self.bits} bit(s); at d >= that nothing is ever sent); got {self.dead_zone!r}")
        if not 0 < self.range_momentum <= 1:
            raise ValueError(f"expected range_momentum in (0, 1]; got {self.range_momentum!r}")


class IRState(NamedTuple):
    """State of a population of IR-SNN neurons, each ``[batch, neurons]``."""

    h: Tensor  # leaky state h[t]
    a: Tensor  # accumulated error a[t] (after sending)
    s: Tensor  # sent output s[t]


def max_level(bits: int) -> int:
    """``L``: the largest ``|q|`` of a ``bits``-bit output (1 bit: a binary spike)."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def quantiser_step(value_range, bits: int):
    """``delta = r / ((L + 1) (1 - 1e-4))`` for a range ``r`` (a float or tensor)."""
    return value_range / ((max_level(bits) + 1) * (1.0 - QUANTISER_MARGIN))


def quantise(v: Tensor, delta: Tensor, value_range: Tensor, bits: int, dead_zone: int) -> Tensor:
    """``s = Q(v)`` of the module docstring, straight-through inside ``[lo, r]`` and zero-gradient outside."""
    lower = torch.zeros_like(value_range) if bits == 1 else -value_range
    clamped = torch.minimum(torch.maximum(v, lower), value_range)
    q = torch.trunc(clamped / delta)
    q = torch.where(q.abs() <= dead_zone, torch.zeros_like(q), q)
    return clamped + (q * delta - clamped).detach()


def ir_initial_state(batch_size: int, n_neurons: int, *, device=None, dtype=torch.float32) -> IRState:
    """Resting state: h = 0, a = 0, nothing sent."""
    zeros = torch.zeros(batch_size, n_neurons, device=device, dtype=dtype)
    return IRState(h=zeros, a=zeros, s=zeros)


def ir_step(gates: Tensor, state: IRState, quantiser: Callable[[Tensor], Tensor]) -> IRState:
    """One IR-SNN step: the module docstring's equations for z, c, h, v, s and a.

    Args:
        gates: ``BN(W x[t]) + U s[t-1]``, ``[batch, 2H]``, the ``z`` half first (formed by the layer).
        state: ``(h[t-1], a[t-1], s[t-1])``.
        quantiser: ``v -> Q(v)`` (:func:`quantise` with the layer's range; see
            :class:`rc_snn.neuron.layers.SpikeQuantiser`), as ``alif_step`` takes its spike function.
    """
    pre_z, pre_c = gates.chunk(2, dim=-1)
    z = torch.sigmoid(pre_z)
    h = (1.0 - z) * torch.relu(pre_c) + z * state.h
    v = state.a + h
    s = quantiser(v)
    return IRState(h=h, a=v - s, s=s)
