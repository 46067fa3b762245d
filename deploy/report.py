"""The SNN-versus-RNN (LSTM, GRU) comparison report: report.json, report.md and PNG plots.

``write_report(results, out_dir)`` takes one ``ModelResult`` per trained run (for example ALIF
rank coding, IR-SNN rank coding, LSTM rank coding, GRU full sequence, each evaluated on the same
dataset split) and writes, as one folder replaced whole (``deploy.files.write_folder``), ``out_dir``:

* ``report.json`` -- everything: accuracy, decision steps, operation counts (totals and per
  inference), energy per inference for every counting convention and preset (by component), the
  energy ratio of every model to every RNN (LSTM, GRU) under each, the presets with their constants, sources
  and estimates, and the counting conventions.
* ``report.md`` -- the same numbers as tables a person reads: operations, energy per preset, and
  how many times less energy each model uses than each RNN.
* the figures of ``deploy.plots`` (trade-off, energy, decision steps, rasters) as PNG.

Decision steps are 0-based: a sample deciding at step k was simulated for k + 1 steps, and
"time to decision" is ``(k + 1) * dt_ms``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from .counting import CONVENTIONS, REPORT_CONVENTIONS, OpCounts
from .energy import ENERGY_PRESETS, EnergyModel, energy_per_inference, energy_ratio, resolve_preset
from .files import MARKER_FILE, claim_folder, write_folder, write_json, write_text
from .frontier import FAMILIES, frontier
from .markdown import render_markdown
from .plots import write_plots

CLAIM = (
    "The adaptive SRNN paper (Yin, Corradi and Bohte, Nature Machine Intelligence 2021) reports "
    "more than 100x less energy than classical RNNs on its harder tasks."
)
CLAIM_CONVENTIONS = {
    "event-driven": (
        "Yin et al. (2021) publish no counting code; their text charges the SNN's synaptic operations as "
        "accumulates per spike and the RNN's as multiply-accumulates over its weights, which is this convention "
        "as far as it is described: their >100x compares with the event-driven rows."
    ),
    "neurobench": (
        "Ponghiran and Roy (AAAI 2022, public code) count their GRU baseline's input products only for nonzero "
        "inputs and its recurrent products dense, and their SNN's products per nonzero input and output: for "
        "the ALIF network and the LSTM here that is the NeuroBench rows (the LSTM's hidden state is counted "
        "dense in both), so their 10x compares with these."
    ),
}


class OperatingPoint(NamedTuple):
    """A model read at another setting (a decision threshold): its accuracy, mean decision step
    and, where known, the counts of that reading (each sample cut at its decision under it)."""

    setting: Any
    accuracy: float
    mean_decision_step: float
    counts: OpCounts | None = None


@dataclass
class ModelResult:
    """One trained run evaluated on one dataset split.

    Attributes:
        name: a short unique label, e.g. ``"ALIF rank coding"``.
        family: ``"snn"`` (ALIF, IR-SNN) or ``"rnn"`` (LSTM, GRU) (:data:`deploy.frontier.FAMILIES`).
        accuracy: accuracy at each sample's decision step, in [0, 1].
        decision_steps: ``[N]`` 0-based decision step per counted sample (full-sequence runs:
            ``T - 1`` for every sample).
        counts: operation counts summed over the same N samples, each counted up to and
            including its decision step (``counts.sample_steps == sum(decision_steps + 1)``).
        dt_ms: duration of one step in milliseconds.
        accuracy_at_last_step: accuracy when every sample runs to the last step, if measured.
        tradeoff: :class:`OperatingPoint` s over several decision thresholds or entropy weights
            (``setting`` is a label or number); those with counts join the energy frontier
            (``deploy.frontier``).
        raster: one sample's ``(spikes [T, n_neurons] bool, decision_step)``, if recorded.
        footprint_bytes: parameter memory (``deploy.footprint.snn_footprint_bytes`` /
            ``recurrent_footprint_bytes``), if known.
        source: where the run was evaluated, e.g. ``"pytorch"``, ``"lava float"``.
        dataset, split: the data the samples came from; every row of a report must share them
            and the sample count (a ratio between models evaluated on different data means nothing).
        weights_id: the identifier of the trained weights evaluated, if known.
        connection_sparsity: the fraction of the weight matrices' entries that are zero, if known.
        firing_rate: spikes per hidden neuron per simulated step (spiking networks), if known.
    """

    name: str
    family: str
    accuracy: float
    decision_steps: np.ndarray
    counts: OpCounts
    dt_ms: float = 1.0
    accuracy_at_last_step: float | None = None
    tradeoff: Sequence[OperatingPoint] = field(default_factory=tuple)
    raster: tuple[np.ndarray, int] | None = None
    footprint_bytes: int | None = None
    source: str = ""
    dataset: str = ""
    split: str = ""
    weights_id: str | None = None
    connection_sparsity: float | None = None
    firing_rate: float | None = None

    def __post_init__(self) -> None:
        self.tradeoff = tuple(OperatingPoint(*point) for point in self.tradeoff)

    def validate(self) -> None:
        if not self.name or "|" in self.name or "\n" in self.name:
            raise ValueError(f"expected a nonempty model name without '|' or newlines; got {self.name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"expected family in {FAMILIES} for {self.name!r}; got {self.family!r}")
        for label, value in (("accuracy", self.accuracy), ("accuracy_at_last_step", self.accuracy_at_last_step)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {label} of {self.name!r} in [0, 1]; got {value}")
        steps = np.asarray(self.decision_steps)
        if steps.ndim != 1 or steps.size == 0 or steps.min() < 0:
            raise ValueError(
                f"expected decision_steps of {self.name!r} as a nonempty 1-d array of steps >= 0; "
                f"got shape {steps.shape}"
            )
        if self.counts.n_samples != steps.size or self.counts.sample_steps != int((steps + 1).sum()):
            raise ValueError(
                f"expected counts of {self.name!r} over the same samples as decision_steps "
                f"({steps.size} samples, {int((steps + 1).sum())} steps); got {self.counts.n_samples} "
                f"samples, {self.counts.sample_steps} steps"
            )
        if not self.dt_ms > 0:
            raise ValueError(f"expected dt_ms > 0 for {self.name!r}; got {self.dt_ms}")
        if self.raster is not None:
            spikes, decision_step = self.raster
            spikes = np.asarray(spikes)
            if spikes.ndim != 2 or not 0 <= decision_step < spikes.shape[0]:
                raise ValueError(
                    f"expected raster of {self.name!r} as (spikes [T, n_neurons], decision step in [0, T)); "
                    f"got shape {spikes.shape}, step {decision_step}"
                )

    @property
    def mean_decision_step(self) -> float:
        return float(np.mean(self.decision_steps))


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_report_data(
    results: Sequence[ModelResult], presets: Sequence[str | EnergyModel] | None = None
) -> dict[str, Any]:
    """Everything that report.json holds, as plain data (no files written)."""
    if not results:
        raise ValueError("expected at least one ModelResult; got none")
    names = [result.name for result in results]
    if len(set(names)) != len(names):
        raise ValueError(f"expected unique model names; got {names}")
    for result in results:
        result.validate()
    evaluated_on = {(result.dataset, result.split, len(result.decision_steps)) for result in results}
    if len(evaluated_on) > 1:
        described = "; ".join(f"{r.name}: {r.dataset or '?'} {r.split or '?'}, {len(r.decision_steps)} samples"
                              for r in results)
        raise ValueError(f"expected every model evaluated on the same samples (dataset, split and count); "
                         f"got {described}")
    models = [resolve_preset(preset) for preset in (presets if presets is not None else ENERGY_PRESETS)]
    rnn_results = [result for result in results if result.family == "rnn"]
    entries = []
    for result in results:
        energy = {convention: {model.name: energy_per_inference(result.counts, model, convention).to_dict()
                               for model in models} for convention in CONVENTIONS}
        steps = np.asarray(result.decision_steps)
        entries.append(
            {
                "name": result.name,
                "family": result.family,
                "source": result.source,
                "weights_id": result.weights_id,
                "connection_sparsity": result.connection_sparsity,
                "firing_rate": result.firing_rate,
                "dataset": result.dataset,
                "split": result.split,
                "accuracy": float(result.accuracy),
                "accuracy_at_last_step": result.accuracy_at_last_step,
                "n_samples": int(steps.size),
                "dt_ms": float(result.dt_ms),
                "mean_decision_step": float(steps.mean()),
                "median_decision_step": float(np.median(steps)),
                "max_decision_step": int(steps.max()),
                "mean_time_to_decision_ms": float((steps.mean() + 1) * result.dt_ms),
                "footprint_bytes": result.footprint_bytes,
                "counts_total": result.counts.to_dict(),
                "per_inference": result.counts.per_inference(),
                "energy_per_inference": energy,
                "tradeoff": [
                    {"setting": point.setting, "accuracy": float(point.accuracy),
                     "mean_decision_step": float(point.mean_decision_step)}
                    for point in result.tradeoff
                ],
            }
        )
    for entry, result in zip(entries, results):
        entry["energy_ratio_vs"] = {
            rnn.name: {convention: {model.name: energy_ratio(rnn.counts, result.counts, model, convention)
                                    for model in models} for convention in CONVENTIONS}
            for rnn in rnn_results
        }
    return {
        "frontier": _frontiers(results, models),
        "claim_under_test": CLAIM,
        "claim_conventions": CLAIM_CONVENTIONS,
        "energy_ratio_meaning": "RNN (LSTM or GRU) energy per inference / this model's energy per inference (> 1: cheaper), "
                                "both counted by the same convention",
        "conventions": CONVENTIONS,
        "counting": _counting_conventions(),
        "presets": {model.name: model.to_dict() for model in models},
        "models": entries,
    }


def _frontiers(results: Sequence[ModelResult], models: Sequence[EnergyModel]) -> dict[str, Any]:
    """``deploy.frontier.frontier`` per convention and preset, over every result's evaluated
    point and its counted operating points."""
    readings = []
    for result in results:
        readings.append((result, "evaluated", result.accuracy, result.mean_decision_step, result.counts))
        readings += [(result, point.setting, point.accuracy, point.mean_decision_step, point.counts)
                     for point in result.tradeoff if point.counts is not None]
    return {
        convention: {
            model.name: frontier([
                {"family": result.family, "model": result.name, "setting": setting, "accuracy": float(accuracy),
                 "mean_decision_step": float(step),
                 "energy_pj": energy_per_inference(counts, model, convention).total_pj}
                for result, setting, accuracy, step, counts in readings
            ])
            for model in models
        }
        for convention in CONVENTIONS
    }


def _counting_conventions() -> dict[str, str]:
    return {
        "window": "each sample is counted over steps 0..decision_step (early exit stops counting there)",
        "effective_acs": "binary events x fan-out (nonzero weights in the source's column), SNN inputs and spikes",
        "effective_macs": "MACs with a nonzero input operand (LSTM and GRU synapses; graded SNN inputs and IR-SNN graded spikes)",
        "event_driven_acs": "every input event (k for a bin of k events) and every binary spike x fan-out",
        "event_driven_macs": "every weight entry once per step for the LSTM and GRU; IR-SNN graded spikes x fan-out; none for the ALIF network",
        "dense_synaptic_ops": "every weight entry once per step (NeuroBench dense)",
        "neuron_update_macs": "ALIF 6/neuron/step (membrane 3, adaptation 2, threshold 1), IR-SNN 4/neuron/step "
        "((1-z)*c, z*h, v/delta, q*delta), readout 2, LSTM 3/unit/step (c = f*c + i*g, h = o*tanh(c)), "
        "GRU 3/unit/step (r*h_n, (1-z)*n, z*h); biases folded, comparisons and sigmoid/tanh not counted as MACs",
        "energy": "ACs x ac_pj + MACs x mac_pj (the synaptic operations of the convention) + neuron updates "
        "(x neuron_update_pj, or their MACs x mac_pj) + spikes x spike_pj; memory access not modelled",
    }


REPORT_FILES = ("report.json", "report.md")


def is_report_folder(folder: Path) -> bool:
    """True when ``folder`` holds only what :func:`write_report` writes (its marker, report files and PNGs)."""
    return all(item.is_file() and (item.name in (*REPORT_FILES, MARKER_FILE) or item.suffix == ".png")
               for item in folder.iterdir())


def write_report(
    results: Sequence[ModelResult],
    out_dir: str | os.PathLike,
    presets: Sequence[str | EnergyModel] | None = None,
    *,
    data: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write report.json, report.md and the PNGs (``deploy.plots``) as one folder ``out_dir``; return their paths.

    ``data`` is ``build_report_data(results, presets)``, computed here unless the caller already
    has it. The folder is replaced whole (``deploy.files.write_folder``): a reader sees the old
    report or the new one, never a mix. Keys of the returned dict: ``"json"``, ``"markdown"`` and
    ``deploy.plots.write_plots``'s.
    """
    data = data if data is not None else build_report_data(results, presets)
    out_path = Path(out_dir)

    def fill(folder: Path) -> dict:
        claim_folder(folder, "report")
        plots = {key: path.name for key, path in write_plots(results, data, folder, REPORT_CONVENTIONS).items()}
        full = dict(data, plots=plots)
        write_json(folder / "report.json", _clean(full))
        write_text(folder / "report.md", render_markdown(full, list(plots.values())))
        return {**plots, "json": "report.json", "markdown": "report.md"}

    names = write_folder(out_path, fill, replaceable=is_report_folder)
    return {key: out_path / name for key, name in names.items()}


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
