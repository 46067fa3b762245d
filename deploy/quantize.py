"""Float network file <-> device integers, for every layer kind: the scaling rules.

One pair of named functions translates between the float network file and device integers:
:func:`to_device` (``NetworkIR -> FixedNetwork``) and :func:`from_device` (``FixedNetwork ->
NetworkIR``, the float network the integers represent exactly). The integer formats and the
device network's types are in ``deploy.fixed``; the integer equations in ``deploy.kernels``.

Scaling (a naive fixed-point ALIF process, without the scaling below, differed from the float
network in 4.6% of spikes when measured on this project's development machine):

* ``(1 - alpha)`` is folded into each row of ``W_in``, ``W_rec`` and the bias, using the
  *quantised* ``alpha``, so the integer update is ``u = decay(u) + W'x + ...`` and its steady-state
  gain equals the float one.
* Each layer's state scale ``S`` (integer units per float unit, a power of two) is the largest
  with ``u_headroom * (|b0| + |beta|)`` float units inside 24 bits; the threshold then has ~18 bits.
  The readout's scale per class uses the exact bound ``|m| <= sum_i |W_o[c, i]| + |b_o[c]|``
  (Yin's adaptive output layer: plus ``|b0| + |beta|``, what a spike's reset may subtract; its
  ``rho``, ``b0`` and ``beta`` in the ALIF layer's formats).
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
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .fixed import (ACTIVATION_SHIFT, BIAS_EXP_MAX, BIAS_MANTISSA_MAX, DECAY_MAX, DECAY_MIN, DECAY_UNITY, IR_STEP_UNITS,
                    SIGMOID_SCALE, STATE_MAX, WEIGHT_EXP_MAX, WEIGHT_EXP_MIN, WEIGHT_MANTISSA_MAX,
                    WEIGHT_MANTISSA_MIN, FixedAdaptiveReadout, FixedALIFLayer, FixedIRLayer, FixedLIFLayer,
                    FixedNetwork, FixedReadout)
from .ir import AdaptiveReadoutIR, ALIFLayerIR, IRLayerIR, LIFLayerIR, NetworkIR, ReadoutIR, max_level
from .reference import simulate

#: Float range of the ALIF state kept inside 24 bits, in units of the largest threshold b0 + beta.
U_HEADROOM = 16.0
#: The headrooms :func:`calibrate_headroom` tries, by factors of 4 around :data:`U_HEADROOM`.
HEADROOMS = (4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0)

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
    return FixedNetwork(tuple(layers), _fixed_readout(ir), ir.decision_threshold, ir.dt_ms)


def _fixed_readout(ir: NetworkIR) -> FixedReadout | FixedAdaptiveReadout:
    readout = ir.readout
    alpha = quantize_decay(readout.alpha)
    gain = 1.0 - alpha / DECAY_UNITY
    last = ir.layers[-1]
    largest_input = max_level(last.bits) if isinstance(last, IRLayerIR) else 1  # levels, or spikes
    reach = largest_input * np.abs(readout.weight).sum(axis=1) + np.abs(readout.bias)
    adaptive = isinstance(readout, AdaptiveReadoutIR)
    if adaptive:  # a spike's reset subtracts at most the largest threshold b0 + beta
        reach = reach + abs(readout.b0) + abs(readout.beta)
    scale = _power_of_two_scale(reach)
    weight_mant, weight_exp = _device_weights(readout.weight, gain, scale)
    common = dict(weight_mant=weight_mant, weight_exp=weight_exp, bias=quantize_bias(gain * readout.bias * scale),
                  alpha=alpha, scale=scale)
    if not adaptive:
        return FixedReadout(**common)
    return FixedAdaptiveReadout(**common, rho=quantize_decay(readout.rho), b0=np.rint(readout.b0 * scale),
                                beta=np.rint(readout.beta * scale))


def _fixed_lif(layer: LIFLayerIR, u_headroom: float) -> FixedLIFLayer:
    scale = float(_power_of_two_scale(u_headroom * max(float(np.abs(layer.threshold).max()), 1e-12)))
    gain = np.ones(layer.n_neurons)
    w_in_mant, w_in_exp = _device_weights(layer.w_in, gain, scale)
    w_rec_mant, w_rec_exp = _device_weights(layer.w_rec, gain, scale)
    return FixedLIFLayer(
        w_in_mant=w_in_mant, w_in_exp=w_in_exp, w_rec_mant=w_rec_mant, w_rec_exp=w_rec_exp,
        bias=quantize_bias(layer.bias * scale),
        alpha=np.clip(np.rint(layer.alpha * DECAY_UNITY), 0, DECAY_UNITY),
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
                alpha=layer.alpha / DECAY_UNITY, threshold=layer.threshold / layer.scale, reset=layer.reset,
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
    common = dict(weight=_float_weights(readout.weight_mant, readout.weight_exp, gain, readout.scale),
                  bias=readout.bias / (gain * readout.scale), alpha=alpha)
    if isinstance(readout, FixedAdaptiveReadout):
        float_readout = AdaptiveReadoutIR(**common, rho=readout.rho / DECAY_UNITY,
                                          b0=float(readout.b0[0] / readout.scale[0]),
                                          beta=float(readout.beta[0] / readout.scale[0]))
    else:
        float_readout = ReadoutIR(**common)
    return NetworkIR(
        layers=tuple(layers),
        readout=float_readout,
        decision_threshold=fixed.decision_threshold,
        dt_ms=fixed.dt_ms,
    )


def calibrate_headroom(ir: NetworkIR, frames: np.ndarray, headrooms=HEADROOMS) -> float:
    """The ``u_headroom`` among ``headrooms`` whose integer network agrees best with ``ir`` in float on
    ``frames [N, T, F]`` (calibration data: training samples, not the ones judged), as post-training
    quantisation calibrates its ranges: most samples with the same decision (prediction and step),
    then most steps with the same output argmax, then fewest saturated states, then the nearest to
    :data:`U_HEADROOM`. Where the membrane stays within a few thresholds (the N-MNIST recipes) that
    is the default; a network whose currents dwarf its threshold (the ECG recipe: ``b0 = 0.01``,
    weights near 10) saturates at the default and needs a coarser scale.
    """
    float_run = simulate(ir, frames)
    float_argmax = float_run.outputs.argmax(-1)

    def agreement(headroom: float) -> tuple:
        run = simulate(to_device(ir, u_headroom=headroom), frames)
        same = (run.predictions == float_run.predictions) & (run.decision_steps == float_run.decision_steps)
        return (float(same.mean()), float((run.outputs.argmax(-1) == float_argmax).mean()), -run.saturated,
                -abs(np.log(headroom / U_HEADROOM)))

    return max(headrooms, key=agreement)

