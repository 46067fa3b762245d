"""Compiled (numba) forward and backward passes of a one-layer ALIF network, sample by sample.

Why compiled: on a CPU, the torch loop of :mod:`rc_snn.training.bptt` pays a fixed cost per step
(dispatching a few dozen small tensor operations, ~0.5 ms per step forward + backward whatever the
number of rows) that does not shrink when samples leave the batch at their decision step, so it
capped the saving of rank coding. Here nothing is paid per step but arithmetic:

- samples are independent given the weights (their own state, their own t*), so each sample runs
  its steps 0..t* on its own, in parallel over samples, and its backward pass from t* down to 0;
- the projections of spikes and input events are accumulates: ``W s`` is the sum of the columns
  of ``W`` where ``s != 0`` (as on neuromorphic hardware), and so are the weight gradients
  ``g s^T``; only ``g_I W_rec`` and ``g_co W_o`` in the backward pass are dense.

The equations are those of :func:`rc_snn.neuron.alif.alif_step` and
:func:`~rc_snn.neuron.alif.readout_step` (forward) and of :mod:`rc_snn.training.bptt`'s docstring
(backward), written out here per neuron because numba compiles loops, not tensor expressions; the
decision rule is :func:`rc_snn.training.early_exit.crossed_threshold`'s. ``tests/test_bptt.py``
runs every one-layer case through these kernels and checks outputs, decisions and every gradient
against autograd in float64. The surrogate
derivative is not in here: the caller evaluates it with the spike function's own code, once per
sequence, and passes it in.

Layout: states are ``[batch, steps + 1, neurons]`` with index 0 the resting state, so step t's
state is at t + 1 and its predecessor at t; currents are ``[batch, steps, neurons]``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _forward(x, w_in_t, bias_in, w_rec_t, alpha, rho, b0, beta, w_out_t, bias_out, alpha_out, decision_threshold,
             u, b, s, current, m, co, steps, crossed, finite):  # pragma: no cover - compiled
    batch, n_steps, n_in = x.shape
    n_hidden, n_out = alpha.shape[0], alpha_out.shape[0]
    one = alpha.dtype.type(1.0)
    for r in prange(batch):
        for t in range(n_steps):
            cur = current[r, t]
            cur[:] = bias_in
            for j in range(n_in):  # W_in x[t]: accumulate the rows of W_in^T of the input events
                xj = x[r, t, j]
                if xj != 0:
                    if not math.isfinite(xj):
                        finite[r] = False
                    for h in range(n_hidden):
                        cur[h] += xj * w_in_t[j, h]
            for k in range(n_hidden):  # + W_rec s[t-1]
                sk = s[r, t, k]
                if sk != 0:
                    for h in range(n_hidden):
                        cur[h] += sk * w_rec_t[k, h]
            for h in range(n_hidden):
                s_prev = s[r, t, h]
                b_new = rho[h] * b[r, t, h] + (one - rho[h]) * s_prev
                adaptive_threshold = b0 + beta * b_new
                u_new = alpha[h] * u[r, t, h] + (one - alpha[h]) * cur[h] - adaptive_threshold * s_prev
                b[r, t + 1, h] = b_new
                u[r, t + 1, h] = u_new
                s[r, t + 1, h] = one if u_new - adaptive_threshold > 0 else 0
            out = co[r, t]
            out[:] = bias_out
            for k in range(n_hidden):  # co[t] = W_o s[t] + bias_o
                sk = s[r, t + 1, k]
                if sk != 0:
                    for c in range(n_out):
                        out[c] += sk * w_out_t[k, c]
            z_max = -np.inf
            for c in range(n_out):
                z = alpha_out[c] * m[r, t, c] + (one - alpha_out[c]) * out[c]
                m[r, t + 1, c] = z
                z_max = max(z_max, z)
            crossing = False
            if decision_threshold > 0:  # max_c softmax(z)_c = 1 / sum_c exp(z_c - max z) > threshold
                total = 0.0
                for c in range(n_out):
                    total += math.exp(m[r, t + 1, c] - z_max)
                crossing = 1.0 / total > decision_threshold
            if crossing or t == n_steps - 1:
                steps[r], crossed[r] = t, crossing
                break


@njit(parallel=True, cache=True)
def _backward(x, w_rec, w_out, alpha, rho, b0, beta, alpha_out, u, b, s, current, m, co, surrogate, first, g_out,
              steps, order, d_w_in_t, d_bias_in, d_w_rec_t, d_alpha, d_rho, d_w_out_t, d_bias_out, d_alpha_out):  # pragma: no cover
    n_hidden, n_out = alpha.shape[0], alpha_out.shape[0]
    n_in = x.shape[2]
    n_parts = d_bias_in.shape[0]  # one set of weight gradients per part, summed by the caller
    one = alpha.dtype.type(1.0)
    for p in prange(n_parts):
        g_s, g_i = np.empty(n_hidden, u.dtype), np.empty(n_hidden, u.dtype)
        carry_s, carry_u, carry_b = np.empty(n_hidden, u.dtype), np.empty(n_hidden, u.dtype), np.empty(n_hidden, u.dtype)
        carry_m, g_co = np.empty(n_out, u.dtype), np.empty(n_out, u.dtype)
        for r in order[p::n_parts]:
            carry_s[:], carry_u[:], carry_b[:], carry_m[:] = 0, 0, 0, 0  # nothing after t*
            for t in range(steps[r], -1, -1):
                for c in range(n_out):  # readout: g_m, g_co, alpha_o
                    g_m = g_out[r, t, c] + carry_m[c]
                    g_co[c] = (one - alpha_out[c]) * g_m
                    d_alpha_out[p, c] += g_m * (m[r, t, c] - co[r, t, c])
                    d_bias_out[p, c] += g_co[c]
                    carry_m[c] = alpha_out[c] * g_m
                g_s[:] = carry_s  # g_s[t] = g_co W_o + (carried from t+1)
                for c in range(n_out):
                    for h in range(n_hidden):
                        g_s[h] += g_co[c] * w_out[c, h]
                for k in range(n_hidden):  # dW_o^T += s[t] g_co^T
                    sk = s[r, t + 1, k]
                    if sk != 0:
                        for c in range(n_out):
                            d_w_out_t[p, k, c] += sk * g_co[c]
                for h in range(n_hidden):
                    s_prev = s[r, t, h]
                    g_v = surrogate[first[r] + t, h] * g_s[h]
                    g_u = g_v + carry_u[h]
                    g_b = beta * (-g_v - s_prev * g_u) + carry_b[h]
                    g_i[h] = (one - alpha[h]) * g_u
                    d_alpha[p, h] += g_u * (u[r, t, h] - current[r, t, h])
                    d_rho[p, h] += g_b * (b[r, t, h] - s_prev)
                    d_bias_in[p, h] += g_i[h]
                    carry_u[h] = alpha[h] * g_u
                    carry_b[h] = rho[h] * g_b
                    carry_s[h] = (one - rho[h]) * g_b - (b0 + beta * b[r, t + 1, h]) * g_u
                for h in range(n_hidden):  # carry_s += g_I W_rec
                    for k in range(n_hidden):
                        carry_s[k] += g_i[h] * w_rec[h, k]
                for k in range(n_hidden):  # dW_rec^T += s[t-1] g_I^T
                    sk = s[r, t, k]
                    if sk != 0:
                        for h in range(n_hidden):
                            d_w_rec_t[p, k, h] += sk * g_i[h]
                for j in range(n_in):  # dW_in^T += x[t] g_I^T
                    xj = x[r, t, j]
                    if xj != 0:
                        for h in range(n_hidden):
                            d_w_in_t[p, j, h] += xj * g_i[h]


def forward(x: np.ndarray, w_in: np.ndarray, bias_in: np.ndarray, w_rec: np.ndarray, alpha: np.ndarray,
            rho: np.ndarray, b0: float, beta: float, w_out: np.ndarray, bias_out: np.ndarray, alpha_out: np.ndarray,
            decision_threshold: float | None) -> dict:
    """Run every sample of ``x [batch, steps, inputs]`` to its decision step (the last step if no threshold).

    Weights in torch's ``[out, in]`` layout. Returns the states ``u, b, s [batch, steps + 1, neurons]``,
    ``current [batch, steps, neurons]``, readout ``m [batch, steps + 1, classes]`` and ``co``,
    ``steps`` (t*), ``crossed`` and ``finite`` (False where an input read was NaN or inf). Entries past
    a sample's t* are undefined (never computed).
    """
    batch, n_steps = x.shape[:2]
    n_hidden, n_out, dtype = w_rec.shape[0], w_out.shape[0], x.dtype
    result = dict(u=np.empty((batch, n_steps + 1, n_hidden), dtype), b=np.empty((batch, n_steps + 1, n_hidden), dtype),
                  s=np.empty((batch, n_steps + 1, n_hidden), dtype), current=np.empty((batch, n_steps, n_hidden), dtype),
                  m=np.empty((batch, n_steps + 1, n_out), dtype), co=np.empty((batch, n_steps, n_out), dtype),
                  steps=np.zeros(batch, np.int64), crossed=np.zeros(batch, np.bool_), finite=np.ones(batch, np.bool_))
    for name in ("u", "b", "s", "m"):
        result[name][:, 0] = 0  # the resting state
    with numba.parallel_chunksize(1):  # samples end at their own t*: hand them out one by one
        _forward(x, np.ascontiguousarray(w_in.T), bias_in, np.ascontiguousarray(w_rec.T), alpha, rho, dtype.type(b0),
                 dtype.type(beta), np.ascontiguousarray(w_out.T), bias_out, alpha_out,
                 -1.0 if decision_threshold is None else float(decision_threshold), **result)
    return result


def packed_offsets(steps: np.ndarray) -> np.ndarray:
    """Where each sample's steps 0..t* start in a packed ``[sum(t* + 1), ...]`` array (samples in order)."""
    return np.concatenate(([0], np.cumsum(steps + 1)[:-1])).astype(np.int64)


