"""One training step: the loss of a batch under the run's loss (rank-coded, full-sequence or per
step), each sample's decision and its score, through the engine :func:`~rc_snn.training.bptt.engine_for`
picks; and the checks that a config fits its task. :mod:`rc_snn.training.loop` runs the steps.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .bptt import engine_for, run_alif
from .config import TrainConfig
from .early_exit import Decision, mean_entropy_until, read_last_step, run_until_decision, select_decision
from .losses import activity_penalty, full_sequence_loss, per_step_accuracy, per_step_loss, rank_coded_loss


class StepResult(NamedTuple):
    """One training step: the batch's loss (with its graph), each sample's decision and its score (1 or 0
    for a correct or wrong answer; for a per-step task its fraction of steps labelled correctly)."""

    loss: Tensor
    decision: Decision
    score: Tensor


def check_task(config: TrainConfig, info) -> None:
    """Refuse a per-step loss on a dataset with one label per sample, and the reverse."""
    if info.per_step != (config.loss == "per-step"):
        raise ValueError(f"dataset {info.name!r} has {'a label at every step' if info.per_step else 'one label per sample'}: "
                         f"train it with --loss {'per-step' if info.per_step else 'rank or full'}; got {config.loss!r}")


def training_threshold(config: TrainConfig) -> float:
    """The decision threshold of the rank-coded loss in training (``training_decision_threshold``, else
    ``decision_threshold``)."""
    if config.training_decision_threshold is None:
        return config.decision_threshold
    return config.training_decision_threshold


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                  burn_in: int = 0) -> StepResult:
    """Loss, decisions and scores of one step (the caller runs backward on ``loss``); ``burn_in``: the
    first judged step of a per-step task."""
    rank = config.loss == "rank"
    threshold = training_threshold(config)
    # every sample runs to the last step (a model whose training needs whole sequences: always)
    full_run = not rank or config.last_step_weight > 0 or getattr(model, "needs_full_sequence", False)
    engine = engine_for(model, x, config.backward)
    compiled = engine == "compiled"
    penalise = config.activity_weight > 0  # the spikes' penalty needs their counts (ALIF only: config)
    if full_run:
        if engine != "autograd":
            logits_seq, full_decision = run_alif(model, x, None, chunk_size=config.chunk_size, compiled=compiled)
            spike_counts = full_decision.spike_counts  # over every step: every step is computed
        else:
            logits_seq, spike_counts = model(x)[0], None
    if rank and full_run:  # the rank-coded loss read off the whole sequence's outputs (rc_snn.training.losses)
        decision = select_decision(logits_seq, threshold)
        entropy = mean_entropy_until(logits_seq, decision.steps) if config.entropy_weight > 0 else None
        decision = replace(decision, mean_entropy=entropy, sample_steps=logits_seq.shape[0] * logits_seq.shape[1],
                           spike_counts=spike_counts)
    elif rank and engine != "autograd":
        _, decision = run_alif(model, x, threshold, chunk_size=config.chunk_size,
                               track_entropy=config.entropy_weight > 0, compiled=compiled)
    elif rank:
        decision = run_until_decision(model, x, threshold, chunk_size=config.chunk_size,
                                      track_entropy=config.entropy_weight > 0, track_spikes=penalise)
    if rank:
        loss = rank_coded_loss(decision.logits, y, decision.mean_entropy, config.entropy_weight,
                               logits_seq[-1] if full_run else None, config.last_step_weight, config.label_smoothing)
    elif config.loss == "per-step":
        loss = per_step_loss(logits_seq, y, burn_in, config.label_smoothing)
        decision = replace(read_last_step(logits_seq.detach()), spike_counts=spike_counts)
    else:
        loss = full_sequence_loss(logits_seq, y, config.full_readout, config.label_smoothing)
        decision = replace(read_last_step(logits_seq.detach()), spike_counts=spike_counts)
    if penalise:
        loss = loss + activity_penalty(decision.spike_counts, sum(layer.n_neurons for layer in model.layers),
                                       config.activity_weight)
    score = (per_step_accuracy(logits_seq.detach(), y, burn_in) if config.loss == "per-step"
             else (decision.predictions == y).double())
    return StepResult(loss, decision, score)


def check_decision_reachable(config: TrainConfig, n_classes: int) -> None:
    """Refuse a rank-coded run whose label smoothing makes its decision threshold unreachable: the
    smoothed loss is lowest where the true class has probability ``1 - eps + eps / C``."""
    best = 1.0 - config.label_smoothing + config.label_smoothing / n_classes
    highest = max(config.decision_threshold, training_threshold(config))
    if config.loss == "rank" and highest >= best:
        raise ValueError(f"decision threshold {highest} cannot be reached with label_smoothing "
                         f"{config.label_smoothing} over {n_classes} classes: the loss is lowest at probability "
                         f"{best:.4g}; lower the threshold or the smoothing")
