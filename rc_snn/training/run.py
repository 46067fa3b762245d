"""A run folder: its files, the model and data its config describes, and its checkpoint.

A run folder holds ``config.json`` (the :class:`~rc_snn.training.config.TrainConfig`),
``checkpoint.pt`` (model, optimiser, position in the epoch; written atomically by
:mod:`rc_snn.training.loop`) and ``metrics.json`` (one entry per finished epoch).
:func:`load_run` is the one reader of a finished run; :class:`TrainedRun` is what training hands to
the next stage in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from deploy.files import write_atomic

from ..data.info import DatasetInfo
from ..models import ALIFRSNN, LSTMBaseline
from .config import TrainConfig

CHECKPOINT_FORMAT = "rc-snn-checkpoint/1"
CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE = "config.json", "checkpoint.pt", "metrics.json"


@dataclass(frozen=True)
class TrainedRun:
    """A trained model with the config and dataset description it was trained with.

    ``model`` is in eval mode; ``history`` holds the per-epoch metrics (empty when loaded from a
    folder written before metrics were kept); ``run_dir`` is where its files are.
    """

    config: TrainConfig
    model: nn.Module
    info: DatasetInfo
    run_dir: Path
    history: list = field(default_factory=list)

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no GPU; use --device cpu or auto")
    return torch.device(name)


def build_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """A fresh model for ``config`` and the dataset's sizes, initialised from ``config.seed``."""
    torch.manual_seed(config.seed)
    if config.model == "lstm":
        return LSTMBaseline(info.n_inputs, config.hidden, info.n_classes, n_layers=config.layers)
    return ALIFRSNN(info.n_inputs, [config.hidden] * config.layers, info.n_classes, config.alif_params(),
                    spike_grad=config.surrogate)


def load_split(config: TrainConfig, split: str, limit: Optional[int] = None):
    """``(dataset, info)`` for one split, with the run's data options."""
    from ..data import load_dataset

    options = {"data_dir": config.data_dir, "download": config.download, "limit": limit, "seed": config.seed}
    if config.bin_ms is not None:
        options["bin_ms"] = config.bin_ms
    return load_dataset(config.dataset, split, **options)


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` through :func:`deploy.files.write_atomic`."""
    write_atomic(path, lambda temp: torch.save(payload, temp))


def load_checkpoint(path: Path, model_kind: str) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check it belongs to ``model_kind``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        raise ValueError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an rc-snn checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if payload.get("model_kind") != model_kind:
        raise ValueError(f"checkpoint {path} holds a {payload.get('model_kind')!r} model; the config asks for {model_kind!r}")
    return payload


def load_run(run_dir, device: str = "cpu") -> TrainedRun:
    """The trained run in ``run_dir``, its model in eval mode on ``device``."""
    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / CONFIG_FILE, run_dir / CHECKPOINT_FILE
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"expected a trained run folder with {CONFIG_FILE} and {CHECKPOINT_FILE}; missing {path}")
    config = TrainConfig.load(config_path)
    payload = load_checkpoint(checkpoint_path, config.model)
    info = DatasetInfo(**payload["dataset_info"])
    model = build_model(config, info)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {checkpoint_path} does not fit the model of {config_path}: {error}") from error
    return TrainedRun(config, model.to(resolve_device(device)).eval(), info, run_dir, list(payload.get("history", [])))
