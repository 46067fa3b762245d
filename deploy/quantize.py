"""Loihi-style fixed point for every layer kind: bit widths, scaling, float <-> device integers.

One pair of named functions translates between the float network file and device integers:
:func:`to_device` (``NetworkIR -> FixedNetwork``) and :func:`from_device` (``FixedNetwork ->
NetworkIR``, the float network the integers represent exactly). The integer equations are in
``deploy.kernels``; ``deploy.reference`` and the ``fixed_pt`` ProcessModels both run them.

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

Scaling (a naive fixed-point ALIF process, without the scaling below, differed from the float
network in 4.6% of spikes when measured on this project's development machine):

* ``(1 - alpha)`` is folded into each row of ``W_in``, ``W_rec`` and the bias, using the
  *quantised* ``alpha``, so the integer update is ``u = decay(u) + W'x + ...`` and its steady-state
  gain equals the float one.
* Each layer's state scale ``S`` (integer units per float unit, a power of two) is the largest
  with ``u_headroom * (|b0| + |beta|)`` float units inside 24 bits; the threshold then has ~18 bits.
  The readout's scale per class uses the exact bound ``|m| <= sum_i |W_o[c, i]| + |b_o[c]|``.
* Each weight row (one target neuron) has its own exponent, so every row uses the full 8-bit
  mantissa whatever the spread of weight magnitudes between neurons. (A per-row exponent is a
  choice of this simulation: Lava's Dense has one ``weight_exp`` per matrix; on chip it would be
  one synapse format per group of rows.)

An snnTorch leaky layer (``deploy.ir.LIFLayerIR``) is scaled the same way with gain 1 (its
input enters unscaled, ``mem = beta*mem + I``), its scale set by ``u_headroom * max|threshold|``,
and ``beta`` a 12-bit decay that may be 0 or 4096 (snnTorch allows ``beta`` 0 and 1).

An IR-SNN layer (``deploy.ir.IRLayerIR``) keeps ``h``, ``a`` and ``v`` in units of
``delta / IR_STEP_UNITS`` (4096 units per quantisation step, so ``q = trunc(v / 4096)`` and the
range is ``floor(r / delta * 4096)``); its gate rows are scaled apart: the ``c`` rows into those
same units (``relu`` then needs no conversion), the ``z`` rows into ``SIGMOID_SCALE`` units per
float unit, where ``z = SIGMOID_TABLE[g_z >> 6]`` reads a 1,024-entry table of 12-bit sigmoid
values over [-8, 8) (a lookup, as a programmable neuron core would do it); the leak is then
``h = ((4096 - z) c + z h_prev) >> 12``. The levels ``q`` it sends are small integers, which the
receiving Dense multiplies (graded spikes). A readout fed by levels up to ``L`` bounds ``|m|`` by
``L sum |W| + |b|``.

The decision rule needs ``softmax(m)``, which Loihi's neuron cores do not compute: the fixed-point
readout converts ``m`` to float with its scale (as an embedded x86 core or the host would) and
applies the same rule as the float one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .ir import ALIFLayerIR, IRLayerIR, LIFLayerIR, NetworkIR, ReadoutIR, max_level

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

#: Float range of the ALIF state kept inside 24 bits, in units of the largest threshold b0 + beta.
U_HEADROOM = 16.0
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
    units, ``beta`` a 12-bit decay in ``[0, 4096]``, ``reset`` as in ``deploy.ir.LIFLayerIR``."""

    w_in_mant: np.ndarray
    w_in_exp: np.ndarray
    w_rec_mant: np.ndarray
    w_rec_exp: np.ndarray
    bias: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    reset: int
    scale: float

    def __post_init__(self) -> None:
        for name in ("w_in_mant", "w_in_exp", "w_rec_mant", "w_rec_exp", "bias", "beta", "threshold"):
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
class FixedNetwork:
    layers: Tuple[FixedALIFLayer | FixedLIFLayer | FixedIRLayer, ...]
    readout: FixedReadout
    decision_threshold: float
    dt_ms: float | None = None


def quantize_decay(decay: np.ndarray) -> np.ndarray:
    """``round(decay * 4096)`` clipped to ``[1, 4095]``."""
    return np.clip(np.rint(np.asarray(decay) * DECAY_UNITY), DECAY_MIN, DECAY_MAX).astype(np.int64)


def _power_of_two_scale(float_range: np.ndarray) -> np.ndarray:
    """Largest ``2**k`` with ``float_range * 2**k <= STATE_MAX`` (elementwise)."""
    float_range = np.maximum(np.asarray(float_range, dtype=np.float64), np.finfo(np.float64).tiny)
    return np.exp2(np.floor(np.log2(STATE_MAX / float_range)))


