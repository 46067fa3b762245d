"""Inference figures of a trained model on a dataset: early exit (one label per sample) or the
per-step accuracy (a label at every step); each batch runs the whole sequence once, without a graph."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .bptt import engine_for, run_alif
from .early_exit import check_decision_threshold, select_decision
from .losses import per_step_accuracy


def burn_in_of(info) -> Optional[int]:
    """The first judged step of a per-step task; None for a task with one label per sample."""
    return info.burn_in if info.per_step else None


def time_first(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A collated batch ``[batch, time, features]`` as the models' ``[time, batch, features]`` float tensor."""
    return x.to(device=device, dtype=torch.float32).transpose(0, 1)


@torch.no_grad()
def evaluate_model(
    model: nn.Module, dataset, decision_threshold: float, *, batch_size: int = 256, device=None,
    dt_ms: Optional[float] = None, burn_in: Optional[int] = None, progress: bool = True, desc: str = "evaluate",
) -> dict:
    """Early-exit inference figures on ``dataset``; for a per-step task (``burn_in`` given: labels
    ``[steps]``) the per-step accuracy of :mod:`rc_snn.training.losses` instead (:func:`_evaluate_per_step`).

    Each batch runs the full sequence once (no graph; an ALIF network on the CPU through
    the compiled kernels of :mod:`rc_snn.training.compiled`) and applies the decision rule of
    :mod:`rc_snn.training.early_exit`, so the same pass also gives the accuracy read at the last
    step; the decisions equal :func:`~rc_snn.training.early_exit.run_until_decision`'s (tested).
    The model's train/eval mode is restored on return.
    """
    decision_threshold = check_decision_threshold(decision_threshold)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        batches = ((time_first(x, device), y.to(device)) for x, y in
                   tqdm(DataLoader(dataset, batch_size=batch_size, shuffle=False), desc=desc, disable=not progress,
                        leave=False))
        outputs = ((x, y, run_model(model, x)) for x, y in batches)
        if burn_in is not None:
            return _evaluate_per_step(outputs, burn_in)
        return _evaluate_early_exit(outputs, decision_threshold, dt_ms)
    finally:
        model.train(was_training)


def run_model(model: nn.Module, x: Tensor) -> Tensor:
    """The outputs ``[steps, batch, classes]`` of a whole sequence, without a graph (an ALIF network on
    the CPU through the compiled kernels)."""
    return run_alif(model, x, compiled=True)[0] if engine_for(model, x, "compiled") == "compiled" else model(x)[0]


def _evaluate_per_step(outputs, burn_in: int) -> dict:
    scores, last, n_steps = [], [], 0
    for x, y, logits_seq in outputs:
        n_steps = x.shape[0]
        scores.append(per_step_accuracy(logits_seq, y, burn_in).cpu())
        last.append((logits_seq[-1].argmax(-1) == y[:, -1]).double().cpu())
    scores = torch.cat(scores)
    return {"task": "per-step", "n_samples": scores.numel(), "n_steps": n_steps, "burn_in": burn_in,
            "accuracy": float(scores.mean()), "accuracy_last_step": float(torch.cat(last).mean()),
            "accuracy_per_sample": scores.tolist()}


def _evaluate_early_exit(outputs, decision_threshold: float, dt_ms: Optional[float]) -> dict:
    steps, correct, correct_last, crossed = [], 0, 0, 0
    n_steps = 0
    for x, y, logits_seq in outputs:
        decision = select_decision(logits_seq, decision_threshold)
        n_steps = x.shape[0]
        correct += int((decision.predictions == y).sum())
        correct_last += int((logits_seq[-1].argmax(-1) == y).sum())
        crossed += int(decision.crossed.sum())
        steps.append(decision.steps.cpu())
    steps = torch.cat(steps)
    n = steps.numel()
    result = {
        "n_samples": n,
        "n_steps": n_steps,
        "accuracy": correct / n,
        "accuracy_last_step": correct_last / n,
        "mean_decision_step": float(steps.float().mean()),
        "median_decision_step": float(steps.double().quantile(0.5)),  # the mean of the middle two for an even count
        "fraction_crossed": crossed / n,
        "decision_step_histogram": torch.bincount(steps, minlength=n_steps).tolist(),
        "decision_steps": steps.tolist(),
    }
    if dt_ms is not None:  # t* is 0-based: a decision at step t* has seen (t* + 1) bins
        result["mean_decision_ms"] = (result["mean_decision_step"] + 1) * dt_ms
    return result


