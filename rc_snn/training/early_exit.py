"""Stepping a model until each sample decides (rank coding, Jeffares et al., ICLR 2022).

The decision rule, shared by training, evaluation and ``deploy`` (which implements it again in
numpy and Lava and is tested against this one)::

    p[t]  = softmax(z[t])                      z[t]: the model's output at step t (ALIF: readout m[t])
    t*    = min { t : max_c p[t]_c > decision_threshold }   (0-based; strict ">")
    t*    = T - 1 if no step crosses           (the sample is then read at its last step)
    y_hat = argmax_c z[t*]

A crossing at t = 0 is a genuine crossing (the paper's public sample code confuses it with "no
crossing"; here ``crossed`` tells them apart).

:func:`run_until_decision` is where the method's speed comes from: it steps the model one chunk
of input at a time, drops each sample from the batch as soon as it decides (no graph is built
past a sample's own t*), and stops when the last sample has decided. :class:`ExitTracker` is the
bookkeeping of who has left and when, shared with the hand-written BPTT of
:mod:`rc_snn.training.bptt`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from ..neuron.state import select_rows
from ..neuron.validation import check_sequence


def check_decision_threshold(value) -> float:
    """``value`` as a decision threshold in (0, 1]: a softmax probability (1 never exits early)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= 1:
        raise ValueError(f"expected a decision threshold 0 < p <= 1 (a softmax probability); got {value!r}")
    return float(value)


def crossed_threshold(logits: Tensor, decision_threshold: float) -> Tensor:
    """``max_c softmax(z)_c > decision_threshold`` over the last axis (bool, one per sample)."""
    return torch.softmax(logits, dim=-1).amax(dim=-1) > decision_threshold


def output_entropy(logits: Tensor) -> Tensor:
    """Entropy ``H(p) = -sum_c p_c log p_c`` of ``p = softmax(z)`` over the last axis, in nats."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


@dataclass(frozen=True)
class Decision:
    """Each sample's decision. Tensors are ``[batch]`` unless noted."""

    logits: Tensor  # [batch, classes], z[t*] (carries the graph in training)
    steps: Tensor  # t*, long
    crossed: Tensor  # bool: True if t* is a genuine crossing, False if read at the last step
    mean_entropy: Optional[Tensor] = None  # (1 / (t*+1)) sum_{t<=t*} H(p[t]); None unless tracked
    steps_simulated: int = 0  # length of the batch's forward pass (= max t* + 1)
    sample_steps: int = 0  # sum over samples of (t* + 1): the model steps actually computed
    spike_counts: Optional[Tensor] = None  # [batch, layers]: spikes up to t*, differentiable; None unless tracked

    @property
    def predictions(self) -> Tensor:
        return self.logits.argmax(dim=-1)


def mean_entropy_until(logits_seq: Tensor, steps: Tensor) -> Tensor:
    """``(1 / (t*+1)) sum_{t <= t*} H(softmax(z[t]))`` per sample from outputs ``[time, batch, classes]``."""
    upto = torch.arange(logits_seq.shape[0], device=steps.device)[:, None] <= steps[None, :]
    return (output_entropy(logits_seq) * upto).sum(0) / (steps + 1)


def select_decision(logits_seq: Tensor, decision_threshold: float) -> Decision:
    """Apply the decision rule to a full output sequence ``[time, batch, classes]``."""
    if logits_seq.dim() != 3:
        raise ValueError(f"expected logits of shape [time, batch, classes]; got {tuple(logits_seq.shape)}")
    n_steps = logits_seq.shape[0]
    crossing = crossed_threshold(logits_seq, decision_threshold)  # [time, batch]
    crossed = crossing.any(dim=0)
    first = crossing.to(torch.int8).argmax(dim=0)  # first True (argmax returns the first maximum)
    steps = torch.where(crossed, first, torch.full_like(first, n_steps - 1)).long()
    logits = logits_seq.gather(0, steps.view(1, -1, 1).expand(1, -1, logits_seq.shape[2])).squeeze(0)
    return Decision(logits=logits, steps=steps, crossed=crossed, steps_simulated=n_steps,
                    sample_steps=int(steps.sum()) + steps.numel())


def read_last_step(logits_seq: Tensor) -> Decision:
    """Read every sample at its last step (the full-sequence baseline's decision)."""
    n_steps, batch = logits_seq.shape[:2]
    logits = logits_seq[-1]
    return Decision(logits=logits, steps=torch.full((batch,), n_steps - 1, dtype=torch.long, device=logits.device),
                    crossed=torch.zeros(batch, dtype=torch.bool, device=logits.device),
                    steps_simulated=n_steps, sample_steps=n_steps * batch)


