"""BPTT of the ALIF network with a hand-written backward pass, for rank-coded and full training.

Why by hand: on a CPU a step of the ALIF network at training sizes costs mostly per-operation
overhead, not arithmetic: with autograd every operation of every step is recorded as a graph node
and replayed backward, and at batch 64 x 128 neurons each costs more in dispatch than in
arithmetic. That overhead is the same for 64 rows or for 3, so it hid the saving of rank coding
(rows leave the batch at their decision step). Here the forward
pass runs under ``no_grad``, calling the same step functions as the model
(:func:`rc_snn.neuron.alif.alif_step`, :func:`~rc_snn.neuron.alif.readout_step`), and the backward
pass is the loop below. No library does this: snnTorch and Norse differentiate through autograd.

Backward pass, per step t from the last down to 0, for the rows still running at t (each row
enters at its own t*), with ``v = u[t] - B[t]`` and ``sigma'`` the surrogate derivative; ``g_x`` is
the gradient of the loss with respect to x, ``g_n`` that of each sample's spike count up to t*
(the activity penalty; ``d n / d s[t] = 1`` for ``t <= t*``), and a term "(t+1)" is carried from
the step after::

    g_m[t]  = dL/dm[t] + alpha_o * g_m[t+1]
    g_co[t] = (1 - alpha_o) * g_m[t]                          co[t] = W_o s_L[t] + bias_o
    g_s[t]  = (g_co[t] W_o  or  g_I^{l+1}[t] W_in^{l+1})      from the readout or the layer above
              + g_I[t+1] W_rec + (1 - rho) g_b[t+1] - B[t+1] g_u[t+1] + g_n
    g_v     = sigma'(v) * g_s[t]
    g_u[t]  = g_v + alpha * g_u[t+1]
    g_b[t]  = beta * (-g_v - s[t-1] * g_u[t]) + rho * g_b[t+1]
    g_I[t]  = (1 - alpha) * g_u[t]
    dL/dalpha = sum g_u[t] (u[t-1] - I[t]);   dL/drho = sum g_b[t] (b[t-1] - s[t-1])
    dL/dalpha_o = sum g_m[t] (m[t-1] - co[t]);  dL/dW = sum over steps and rows of g^T (input)

The weight gradients are taken once per sequence, as one matmul over every (row, step) computed.
Tested against autograd through the model's own ``forward`` and
:func:`rc_snn.training.early_exit.run_until_decision`, in float64, for one, two and three layers
(``tests/test_bptt.py``, which runs every case through :mod:`.compiled` too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor

from ..models import ALIFRSNN
from ..neuron import alif as F
from ..neuron.state import select_rows
from ..neuron.surrogate import surrogate_derivative, surrogate_vjp
from ..neuron.validation import check_sequence
from . import compiled as compiled_engine
from .early_exit import Decision, ExitTracker, crossed_threshold, mean_entropy_until


@dataclass(frozen=True)
class _Spec:
    """The constants of one call: per layer ``(b0, beta, spike_fn)``; the decision threshold; whether the
    last of ``layers`` is an adaptive output layer read by its membrane (the compiled engine only)."""

    layers: Tuple[tuple, ...]
    decision_threshold: Optional[float]
    chunk_size: int
    membrane_readout: bool = False


@dataclass
class _Step:
    """What the backward pass needs of one forward step (rows: those running at this step)."""

    rows: Tensor  # the rows' indices in the batch
    chunk: int  # index of the input chunk this step belongs to ...
    offset: int  # ... and its place in that chunk
    positions: Optional[Tensor]  # the rows' positions among the chunk's rows; None: all of them
    prev: List[F.ALIFState]  # per layer, state at t-1
    new: List[F.ALIFState]  # per layer, state at t
    currents: List[Tensor]  # per layer, I[t]
    m_prev: Tensor
    readout_current: Tensor  # co[t]
    keep: Optional[Tensor] = None  # rows kept after this step (positions among ``rows``); None: all


def _unflatten(params, n_layers: int) -> Tuple[List[F.ALIFWeights], tuple]:
    """The flat tensors an autograd Function takes, back as per-layer :class:`~rc_snn.neuron.alif.ALIFWeights`
    and the readout's ``(w_out, bias_out, alpha_out)`` (:func:`run_alif` flattens them in this order)."""
    size = len(F.ALIFWeights._fields)
    return [F.ALIFWeights(*params[size * l:size * (l + 1)]) for l in range(n_layers)], tuple(params[size * n_layers:])


