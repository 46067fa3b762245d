"""A run folder: its files, the model and data its config describes, and its checkpoint.

A run folder holds ``config.json`` (the :class:`~rc_snn.training.config.TrainConfig`),
``checkpoint.pt`` (model, optimiser, position in the epoch, and the config again; written
atomically by :mod:`rc_snn.training.loop`; with ``ema_decay`` its ``model`` is the weight
average and ``trained_model`` the weights training continues from) and ``metrics.json`` (one
entry per finished epoch), all three written by :func:`save_run_state` alone, and the ownership marker and lock file of
``deploy.files`` (:func:`claim_run_folder`). Files derived from the weights (``network.npz``,
``lava-*.json``, ``evaluate-*.json``) record the :func:`weights_id` of the weights they came from;
a new run in the folder (``--no-resume``) sets the old ones aside (:func:`set_aside_derived`).
:func:`load_run` is the one reader of a finished run; :class:`TrainedRun` is what training hands to
the next stage in memory.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from deploy.files import LOCK_FILE, MARKER_FILE, claim_folder, write_atomic, write_json

from ..data.encoding import encoded
from ..data.info import DatasetInfo
from ..models import ALIFRSNN, IRSNN, GRUBaseline, LSTMBaseline
from .config import TrainConfig

CHECKPOINT_FORMAT = "rc-snn-checkpoint/2"
CHECKPOINT_KEYS = ("model_kind", "dataset_info", "model", "optimizer", "schedule", "epoch", "batch", "partial", "history")
CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE = "config.json", "checkpoint.pt", "metrics.json"
#: Files made from a run's weights by other commands (export, lava, evaluate), set aside when the weights change.
DERIVED_PATTERNS = ("network.npz", "lava-*.json", "evaluate-*.json")
SUPERSEDED_FOLDER = "superseded"


def weights_id(state: dict) -> str:
    """An identifier of a model's weights: the first 16 hex digits of a SHA-256 over every tensor of
    ``state`` (a ``state_dict``) with its name, dtype and shape. Files derived from the weights
    record it, so a file made from other weights is recognised."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def is_run_folder(folder: Path) -> bool:
    """A folder rc-snn trained in: its marker, or a config and checkpoint of a run."""
    return (folder / CONFIG_FILE).is_file() and (folder / CHECKPOINT_FILE).is_file()


def claim_run_folder(run_dir) -> Path:
    """Create ``run_dir`` (or take an empty one, or one rc-snn trained in) with its ownership marker;
    a folder holding other files is refused (``deploy.files.claim_folder``)."""
    return claim_folder(run_dir, "run", also_ours=is_run_folder)


def unclaim_if_empty(run_dir: Path) -> None:
    """Remove a run folder this process created that holds nothing but its marker and lock."""
    if run_dir.is_dir() and {entry.name for entry in run_dir.iterdir()} <= {MARKER_FILE, LOCK_FILE}:
        shutil.rmtree(run_dir, ignore_errors=True)


def set_aside_derived(run_dir: Path) -> list:
    """Move the files derived from a run's old weights into ``RUN/superseded/`` (replacing what an
    earlier call put there); returns the files moved."""
    moved = [path for pattern in DERIVED_PATTERNS for path in sorted(run_dir.glob(pattern)) if path.is_file()]
    if moved:
        aside = run_dir / SUPERSEDED_FOLDER
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for path in moved:
            path.replace(aside / path.name)
    return moved


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

    @property
    def weights_id(self) -> str:
        """:func:`weights_id` of the model's weights."""
        return weights_id(self.model.state_dict())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no GPU; use --device cpu")
    return torch.device(name)


