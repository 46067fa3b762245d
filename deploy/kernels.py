"""Numpy step functions shared by the numpy reference and the Lava ProcessModels.

One source for each equation on the deploy side: ``deploy.reference`` loops over time calling these,
and the ProcessModels in ``deploy.lava_procs`` call the same functions once per Lava step, so
a Lava run and the reference can be compared bit for bit. The float equations are those of
``rc_snn.neuron.alif`` (see ``deploy.ir``); arrays are ``[batch, neurons]``. (Names differ from
the torch side's where the objects do: :class:`ALIFLayerState` holds numpy arrays of one
``deploy.ir.ALIFLayerIR`` layer, float or integer.)

Float (``floating_pt``)::

    ff[t]  = W_in x[t]           rec[t] = W_rec s[t-1]          (synaptic_input)
    I[t]   = (ff[t] + rec[t]) + bias
    b[t]   = rho*b[t-1] + (1-rho)*s[t-1];   B[t] = b0 + beta*b[t]
    u[t]   = alpha*u[t-1] + (1-alpha)*I[t] - B[t]*s[t-1];   s[t] = u[t] > B[t]
    m[t]   = alpha_o*m[t-1] + (1-alpha_o)*(W_o s[t] + b_o)

IR-SNN layer (the layer's output ``s`` is the level ``q``, see ``deploy.ir``; fixed point: ``ir_step_fixed``)::

    g[t] = (ff[t] + rec[t]) + bias;   z = sigmoid(g[:, :H]);   h[t] = (1-z)*relu(g[:, H:]) + z*h[t-1]
    v = a[t-1] + h[t];   q[t] = trunc(clip(v, lo, r) / delta), 0 where |q| <= dead_zone;   a[t] = v - q[t]*delta

snnTorch leaky layer (``reset`` indexes ``deploy.ir_layers.LIF_RESETS``; fixed point: ``lif_step_fixed``)::

    I[t] = (ff[t] + rec[t]) + bias
    mem[t] = alpha*mem[t-1] + I[t] - threshold*s[t-1]         (0, subtract)
    mem[t] = alpha*((1 - s[t-1])*mem[t-1]) + I[t]               (1, zero: snn.Leaky)
    mem[t] = u - s[t-1]*u,  u = alpha*mem[t-1] + I[t]           (2, zero-step: snn.RLeaky)
    s[t] = mem[t] > threshold

Fixed point (``fixed_pt``; integers and bit widths in ``deploy.fixed``, units in ``deploy.quantize``)::

    a[t]   = shift(sum_i w_mant[j, i] x_i[t], weight_exp[j])      (synaptic_input_fixed)
    b[t]   = decay(b[t-1], rho) + s[t-1] * ((4096 - rho) << (B_FRAC_BITS - 12))
    B[t]   = b0 + (beta * b[t]) >> B_FRAC_BITS
    u[t]   = sat24(decay(u[t-1], alpha) + ((ff + rec) << 6) + bias - B[t]*s[t-1]);   s[t] = u[t] > B[t]
    m[t]   = sat24(decay(m[t-1], alpha_o) + (a << 6) + bias_o)

with ``decay(v, d) = sign(v*d) * (|v*d| >> 12)`` (Lava's fixed-point LIF: truncation toward zero).
The factor ``(1 - alpha)`` of the float equations is folded into the integer weights and bias.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .fixed import (
    ACTIVATION_SHIFT,
    B_FRAC_BITS,
    DECAY_BITS,
    DECAY_UNITY,
    SIGMOID_INDEX_SHIFT,
    SIGMOID_TABLE,
    STATE_MAX,
    STATE_MIN,
)


class ALIFLayerState(NamedTuple):
    """``u``, ``b``, ``s``, each ``[batch, neurons]`` (float64, or int64 in fixed point)."""

    u: np.ndarray
    b: np.ndarray
    s: np.ndarray


def alif_rest(batch: int, n_neurons: int, fixed_point: bool = False) -> ALIFLayerState:
    dtype = np.int64 if fixed_point else np.float64
    zeros = np.zeros((batch, n_neurons), dtype=dtype)
    return ALIFLayerState(zeros, zeros.copy(), zeros.copy())


def _gather_rows(x: np.ndarray, weights_t: np.ndarray, out_dtype) -> np.ndarray:
    """``out[b] = sum_i x[b, i] * weights_t[i]`` over the nonzero ``x[b, i]`` in increasing ``i``.

    Each row is reduced on its own in a fixed order (``np.add.reduceat`` along axis 0), so the
    float result does not depend on the batch it is computed in, nor on memory alignment.
    """
    batch = x.shape[0]
    out = np.zeros((batch, weights_t.shape[1]), dtype=out_dtype)
    rows, cols = np.nonzero(x)
    if rows.size == 0:
        return out
    values = x[rows, cols].astype(out_dtype)
    contributions = weights_t[cols] * values[:, None]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[starts]] = np.add.reduceat(contributions, starts, axis=0)
    return out


def synaptic_input(weights_t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Float ``W x`` for a batch: ``weights_t`` is ``W`` transposed ``[n_in, n_out]``, ``x [batch, n_in]``."""
    return _gather_rows(x, weights_t, np.float64)


