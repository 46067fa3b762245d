"""Training configuration: a frozen dataclass with a JSON round trip (saved next to each checkpoint)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional

from deploy.files import write_json

from ..neuron.alif import ALIFParams

MODELS = ("alif", "lstm")
LOSSES = ("rank", "full")
DEVICES = ("auto", "cpu", "cuda")
BACKWARDS = ("compiled", "manual", "autograd")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    ``decision_threshold`` is the early-exit rule's softmax threshold (see
    :mod:`rc_snn.training.early_exit`); ``entropy_weight`` is beta_H of
    :mod:`rc_snn.training.losses`; ``full_readout`` applies to ``loss="full"``.
    ``backward`` picks how the ALIF network's gradients are computed, all to the same values:
    ``"compiled"`` runs the compiled kernels of :mod:`rc_snn.training.compiled` (one hidden layer
    on the CPU; other networks fall back to ``"manual"``), ``"manual"`` the hand-written BPTT
    loop of :mod:`rc_snn.training.bptt` in torch, ``"autograd"`` differentiates the model's step
    functions. ``lr_decay`` multiplies the learning rate once per epoch (epoch ``e``, from 0,
    trains at ``lr * lr_decay**e``; 1.0 keeps it constant).
    ``b0``, ``beta`` and the time constants are the ALIF neuron's (:class:`ALIFParams`, whose
    defaults they take); time constants are in steps: ``(mean, sd)`` of the initial normal draw.
    """

    model: str = "alif"
    loss: str = "rank"
    decision_threshold: float = 0.9
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
    b0: float = ALIFParams.b0
    beta: float = ALIFParams.beta
    tau_m: tuple = ALIFParams.tau_m
    tau_adp: tuple = ALIFParams.tau_adp
    tau_out: tuple = ALIFParams.tau_out
    surrogate: str = "multi_gaussian"
    chunk_size: int = 16
    backward: str = "compiled"

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "loss": LOSSES, "device": DEVICES, "full_readout": ("last", "mean"),
                   "backward": BACKWARDS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"expected {name} in {allowed}; got {getattr(self, name)!r}")
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError(f"expected 0 < decision_threshold < 1 (a softmax probability); got {self.decision_threshold}")
        positive = {name: getattr(self, name) for name in ("layers", "hidden", "epochs", "batch_size", "chunk_size")}
        for name, value in positive.items():
            if int(value) < 1:
                raise ValueError(f"expected {name} >= 1; got {value}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"expected 0 < lr_decay <= 1 (a factor per epoch); got {self.lr_decay}")
        if self.lr <= 0 or self.entropy_weight < 0:
            raise ValueError(f"expected lr > 0 and entropy_weight >= 0; got lr={self.lr}, entropy_weight={self.entropy_weight}")
        for name in ("tau_m", "tau_adp", "tau_out"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))

    def alif_params(self) -> ALIFParams:
        """The ALIF neuron's constants of this run."""
        return ALIFParams(b0=self.b0, beta=self.beta, tau_m=self.tau_m, tau_adp=self.tau_adp, tau_out=self.tau_out)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A config from its JSON form; ``threshold``, the name of ``decision_threshold`` in run
        folders written before version 0.2, is read as ``decision_threshold``."""
        if "threshold" in data and "decision_threshold" not in data:
            data = {("decision_threshold" if key == "threshold" else key): value for key, value in data.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read the run config {path}: {error}") from error
        return cls.from_dict(data)

