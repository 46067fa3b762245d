"""Compiled (numba) forward and backward passes of an ALIF network of any depth, sample by sample.

Why compiled: on a CPU, the torch loop of :mod:`rc_snn.training.bptt` pays a fixed cost per step
(dispatching a few dozen small tensor operations per layer, ~0.5 ms per step forward + backward
whatever the number of rows) that does not shrink when samples leave the batch at their decision
step, so it capped the saving of rank coding. Here nothing is paid per step but arithmetic:

- samples are independent given the weights (their own state, their own t*), so each sample runs
  its steps 0..t* on its own, in parallel over samples, and its backward pass from t* down to 0;
- the projections of spikes and input events are accumulates: ``W s`` is the sum of the columns
  of ``W`` where ``s != 0`` (as on neuromorphic hardware), and so are the weight gradients
  ``g s^T``; only ``g_I W_rec``, ``g_I W_in`` (into the layer below) and ``g_co W_o`` in the
  backward pass are dense.

The equations are those of :func:`rc_snn.neuron.alif.alif_step` and
:func:`~rc_snn.neuron.alif.readout_step` (forward) and of :mod:`rc_snn.training.bptt`'s docstring
(backward), written out here per neuron because numba compiles loops, not tensor expressions; the
decision rule is :func:`rc_snn.training.early_exit.crossed_threshold`'s. ``tests/test_bptt.py``
runs one-, two- and three-layer networks through these kernels and checks outputs, decisions and
every gradient against autograd in float64. The surrogate derivative is not in here: the caller
evaluates it with each layer's spike function, once per sequence, and passes it in.

Layout: layer l has ``sizes[l]`` neurons; per-layer arrays are padded to the widest layer ``H``
(the padding is never read). States are ``[batch, steps + 1, layers, H]`` with index 0 the resting
state, so step t's state is at t + 1 and its predecessor at t; currents are
``[batch, steps, layers, H]``. The first layer's input weights are apart (``[inputs, sizes[0]]``,
transposed); the deeper layers' are stacked in ``w_deep [layers - 1, H, H]``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numba
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _forward(x, sizes, w_in_t, w_deep_t, bias_in, w_rec_t, alpha, rho, b0, beta, w_out_t, bias_out, alpha_out,
             membrane, decision_threshold, u, b, s, current, m, co, steps, crossed, finite, spike_counts):  # pragma: no cover
    batch, n_steps, n_in = x.shape
    n_layers, n_out = sizes.shape[0], alpha_out.shape[0]
    top = n_layers - 1
    one = alpha.dtype.type(1.0)
    for r in prange(batch):
        for t in range(n_steps):
            for l in range(n_layers):
                n_h = sizes[l]
                cur = current[r, t, l]
                cur[:n_h] = bias_in[l, :n_h]
                if l == 0:
                    for j in range(n_in):  # W_in x[t]: accumulate the rows of W_in^T of the input events
                        xj = x[r, t, j]
                        if xj != 0:
                            if not math.isfinite(xj):
                                finite[r] = False
                            for h in range(n_h):
                                cur[h] += xj * w_in_t[j, h]
                else:
                    for k in range(sizes[l - 1]):  # W_in s_{l-1}[t]: the spikes of the layer below, this step
                        sk = s[r, t + 1, l - 1, k]
                        if sk != 0:
                            for h in range(n_h):
                                cur[h] += sk * w_deep_t[l - 1, k, h]
                for k in range(n_h):  # + W_rec s[t-1]
                    sk = s[r, t, l, k]
                    if sk != 0:
                        for h in range(n_h):
                            cur[h] += sk * w_rec_t[l, k, h]
                for h in range(n_h):
                    s_prev = s[r, t, l, h]
                    b_new = rho[l, h] * b[r, t, l, h] + (one - rho[l, h]) * s_prev
                    adaptive_threshold = b0[l] + beta[l] * b_new
                    u_new = alpha[l, h] * u[r, t, l, h] + (one - alpha[l, h]) * cur[h] - adaptive_threshold * s_prev
                    b[r, t + 1, l, h] = b_new
                    u[r, t + 1, l, h] = u_new
                    if u_new - adaptive_threshold > 0:
                        s[r, t + 1, l, h] = one
                        spike_counts[r, l] += 1
                    else:
                        s[r, t + 1, l, h] = 0
            z_max = -np.inf
            if membrane:  # the top layer is the output: z[t] = u_top[t]
                for c in range(n_out):
                    z = u[r, t + 1, top, c]
                    m[r, t + 1, c] = z
                    z_max = max(z_max, z)
            else:
                out = co[r, t]
                out[:] = bias_out
                for k in range(sizes[top]):  # co[t] = W_o s_top[t] + bias_o
                    sk = s[r, t + 1, top, k]
                    if sk != 0:
                        for c in range(n_out):
                            out[c] += sk * w_out_t[k, c]
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


@njit(inline="always")
def _add_vector_matrix(out, g, w, n_rows, n_cols):  # pragma: no cover - compiled
    """``out[:n_cols] += g[:n_rows] @ w[:n_rows, :n_cols]``, eight rows of ``w`` per pass over ``out``.

    The dense products of the backward pass (``g_I W_rec``, ``g_I W_in``, ``g_co W_o``): one row at a
    time, every multiply-add also loads and stores ``out[k]``; eight at a time, once per eight. That
    halves their time (measured: 41 -> 21 ms for 6,400 products of 256 x 256 on 2 cores; BLAS on the
    same products stacked into one matrix: 9.5 ms, but the steps of a sample are sequential).
    """
    h = 0
    while h + 8 <= n_rows:
        g0, g1, g2, g3, g4, g5, g6, g7 = g[h], g[h + 1], g[h + 2], g[h + 3], g[h + 4], g[h + 5], g[h + 6], g[h + 7]
        w0, w1, w2, w3, w4, w5, w6, w7 = w[h], w[h + 1], w[h + 2], w[h + 3], w[h + 4], w[h + 5], w[h + 6], w[h + 7]
        for k in range(n_cols):
            out[k] += (g0 * w0[k] + g1 * w1[k] + g2 * w2[k] + g3 * w3[k]) + (
                g4 * w4[k] + g5 * w5[k] + g6 * w6[k] + g7 * w7[k])
        h += 8
    while h < n_rows:
        gh, wh = g[h], w[h]
        for k in range(n_cols):
            out[k] += gh * wh[k]
        h += 1


@njit(parallel=True, cache=True)
def _backward(x, sizes, w_deep, w_rec, w_out, alpha, rho, b0, beta, alpha_out, membrane, u, b, s, current, m, co,
              surrogate, first, g_out, g_spikes, steps, order, d_w_in_t, d_w_deep_t, d_bias_in, d_w_rec_t, d_alpha, d_rho, d_w_out_t,
              d_bias_out, d_alpha_out):  # pragma: no cover - compiled
    n_layers, width = alpha.shape
    n_out, n_in, top = alpha_out.shape[0], x.shape[2], n_layers - 1
    n_parts = d_bias_in.shape[0]  # one set of weight gradients per part, summed by the caller
    one = alpha.dtype.type(1.0)
    # The four sparse weight-gradient accumulates below (W_o, W_rec, W_in, the deeper W_in) are
    # written out, not shared through an inline helper like _add_vector_matrix: with the helper the
    # kernel ran 30-40 % slower (measured at 1 and 2 layers).
    for p in prange(n_parts):
        d_w_in_t[p], d_w_deep_t[p], d_w_rec_t[p], d_w_out_t[p] = 0, 0, 0, 0  # each thread zeroes its own sums
        d_bias_in[p], d_alpha[p], d_rho[p], d_bias_out[p], d_alpha_out[p] = 0, 0, 0, 0, 0
        g_s, g_i, g_below = np.empty(width, u.dtype), np.empty(width, u.dtype), np.empty(width, u.dtype)
        g_u, g_b = np.empty(width, u.dtype), np.empty(width, u.dtype)
        carry_s, carry_u, carry_b = (np.empty((n_layers, width), u.dtype), np.empty((n_layers, width), u.dtype),
                                     np.empty((n_layers, width), u.dtype))
        carry_m, g_co = np.empty(n_out, u.dtype), np.empty(n_out, u.dtype)
        for r in order[p::n_parts]:
            carry_s[:], carry_u[:], carry_b[:], carry_m[:] = 0, 0, 0, 0  # nothing after t*
            for t in range(steps[r], -1, -1):
                g_below[:sizes[top]] = 0  # the gradient from above, into the top layer
                if not membrane:
                    for c in range(n_out):  # readout: g_m, g_co, alpha_o
                        g_m = g_out[r, t, c] + carry_m[c]
                        g_co[c] = (one - alpha_out[c]) * g_m
                        d_alpha_out[p, c] += g_m * (m[r, t, c] - co[r, t, c])
                        d_bias_out[p, c] += g_co[c]
                        carry_m[c] = alpha_out[c] * g_m
                    _add_vector_matrix(g_below, g_co, w_out, n_out, sizes[top])  # g_co W_o
                    for k in range(sizes[top]):  # dW_o^T += s_top[t] g_co^T
                        sk = s[r, t + 1, top, k]
                        if sk != 0:
                            for c in range(n_out):
                                d_w_out_t[p, k, c] += sk * g_co[c]
                for l in range(top, -1, -1):
                    n_h = sizes[l]
                    g_n = g_spikes[r, l]  # the spike count's gradient: d count / d s[t] = 1 up to t*
                    for h in range(n_h):  # g_s[t] = (from above) + (carried from t+1) + g_n
                        g_s[h] = g_below[h] + carry_s[l, h] + g_n
                    # One step of the neurons, on contiguous rows (so that the loops vectorise), then
                    # the parameter gradients in a loop of their own.
                    s_prev, sigma = s[r, t, l], surrogate[first[r] + t, l]
                    b_prev, b_new, a_l, r_l = b[r, t, l], b[r, t + 1, l], alpha[l], rho[l]
                    c_u, c_b, c_s = carry_u[l], carry_b[l], carry_s[l]
                    read = membrane and l == top  # the output layer read by its membrane: dL/du[t] enters here
                    for h in range(n_h):
                        g_v = sigma[h] * g_s[h]
                        g_u[h] = g_v + c_u[h] + (g_out[r, t, h] if read else 0)
                        g_b[h] = beta[l] * (-g_v - s_prev[h] * g_u[h]) + c_b[h]
                        g_i[h] = (one - a_l[h]) * g_u[h]
                        c_u[h] = a_l[h] * g_u[h]
                        c_b[h] = r_l[h] * g_b[h]
                        c_s[h] = (one - r_l[h]) * g_b[h] - (b0[l] + beta[l] * b_new[h]) * g_u[h]
                    u_prev, i_t = u[r, t, l], current[r, t, l]
                    dd_alpha, dd_rho, dd_bias = d_alpha[p, l], d_rho[p, l], d_bias_in[p, l]
                    for h in range(n_h):
                        dd_alpha[h] += g_u[h] * (u_prev[h] - i_t[h])
                        dd_rho[h] += g_b[h] * (b_prev[h] - s_prev[h])
                        dd_bias[h] += g_i[h]
                    _add_vector_matrix(carry_s[l], g_i, w_rec[l], n_h, n_h)  # carry_s += g_I W_rec
                    for k in range(n_h):  # dW_rec^T += s[t-1] g_I^T
                        sk = s[r, t, l, k]
                        if sk != 0:
                            for h in range(n_h):
                                d_w_rec_t[p, l, k, h] += sk * g_i[h]
                    if l == 0:
                        for j in range(n_in):  # dW_in^T += x[t] g_I^T
                            xj = x[r, t, j]
                            if xj != 0:
                                for h in range(n_h):
                                    d_w_in_t[p, j, h] += xj * g_i[h]
                    else:
                        n_below = sizes[l - 1]
                        g_below[:n_below] = 0  # g_I W_in: into the layer below, this step
                        _add_vector_matrix(g_below, g_i, w_deep[l - 1], n_h, n_below)
                        for k in range(n_below):  # dW_in^T += s_{l-1}[t] g_I^T
                            sk = s[r, t + 1, l - 1, k]
                            if sk != 0:
                                for h in range(n_h):
                                    d_w_deep_t[p, l - 1, k, h] += sk * g_i[h]


def _stack(arrays: Sequence[np.ndarray], shape: tuple, dtype) -> np.ndarray:
    """Arrays of different sizes in one zero-padded array of ``(len(arrays),) + shape``."""
    stacked = np.zeros((len(arrays),) + shape, dtype)
    for i, array in enumerate(arrays):
        stacked[(i,) + tuple(slice(0, n) for n in array.shape)] = array
    return stacked


class Network:
    """The weights of an ALIF network as the kernels take them (torch's ``[out, in]`` layout in).

    ``layers``: per layer ``(weights, b0, beta)``, ``weights`` an :class:`rc_snn.neuron.alif.ALIFWeights` of
    numpy arrays; ``readout``: the leaky
    readout's ``(w_out, bias_out, alpha_out)``, or None when the top layer is the output, read by its
    membrane (:class:`rc_snn.neuron.layers.AdaptiveReadout`: an ALIF layer with ``w_rec = 0``).
    """

    def __init__(self, layers: Sequence[tuple], readout: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]):
        weights = [w for w, _, _ in layers]
        dtype = weights[0].w_in.dtype
        self.membrane = readout is None
        if readout is None:
            n_out = weights[-1].w_rec.shape[0]
            readout = (np.zeros((n_out, n_out), dtype), np.zeros(n_out, dtype), np.zeros(n_out, dtype))
        w_out, bias_out, alpha_out = readout
        self.sizes = np.array([w.w_rec.shape[0] for w in weights], np.int64)
        width = int(self.sizes.max())
        self.n_inputs = weights[0].w_in.shape[1]
        self.w_in_t = np.ascontiguousarray(weights[0].w_in.T)
        self.w_deep = _stack([w.w_in for w in weights[1:]], (width, width), dtype)
        self.w_deep_t = np.ascontiguousarray(self.w_deep.transpose(0, 2, 1))
        self.w_rec = _stack([w.w_rec for w in weights], (width, width), dtype)
        self.w_rec_t = np.ascontiguousarray(self.w_rec.transpose(0, 2, 1))
        self.bias_in, self.alpha, self.rho = (_stack([getattr(w, name) for w in weights], (width,), dtype)
                                              for name in ("bias", "alpha", "rho"))
        self.b0, self.beta = (np.array(values, dtype) for values in zip(*[(b0, beta) for _, b0, beta in layers]))
        self.w_out, self.w_out_t = w_out, np.ascontiguousarray(w_out.T)
        self.bias_out, self.alpha_out = bias_out, alpha_out

    @property
    def width(self) -> int:
        return self.alpha.shape[1]


def forward(x: np.ndarray, net: Network, decision_threshold: float | None) -> dict:
    """Run every sample of ``x [batch, steps, inputs]`` to its decision step (the last step if no threshold).

    Returns the states ``u, b, s [batch, steps + 1, layers, H]``, ``current [batch, steps, layers, H]``,
    readout ``m [batch, steps + 1, classes]`` and ``co``, ``steps`` (t*), ``crossed``, ``finite``
    (False where an input read was NaN or inf) and ``spike_counts [batch, layers]`` (each sample's
    spikes up to its t*). Entries past a sample's t* are undefined (never computed).
    """
    batch, n_steps = x.shape[:2]
    layers, n_out, dtype = (len(net.sizes), net.width), net.alpha_out.shape[0], x.dtype
    result = dict(u=np.empty((batch, n_steps + 1) + layers, dtype), b=np.empty((batch, n_steps + 1) + layers, dtype),
                  s=np.empty((batch, n_steps + 1) + layers, dtype), current=np.empty((batch, n_steps) + layers, dtype),
                  m=np.empty((batch, n_steps + 1, n_out), dtype), co=np.empty((batch, n_steps, n_out), dtype),
                  steps=np.zeros(batch, np.int64), crossed=np.zeros(batch, np.bool_), finite=np.ones(batch, np.bool_),
                  spike_counts=np.zeros((batch, len(net.sizes)), dtype))
    for name in ("u", "b", "s", "m"):
        result[name][:, 0] = 0  # the resting state
    with numba.parallel_chunksize(1):  # samples end at their own t*: hand them out one by one
        _forward(x, net.sizes, net.w_in_t, net.w_deep_t, net.bias_in, net.w_rec_t, net.alpha, net.rho, net.b0,
                 net.beta, net.w_out_t, net.bias_out, net.alpha_out, net.membrane,
                 -1.0 if decision_threshold is None else float(decision_threshold), **result)
    return result


def packed_offsets(steps: np.ndarray) -> np.ndarray:
    """Where each sample's steps 0..t* start in a packed ``[sum(t* + 1), ...]`` array (samples in order)."""
    return np.concatenate(([0], np.cumsum(steps + 1)[:-1])).astype(np.int64)


def backward(x: np.ndarray, net: Network, saved: dict, surrogate: np.ndarray, g_out: np.ndarray,
             g_spikes: np.ndarray) -> dict:
    """Gradients of every parameter from ``g_out [batch, steps, classes]`` (dL/dm[t]; read up to t* only)
    and ``g_spikes [batch, layers]``, the gradient of each sample's spike count up to t* per layer.

    ``saved`` is :func:`forward`'s result; ``surrogate [sum(t* + 1), layers, H]`` is sigma'(u[t] - B[t])
    at the steps computed, packed sample by sample (:func:`packed_offsets`).
    Returns, in torch's layout, per layer ``(w_in, bias_in, w_rec, alpha, rho)`` under ``"layers"``,
    and ``w_out, bias_out, alpha_out``, each a new array; ``w_in`` as a transposed view of an
    ``[inputs, H]`` array, the memory layout of :class:`~rc_snn.neuron.layers.ALIFLayer`'s input
    weights (their gradient is then taken as it is, without a copy).
    """
    n_parts, dtype = numba.get_num_threads(), x.dtype
    n_layers, width, n_out = len(net.sizes), net.width, net.alpha_out.shape[0]
    parts = dict(d_w_in_t=(net.n_inputs, int(net.sizes[0])), d_w_deep_t=net.w_deep.shape, d_bias_in=(n_layers, width),
                 d_w_rec_t=(n_layers, width, width), d_alpha=(n_layers, width), d_rho=(n_layers, width),
                 d_w_out_t=(int(net.sizes[-1]), n_out), d_bias_out=(n_out,), d_alpha_out=(n_out,))
    grads = {name: _scratch(name, (n_parts,) + shape, dtype) for name, shape in parts.items()}
    _backward(x, net.sizes, net.w_deep, net.w_rec, net.w_out, net.alpha, net.rho, net.b0, net.beta, net.alpha_out,
              net.membrane, saved["u"], saved["b"], saved["s"], saved["current"], saved["m"], saved["co"], surrogate,
              packed_offsets(saved["steps"]), g_out, g_spikes, saved["steps"], np.argsort(-saved["steps"], kind="stable"),
              **grads)  # longest first, dealt out

    def total(name, *index, transpose=False):  # the parts' sum in a new array (a matrix: in torch's layout)
        parts = grads[name][(slice(None),) + index]
        if transpose:
            summed = np.empty(parts.shape[:0:-1], dtype)
            _sum_parts_transposed(parts, summed)
            return summed
        summed = parts[0].copy() if len(parts) == 1 else parts[0] + parts[1]
        for part in parts[2:]:
            summed += part
        return summed

    layers = []
    for l, n_h in enumerate(net.sizes):
        n_below = net.n_inputs if l == 0 else net.sizes[l - 1]
        w_in = (total("d_w_in_t") if l == 0 else total("d_w_deep_t", l - 1, slice(0, n_below), slice(0, n_h))).T
        layers.append((w_in, total("d_bias_in", l, slice(0, n_h)),
                       total("d_w_rec_t", l, slice(0, n_h), slice(0, n_h), transpose=True),
                       total("d_alpha", l, slice(0, n_h)), total("d_rho", l, slice(0, n_h))))
    return dict(layers=layers, w_out=total("d_w_out_t", transpose=True), bias_out=total("d_bias_out"),
                alpha_out=total("d_alpha_out"))


_scratch_arrays: dict = {}  # name -> the array last handed out by _scratch


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """An array for the backward kernel's per-thread sums (which it zeroes), in the memory of the last
    call's when the shape and dtype are the same: the kernel then writes to pages already mapped.
    Fresh memory costs a page fault per 4 KiB page on first touch, taken by the kernel's threads at
    once: measured on the real-data recipe (2 cores, a virtual machine), the backward kernel took
    18 ms per batch of 64 on fresh memory and 7 ms on reused. One backward pass at a time per process
    (autograd's, on one thread); :func:`backward` returns its sums in new arrays."""
    array = _scratch_arrays.get(name)
    if array is None or array.shape != shape or array.dtype != dtype:
        array = _scratch_arrays[name] = np.empty(shape, dtype)
    return array


@njit(parallel=True, cache=True)
def _sum_parts_transposed(parts, out):  # pragma: no cover - compiled
    """``out[c, r] = parts[0, r, c] + parts[1, r, c] + ...``, added in that order, in tiles of 32 x 32
    so that the transposed writes stay in the cache: the recurrent and readout weights' gradients in
    torch's layout in one pass (summing in place, then copying transposed: 0.8 against 0.6 ms on a
    2,312 x 256 matrix of two parts)."""
    n_parts, n_rows, n_cols = parts.shape
    for tile in prange((n_rows + 31) // 32):
        r_end = min(tile * 32 + 32, n_rows)
        for c_start in range(0, n_cols, 32):
            for r in range(tile * 32, r_end):
                for c in range(c_start, min(c_start + 32, n_cols)):
                    value = parts[0, r, c]
                    for p in range(1, n_parts):
                        value += parts[p, r, c]
                    out[c, r] = value
