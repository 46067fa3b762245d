"""Training configuration: a frozen dataclass with a JSON round trip (saved next to each checkpoint)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional

MODELS = ("alif", "lstm")
LOSSES = ("rank", "full")
DEVICES = ("auto", "cpu", "cuda")
BACKWARDS = ("compiled", "manual", "autograd")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    ``threshold`` is the decision rule's softmax threshold (see :mod:`rc_snn.early_exit`);
    ``entropy_weight`` is beta_H of :mod:`rc_snn.loss`; ``full_readout`` applies to ``loss="full"``.
    ``backward`` picks how the ALIF network's gradients are computed, all to the same values:
    ``"compiled"`` runs the compiled kernels of :mod:`rc_snn.alif_kernel` (one hidden layer on the
    CPU; other networks fall back to ``"manual"``), ``"manual"`` the hand-written BPTT loop of
    :mod:`rc_snn.bptt` in torch, ``"autograd"`` differentiates the model's step functions.
    ``lr_decay`` multiplies the learning rate once per epoch (epoch ``e``, from 0, trains at
    ``lr * lr_decay**e``; 1.0 keeps it constant).
    Time constants are in steps: ``(mean, sd)`` of the initial normal draw.
    """

    model: str = "alif"
    loss: str = "rank"
    threshold: float = 0.9
    entropy_weight: float = 0.0
    full_readout: str = "last"
    layers: int = 1
    hidden: int = 128
    dataset: str = "nmnist-sim"
    data_dir: Optional[str] = None
    download: bool = False
    bin_ms: Optional[float] = None
    limit_train: Optional[int] = None
    limit_val: Optional[int] = None
    epochs: int = 5
    lr: float = 2e-3
    lr_decay: float = 1.0
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    b0: float = 0.01
    beta: float = 1.8
    tau_m: tuple = (20.0, 5.0)
    tau_adp: tuple = (150.0, 10.0)
    surrogate: str = "multi_gaussian"
    chunk_size: int = 16
    backward: str = "compiled"

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "loss": LOSSES, "device": DEVICES, "full_readout": ("last", "mean"),
                   "backward": BACKWARDS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"expected {name} in {allowed}; got {getattr(self, name)!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"expected 0 < threshold < 1 (a softmax probability); got {self.threshold}")
        positive = {name: getattr(self, name) for name in ("layers", "hidden", "epochs", "batch_size", "chunk_size")}
        for name, value in positive.items():
            if int(value) < 1:
                raise ValueError(f"expected {name} >= 1; got {value}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"expected 0 < lr_decay <= 1 (a factor per epoch); got {self.lr_decay}")
        if self.lr <= 0 or self.entropy_weight < 0:
            raise ValueError(f"expected lr > 0 and entropy_weight >= 0; got lr={self.lr}, entropy_weight={self.entropy_weight}")
        object.__setattr__(self, "tau_m", tuple(float(v) for v in self.tau_m))
        object.__setattr__(self, "tau_adp", tuple(float(v) for v in self.tau_adp))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read the run config {path}: {error}") from error
        return cls.from_dict(data)


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2)
            stream.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