def backward(x: np.ndarray, w_rec: np.ndarray, w_out: np.ndarray, alpha: np.ndarray, rho: np.ndarray, b0: float,
             beta: float, alpha_out: np.ndarray, saved: dict, surrogate: np.ndarray, g_out: np.ndarray) -> dict:
    """Gradients of every parameter from ``g_out [batch, steps, classes]`` (dL/dm[t]; read up to t* only).

    ``saved`` is :func:`forward`'s result; ``surrogate [sum(t* + 1), neurons]`` is sigma'(u[t] - B[t]) at
    the steps computed, packed sample by sample (:func:`packed_offsets`).
    Returns the gradients in torch's layout: ``w_in, bias_in, w_rec, alpha, rho, w_out, bias_out, alpha_out``.
    """
    n_parts, dtype = numba.get_num_threads(), x.dtype
    n_in, n_hidden, n_out = x.shape[2], w_rec.shape[0], w_out.shape[0]
    parts = dict(d_w_in_t=(n_in, n_hidden), d_bias_in=(n_hidden,), d_w_rec_t=(n_hidden, n_hidden), d_alpha=(n_hidden,),
                 d_rho=(n_hidden,), d_w_out_t=(n_hidden, n_out), d_bias_out=(n_out,), d_alpha_out=(n_out,))
    grads = {name: np.zeros((n_parts,) + shape, dtype) for name, shape in parts.items()}
    _backward(x, w_rec, w_out, alpha, rho, dtype.type(b0), dtype.type(beta), alpha_out, saved["u"], saved["b"],
              saved["s"], saved["current"], saved["m"], saved["co"], surrogate, packed_offsets(saved["steps"]), g_out,
              saved["steps"], np.argsort(-saved["steps"], kind="stable"), **grads)  # longest first, dealt out
    total = {name: value.sum(0) for name, value in grads.items()}
    return dict(w_in=total["d_w_in_t"].T, bias_in=total["d_bias_in"], w_rec=total["d_w_rec_t"].T,
                alpha=total["d_alpha"], rho=total["d_rho"], w_out=total["d_w_out_t"].T,
                bias_out=total["d_bias_out"], alpha_out=total["d_alpha_out"])