def _expand_rows(carry: Tensor, keep: Tensor, n_rows: int) -> Tensor:
    """A carried gradient over the kept rows, placed among ``n_rows`` rows (zeros for rows that left)."""
    return carry.new_zeros((n_rows,) + carry.shape[1:]).index_copy_(0, keep, carry)


def _hold_decisions(m_seq: Tensor, decision_steps: Tensor) -> Tensor:
    """Outputs ``[steps, batch, classes]`` with each row's z[t*] held after its t*, so z[-1] is z[t*] for every row."""
    held = torch.minimum(torch.arange(m_seq.shape[0], device=m_seq.device)[:, None], decision_steps[None, :])
    return m_seq.gather(0, held[..., None].expand(-1, -1, m_seq.shape[-1]))


def _readout_grad(grad_outputs: Tensor, decision_steps: Tensor) -> Tensor:
    """dL/dm[t] from the gradient of :func:`_hold_decisions`' outputs: m[t*] collects every held z[t >= t*]."""
    every_row = torch.arange(decision_steps.numel(), device=decision_steps.device)
    injected = grad_outputs.clone()
    tail = grad_outputs.flip(0).cumsum(0).flip(0)
    injected[decision_steps, every_row] = tail[decision_steps, every_row]
    return injected


def _first_layer_weight_grad(g_currents: List[Tensor], record: List[_Step], chunk_inputs: List[Tensor]) -> Tensor:
    """``dL/dW_in`` of the first layer: one matmul per input chunk, on the chunk's inputs as they are.

    A row that decided inside a chunk contributes zeros for the chunk's later steps (the waste is
    at most a chunk, as in the forward projection); gathering the wide input rows step by step
    instead would copy the whole input once more.
    """
    padded = [g_currents[0].new_zeros(inputs.shape[:2] + g_currents[0].shape[1:]) for inputs in chunk_inputs]
    for step, g in zip(record, g_currents):
        if step.positions is None:
            padded[step.chunk][step.offset] = g
        else:
            padded[step.chunk][step.offset, step.positions] = g
    return sum(g.flatten(0, 1).T @ inputs.flatten(0, 1) for g, inputs in zip(padded, chunk_inputs))


