"""Evaluate trained runs on one split and count what they did: the inputs of ``deploy.report``.

For each run: accuracy at each sample's decision (rank-coded runs: the early-exit rule at the
run's threshold; full-sequence runs: the last step, which is what they were trained to output),
accuracy at the last step, the speed-accuracy trade-off over several thresholds, and operation
counts from the recorded activity cut at each decision (``deploy.counting``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from deploy.counting import (activities_from_batch, count_lstm_from_activity, count_snn,
                             lstm_footprint_bytes, snn_footprint_bytes)
from deploy.report import ModelResult, write_report

from .activity import record_run
from .early_exit import read_last_step, select_decision
from .export import export_model
from .models import ALIFRSNN
from .train import load_run, load_split, time_first

TRADEOFF_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def run_label(config) -> str:
    model = "ALIF" if config.model == "alif" else "LSTM"
    return f"{model} {'rank coding' if config.loss == 'rank' else 'full sequence'}"


@torch.no_grad()
def analyse_run(
    run_dir, split: str = "test", *, limit: Optional[int] = None, data_dir: Optional[str] = None,
    thresholds: Sequence[float] = TRADEOFF_THRESHOLDS, batch_size: int = 250, name: Optional[str] = None,
    progress: bool = True,
) -> ModelResult:
    """One run's :class:`deploy.report.ModelResult` on ``split`` (PyTorch, CPU)."""
    config, model, info = load_run(run_dir)
    if data_dir:
        config = config.replace(data_dir=data_dir)
    dataset, _ = load_split(config, split, limit)
    is_snn = isinstance(model, ALIFRSNN)
    activities, steps, correct, correct_last, raster = [], [], 0, 0, None
    tradeoff = {threshold: [0, 0] for threshold in thresholds}  # threshold -> [correct, sum of steps]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, y in tqdm(loader, desc=f"count {run_label(config)}", disable=not progress, leave=False):
        x = time_first(x, torch.device("cpu"))
        logits_seq, spikes = record_run(model, x) if is_snn else (model(x)[0], [])
        rank = config.loss == "rank"
        decision = select_decision(logits_seq, config.threshold) if rank else read_last_step(logits_seq)
        correct += int((decision.predictions == y).sum())
        correct_last += int((logits_seq[-1].argmax(-1) == y).sum())
        steps.append(decision.steps.numpy())
        for threshold, sums in tradeoff.items():
            other = select_decision(logits_seq, threshold)
            sums[0] += int((other.predictions == y).sum())
            sums[1] += int(other.steps.sum())
        activities += activities_from_batch(x.numpy(), [s.numpy() for s in spikes], decision.steps.numpy())
        if raster is None and is_snn:  # show a sample that decided (the first one that crossed, if any)
            shown = int(decision.crossed.to(torch.int8).argmax())
            raster = (spikes[-1][:, shown].numpy().astype(bool), int(decision.steps[shown]))
    steps = np.concatenate(steps)
    n = steps.size
    if is_snn:
        network = export_model(model, decision_threshold=config.threshold, dt_ms=info.dt_ms)
        counts, footprint = count_snn(network, activities), snn_footprint_bytes(network)
    else:
        counts = count_lstm_from_activity(model.n_hidden, model.n_layers, model.n_outputs, activities)
        footprint = lstm_footprint_bytes(model.n_inputs, model.n_hidden, model.n_layers, model.n_outputs)
    return ModelResult(
        name=name or run_label(config), kind="snn" if is_snn else "lstm", accuracy=correct / n,
        decision_steps=steps, counts=counts, dt_ms=info.dt_ms or 1.0, accuracy_at_last_step=correct_last / n,
        tradeoff=[(threshold, c / n, s / n) for threshold, (c, s) in tradeoff.items()],
        raster=raster, footprint_bytes=footprint, source="pytorch",
    )


def unique_names(results: Iterable[ModelResult], run_dirs: Sequence) -> List[ModelResult]:
    """Append the run folder's name where two runs would get the same label."""
    results = list(results)
    labels = [r.name for r in results]
    return [
        r if labels.count(r.name) == 1 else ModelResult(**{**r.__dict__, "name": f"{r.name} ({Path(d).name})"})
        for r, d in zip(results, run_dirs)
    ]


def compare_runs(run_dirs: Sequence, out_dir, split: str = "test", *, limit: Optional[int] = None,
                 data_dir: Optional[str] = None, extra: Sequence[ModelResult] = (), progress: bool = True) -> dict:
    """Analyse each run, add ``extra`` results (e.g. Lava runs), write the report; returns its paths."""
    results = [analyse_run(d, split, limit=limit, data_dir=data_dir, progress=progress) for d in run_dirs]
    return write_report(unique_names(results, run_dirs) + list(extra), out_dir)
