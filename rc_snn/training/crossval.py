"""K-fold cross-validation over a local N-MNIST Train/ folder (or QTDB_train.mat): K runs, mean and spread.

Fold ``k`` of ``K`` trains on the files whose index modulo ``K`` is not ``k`` and validates on
those where it is (``rc_snn.data.nmnist.split_files``): the K validation parts are disjoint and
cover every file, so every recording is judged once by a model that never saw it. With 800
recordings a single 80-sample validation split moves by +-4 points between runs; the mean over
5 folds of 160 is the figure to compare changes by.

Each fold is an ordinary run folder (``OUT/fold-k``), so an interrupted cross-validation resumes
where it stopped and a finished fold is not trained again. ``cv.json`` records the settings the
folds were trained with (their own configs), not the ones asked for.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

from deploy.files import FolderLock, claim_folder, write_json

from .config import TrainConfig
from .evaluation import burn_in_of, evaluate_model
from .loop import train
from .run import load_split

CV_FILE = "cv.json"


def fold_config(config: TrainConfig, folds: int, fold: int) -> TrainConfig:
    """``config`` with fold ``fold`` of ``folds`` held out; the validation part is the whole fold."""
    return config.replace(folds=folds, fold=fold, limit_val=None)


def check_folds(config: TrainConfig, folds: int) -> None:
    """Refuse, before any fold trains, a split that leaves a fold's training or validation part empty."""
    from ..data.nmnist import default_data_dir, resolve_root, split_files

    root = resolve_root(config.data_dir or default_data_dir())
    for fold in range(folds):
        for split in ("train", "val"):
            split_files(root, split, folds, fold)


def is_cv_folder(folder: Path) -> bool:
    """A folder holding only what cross-validation writes (fold runs and cv.json)."""
    return all(entry.name == CV_FILE or (entry.is_dir() and entry.name.startswith("fold-")) for entry in folder.iterdir())


def common_config(configs: list) -> dict:
    """The fields every fold's config shares (all but ``fold``), as the folds themselves were trained."""
    first = configs[0].to_dict()
    return {key: value for key, value in first.items() if all(c.to_dict()[key] == value for c in configs)}


def cross_validate(config: TrainConfig, out_dir, folds: int = 5, *, resume: bool = True, progress: bool = True,
                   log: Callable = print) -> dict:
    """Train ``folds`` runs of ``config`` and evaluate each on its held-out fold; returns and writes ``cv.json``.

    Per fold: accuracy at the decision (rank-coded runs: the early-exit rule at the run's
    threshold; full-sequence runs: the last step, which is what they are trained to output),
    accuracy at the last step, mean decision step and time to decision; for a per-step task
    (``qtdb``) the per-step accuracy alone (``"task": "per-step"``). Summary: mean and population
    standard deviation over the folds of each, and of the training time.
    """
    if config.dataset not in ("nmnist", "qtdb"):
        raise ValueError(f"cross-validation splits a local N-MNIST Train/ folder or QTDB_train.mat by file or "
                         f"recording index; got dataset {config.dataset!r} (use --dataset nmnist --data-dir DIR)")
    if not isinstance(folds, int) or folds < 2:
        raise ValueError(f"expected folds >= 2; got {folds!r}")
    if config.dataset == "nmnist":
        check_folds(config, folds)
    out_dir = claim_folder(out_dir, "cv", also_ours=is_cv_folder)
    with FolderLock(out_dir):
        return _cross_validate(config, out_dir, folds, resume, progress, log)