class _ALIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, spec: _Spec, *params: Tensor):
        n_layers = len(spec.layers)
        layer_params, (w_out, bias_out, alpha_out) = _unflatten(params, n_layers)
        n_steps, batch = x_seq.shape[:2]
        state = [F.alif_initial_state(batch, w_rec.shape[0], device=x_seq.device, dtype=x_seq.dtype)
                 for w_rec in (p.w_rec for p in layer_params)]
        m = x_seq.new_zeros(batch, w_out.shape[0])
        m_raw = x_seq.new_zeros(n_steps, batch, w_out.shape[0])
        spike_counts = x_seq.new_zeros(batch, n_layers)  # per sample and layer, up to t*
        exits = ExitTracker(batch, n_steps, device=x_seq.device)
        record: List[_Step] = []
        chunk_inputs: List[Tensor] = []  # the first layer's input, per chunk, for the rows then running
        w_in0, bias_in0 = layer_params[0].w_in, layer_params[0].bias

        for start in range(0, n_steps, spec.chunk_size):
            inputs = x_seq[start:start + spec.chunk_size]
            if exits.running.numel() < batch:
                inputs = inputs[:, exits.running]
            chunk_inputs.append(inputs)
            chunk_currents, positions = nnf.linear(inputs, w_in0, bias_in0), None
            for offset in range(inputs.shape[0]):
                t = start + offset
                current = chunk_currents[offset] if positions is None else chunk_currents[offset, positions]
                new, currents = [], []
                for l, ((w_in, bias_in, w_rec, alpha, rho), (b0, beta, spike_fn)) in enumerate(
                        zip(layer_params, spec.layers)):
                    if l > 0:
                        current = nnf.linear(new[-1].s, w_in, bias_in)
                    current = current + nnf.linear(state[l].s, w_rec)
                    new.append(F.alif_step(current, state[l], alpha, rho, b0, beta, spike_fn))
                    currents.append(current)
                readout_current = nnf.linear(new[-1].s, w_out, bias_out)
                m_new = F.readout_step(readout_current, m, alpha_out)
                rows = exits.running
                spike_counts.index_add_(0, rows, torch.stack([layer_state.s.sum(-1) for layer_state in new], -1))
                step = _Step(rows, len(chunk_inputs) - 1, offset, positions, state, new, currents, m, readout_current)
                record.append(step)
                if rows.numel() == batch:
                    m_raw[t] = m_new
                else:
                    m_raw[t, rows] = m_new
                state, m = new, m_new
                if spec.decision_threshold is None:  # full sequence: every row runs to the last step
                    if t < n_steps - 1:
                        continue
                    crossing = torch.zeros(rows.numel(), dtype=torch.bool, device=x_seq.device)
                else:
                    crossing = crossed_threshold(m_new, spec.decision_threshold)
                if exits.update(t, crossing) is None:
                    continue
                step.keep = exits.keep
                m = m[step.keep]
                state = [select_rows(s, step.keep) for s in state]
                positions = step.keep if positions is None else positions[step.keep]
                if exits.done:
                    break
            if exits.done:
                break

        decision_steps, crossed = exits.steps, exits.crossed
        outputs = _hold_decisions(m_raw[:len(record)], decision_steps)
        ctx.spec, ctx.record, ctx.chunk_inputs, ctx.decision_steps = spec, record, chunk_inputs, decision_steps
        ctx.save_for_backward(*params)
        ctx.mark_non_differentiable(decision_steps, crossed)
        return outputs, spike_counts, decision_steps, crossed

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_spike_counts: Optional[Tensor], _grad_steps, _grad_crossed):
        spec, record, decision_steps = ctx.spec, ctx.record, ctx.decision_steps
        params = ctx.saved_tensors
        n_layers = len(spec.layers)
        layer_params, (w_out, _, alpha_out) = _unflatten(params, n_layers)

        injected = _readout_grad(grad_outputs, decision_steps)

        # Carried from step t+1 (none after the last step, where every remaining row decided).
        g_m = grad_outputs.new_zeros(0, w_out.shape[0])
        g_s = [grad_outputs.new_zeros(0, p.w_rec.shape[0]) for p in layer_params]  # to s[t]
        g_u = [torch.zeros_like(g) for g in g_s]  # alpha * g_u[t+1]
        g_b = [torch.zeros_like(g) for g in g_s]  # rho * g_b[t+1]
        g_alpha = [torch.zeros_like(p.alpha) for p in layer_params]
        g_rho = [torch.zeros_like(p.rho) for p in layer_params]
        g_alpha_out = torch.zeros_like(alpha_out)
        g_currents: List[List[Tensor]] = [[] for _ in range(n_layers)]
        g_readout: List[Tensor] = []

        # Per-sequence constants as tensors: an op with a Python float costs about twice one between
        # tensors at these sizes (the float is wrapped and converted each time; measured).
        keep_out = 1.0 - alpha_out
        constants = [(1.0 - alpha, 1.0 - rho, alpha.new_tensor(b0), alpha.new_tensor(beta))
                     for (_, _, _, alpha, rho), (b0, beta, _) in zip(layer_params, spec.layers)]

        for t in reversed(range(len(record))):
            step = record[t]
            if step.keep is not None:  # rows that decided at this step enter with zero carries
                n_rows = step.rows.numel()
                g_m = _expand_rows(g_m, step.keep, n_rows)
                g_s = [_expand_rows(g, step.keep, n_rows) for g in g_s]
                g_u = [_expand_rows(g, step.keep, n_rows) for g in g_u]
                g_b = [_expand_rows(g, step.keep, n_rows) for g in g_b]
            g_m = injected[t, step.rows] + g_m
            g_co = keep_out * g_m
            g_alpha_out += (g_m * (step.m_prev - step.readout_current)).sum(0)
            g_readout.append(g_co)
            g_from_above = g_co @ w_out
            g_spikes = None if grad_spike_counts is None else grad_spike_counts[step.rows]  # d(count)/ds[t] = 1
            for l in reversed(range(n_layers)):
                w_in, _, w_rec, alpha, rho = layer_params[l]  # an ALIFWeights
                spike_fn = spec.layers[l][2]
                keep_in, keep_spike, b0, beta = constants[l]
                prev, new, current = step.prev[l], step.new[l], step.currents[l]
                threshold_b = F.adaptive_threshold(new.b, b0, beta)
                v = new.u - threshold_b
                g_to_s = g_from_above + g_s[l]
                if g_spikes is not None:
                    g_to_s = g_to_s + g_spikes[:, l, None]
                g_v = surrogate_vjp(spike_fn, v, g_to_s)
                g_u_t = g_v + g_u[l]
                g_b_t = beta * (-g_v - prev.s * g_u_t) + g_b[l]
                g_i = keep_in * g_u_t
                g_alpha[l] += (g_u_t * (prev.u - current)).sum(0)
                g_rho[l] += (g_b_t * (prev.b - prev.s)).sum(0)
                g_currents[l].append(g_i)
                g_s[l] = g_i @ w_rec + keep_spike * g_b_t - threshold_b * g_u_t
                g_u[l], g_b[l] = alpha * g_u_t, rho * g_b_t
                if l > 0:
                    g_from_above = g_i @ w_in
            g_m = alpha_out * g_m

        for grads in g_currents + [g_readout]:
            grads.reverse()  # to forward order, as in ``record``

        def weight_grad(grads: List[Tensor], inputs: List[Tensor]) -> Tensor:
            return torch.cat(grads).T @ torch.cat(inputs)

        grads = []
        for l in range(n_layers):
            if l == 0:
                w_in_grad = _first_layer_weight_grad(g_currents[0], record, ctx.chunk_inputs)
            else:
                w_in_grad = weight_grad(g_currents[l], [step.new[l - 1].s for step in record])
            grads += [w_in_grad, torch.cat(g_currents[l]).sum(0),
                      weight_grad(g_currents[l], [step.prev[l].s for step in record]), g_alpha[l], g_rho[l]]
        grads += [weight_grad(g_readout, [step.new[-1].s for step in record]), torch.cat(g_readout).sum(0),
                  g_alpha_out]
        del ctx.record, ctx.chunk_inputs
        return (None, None, *grads)