def row_shift(values: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``values << e`` where ``e >= 0``, arithmetic ``values >> -e`` (floor) where ``e < 0``, per column."""
    values = values.astype(np.int64)
    left = np.left_shift(values, np.maximum(exponents, 0))
    return np.where(exponents >= 0, left, np.right_shift(values, np.maximum(-exponents, 0)))


def synaptic_input_fixed(mantissas_t: np.ndarray, exponents: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integer ``shift(sum_i w_mant[j, i] x_i, exp[j])``; ``mantissas_t [n_in, n_out]``, ``x [batch, n_in]`` integers."""
    return row_shift(_gather_rows(x, mantissas_t, np.int64), exponents)


def alif_step(ff, rec, state: ALIFLayerState, bias, alpha, rho, b0, beta) -> ALIFLayerState:
    """Float ALIF step (module docstring); ``ff``, ``rec`` are ``W_in x[t]`` and ``W_rec s[t-1]``."""
    u_prev, b_prev, s_prev = state
    current = (ff + rec) + bias
    b = rho * b_prev + (1.0 - rho) * s_prev
    adaptive_threshold = b0 + beta * b
    u = alpha * u_prev + (1.0 - alpha) * current - adaptive_threshold * s_prev
    s = (u - adaptive_threshold > 0).astype(np.float64)
    return ALIFLayerState(u, b, s)


class IRLayerState(NamedTuple):
    """``h``, ``a`` and the sent levels ``s`` (= q), each ``[batch, neurons]`` (float64)."""

    h: np.ndarray
    a: np.ndarray
    s: np.ndarray


def ir_rest(batch: int, n_neurons: int, fixed_point: bool = False) -> IRLayerState:
    zeros = np.zeros((batch, n_neurons), dtype=np.int64 if fixed_point else np.float64)
    return IRLayerState(zeros, zeros.copy(), zeros.copy())


def ir_step(ff, rec, state: IRLayerState, bias, value_range, lower, delta, dead_zone) -> IRLayerState:
    """Float IR-SNN step (module docstring); ``ff``, ``rec`` are ``W_in x[t]`` and ``W_rec q[t-1]`` ``[batch, 2H]``."""
    h_prev, a_prev, _ = state
    gates = (ff + rec) + bias
    n_neurons = h_prev.shape[1]
    z = 1.0 / (1.0 + np.exp(-gates[:, :n_neurons]))
    h = (1.0 - z) * np.maximum(gates[:, n_neurons:], 0.0) + z * h_prev
    v = a_prev + h
    q = np.trunc(np.clip(v, lower, value_range) / delta)
    q[np.abs(q) <= dead_zone] = 0.0
    return IRLayerState(h, v - q * delta, q)


class LIFLayerState(NamedTuple):
    """snnTorch's ``mem`` and the spikes ``s``, each ``[batch, neurons]`` (float64)."""

    mem: np.ndarray
    s: np.ndarray


def lif_rest(batch: int, n_neurons: int, fixed_point: bool = False) -> LIFLayerState:
    zeros = np.zeros((batch, n_neurons), dtype=np.int64 if fixed_point else np.float64)
    return LIFLayerState(zeros, zeros.copy())


def lif_step(ff, rec, state: LIFLayerState, bias, alpha, threshold, reset) -> LIFLayerState:
    """Float step of snnTorch's ``Leaky`` / ``RLeaky`` (module docstring), in snnTorch's order of operations."""
    mem_prev, s_prev = state
    current = (ff + rec) + bias
    if reset == 1:
        mem = alpha * ((1.0 - s_prev) * mem_prev) + current
    elif reset == 2:
        update = alpha * mem_prev + current
        mem = update - s_prev * update
    else:
        mem = alpha * mem_prev + current - s_prev * threshold
    return LIFLayerState(mem, (mem - threshold > 0).astype(np.float64))


def decay_fixed(values: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """``sign(v*d) * (|v*d| >> 12)``: multiply by ``d / 4096`` truncating toward zero (Lava's LIF)."""
    product = values.astype(np.int64) * decay
    return np.sign(product) * np.right_shift(np.abs(product), DECAY_BITS)


def saturate(values: np.ndarray) -> np.ndarray:
    """Clip to the signed 24-bit state range (Lava's LIF clips ``v`` there; ``u`` wraps, we clip)."""
    return np.clip(values, STATE_MIN, STATE_MAX)


def alif_step_fixed(ff, rec, state: ALIFLayerState, bias, alpha, rho, b0, beta) -> ALIFLayerState:
    """Fixed-point ALIF step (module docstring); all arguments integers in device units."""
    u_prev, b_prev, s_prev = state
    ff, rec, s_prev = (np.asarray(v, dtype=np.int64) for v in (ff, rec, s_prev))
    b = decay_fixed(b_prev, rho) + s_prev * np.left_shift(DECAY_UNITY - rho, B_FRAC_BITS - DECAY_BITS)
    adaptive_threshold = b0 + np.right_shift(beta * b, B_FRAC_BITS)
    u = saturate(
        decay_fixed(u_prev, alpha)
        + np.left_shift(ff + rec, ACTIVATION_SHIFT)
        + bias
        - adaptive_threshold * s_prev
    )
    s = (u > adaptive_threshold).astype(np.int64)
    return ALIFLayerState(u, b, s)


def lif_step_fixed(ff, rec, state: LIFLayerState, bias, alpha, threshold, reset) -> LIFLayerState:
    """Fixed-point snnTorch leaky step: ``lif_step`` in device integers (``deploy.quantize``)::

        I = ((ff + rec) << 6) + bias
        subtract: mem = sat24(decay(mem, alpha) + I - threshold*s_prev)
        zero:     mem = sat24(decay((1 - s_prev)*mem, alpha) + I)
        zero-step: mem = sat24((1 - s_prev) * (decay(mem, alpha) + I))
        s = mem > threshold
    """
    mem_prev, s_prev = state
    ff, rec, s_prev = (np.asarray(v, dtype=np.int64) for v in (ff, rec, s_prev))
    current = np.left_shift(ff + rec, ACTIVATION_SHIFT) + bias
    if reset == 1:
        mem = decay_fixed((1 - s_prev) * mem_prev, alpha) + current
    elif reset == 2:
        mem = (1 - s_prev) * (decay_fixed(mem_prev, alpha) + current)
    else:
        mem = decay_fixed(mem_prev, alpha) + current - threshold * s_prev
    mem = saturate(mem)
    return LIFLayerState(mem, (mem > threshold).astype(np.int64))


def ir_step_fixed(ff, rec, state: IRLayerState, bias, value_range, lower, delta, dead_zone) -> IRLayerState:
    """Fixed-point IR-SNN step (``deploy.quantize``): ``ir_step`` in device integers, ``delta`` the
    units per level (``IR_STEP_UNITS``)::

        g = ((ff + rec) << 6) + bias;   z = SIGMOID_TABLE[clip(g_z >> 6, -512, 511) + 512];   c = max(g_c, 0)
        h = sat24(((4096 - z) c + z h_prev) >> 12);   v = sat24(a + h)
        q = trunc(clip(v, lo, r) / delta), 0 where |q| <= dead_zone;   a = v - q delta
    """
    h_prev, a_prev, _ = state
    n_neurons = h_prev.shape[1]
    gates = np.left_shift(np.asarray(ff, dtype=np.int64) + np.asarray(rec, dtype=np.int64), ACTIVATION_SHIFT) + bias
    index = np.clip(np.right_shift(gates[:, :n_neurons], SIGMOID_INDEX_SHIFT), -512, 511) + 512
    z = SIGMOID_TABLE[index]
    c = np.maximum(gates[:, n_neurons:], 0)
    h = saturate(np.right_shift((DECAY_UNITY - z) * c + z * h_prev, DECAY_BITS))
    v = saturate(a_prev + h)
    clipped = np.clip(v, int(lower), int(value_range))
    q = np.sign(clipped) * (np.abs(clipped) // int(delta))
    q[np.abs(q) <= dead_zone] = 0
    return IRLayerState(h, v - q * int(delta), q)


def readout_step(ff, m_prev, bias, alpha) -> np.ndarray:
    """Float ``m[t] = alpha_o m[t-1] + (1 - alpha_o)(W_o s[t] + b_o)``; ``ff = W_o s[t]``."""
    return alpha * m_prev + (1.0 - alpha) * (ff + bias)


def readout_step_fixed(ff, m_prev, bias, alpha) -> np.ndarray:
    """Fixed-point ``m[t] = sat24(decay(m[t-1], alpha_o) + (ff << 6) + bias_o)``."""
    ff = np.asarray(ff, dtype=np.int64)
    return saturate(decay_fixed(m_prev, alpha) + np.left_shift(ff, ACTIVATION_SHIFT) + bias)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def crossed(logits: np.ndarray, decision_threshold: float) -> np.ndarray:
    """``max_c softmax(m)_c > decision_threshold`` per sample (strict ``>``, as ``rc_snn.training.early_exit``)."""
    return softmax(logits).max(axis=-1) > decision_threshold


def decide(outputs: np.ndarray, decision_threshold: float):
    """Decision steps and predictions from outputs ``[batch, time, classes]`` (float units).

    ``t*`` is the first step whose softmax maximum exceeds ``decision_threshold``, else ``T-1``;
    the prediction is ``argmax m[t*]``. Returns ``(decision_steps [batch], predictions [batch])``.
    """
    n_time = outputs.shape[1]
    hits = crossed(outputs, decision_threshold)  # [batch, time]
    steps = np.where(hits.any(axis=1), hits.argmax(axis=1), n_time - 1)
    predictions = outputs[np.arange(outputs.shape[0]), steps].argmax(axis=-1)
    return steps.astype(np.int64), predictions.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Spike counts packed for reading out of Lava, where ``Var.get`` moves one element per message
# (25-55 us each): ``per_word`` counts of ``bits`` bits each share one element, below 2**52 so
# that the element survives a float64 exactly.


def count_packing(n_steps: int) -> tuple:
    """``(bits, per_word)`` for counts of at most ``n_steps`` (a neuron spikes at most once a step)."""
    bits = max(1, int(n_steps).bit_length())
    return bits, max(1, 52 // bits)


def pack_counts(counts: np.ndarray, n_steps: int) -> np.ndarray:
    """Counts ``[..., H]`` (0 <= count <= n_steps) as ``[..., ceil(H / per_word)]`` int64 words."""
    bits, per_word = count_packing(n_steps)
    counts = np.asarray(counts, dtype=np.int64)
    n_words = -(-counts.shape[-1] // per_word)
    padded = np.zeros(counts.shape[:-1] + (n_words * per_word,), dtype=np.int64)
    padded[..., :counts.shape[-1]] = counts
    shifts = bits * np.arange(per_word, dtype=np.int64)
    return (padded.reshape(counts.shape[:-1] + (n_words, per_word)) << shifts).sum(-1)


def unpack_counts(words: np.ndarray, n_neurons: int, n_steps: int) -> np.ndarray:
    """The inverse of :func:`pack_counts`: ``[..., n_neurons]`` counts."""
    bits, per_word = count_packing(n_steps)
    words = np.asarray(words).astype(np.int64)
    shifts = bits * np.arange(per_word, dtype=np.int64)
    counts = (words[..., None] >> shifts) & ((1 << bits) - 1)
    return counts.reshape(words.shape[:-1] + (-1,))[..., :n_neurons]