def build_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """A fresh model for ``config`` and the dataset's sizes, initialised from ``config.seed``."""
    torch.manual_seed(config.seed)
    if config.model in ("lstm", "gru"):
        baseline = LSTMBaseline if config.model == "lstm" else GRUBaseline
        return baseline(info.n_inputs, config.hidden, info.n_classes, n_layers=config.layers)
    if config.model == "irsnn":
        return IRSNN(info.n_inputs, [config.hidden] * config.layers, info.n_classes, config.ir_params(),
                     tau_out=config.tau_out)
    return ALIFRSNN(info.n_inputs, [config.hidden] * config.layers, info.n_classes, config.alif_params(),
                    spike_grad=config.surrogate, output_layer=config.output_layer, output_params=config.output_params())


def load_split(config: TrainConfig, split: str, limit: Optional[int] = None, progress: Optional[bool] = None):
    """``(dataset, info)`` for one split, with the run's data options and input encoding (``progress``:
    the binning bar)."""
    from ..data import load_dataset

    options = {"data_dir": config.data_dir, "download": config.download, "limit": limit, "seed": config.seed,
               "progress": progress}
    if config.bin_ms is not None:
        options["bin_ms"] = config.bin_ms
    if config.window == "first-saccade":
        options["first_saccade"] = True
    if (config.folds, config.fold) != (10, 0):
        options.update(folds=config.folds, fold=config.fold)
    dataset, info = load_dataset(config.dataset, split, **options)
    return encoded(dataset, config.input_encoding), info


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` through :func:`deploy.files.write_atomic`; a full disk says so."""
    try:
        write_atomic(path, lambda temp: torch.save(payload, temp))
    except RuntimeError as error:  # torch's zip writer reports a failed write (ENOSPC) as RuntimeError
        raise OSError(f"cannot write checkpoint {path} (is the disk full?): {error}") from error


def save_run_state(run_dir: Path, config: TrainConfig, payload: dict) -> None:
    """The one writer of a run folder: the checkpoint (which carries the config), then
    ``config.json`` and ``metrics.json``, each atomically.

    A new run's config reaches the folder only with its first checkpoint, so no interruption can
    pair a config with weights it did not produce; if one comes between the files, the checkpoint's
    own config is the one :func:`load_checkpoint` and :func:`load_run` trust.
    """
    save_checkpoint(run_dir / CHECKPOINT_FILE, {**payload, "config": config.to_dict()})
    config.save(run_dir / CONFIG_FILE)
    write_json(run_dir / METRICS_FILE, payload["history"])


def _read_checkpoint(path: Path) -> dict:
    if path.is_dir():
        raise ValueError(f"expected a checkpoint file at {path}; found a folder")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (an interrupted copy?)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        text = str(error)
        if isinstance(error, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
            # torch's message advises weights_only=False: never for a file the user did not make
            detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
            if "Unsupported global" in detail:
                raise ValueError(f"{path} holds objects other than tensors and plain data ({detail}); refused "
                                 "to load it: rc-snn checkpoints hold only those") from None
            raise ValueError(f"cannot read checkpoint {path}: not a checkpoint ({detail})") from None
        first_line = text.strip().splitlines()[0] if text.strip() else "unreadable"
        raise ValueError(f"cannot read checkpoint {path}: {type(error).__name__}: {first_line}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        if isinstance(found, str) and found.startswith("rc-snn-checkpoint/"):
            raise ValueError(f"{path} is a checkpoint of format {found!r}, written by an earlier rc-snn; this version "
                             f"reads {CHECKPOINT_FORMAT!r}: train the run again")
        raise ValueError(f"{path} is not an rc-snn checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [key for key in CHECKPOINT_KEYS if key not in payload]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}; it is damaged or not from this version of rc-snn")
    return payload


def config_differences(saved: TrainConfig, asked: TrainConfig) -> list:
    """``"field: saved -> asked"`` for every field that differs, but ``epochs`` (a run may be
    extended) unless the cosine schedule, which ``epochs`` shapes, is used."""
    saved_fields, asked_fields = saved.to_dict(), asked.to_dict()
    extensible = {"epochs"} if saved.lr_schedule != "cosine" else set()
    return [f"{name}: {saved_fields[name]!r} -> {asked_fields[name]!r}" for name in saved_fields
            if name not in extensible and saved_fields[name] != asked_fields[name]]


def load_checkpoint(path: Path, config: TrainConfig) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check it belongs to a run of ``config``.

    Raises ValueError naming every field in which the checkpoint's run differs from ``config``.
    """
    path = Path(path)
    payload = _read_checkpoint(path)
    if payload.get("model_kind") != config.model:
        raise ValueError(f"checkpoint {path} holds a {payload.get('model_kind')!r} model; the config asks for "
                         f"{config.model!r}")
    differences = config_differences(saved_config(path.parent, payload), config)
    if differences:
        raise ValueError(f"{path.parent} holds a run with another config ({'; '.join(differences)}); resume it with "
                         "its own config, pick another folder, or pass --no-resume to start over")
    return payload


def saved_config(run_dir: Path, payload: Optional[dict] = None) -> TrainConfig:
    """The config of the run in ``run_dir``: its checkpoint's own (``payload``, read if not given),
    or ``config.json`` for checkpoints written before they carried one."""
    run_dir = Path(run_dir)
    payload = payload if payload is not None else _read_checkpoint(run_dir / CHECKPOINT_FILE)
    if "config" in payload:
        return TrainConfig.from_dict(payload["config"])
    return TrainConfig.load(run_dir / CONFIG_FILE)


def load_state(model: nn.Module, state: dict, path: Path) -> None:
    """``model.load_state_dict(state)`` with a clear error when the shapes differ."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as error:
        raise ValueError(f"checkpoint {path} does not fit the model its config describes: {error}") from None


def start_from(model: nn.Module, run_dir) -> None:
    """Load the trained model of the run in ``run_dir`` into ``model`` (a config's ``init_from``)."""
    try:
        source = load_run(run_dir)
    except (OSError, ValueError) as error:
        raise ValueError(f"init_from {run_dir}: {error}") from None
    theirs, ours = source.model.state_dict(), model.state_dict()
    if type(source.model) is not type(model):
        raise ValueError(f"init_from {run_dir}: it holds a {source.config.model!r} model ({type(source.model).__name__}); "
                         f"this run trains a {type(model).__name__}")
    differences = [f"{key} missing there" for key in ours if key not in theirs]
    differences += [f"{key} is {list(theirs[key].shape)} there, {list(ours[key].shape)} here"
                    for key in ours if key in theirs and theirs[key].shape != ours[key].shape]
    if differences or set(theirs) - set(ours):
        differences += [f"{key} only there" for key in theirs if key not in ours]
        raise ValueError(f"init_from {run_dir}: its {source.config.model!r} model (hidden {source.config.hidden}, "
                         f"layers {source.config.layers}) does not fit this run's: {'; '.join(differences[:3])}"
                         + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""))
    model.load_state_dict(theirs)


def load_run(run_dir, device: str = "cpu") -> TrainedRun:
    """The trained run in ``run_dir``, its model in eval mode on ``device``."""
    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / CONFIG_FILE, run_dir / CHECKPOINT_FILE
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"expected a trained run folder with {CONFIG_FILE} and {CHECKPOINT_FILE}; missing {path}")
    payload = _read_checkpoint(checkpoint_path)
    config = saved_config(run_dir, payload)  # the checkpoint's own (config.json is its copy for people to read)
    if payload.get("model_kind") != config.model:
        raise ValueError(f"checkpoint {checkpoint_path} holds a {payload.get('model_kind')!r} model; its config "
                         f"asks for {config.model!r}")
    try:
        info = DatasetInfo(**payload["dataset_info"])
    except TypeError as error:
        raise ValueError(f"checkpoint {checkpoint_path} has a damaged dataset_info: {error}") from None
    model = build_model(config, info)
    load_state(model, payload["model"], checkpoint_path)
    return TrainedRun(config, model.to(resolve_device(device)).eval(), info, run_dir, list(payload.get("history", [])))