class _CompiledALIFSequence(torch.autograd.Function):
    """The same, on the CPU, through the compiled kernels of :mod:`rc_snn.training.compiled`."""

    @staticmethod
    def forward(ctx, x_seq: Tensor, spec: _Spec, *params: Tensor):
        x = x_seq.detach().numpy().transpose(1, 0, 2)  # a batch-first view, whatever the strides: never a copy
        weights, readout = _unflatten([p.detach().numpy() for p in params], len(spec.layers))  # views, any layout
        net = compiled_engine.Network([(w, b0, beta) for w, (b0, beta, _) in zip(weights, spec.layers)],
                                      None if spec.membrane_readout else readout)
        saved = compiled_engine.forward(x, net, spec.decision_threshold)
        if not saved["finite"].all():
            raise ValueError("expected finite values in x_seq; found NaN or inf")
        decision_steps, crossed = torch.from_numpy(saved["steps"]), torch.from_numpy(saved["crossed"])
        steps_simulated = int(decision_steps.max()) + 1
        m_seq = torch.from_numpy(saved["m"][:, 1:steps_simulated + 1]).transpose(0, 1)
        n_hidden = len(net.sizes) - 1 if spec.membrane_readout else len(net.sizes)  # output spikes go nowhere
        spike_counts = torch.from_numpy(saved["spike_counts"][:, :n_hidden])  # each sample's, up to its t*
        ctx.spec, ctx.x, ctx.saved, ctx.net = spec, x, saved, net
        ctx.mark_non_differentiable(decision_steps, crossed)
        return _hold_decisions(m_seq, decision_steps), spike_counts, decision_steps, crossed

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_spike_counts: Optional[Tensor], _grad_steps, _grad_crossed):
        saved, net = ctx.saved, ctx.net
        decision_steps = torch.from_numpy(saved["steps"])
        steps_simulated = grad_outputs.shape[0]
        g_out = _readout_grad(grad_outputs, decision_steps).transpose(0, 1).contiguous().numpy()
        # sigma'(u[t] - B[t]) by each layer's spike function, once for every step computed.
        computed = torch.arange(steps_simulated)[None, :] <= decision_steps[:, None]
        u, b = (torch.from_numpy(saved[name][:, 1:steps_simulated + 1])[computed] for name in ("u", "b"))
        surrogate = torch.zeros_like(u)  # [sum(t* + 1), layers, H]; the padding stays 0
        for l, ((b0, beta, spike_fn), n_h) in enumerate(zip(ctx.spec.layers, net.sizes)):
            v = u[:, l, :n_h] - F.adaptive_threshold(b[:, l, :n_h], b0, beta)
            surrogate[:, l, :n_h] = surrogate_derivative(spike_fn, v)
        g_spikes = np.zeros((g_out.shape[0], len(net.sizes)), g_out.dtype)
        if grad_spike_counts is not None:
            g_spikes[:, :grad_spike_counts.shape[1]] = grad_spike_counts.numpy()
        grads = compiled_engine.backward(ctx.x, net, saved, surrogate.numpy(), g_out, g_spikes)
        del ctx.x, ctx.saved, ctx.net
        layers = [F.ALIFWeights(*map(torch.from_numpy, layer)) for layer in grads["layers"]]  # new arrays: no copy
        readout = ()
        if ctx.spec.membrane_readout:
            layers[-1] = layers[-1]._replace(w_rec=None)  # the output layer's w_rec: a constant 0
        else:
            readout = tuple(torch.from_numpy(grads[n]) for n in ("w_out", "bias_out", "alpha_out"))
        return (None, None, *(g for layer in layers for g in layer), *readout)