def _cross_validate(config: TrainConfig, out_dir: Path, folds: int, resume: bool, progress: bool, log: Callable) -> dict:
    per_fold, configs = [], []
    for fold in range(folds):
        log(f"\n== fold {fold + 1}/{folds}")
        run = train(fold_config(config, folds, fold), out_dir / f"fold-{fold}", resume=resume, progress=progress,
                    log=log)
        configs.append(run.config)
        val_set, _ = load_split(run.config, "val", progress=progress)
        result = evaluate_model(run.model, val_set, run.config.decision_threshold, dt_ms=run.info.dt_ms,
                                burn_in=burn_in_of(run.info), progress=progress)
        entry = {"fold": fold, "n_samples": result["n_samples"],
                 "train_seconds": sum(e["train_seconds"] for e in run.history)}
        if run.info.per_step:  # a label at every step: no decision, one accuracy (from the burn-in on)
            entry["accuracy"] = result["accuracy"]
        else:
            rank = run.config.loss == "rank"
            steps = result["mean_decision_step"] if rank else result["n_steps"] - 1
            entry.update(accuracy=result["accuracy_last_step"] if run.config.loss == "full" else result["accuracy"],
                         accuracy_last_step=result["accuracy_last_step"], mean_decision_step=steps,
                         mean_decision_ms=(steps + 1) * run.info.dt_ms if run.info.dt_ms else None)
        per_fold.append(entry)
    per_step = run.info.per_step
    keys = ("accuracy", "train_seconds") if per_step else (
        "accuracy", "accuracy_last_step", "mean_decision_step", "mean_decision_ms", "train_seconds")
    summary = {"config": common_config(configs), "folds": folds, "per_fold": per_fold,
               "task": "per-step" if per_step else "sequence",
               **{key: spread([entry[key] for entry in per_fold]) for key in keys}}
    write_json(out_dir / CV_FILE, summary)
    return summary


def spread(values: list) -> dict:
    """Mean and population standard deviation (None where a value is missing)."""
    if any(value is None for value in values):
        return {"mean": None, "sd": None}
    return {"mean": statistics.fmean(values), "sd": statistics.pstdev(values)}


def format_cv(summary: dict) -> str:
    """The cross-validation as a short table: one row per fold, then mean and sd."""
    if summary.get("task") == "per-step":
        lines = ["| fold | recordings | per-step accuracy | training (s) |", "|---|---|---|---|"]
        lines += [f"| {entry['fold']} | {entry['n_samples']} | {100 * entry['accuracy']:.2f} % | "
                  f"{entry['train_seconds']:.0f} |" for entry in summary["per_fold"]]
        acc, seconds = summary["accuracy"], summary["train_seconds"]
        lines.append(f"| mean +- sd | {sum(e['n_samples'] for e in summary['per_fold'])} | "
                     f"{100 * acc['mean']:.2f} +- {100 * acc['sd']:.2f} % | {seconds['mean']:.0f} +- {seconds['sd']:.0f} |")
        return "\n".join(lines)
    lines = ["| fold | samples | accuracy | accuracy, last step | mean decision step | decision (ms) |",
             "|---|---|---|---|---|---|"]
    ms = lambda value: "-" if value is None else f"{value:.1f}"  # noqa: E731
    for entry in summary["per_fold"]:
        lines.append(f"| {entry['fold']} | {entry['n_samples']} | {100 * entry['accuracy']:.2f} % | "
                     f"{100 * entry['accuracy_last_step']:.2f} % | {entry['mean_decision_step']:.1f} | "
                     f"{ms(entry['mean_decision_ms'])} |")
    acc, last, step, time_ms = (summary[key] for key in ("accuracy", "accuracy_last_step", "mean_decision_step",
                                                         "mean_decision_ms"))
    lines.append(f"| mean +- sd | {sum(e['n_samples'] for e in summary['per_fold'])} | "
                 f"{100 * acc['mean']:.2f} +- {100 * acc['sd']:.2f} % | "
                 f"{100 * last['mean']:.2f} +- {100 * last['sd']:.2f} % | "
                 f"{step['mean']:.1f} +- {step['sd']:.1f} | "
                 f"{ms(time_ms['mean'])} +- {ms(time_ms['sd'])} |")
    return "\n".join(lines)
