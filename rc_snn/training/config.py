"""Training configuration: a frozen dataclass with a JSON round trip (saved next to each checkpoint)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional

from deploy.files import write_json

from ..data import DATASETS
from ..data.encoding import INPUT_ENCODINGS
from ..neuron.alif import ALIFParams
from ..models import OUTPUT_LAYERS
from ..neuron.irsnn import IRParams
from .losses import FULL_READOUTS, LOSSES

MODELS = ("alif", "lstm", "irsnn", "gru")
SPIKING_MODELS = ("alif", "irsnn")
DEVICES = ("auto", "cpu", "cuda")
BACKWARDS = ("compiled", "manual", "autograd")
WINDOWS = ("full", "first-saccade")
LR_SCHEDULES = ("exponential", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, one field per JSON key and per ``rc-snn train`` flag,
    in six groups (the fields below are in the same order).

    **Model.** ``model`` (one of :data:`MODELS`), ``layers`` of ``hidden`` neurons (or LSTM/GRU units);
    ``output_layer`` is the ALIF network's readout: ``"leaky"`` or Yin et al.'s ``"adaptive"`` spiking
    output neurons read by their membrane (:class:`rc_snn.neuron.layers.AdaptiveReadout`);
    ``surrogate`` names the spike function's surrogate gradient.

    **Neuron.** ``b0``, ``beta`` and the time constants are the ALIF neuron's (:class:`ALIFParams`,
    whose defaults they take); time constants are in steps: ``(mean, sd)`` of the initial normal
    draw. ``output_beta`` and ``output_tau_adp`` are the adaptive output neurons' (with ``b0`` and
    ``tau_out``). ``bits`` and ``dead_zone`` are the IR-SNN's output quantiser (:class:`IRParams`;
    ``bits = 1`` sends binary spikes); its readout takes ``tau_out``.

    **Loss and decision.** ``decision_threshold`` is the early-exit rule's softmax threshold (see
    :mod:`rc_snn.training.early_exit`); ``training_decision_threshold``, if set, is the one the
    rank-coded loss uses in training instead (lower: earlier decisions in training, so fewer steps
    computed; validation and inference keep ``decision_threshold``); ``entropy_weight`` is beta_H of
    :mod:`rc_snn.training.losses` and ``last_step_weight`` its lambda (cross-entropy at the last step
    added to the rank-coded loss); ``activity_weight`` is lambda_A there, the penalty on the ALIF
    network's spikes per neuron over the steps training computes (up to each decision when training
    stops there); ``full_readout`` applies to ``loss="full"``; ``loss="per-step"`` is for datasets
    labelled at every step (``qtdb``), and only for them. ``label_smoothing`` (eps) is that of every
    cross-entropy term; its loss is lowest where the true class has probability 1 - eps + eps/C, so
    with the rank-coded loss keep ``decision_threshold`` below that or few samples will ever decide.

    **Data.** ``window`` is the part of each recording used: ``"full"`` (N-MNIST's three saccades,
    300 ms) or ``"first-saccade"`` (the first 100 ms: a third of the steps, so a third of the
    training cost). ``input_encoding`` is what a bin gives the first layer
    (:mod:`rc_snn.data.encoding`): its event count (``"counts"``) or 1 if it holds any event
    (``"binary"``: accumulates only). ``folds``/``fold`` pick the held-out part of a local N-MNIST
    Train/ folder or of the ECG training file (index modulo ``folds`` equal to ``fold``).

    **Augmentation.** ``shift_px``, ``rotate_deg``, ``zoom`` and ``drop_events`` augment training
    batches (:mod:`rc_snn.data.augment`: a random translation within +-``shift_px`` pixels, rotation
    within +-``rotate_deg`` degrees, scaling by 1 +- ``zoom``, and dropping each event with that
    probability, drawn anew every epoch); validation is never augmented.

    **Optimisation.** ``lr_schedule`` is ``"exponential"`` (epoch ``e``, from 0, trains at
    ``lr * lr_decay**e``; ``lr_decay`` 1.0 keeps it constant) or ``"cosine"`` (annealed to 0 over
    ``epochs``); ``tau_lr_scale`` multiplies the learning rate of the neurons' time constants (their
``log(tau)``); ``weight_decay`` > 0 trains with AdamW, decaying the weight matrices only
    (:mod:`rc_snn.training.optim`). ``ema_decay`` > 0 keeps an exponential moving average of the
    weights, which validation, the checkpoint's model and everything after training use.
    ``prune_fraction`` of every weight matrix is pruned by magnitude, reached gradually over
    ``prune_epochs`` (:mod:`rc_snn.training.prune`). ``init_from`` is a run folder whose trained
    model (the same kind and sizes) this run starts from instead of a random draw: pretraining on
    one dataset (nmnist-sim), fine-tuning on another.

    **Engine.** ``backward`` picks how the ALIF network's gradients are computed, all to the same
    values: ``"compiled"`` runs the compiled kernels of :mod:`rc_snn.training.compiled` (any depth,
    on the CPU; on a GPU it falls back to ``"manual"``, or to ``"autograd"`` for an adaptive output
    layer), ``"manual"`` the hand-written BPTT loop of :mod:`rc_snn.training.bptt` in torch,
    ``"autograd"`` differentiates the model's step functions; ``chunk_size`` is the torch loop's.

    Each field has one validation rule (``_RULES``); the rules that tie fields together are in
    ``__post_init__``.
    """

    # model
    model: str = "alif"
    layers: int = 1
    hidden: int = 128
    output_layer: str = "leaky"
    surrogate: str = "multi_gaussian"
    # neuron
    b0: float = ALIFParams.b0
    beta: float = ALIFParams.beta
    tau_m: tuple = ALIFParams.tau_m
    tau_adp: tuple = ALIFParams.tau_adp
    tau_out: tuple = ALIFParams.tau_out
    output_beta: float = ALIFParams.beta
    output_tau_adp: tuple = (100.0, 0.0)
    bits: int = IRParams.bits
    dead_zone: int = IRParams.dead_zone
    # loss and decision
    loss: str = "rank"
    decision_threshold: float = 0.9
    training_decision_threshold: Optional[float] = None
    entropy_weight: float = 0.0
    last_step_weight: float = 0.0
    activity_weight: float = 0.0
    full_readout: str = "last"
    label_smoothing: float = 0.0
    # data
    dataset: str = "nmnist-sim"
    data_dir: Optional[str] = None
    download: bool = False
    window: str = "full"
    bin_ms: Optional[float] = None
    input_encoding: str = "counts"
    folds: int = 10
    fold: int = 0
    limit_train: Optional[int] = None
    limit_val: Optional[int] = None
    # augmentation
    shift_px: int = 0
    rotate_deg: float = 0.0
    zoom: float = 0.0
    drop_events: float = 0.0
    # optimisation
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    lr_decay: float = 1.0
    lr_schedule: str = "exponential"
    tau_lr_scale: float = 1.0
    weight_decay: float = 0.0
    ema_decay: float = 0.0
    prune_fraction: float = 0.0
    prune_epochs: int = 0
    init_from: Optional[str] = None
    seed: int = 0
    # engine
    device: str = "auto"
    backward: str = "compiled"
    chunk_size: int = 16

    def __post_init__(self) -> None:
        for name, rule in _RULES.items():
            rule(name, getattr(self, name))
        for name in ("tau_m", "tau_adp", "tau_out", "output_tau_adp"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.fold >= self.folds:
            _fail("fold", f"an integer below folds ({self.folds})", self.fold)
        if self.output_layer != "leaky" and (self.model != "alif" or self.backward == "manual"
                                             or self.activity_weight > 0):
            _fail("output_layer", "'leaky' unless model 'alif' with backward 'compiled' or 'autograd' and no "
                  "activity_weight (the torch BPTT loop and the spike penalty are the leaky readout's)", self.output_layer)
        if self.activity_weight > 0 and self.model != "alif":
            _fail("activity_weight", f"0 for a {self.model!r} model (the spike penalty is the ALIF network's)",
                  self.activity_weight)
        if (self.activity_weight > 0 and self.backward == "autograd"
                and (self.loss != "rank" or self.last_step_weight > 0)):
            _fail("activity_weight", "0 with backward 'autograd' in a full-sequence run (its spikes are counted by "
                  "the 'compiled' and 'manual' engines there)", self.activity_weight)
        if self.lr_schedule == "cosine" and self.lr_decay != 1:
            _fail("lr_decay", "1.0 with lr_schedule 'cosine' (lr_decay is the exponential schedule's factor)",
                  self.lr_decay)
        for name in ("decision_threshold", "entropy_weight", "last_step_weight", "activity_weight", "prune_fraction",
                     "lr", "lr_decay", "tau_lr_scale", "weight_decay", "label_smoothing", "b0", "beta", "output_beta",
                     "rotate_deg", "zoom", "drop_events"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.bin_ms is not None:
            object.__setattr__(self, "bin_ms", float(self.bin_ms))
        try:
            self.ir_params()
        except ValueError as error:
            _fail("bits/dead_zone", str(error).removeprefix("expected "), (self.bits, self.dead_zone))

    def alif_params(self) -> ALIFParams:
        """The ALIF neuron's constants of this run."""
        return ALIFParams(b0=self.b0, beta=self.beta, tau_m=self.tau_m, tau_adp=self.tau_adp, tau_out=self.tau_out)

    def output_params(self) -> ALIFParams:
        """The adaptive output neurons' constants (``output_layer="adaptive"``): ``b0``, ``output_beta``,
        ``tau_out`` as their membrane's and ``output_tau_adp`` as their adaptation's time constant."""
        return ALIFParams(b0=self.b0, beta=self.output_beta, tau_m=self.tau_out, tau_adp=self.output_tau_adp)

    def ir_params(self) -> IRParams:
        """The IR-SNN quantiser's constants of this run."""
        return IRParams(bits=self.bits, dead_zone=self.dead_zone)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A config from its JSON form (every key a field of :class:`TrainConfig`)."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a config as a JSON object of fields; got {type(data).__name__}")
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



#: The real N-MNIST recipe (benchmarks/RESULTS.md, "Real N-MNIST: 5-fold cross-validation"): the
#: data settings and decision rule every model shares ...
RECIPE = dict(loss="rank", decision_threshold=0.97, dataset="nmnist", window="first-saccade", bin_ms=5.0, shift_px=2,
              rotate_deg=15.0, zoom=0.15, epochs=200, batch_size=64, ema_decay=0.995)
#: ... and each model's size and learning rate. ``configs/nmnist-<model>.json`` hold the same (tested).
RECIPE_MODELS = {"alif": dict(hidden=256, lr=5e-3), "irsnn": dict(hidden=128, lr=2e-3, bits=6, dead_zone=3),
                 "lstm": dict(hidden=128, lr=5e-3), "gru": dict(hidden=128, lr=5e-3)}


#: Variants of the recipe, each shipped as ``configs/nmnist-<model>-<variant>.json`` (tested equal):
#: ``efficient``, the energy-aware ALIF recipe: binary input frames, 70 % of every weight matrix
#: pruned over the first 50 epochs, and a spike penalty of 0.005, at the LSTM's accuracy by 5-fold
#: cross-validation (benchmarks/RESULTS.md, "Energy-aware training"); and ``full``, the recipe scaled to the full
#: N-MNIST (75x the recordings: 20 epochs, about 10x the optimiser steps, annealed; scaled by
#: rule, not tuned: the full dataset is not available here).
RECIPE_VARIANTS = {"efficient": dict(input_encoding="binary", prune_fraction=0.7, prune_epochs=50, activity_weight=0.005),
                   "full": dict(epochs=20, lr_schedule="cosine", ema_decay=0.999)}


def recipe(model: str, variant: Optional[str] = None) -> TrainConfig:
    """The shipped real N-MNIST recipe for ``model`` (one of :data:`MODELS`), or one of its
    :data:`RECIPE_VARIANTS`."""
    if model not in RECIPE_MODELS:
        raise ValueError(f"expected a model among {MODELS}; got {model!r}")
    if variant is not None and variant not in RECIPE_VARIANTS:
        raise ValueError(f"expected a recipe variant among {sorted(RECIPE_VARIANTS)}; got {variant!r}")
    return TrainConfig(model=model, **{**RECIPE, **RECIPE_MODELS[model], **RECIPE_VARIANTS.get(variant, {})})


# ------------------------------------------------------------------------------------------------
# Validation: one rule per field, each raising one message that names the field, what was expected
# and what came. Numbers must be finite: a NaN learning rate "trains" to NaN weights without error.


def _fail(name: str, expected: str, value) -> None:
    raise ValueError(f"config field {name!r}: expected {expected}; got {value!r}")


def _choice(allowed):
    def rule(name, value):
        if value not in allowed:
            _fail(name, f"one of {allowed}", value)
    return rule


def _integer(minimum: int, optional: bool = False, maximum: Optional[int] = None):
    def rule(name, value):
        if optional and value is None:
            return
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or (maximum is not None and value > maximum)):
            bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            _fail(name, f"an integer {bounds}" + (" or null" if optional else ""), value)
    return rule