def compiled_applies(model: ALIFRSNN, x_seq: Tensor) -> bool:
    """Whether :mod:`rc_snn.training.compiled` runs this model: CPU tensors, float32 or float64, one dtype."""
    tensors = [x_seq, *model.parameters()]
    return (all(t.device.type == "cpu" for t in tensors)
            and len({t.dtype for t in tensors}) == 1 and x_seq.dtype in (torch.float32, torch.float64))


def engine_for(model, x_seq: Tensor, backward: str) -> str:
    """The one place a training or evaluation step picks how an ALIF network runs: ``"compiled"`` (the
    kernels of :mod:`.compiled`, where :func:`compiled_applies`), ``"manual"`` (this module's torch
    loop, which runs the leaky readout only), or ``"autograd"`` (the model's own forward: asked for,
    another model, or an adaptive output layer off the CPU)."""
    if backward == "autograd" or not isinstance(model, ALIFRSNN):
        return "autograd"
    if backward == "compiled" and compiled_applies(model, x_seq):
        return "compiled"
    return "manual" if model.output_layer == "leaky" else "autograd"


def run_alif(
    model: ALIFRSNN, x_seq: Tensor, decision_threshold: Optional[float] = None, *, chunk_size: int = 16,
    track_entropy: bool = False, compiled: Optional[bool] = None,
) -> Tuple[Tensor, Decision]:
    """Run ``model`` on ``x_seq [time, batch, features]`` with the hand-written backward pass.

    With ``decision_threshold=None`` every sample runs to the last step and ``outputs`` equals
    ``model(x_seq)[0]``. With a threshold, each sample leaves the batch at its decision step t*
    (rule of :mod:`rc_snn.training.early_exit`) and the run stops at the batch's last decision;
    ``outputs`` ``[steps simulated, batch, classes]`` then holds each sample's z[t*] after its t*,
    so ``outputs[-1]`` is z[t*]. ``decision.spike_counts`` ``[batch, layers]`` are the spikes of each
    sample up to its t*, differentiable (the activity penalty of :mod:`rc_snn.training.losses`). The decision equals
    :func:`~rc_snn.training.early_exit.run_until_decision`'s, and so do the gradients (tested).

    ``compiled``: None runs the compiled kernels of :mod:`rc_snn.training.compiled` where they apply
    (:func:`compiled_applies`) and the torch loop elsewhere; True requires them; False is the torch
    loop (``chunk_size`` applies to it only).
    """
    if not isinstance(model, ALIFRSNN):
        raise TypeError(f"expected an ALIFRSNN (the hand-written BPTT is the ALIF network's); got {type(model).__name__}"
                        " (use rc_snn.training.early_exit.run_until_decision for other models)")
    use_kernel = compiled is not False and isinstance(x_seq, Tensor) and compiled_applies(model, x_seq)
    membrane = model.output_layer != "leaky"
    if membrane and not use_kernel:
        raise ValueError(f"the torch BPTT loop runs the leaky readout; a network with an {model.output_layer!r} output "
                         "layer runs in the compiled kernels (CPU, one float dtype) or with backward 'autograd'")
    check_sequence(x_seq, model.n_inputs, finite=not use_kernel)  # the kernels check the inputs they read
    if chunk_size < 1:
        raise ValueError(f"expected chunk_size >= 1; got {chunk_size}")
    readout = model.readout
    weights = [layer.weights() for layer in model.layers]
    neurons = [(layer.b0, layer.beta, layer.spike_fn) for layer in model.layers]
    if membrane:  # an ALIF layer without recurrence, on top
        weights.append(readout.weights())
        neurons.append((readout.b0, readout.beta, readout.spike_fn))
    params = [tensor for layer in weights for tensor in layer]  # flat, as _unflatten reads them
    if not membrane:
        params += [readout.linear.weight, readout.linear.bias, readout.decay()]
    spec = _Spec(tuple(neurons), decision_threshold, chunk_size, membrane)
    if compiled and not use_kernel:
        raise ValueError("the compiled ALIF kernels run on the CPU, in float32 or float64, with the input and"
                         f" parameters of one dtype; got input {x_seq.dtype} on {x_seq.device.type}")
    sequence = _CompiledALIFSequence if use_kernel else _ALIFSequence
    outputs, spike_counts, steps, crossed = sequence.apply(x_seq, spec, *params)

    mean_entropy = mean_entropy_until(outputs, steps) if track_entropy else None  # as in run_until_decision
    decision = Decision(logits=outputs[-1], steps=steps, crossed=crossed, mean_entropy=mean_entropy,
                        steps_simulated=outputs.shape[0], sample_steps=int(steps.sum()) + steps.numel(),
                        spike_counts=spike_counts)
    return outputs, decision
