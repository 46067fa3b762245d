"""The device network: Loihi-style integer formats and the types of a network in device integers.

A :class:`FixedNetwork` is what ``deploy.quantize.to_device`` makes of a float network file; its
integer equations are in ``deploy.kernels``, and ``deploy.reference`` and the ``fixed_pt``
ProcessModels both run them. Passing a ``FixedNetwork`` where a network is run is what selects
fixed point (:func:`check_network`).

Bit widths follow Lava's bit-accurate Loihi models and Davies et al., "Loihi: a neuromorphic
manycore processor with on-chip learning", IEEE Micro 38(1), 2018:

* ``STATE_BITS = 24``: membrane/readout state ``u``/``m`` is a signed 24-bit integer
  (``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed.uv_bitwidth``). We saturate at the
  limits (Lava's LIF clips ``v`` and wraps ``u``); saturation is rare and is reported by the
  reference as a count.
* ``DECAY_BITS = 12``: decays are 12-bit integers ``d`` meaning ``d / 4096``, applied with a
  product and a right shift truncating toward zero (same file, ``decay_shift``/``decay_unity``).
* ``ACTIVATION_SHIFT = 6``: synaptic input is MSB-aligned into the state with ``a << 6``
  (same file, ``act_shift``; the threshold ``vth << 6`` there uses the same alignment).
* ``WEIGHT_MANTISSA_*``: Dense weights are 8-bit; mixed-sign weights keep the even values in
  ``[-256, 254]`` (``lava/utils/weightutils.py``: ``clip_weights``/``truncate_weights``), i.e. an
  8-bit signed mantissa ``[-128, 127]`` times 2; the factor 2 is folded into the exponent here.
* ``WEIGHT_EXP_MIN/MAX = -8/7``: the weight exponent (``weight_exp`` of Lava's Dense, applied to
  the accumulated sum with a shift) as a 4-bit signed field, as on Loihi.
* ``BIAS_MANTISSA_BITS = 13``, ``BIAS_EXP_MAX = 7``: bias is ``bias_mant << bias_exp`` with a
  signed 13-bit mantissa and 3-bit exponent (Lava's fixed LIF docstring).
* ``B_FRAC_BITS = 20``: the adaptation variable ``b`` in ``[0, 1]`` with 20 fractional bits, which
  fits the 24-bit state. Loihi 1 has no ALIF threshold of this form (its threshold adaptation
  differs); this is the closest integer form of Yin et al.'s ``b``.

The decision rule needs ``softmax(m)``, which Loihi's neuron cores do not compute: the fixed-point
readout converts ``m`` to float with its scale (as an embedded x86 core or the host would) and
applies the same rule as the float one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .ir import NetworkIR

STATE_BITS = 24
STATE_MAX = 2 ** (STATE_BITS - 1) - 1
STATE_MIN = -(2 ** (STATE_BITS - 1))
DECAY_BITS = 12
DECAY_UNITY = 2**DECAY_BITS
DECAY_MIN, DECAY_MAX = 1, DECAY_UNITY - 1  # keeps 0 < alpha, rho < 1 so from_device is a valid network
ACTIVATION_SHIFT = 6
WEIGHT_MANTISSA_MIN, WEIGHT_MANTISSA_MAX = -128, 127
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7
BIAS_MANTISSA_BITS = 13
BIAS_MANTISSA_MAX = 2 ** (BIAS_MANTISSA_BITS - 1) - 1
BIAS_EXP_MAX = 7
B_FRAC_BITS = 20

#: IR-SNN: integer units per quantisation step delta of h, a and v.
IR_STEP_UNITS = 2**12
#: IR-SNN: integer units per float unit of the z gate's pre-activation, and its sigmoid table.
SIGMOID_SCALE = 2**12
SIGMOID_INDEX_SHIFT = 6  # g_z >> 6: 64 table entries per float unit
SIGMOID_TABLE = np.rint(DECAY_UNITY / (1.0 + np.exp(-np.arange(-512, 512) / 64.0))).astype(np.int64)
SIGMOID_TABLE.flags.writeable = False


def _frozen_int(array) -> np.ndarray:
    out = np.array(array, dtype=np.int64, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class FixedALIFLayer:
    """One ALIF layer in device integers (``u`` units: ``scale`` per float unit).

    ``w_in_mant [H, F]``/``w_in_exp [H]`` and ``w_rec_mant [H, H]``/``w_rec_exp [H]`` are
    ``(1 - alpha) W * scale / 2**6`` as mantissa times ``2**exp``; ``bias``, ``b0``, ``beta`` are in
    ``u`` units; ``alpha``, ``rho`` are 12-bit decays ``[H]``.
    """

    w_in_mant: np.ndarray
    w_in_exp: np.ndarray
    w_rec_mant: np.ndarray
    w_rec_exp: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray
    rho: np.ndarray
    b0: np.ndarray
    beta: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        for name in ("w_in_mant", "w_in_exp", "w_rec_mant", "w_rec_exp", "bias", "alpha", "rho", "b0", "beta"):
            object.__setattr__(self, name, _frozen_int(getattr(self, name)))

    @property
    def n_neurons(self) -> int:
        return self.w_in_mant.shape[0]


@dataclass(frozen=True, eq=False)
class FixedLIFLayer:
    """One snnTorch leaky layer in device integers (``mem`` units: ``scale`` per float unit):
    weights ``W * scale / 2**6`` as mantissa and exponent, ``bias`` and ``threshold`` in ``mem``
    units, ``alpha`` a 12-bit decay in ``[0, 4096]``, ``reset`` as in ``deploy.ir.LIFLayerIR``."""

    w_in_mant: np.ndarray
    w_in_exp: np.ndarray
    w_rec_mant: np.ndarray
    w_rec_exp: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray
    threshold: np.ndarray
    reset: int
    scale: float

    def __post_init__(self) -> None:
        for name in ("w_in_mant", "w_in_exp", "w_rec_mant", "w_rec_exp", "bias", "alpha", "threshold"):
            object.__setattr__(self, name, _frozen_int(getattr(self, name)))

    @property
    def n_neurons(self) -> int:
        return self.w_in_mant.shape[0]


@dataclass(frozen=True, eq=False)
class FixedIRLayer:
    """One IR-SNN layer in device integers (module docstring): weights and ``bias`` per gate row
    (``row_scale [2H]``: ``SIGMOID_SCALE`` for the z rows, ``IR_STEP_UNITS / delta`` for the c rows),
    the clip ``lower``/``value_range`` and ``delta`` (= ``IR_STEP_UNITS``) in ``h`` units."""

    w_in_mant: np.ndarray
    w_in_exp: np.ndarray
    w_rec_mant: np.ndarray
    w_rec_exp: np.ndarray
    bias: np.ndarray
    row_scale: np.ndarray
    value_range: int
    lower: int
    delta: int
    dead_zone: int
    bits: int
    float_delta: float

    def __post_init__(self) -> None:
        for name in ("w_in_mant", "w_in_exp", "w_rec_mant", "w_rec_exp", "bias"):
            object.__setattr__(self, name, _frozen_int(getattr(self, name)))

    @property
    def n_neurons(self) -> int:
        return self.w_in_mant.shape[0] // 2


@dataclass(frozen=True, eq=False)
class FixedReadout:
    """Leaky readout in device integers; ``m`` in units of ``scale [C]`` per float unit."""

    weight_mant: np.ndarray
    weight_exp: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        for name in ("weight_mant", "weight_exp", "bias", "alpha"):
            object.__setattr__(self, name, _frozen_int(getattr(self, name)))
        scale = np.array(self.scale, dtype=np.float64, copy=True)
        scale.flags.writeable = False
        object.__setattr__(self, "scale", scale)


@dataclass(frozen=True, eq=False)
class FixedAdaptiveReadout(FixedReadout):
    """Yin et al.'s adaptive output layer in device integers: the leaky readout's fields and, as in
    :class:`FixedALIFLayer`, ``rho`` a 12-bit decay and ``b0``, ``beta`` in ``m`` units (per output)."""

    rho: np.ndarray
    b0: np.ndarray
    beta: np.ndarray

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rho", "b0", "beta"):
            object.__setattr__(self, name, _frozen_int(getattr(self, name)))


@dataclass(frozen=True, eq=False)
class FixedNetwork:
    """A network in device integers (:func:`to_device`). Wherever a network is run (``deploy.reference``,
    ``deploy.lava_run``, ``deploy.simulate``), passing a ``FixedNetwork`` instead of a ``NetworkIR`` is
    what selects fixed point."""

    layers: Tuple[FixedALIFLayer | FixedLIFLayer | FixedIRLayer, ...]
    readout: FixedReadout | FixedAdaptiveReadout
    decision_threshold: float
    dt_ms: float | None = None

    @property
    def n_inputs(self) -> int:
        return self.layers[0].w_in_mant.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.readout.weight_mant.shape[0]

    def layer_kinds(self) -> Tuple[str, ...]:
        """Each layer's kind, as ``deploy.ir_layers.layer_kind`` names the float layers."""
        kinds = {FixedALIFLayer: "alif", FixedIRLayer: "irsnn", FixedLIFLayer: "lif"}
        return tuple(kinds[type(layer)] for layer in self.layers)


def check_network(network) -> bool:
    """Whether ``network`` runs in fixed point: True for a :class:`FixedNetwork`, False for a ``NetworkIR``;
    anything else is refused."""
    if isinstance(network, FixedNetwork):
        return True
    if isinstance(network, NetworkIR):
        return False
    raise ValueError(f"expected a NetworkIR (float) or a FixedNetwork (fixed point); got {type(network).__name__}")