def _number(check, expected: str, optional: bool = False):
    def rule(name, value):
        if optional and value is None:
            return
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not check(value)):
            _fail(name, expected + (" or null" if optional else ""), value)
    return rule


def _text(optional: bool = False):
    def rule(name, value):
        if not (isinstance(value, str) and value) and not (optional and value is None):
            _fail(name, "a nonempty string" + (" or null" if optional else ""), value)
    return rule


def _flag(name, value):
    if not isinstance(value, bool):
        _fail(name, "true or false", value)


#: The longest time constant a run may ask for, in steps (a decay of 1 - 1e-6 per step; float32
#: still tells it from 1, and the weights' gradients through it stay finite).
MAX_TIME_CONSTANT = 1e6
#: Seeds are 32-bit (numpy's and torch's generators both take them).
MAX_SEED = 2**32 - 1


def _time_constant(name, value):
    numbers = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not numbers or not 0 < value[0] <= MAX_TIME_CONSTANT or not 0 <= value[1] <= MAX_TIME_CONSTANT:
        _fail(name, f"[mean, sd] in steps with 0 < mean <= {MAX_TIME_CONSTANT:g} and 0 <= sd <= "
                    f"{MAX_TIME_CONSTANT:g}", value)


_RULES = {
    "model": _choice(MODELS),
    "loss": _choice(LOSSES),
    "decision_threshold": _number(lambda v: 0 < v < 1, "a softmax probability, 0 < p < 1 for training"),
    "training_decision_threshold": _number(lambda v: 0 < v < 1, "a softmax probability, 0 < p < 1", optional=True),
    "entropy_weight": _number(lambda v: v >= 0, "a finite number >= 0"),
    "last_step_weight": _number(lambda v: v >= 0, "a finite number >= 0"),
    "activity_weight": _number(lambda v: v >= 0, "a finite number >= 0"),
    "prune_fraction": _number(lambda v: 0 <= v < 1, "a fraction of each weight matrix, 0 <= f < 1"),
    "prune_epochs": _integer(0),
    "full_readout": _choice(FULL_READOUTS),
    "layers": _integer(1),
    "hidden": _integer(1),
    "dataset": _choice(DATASETS),
    "data_dir": _text(optional=True),
    "download": _flag,
    "window": _choice(WINDOWS),
    "folds": _integer(2),
    "fold": _integer(0),
    "shift_px": _integer(0),
    "rotate_deg": _number(lambda v: 0 <= v <= 180, "an angle in degrees, 0 <= a <= 180"),
    "zoom": _number(lambda v: 0 <= v < 1, "a relative scale, 0 <= z < 1"),
    "drop_events": _number(lambda v: 0 <= v < 1, "a probability, 0 <= p < 1"),
    "bin_ms": _number(lambda v: v > 0, "a bin width in ms > 0", optional=True),
    "input_encoding": _choice(INPUT_ENCODINGS),
    "limit_train": _integer(1, optional=True),
    "limit_val": _integer(1, optional=True),
    "init_from": _text(optional=True),
    "epochs": _integer(1),
    "lr": _number(lambda v: v > 0, "a finite learning rate > 0"),
    "lr_decay": _number(lambda v: 0 < v <= 1, "a factor per epoch, 0 < f <= 1"),
    "lr_schedule": _choice(LR_SCHEDULES),
    "tau_lr_scale": _number(lambda v: v > 0, "a finite factor > 0 on the time constants' learning rate"),
    "weight_decay": _number(lambda v: v >= 0, "a finite number >= 0"),
    "label_smoothing": _number(lambda v: 0 <= v < 1, "a probability, 0 <= p < 1"),
    "ema_decay": _number(lambda v: 0 <= v < 1, "a decay per optimiser step, 0 <= d < 1 (0 = no average)"),
    "batch_size": _integer(1),
    "seed": _integer(0, maximum=MAX_SEED),
    "device": _choice(DEVICES),
    "b0": _number(lambda v: True, "a finite baseline threshold"),
    "beta": _number(lambda v: v >= 0, "a finite adaptation strength >= 0"),
    "tau_m": _time_constant,
    "tau_adp": _time_constant,
    "tau_out": _time_constant,
    "output_layer": _choice(OUTPUT_LAYERS),
    "output_beta": _number(lambda v: v >= 0, "a finite adaptation strength >= 0"),
    "output_tau_adp": _time_constant,
    "bits": _integer(1),
    "dead_zone": _integer(0),
    "surrogate": _text(),
    "chunk_size": _integer(1),
    "backward": _choice(BACKWARDS),
}