def quantize_rows(weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-row 8-bit mantissa and exponent: ``weights[j] ~= mant[j] * 2**exp[j]``.

    ``exp[j]`` is the smallest in ``[WEIGHT_EXP_MIN, WEIGHT_EXP_MAX]`` whose mantissas fit
    ``[-128, 127]`` (rows of zeros get ``WEIGHT_EXP_MIN``); mantissas are rounded to nearest.
    """
    weights = np.asarray(weights, dtype=np.float64)
    row_max = np.abs(weights).max(axis=1)
    with np.errstate(divide="ignore"):
        exps = np.ceil(np.log2(row_max / WEIGHT_MANTISSA_MAX))
    exps = np.where(row_max > 0, exps, WEIGHT_EXP_MIN)
    exps = np.clip(exps, WEIGHT_EXP_MIN, WEIGHT_EXP_MAX).astype(np.int64)
    mant = np.rint(weights / np.exp2(exps)[:, None])
    mant = np.clip(mant, WEIGHT_MANTISSA_MIN, WEIGHT_MANTISSA_MAX).astype(np.int64)
    return mant, exps


def quantize_bias(values: np.ndarray) -> np.ndarray:
    """Nearest ``mant << exp`` with a 13-bit signed mantissa and ``exp`` in ``[0, 7]``, as an integer."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        exps = np.ceil(np.log2(np.abs(values) / BIAS_MANTISSA_MAX))
    exps = np.clip(np.where(values != 0, exps, 0), 0, BIAS_EXP_MAX)
    mant = np.clip(np.rint(values / np.exp2(exps)), -BIAS_MANTISSA_MAX - 1, BIAS_MANTISSA_MAX)
    return (mant * np.exp2(exps)).astype(np.int64)


def _device_weights(weights: np.ndarray, gain: np.ndarray, scale) -> Tuple[np.ndarray, np.ndarray]:
    """Rows ``gain[j] * W[j] * scale[j] / 2**6`` as mantissa and exponent."""
    target = weights * (gain * np.broadcast_to(scale, gain.shape))[:, None] / 2**ACTIVATION_SHIFT
    return quantize_rows(target)


def to_device(ir: NetworkIR, *, u_headroom: float = U_HEADROOM) -> FixedNetwork:
    """Float network file -> device integers (the scaling rules are in the module docstring)."""
    if not isinstance(ir, NetworkIR):
        raise ValueError(f"expected a NetworkIR; got {type(ir).__name__}")
    if not u_headroom > 0:
        raise ValueError(f"expected u_headroom > 0; got {u_headroom}")
    layers = []
    for layer in ir.layers:
        if isinstance(layer, LIFLayerIR):
            layers.append(_fixed_lif(layer, u_headroom))
            continue
        if isinstance(layer, IRLayerIR):
            layers.append(_fixed_ir(layer))
            continue
        alpha = quantize_decay(layer.alpha)
        gain = 1.0 - alpha / DECAY_UNITY
        scale = float(_power_of_two_scale(u_headroom * (abs(layer.b0) + abs(layer.beta))))
        w_in_mant, w_in_exp = _device_weights(layer.w_in, gain, scale)
        w_rec_mant, w_rec_exp = _device_weights(layer.w_rec, gain, scale)
        full = np.full(layer.n_neurons, 1.0)
        layers.append(
            FixedALIFLayer(
                w_in_mant=w_in_mant,
                w_in_exp=w_in_exp,
                w_rec_mant=w_rec_mant,
                w_rec_exp=w_rec_exp,
                bias=quantize_bias(gain * layer.bias * scale),
                alpha=alpha,
                rho=quantize_decay(layer.rho),
                b0=np.rint(full * layer.b0 * scale),
                beta=np.rint(full * layer.beta * scale),
                scale=scale,
            )
        )
    readout = ir.readout
    alpha = quantize_decay(readout.alpha)
    gain = 1.0 - alpha / DECAY_UNITY
    last = ir.layers[-1]
    largest_input = max_level(last.bits) if isinstance(last, IRLayerIR) else 1  # levels, or spikes
    scale = _power_of_two_scale(largest_input * np.abs(readout.weight).sum(axis=1) + np.abs(readout.bias))
    weight_mant, weight_exp = _device_weights(readout.weight, gain, scale)
    fixed_readout = FixedReadout(
        weight_mant=weight_mant,
        weight_exp=weight_exp,
        bias=quantize_bias(gain * readout.bias * scale),
        alpha=alpha,
        scale=scale,
    )
    return FixedNetwork(tuple(layers), fixed_readout, ir.decision_threshold, ir.dt_ms)


def _fixed_lif(layer: LIFLayerIR, u_headroom: float) -> FixedLIFLayer:
    scale = float(_power_of_two_scale(u_headroom * max(float(np.abs(layer.threshold).max()), 1e-12)))
    gain = np.ones(layer.n_neurons)
    w_in_mant, w_in_exp = _device_weights(layer.w_in, gain, scale)
    w_rec_mant, w_rec_exp = _device_weights(layer.w_rec, gain, scale)
    return FixedLIFLayer(
        w_in_mant=w_in_mant, w_in_exp=w_in_exp, w_rec_mant=w_rec_mant, w_rec_exp=w_rec_exp,
        bias=quantize_bias(layer.bias * scale),
        beta=np.clip(np.rint(layer.beta * DECAY_UNITY), 0, DECAY_UNITY),
        threshold=np.rint(layer.threshold * scale), reset=layer.reset, scale=scale,
    )


#: The widest IR-SNN output the fixed-point format carries: the layer's state (``L * 4096`` units
#: per range, ``v = a + h``) must fit 24 bits and the receiving rows' weights, which hold the
#: sender's step ``delta = r / L``, must stay inside the 8-bit mantissa's exponent range. Measured
#: (tests/test_irsnn_deploy.py): fixed point agrees with float on 99.5 % of predictions at 10 bits,
#: 97 % at 11, 90.5 % at 12, 10 % at 24.
MAX_IR_BITS = 10


def _fixed_ir(layer: IRLayerIR) -> FixedIRLayer:
    if layer.bits > MAX_IR_BITS:
        raise ValueError(f"an IR-SNN layer with {layer.bits}-bit outputs cannot run in fixed point: the 24-bit state "
                         f"and 8-bit weights carry at most {MAX_IR_BITS} bits exactly; train with --bits <= "
                         f"{MAX_IR_BITS}, or run it in floating point")
    n = layer.n_neurons
    row_scale = np.concatenate([np.full(n, float(SIGMOID_SCALE)), np.full(n, IR_STEP_UNITS / layer.delta)])
    ones = np.ones(2 * n)
    w_in_mant, w_in_exp = _device_weights(layer.w_in, ones, row_scale)
    w_rec_mant, w_rec_exp = _device_weights(layer.w_rec, ones, row_scale)
    value_range = int(np.floor(layer.value_range / layer.delta * IR_STEP_UNITS))
    return FixedIRLayer(
        w_in_mant=w_in_mant, w_in_exp=w_in_exp, w_rec_mant=w_rec_mant, w_rec_exp=w_rec_exp,
        bias=quantize_bias(layer.bias * row_scale), row_scale=row_scale, value_range=value_range,
        lower=0 if layer.bits == 1 else -value_range, delta=IR_STEP_UNITS, dead_zone=layer.dead_zone,
        bits=layer.bits, float_delta=layer.delta,
    )


def _float_weights(mant: np.ndarray, exps: np.ndarray, gain: np.ndarray, scale) -> np.ndarray:
    effective = mant * np.exp2(exps + ACTIVATION_SHIFT)[:, None]
    return effective / (gain * np.broadcast_to(scale, gain.shape))[:, None]


def from_device(fixed: FixedNetwork) -> NetworkIR:
    """Device integers -> the float network whose float run the integer run approximates (decays, weights and
    bias exactly as quantised; used to measure what quantisation changed)."""
    layers = []
    for layer in fixed.layers:
        if isinstance(layer, FixedIRLayer):  # the sigmoid table is not a float layer: the nearest float one
            layers.append(IRLayerIR(
                w_in=_float_weights(layer.w_in_mant, layer.w_in_exp, np.ones(2 * layer.n_neurons), layer.row_scale),
                bias=layer.bias / layer.row_scale,
                w_rec=_float_weights(layer.w_rec_mant, layer.w_rec_exp, np.ones(2 * layer.n_neurons),
                                     layer.row_scale),
                value_range=layer.value_range * layer.float_delta / IR_STEP_UNITS, delta=layer.float_delta,
                bits=layer.bits, dead_zone=layer.dead_zone,
            ))
            continue
        if isinstance(layer, FixedLIFLayer):
            ones = np.ones(layer.n_neurons)
            layers.append(LIFLayerIR(
                w_in=_float_weights(layer.w_in_mant, layer.w_in_exp, ones, layer.scale),
                bias=layer.bias / layer.scale,
                w_rec=_float_weights(layer.w_rec_mant, layer.w_rec_exp, ones, layer.scale),
                beta=layer.beta / DECAY_UNITY, threshold=layer.threshold / layer.scale, reset=layer.reset,
            ))
            continue
        alpha = layer.alpha / DECAY_UNITY
        gain = 1.0 - alpha
        layers.append(
            ALIFLayerIR(
                w_in=_float_weights(layer.w_in_mant, layer.w_in_exp, gain, layer.scale),
                bias=layer.bias / (gain * layer.scale),
                w_rec=_float_weights(layer.w_rec_mant, layer.w_rec_exp, gain, layer.scale),
                alpha=alpha,
                rho=layer.rho / DECAY_UNITY,
                b0=float(layer.b0[0] / layer.scale),
                beta=float(layer.beta[0] / layer.scale),
            )
        )
    readout = fixed.readout
    alpha = readout.alpha / DECAY_UNITY
    gain = 1.0 - alpha
    return NetworkIR(
        layers=tuple(layers),
        readout=ReadoutIR(
            weight=_float_weights(readout.weight_mant, readout.weight_exp, gain, readout.scale),
            bias=readout.bias / (gain * readout.scale),
            alpha=alpha,
        ),
        decision_threshold=fixed.decision_threshold,
        dt_ms=fixed.dt_ms,
    )