class ExitTracker:
    """Which rows of a batch are still running, and each row's decision step and crossing.

    A runner calls :meth:`update` after each step ``t`` with the running rows' crossings; rows that
    crossed (every row, at the last step) leave the batch. The runner then keeps its own per-row
    tensors with :attr:`keep`, the positions among the previous running rows that stay.
    """

    def __init__(self, batch: int, n_steps: int, device=None) -> None:
        self.n_steps = n_steps
        self.running = torch.arange(batch, device=device)  # batch indices of the rows still running
        self.steps = torch.full((batch,), n_steps - 1, dtype=torch.long, device=device)  # t*
        self.crossed = torch.zeros(batch, dtype=torch.bool, device=device)
        self.keep: Optional[Tensor] = None

    def update(self, t: int, crossing: Tensor) -> Optional[Tensor]:
        """Record the rows that finish at step ``t``; returns their mask over the running rows, or None.

        A row finishes where ``crossing`` is True, and every row finishes at the last step (its
        ``crossed`` stays as ``crossing`` says: False if it never crossed).
        """
        finished = crossing if t < self.n_steps - 1 else torch.ones_like(crossing)
        if not bool(finished.any()):
            return None
        rows = self.running[finished]
        self.steps[rows] = t
        self.crossed[rows] = crossing[finished]
        self.keep = (~finished).nonzero().squeeze(1)  # one index for every per-row tensor
        self.running = self.running[self.keep]
        return finished

    @property
    def done(self) -> bool:
        return self.running.numel() == 0


def run_until_decision(
    model: nn.Module,
    x_seq: Tensor,
    decision_threshold: float,
    *,
    chunk_size: int = 16,
    track_entropy: bool = False,
    track_spikes: bool = False,
) -> Decision:
    """Step ``model`` over ``x_seq [time, batch, features]`` until every sample has decided.

    The first layer's input projection is computed ``chunk_size`` steps at a time for the samples
    still running (one matmul per chunk); a sample leaves the batch at its t*, so the forward pass
    and its graph stop there. Equal to ``select_decision(model(x_seq)[0], decision_threshold)`` (tested).
    ``track_spikes`` also sums each sample's spikes up to t* per layer (``Decision.spike_counts``, with
    their graph), for a model whose state holds ``layers[l].s`` (the ALIF network).
    """
    check_sequence(x_seq, model.n_inputs)
    if chunk_size < 1:
        raise ValueError(f"expected chunk_size >= 1; got {chunk_size}")
    n_steps, batch = x_seq.shape[:2]
    state = model.initial_state(batch, device=x_seq.device, dtype=x_seq.dtype)
    exits = ExitTracker(batch, n_steps, device=x_seq.device)
    entropy_sum = x_seq.new_zeros(batch) if track_entropy else None
    spike_sum = x_seq.new_zeros(batch, len(state.layers)) if track_spikes else None
    done_rows, done_logits, done_entropy, done_spikes = [], [], [], []
    steps_simulated = sample_steps = 0
    params = model.step_params()

    for start in range(0, n_steps, chunk_size):
        inputs = x_seq[start:start + chunk_size]
        if exits.running.numel() < batch:  # a gather copies: only once some samples have left
            inputs = inputs[:, exits.running]
        currents = model.encode(inputs)
        for offset in range(currents.shape[0]):
            t = start + offset
            logits, state = model.step_encoded(currents[offset], state, params)
            steps_simulated, sample_steps = t + 1, sample_steps + exits.running.numel()
            if track_entropy:
                entropy_sum = entropy_sum + output_entropy(logits)
            if track_spikes:
                spike_sum = spike_sum + torch.stack([layer.s.sum(-1) for layer in state.layers], -1)
            leaving = exits.running
            finished = exits.update(t, crossed_threshold(logits.detach(), decision_threshold))
            if finished is None:
                continue
            done_rows.append(leaving[finished])
            done_logits.append(logits[finished])
            if track_entropy:
                done_entropy.append(entropy_sum[finished] / (t + 1))
                entropy_sum = entropy_sum[exits.keep]
            if track_spikes:
                done_spikes.append(spike_sum[finished])
                spike_sum = spike_sum[exits.keep]
            state, currents = select_rows(state, exits.keep), currents[:, exits.keep]
            if exits.done:
                break
        if exits.done:
            break

    order = torch.argsort(torch.cat(done_rows))
    return Decision(
        logits=torch.cat(done_logits)[order],
        steps=exits.steps,
        crossed=exits.crossed,
        mean_entropy=torch.cat(done_entropy)[order] if track_entropy else None,
        steps_simulated=steps_simulated,
        sample_steps=sample_steps,
        spike_counts=torch.cat(done_spikes)[order] if track_spikes else None,
    )
