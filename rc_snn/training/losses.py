"""Losses: rank-coded (at each sample's decision step) and full-sequence (the baseline).

Rank-coded loss (Jeffares et al., ICLR 2022), for a batch of N samples with decision steps t*_i
(see :mod:`rc_snn.training.early_exit`)::

    L = (1/N) sum_i [ CE(z_i[t*_i], y_i)  -  beta_H * Hbar_i ]
    Hbar_i = (1 / (t*_i + 1)) sum_{t <= t*_i} H(softmax(z_i[t]))

The entropy term (weight ``beta_H >= 0``) rewards uncertain outputs on the way to the decision,
so a larger ``beta_H`` delays threshold crossings: it trades speed for accuracy. Nothing after
t*_i enters the loss, so backpropagation through time starts at t*_i.

Optionally the network also learns after its decision, for the samples that never cross and for
reading at the last step (weight ``lambda >= 0``, ``last_step_weight``)::

    L_aux = L + lambda * (1/N) sum_i CE(z_i[T-1], y_i)

This needs every sample's full sequence, so with ``lambda > 0`` training computes all T steps
(rank coding then no longer shortens training, only inference).

Energy-aware training adds an activity penalty (weight ``lambda_A >= 0``, ``activity_weight``) on
the spikes each sample emits up to its decision, per neuron, over the hidden layers' ``N`` neurons::

    L_act = L + lambda_A * (1/N) sum_i (1 / N_neurons) sum_l sum_{t <= t*_i} sum_h s_l,h[t]

Every spike costs one accumulate per synapse it reaches, so this is the cost the network pays for
its hidden activity; its gradient reaches each spike through the surrogate, in every engine
(``tests/test_bptt.py``).

A per-step (streaming) task labels every step (Yin et al.'s ECG task, ``rc_snn.data.qtdb``) and
judges the outputs from a burn-in step ``b`` on; its loss and its accuracy, as the authors' script
computes it (per recording, then averaged), are::

    L_step = (1/N) sum_i (1/(T - b)) sum_{t >= b} CE(z_i[t], y_i[t])
    acc    = (1/N) sum_i (1/(T - b)) #{t >= b : argmax z_i[t] = y_i[t]}

(the authors sum their loss over steps; the mean differs by the constant T - b). Every step is
computed, so gradients come from every step in every engine (``tests/test_bptt.py``).

Every CE may be label-smoothed (``label_smoothing`` eps, as in ``torch.nn.functional.cross_entropy``:
the target puts 1 - eps on the class and eps / C on each of the C classes).
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

FULL_READOUTS = ("last", "mean")
#: The losses: rank-coded (early exit), full-sequence (one label per sample) and per-step (a label per step).
LOSSES = ("rank", "full", "per-step")


def rank_coded_loss(
    decision_logits: Tensor, targets: Tensor, mean_entropy: Optional[Tensor] = None, entropy_weight: float = 0.0,
    last_logits: Optional[Tensor] = None, last_step_weight: float = 0.0, label_smoothing: float = 0.0,
) -> Tensor:
    """The module docstring's L (or L_aux) from ``z[t*]`` ``[batch, classes]``, ``Hbar`` ``[batch]`` and ``z[T-1]``."""
    if entropy_weight < 0 or last_step_weight < 0:
        raise ValueError(f"expected entropy_weight >= 0 and last_step_weight >= 0; got {entropy_weight}, "
                         f"{last_step_weight}")
    loss = F.cross_entropy(decision_logits, targets, label_smoothing=label_smoothing)
    if entropy_weight > 0:
        if mean_entropy is None:
            raise ValueError("entropy_weight > 0 needs mean_entropy (run_until_decision(..., track_entropy=True))")
        loss = loss - entropy_weight * mean_entropy.mean()
    if last_step_weight > 0:
        if last_logits is None:
            raise ValueError("last_step_weight > 0 needs last_logits, the outputs at the last step")
        loss = loss + last_step_weight * F.cross_entropy(last_logits, targets, label_smoothing=label_smoothing)
    return loss


def activity_penalty(spike_counts: Tensor, n_neurons: int, activity_weight: float) -> Tensor:
    """``lambda_A * (1/N) sum_i (1 / n_neurons) sum_l spike_counts[i, l]`` (module docstring) from
    ``spike_counts [batch, layers]``, the spikes of each sample up to its decision."""
    if activity_weight < 0 or n_neurons < 1:
        raise ValueError(f"expected activity_weight >= 0 and n_neurons >= 1; got {activity_weight}, {n_neurons}")
    return activity_weight * spike_counts.sum(1).mean() / n_neurons


def full_sequence_loss(logits_seq: Tensor, targets: Tensor, readout: str = "last",
                       label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy on the last step's output (``"last"``) or the time-mean output (``"mean"``)."""
    if readout == "last":
        return F.cross_entropy(logits_seq[-1], targets, label_smoothing=label_smoothing)
    if readout == "mean":
        return F.cross_entropy(logits_seq.mean(dim=0), targets, label_smoothing=label_smoothing)
    raise ValueError(f"expected readout in {FULL_READOUTS}; got {readout!r}")


def _check_per_step(logits_seq: Tensor, targets: Tensor, burn_in: int) -> None:
    if targets.shape != logits_seq.shape[1::-1]:
        raise ValueError(f"expected per-step targets [batch, steps] = {tuple(logits_seq.shape[1::-1])}; "
                         f"got {tuple(targets.shape)}")
    if not 0 <= burn_in < logits_seq.shape[0]:
        raise ValueError(f"expected 0 <= burn_in < {logits_seq.shape[0]} steps; got {burn_in}")


def per_step_loss(logits_seq: Tensor, targets: Tensor, burn_in: int = 0, label_smoothing: float = 0.0) -> Tensor:
    """``L_step`` (module docstring) of outputs ``[steps, batch, classes]`` and labels ``[batch, steps]``."""
    _check_per_step(logits_seq, targets, burn_in)
    judged = logits_seq[burn_in:]
    return F.cross_entropy(judged.reshape(-1, judged.shape[-1]), targets[:, burn_in:].t().reshape(-1),
                           label_smoothing=label_smoothing)


def per_step_accuracy(logits_seq: Tensor, targets: Tensor, burn_in: int = 0) -> Tensor:
    """Each recording's fraction of steps ``t >= burn_in`` labelled correctly, ``[batch]`` (``acc``'s terms)."""
    _check_per_step(logits_seq, targets, burn_in)
    return (logits_seq[burn_in:].argmax(-1) == targets[:, burn_in:].t()).double().mean(0)
