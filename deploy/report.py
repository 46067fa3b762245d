"""The SNN-versus-LSTM comparison report: report.json, report.md and PNG plots.

``write_report(results, out_dir)`` takes one ``ModelResult`` per trained run (for example ALIF
rank coding, ALIF full sequence, LSTM rank coding, LSTM full sequence, each evaluated on the same
dataset split) and writes, atomically (temp file + ``os.replace``) into ``out_dir``:

* ``report.json`` -- everything: accuracy, decision steps, operation counts (totals and per
  inference), energy per inference for every preset (by component, effective and dense), the
  energy ratio of every model to every LSTM, the presets with their constants, sources and
  estimates, and the counting conventions.
* ``report.md`` -- the same numbers as tables a person reads: operations, energy per preset, and
  how many times less energy each model uses than each LSTM.
* ``tradeoff.png`` -- accuracy versus mean decision step (the speed-accuracy trade-off).
* ``energy.png`` -- energy per inference as bars, one group per preset, and operations per inference.
* ``decision_steps.png`` -- the distribution of decision steps per model.
* ``raster_<model>.png`` -- one sample's spikes with its decision step marked, per model given a raster.

Decision steps are 0-based: a sample deciding at step k was simulated for k + 1 steps, and
"time to decision" is ``(k + 1) * dt_ms``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from deploy.counting import OpCounts
from deploy.energy import (
    DAVIES_2018,
    ENERGY_PRESETS,
    HOROWITZ_2014,
    EnergyModel,
    energy_per_inference,
    resolve_preset,
)

MODEL_KINDS = ("snn", "lstm")
CLAIM = (
    "The adaptive SRNN paper (Yin, Corradi and Bohte, Nature Machine Intelligence 2021) reports "
    "more than 100x less energy than classical RNNs on its harder tasks."
)


@dataclass
class ModelResult:
    """One trained run evaluated on one dataset split.

    Attributes:
        name: a short unique label, e.g. ``"ALIF rank coding"``.
        kind: ``"snn"`` or ``"lstm"``.
        accuracy: accuracy at each sample's decision step, in [0, 1].
        decision_steps: ``[N]`` 0-based decision step per counted sample (full-sequence runs:
            ``T - 1`` for every sample).
        counts: operation counts summed over the same N samples, each counted up to and
            including its decision step (``counts.n_steps == sum(decision_steps + 1)``).
        dt_ms: duration of one step in milliseconds.
        accuracy_at_last_step: accuracy when every sample runs to the last step, if measured.
        tradeoff: ``(setting, accuracy, mean_decision_step)`` points over several decision
            thresholds or entropy weights; ``setting`` is a label or number.
        raster: one sample's ``(spikes [T, n_neurons] bool, decision_step)``, if recorded.
        footprint_bytes: parameter memory (``deploy.counting.snn_footprint_bytes`` /
            ``lstm_footprint_bytes``), if known.
        source: where the run was evaluated, e.g. ``"pytorch"``, ``"lava float"``.
    """

    name: str
    kind: str
    accuracy: float
    decision_steps: np.ndarray
    counts: OpCounts
    dt_ms: float = 1.0
    accuracy_at_last_step: float | None = None
    tradeoff: Sequence[tuple[Any, float, float]] = field(default_factory=tuple)
    raster: tuple[np.ndarray, int] | None = None
    footprint_bytes: int | None = None
    source: str = ""

    def validate(self) -> None:
        if not self.name or "|" in self.name or "\n" in self.name:
            raise ValueError(f"expected a nonempty model name without '|' or newlines; got {self.name!r}")
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"expected kind in {MODEL_KINDS} for {self.name!r}; got {self.kind!r}")
        for label, value in (("accuracy", self.accuracy), ("accuracy_at_last_step", self.accuracy_at_last_step)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {label} of {self.name!r} in [0, 1]; got {value}")
        steps = np.asarray(self.decision_steps)
        if steps.ndim != 1 or steps.size == 0 or steps.min() < 0:
            raise ValueError(
                f"expected decision_steps of {self.name!r} as a nonempty 1-d array of steps >= 0; "
                f"got shape {steps.shape}"
            )
        if self.counts.n_samples != steps.size or self.counts.n_steps != int((steps + 1).sum()):
            raise ValueError(
                f"expected counts of {self.name!r} over the same samples as decision_steps "
                f"({steps.size} samples, {int((steps + 1).sum())} steps); got {self.counts.n_samples} "
                f"samples, {self.counts.n_steps} steps"
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


def format_number(value: float | None) -> str:
    """The one number format of report.md: 4 significant digits, '-' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise


def _write_text(path: Path, text: str) -> None:
    def write(temp_name: str) -> None:
        with open(temp_name, "w", encoding="utf-8") as stream:
            stream.write(text)

    _atomic_write(path, write)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "model"


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
    models = [resolve_preset(preset) for preset in (presets if presets is not None else ENERGY_PRESETS)]
    lstm_results = [result for result in results if result.kind == "lstm"]
    energy_totals: dict[str, dict[str, float]] = {}
    entries = []
    for result in results:
        energy = {}
        for model in models:
            effective = energy_per_inference(result.counts, model)
            dense = energy_per_inference(result.counts, model, dense=True)
            energy[model.name] = {**effective.to_dict(), "dense_total_pj": dense.total_pj}
        energy_totals[result.name] = {key: value["total_pj"] for key, value in energy.items()}
        steps = np.asarray(result.decision_steps)
        entries.append(
            {
                "name": result.name,
                "kind": result.kind,
                "source": result.source,
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
                    {"setting": setting, "accuracy": float(accuracy), "mean_decision_step": float(step)}
                    for setting, accuracy, step in result.tradeoff
                ],
            }
        )
    for entry in entries:
        entry["energy_ratio_vs"] = {
            lstm.name: {
                model.name: _ratio(energy_totals[lstm.name][model.name], energy_totals[entry["name"]][model.name])
                for model in models
            }
            for lstm in lstm_results
        }
    return {
        "claim_under_test": CLAIM,
        "energy_ratio_meaning": "LSTM energy per inference / this model's energy per inference (> 1: cheaper)",
        "counting": _counting_conventions(),
        "presets": {model.name: model.to_dict() for model in models},
        "models": entries,
    }


def _ratio(baseline: float, model: float) -> float:
    if model == 0:
        return float("inf") if baseline > 0 else 1.0
    return baseline / model


def _counting_conventions() -> dict[str, str]:
    return {
        "window": "each sample is counted over steps 0..decision_step (early exit stops counting there)",
        "effective_acs": "binary events x fan-out (nonzero weights in the source's column), SNN inputs and spikes",
        "effective_macs": "MACs with a nonzero input operand (LSTM synapses; graded SNN inputs)",
        "dense_synaptic_ops": "every weight entry once per step (NeuroBench dense)",
        "neuron_update_macs": "ALIF 6/neuron/step (membrane 3, adaptation 2, threshold 1), readout 2, "
        "LSTM 3/unit/step (c = f*c + i*g, h = o*tanh(c)); biases folded, comparisons and "
        "sigmoid/tanh not counted as MACs",
        "energy": "effective ACs x ac_pj + effective MACs x mac_pj + neuron updates (x neuron_update_pj, "
        "or their MACs x mac_pj) + spikes x spike_pj; memory access not modelled",
    }


# ------------------------------------------------------------------------------------------
# Markdown

OPERATION_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], float | None]], ...] = (
    ("accuracy (%)", lambda entry: 100 * entry["accuracy"]),
    (
        "accuracy at last step (%)",
        lambda entry: None if entry["accuracy_at_last_step"] is None else 100 * entry["accuracy_at_last_step"],
    ),
    ("mean decision step", lambda entry: entry["mean_decision_step"]),
    ("time to decision (ms)", lambda entry: entry["mean_time_to_decision_ms"]),
    ("ACs / inference", lambda entry: entry["per_inference"]["effective_acs"]),
    ("synaptic MACs / inference", lambda entry: entry["per_inference"]["effective_macs"]),
    ("neuron-update MACs / inference", lambda entry: entry["per_inference"]["neuron_update_macs"]),
    ("dense SynOps / inference", lambda entry: entry["per_inference"]["dense_synaptic_ops"]),
    ("spikes / inference", lambda entry: entry["per_inference"]["spikes"]),
    ("activation sparsity", lambda entry: entry["per_inference"]["activation_sparsity"]),
    ("footprint (bytes)", lambda entry: entry["footprint_bytes"]),
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(data: dict[str, Any], plot_names: Sequence[str] = ()) -> str:
    """report.md from the report data; every number goes through ``format_number``."""
    entries = data["models"]
    presets = list(data["presets"])
    lines = ["# SNN versus LSTM: accuracy, operations and energy per inference", ""]
    lines += [
        "Counts are taken from what each network did, each sample up to and including its decision step; "
        "energy is arithmetic only (memory access, control and static power are not modelled).",
        "",
        "## Operations",
        "",
    ]
    lines += _table(
        ["model", "kind"] + [name for name, _ in OPERATION_COLUMNS],
        [[entry["name"], entry["kind"]] + [format_number(get(entry)) for _, get in OPERATION_COLUMNS] for entry in entries],
    )
    lines += ["", "## Energy per inference (nJ)", ""]
    lines += _table(
        ["model"] + presets,
        [
            [entry["name"]] + [format_number(entry["energy_per_inference"][preset]["total_pj"] / 1000) for preset in presets]
            for entry in entries
        ],
    )
    lstm_names = [entry["name"] for entry in entries if entry["kind"] == "lstm"]
    for lstm_name in lstm_names:
        lines += ["", f"## Times less energy than {lstm_name}", ""]
        lines += _table(
            ["model"] + presets,
            [
                [entry["name"]] + [format_number(entry["energy_ratio_vs"][lstm_name][preset]) for preset in presets]
                for entry in entries
            ],
        )
    lines += ["", "## Against the claim", "", data["claim_under_test"]]
    snn_ratios = [
        (entry["energy_ratio_vs"][lstm_name][preset], entry["name"], lstm_name, preset)
        for entry in entries
        if entry["kind"] == "snn"
        for lstm_name in lstm_names
        for preset in presets
        if entry["energy_ratio_vs"][lstm_name][preset] is not None
    ]
    if snn_ratios:
        best = max(snn_ratios)
        worst = min(snn_ratios)
        lines += [
            f"Measured here: from {format_number(worst[0])}x ({worst[1]} vs {worst[2]}, {worst[3]}) "
            f"to {format_number(best[0])}x ({best[1]} vs {best[2]}, {best[3]}) less energy "
            "(below 1 means the SNN used more).",
        ]
    else:
        lines += ["Measured here: no SNN and LSTM pair to compare."]
    lines += ["", "## Energy constants", ""]
    references = {HOROWITZ_2014: "[Horowitz 2014]", DAVIES_2018: "[Davies 2018]"}
    for preset, model in data["presets"].items():
        neuron = model["neuron_update_pj"]
        lines.append(
            f"- **{preset}**: MAC {model['mac_pj']:g} pJ, AC {model['ac_pj']:g} pJ, neuron update "
            f"{'charged as its MACs' if neuron is None else f'{neuron:g} pJ'}, spike {model['spike_pj']:g} pJ."
        )
        for constant, source in model["sources"].items():
            for citation, key in references.items():
                source = source.replace(citation, key)
            lines.append(f"  - {constant}, source: {source}")
        for constant, assumption in model["estimates"].items():
            lines.append(f"  - {constant}, ASSUMED (not a published figure): {assumption}")
    used = [citation for citation in references if any(
        citation in source for model in data["presets"].values() for source in model["sources"].values())]
    lines += [""] + [f"{references[citation]} {citation}." for citation in used]
    lines += ["", "## How operations are counted", ""]
    lines += [f"- {key}: {text}" for key, text in data["counting"].items()]
    if plot_names:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


def parse_markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Tables of a report.md by section heading: a list of rows as {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = None
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].strip(), None
            continue
        if not line.startswith("|") or heading is None:
            header = None if not line.startswith("|") else header
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables[heading] = []
        elif set(line.replace("|", "").strip()) <= {"-"}:
            continue
        else:
            tables[heading].append(dict(zip(header, cells)))
    return tables


# ------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg)


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    _atomic_write(path, lambda temp_name: figure.savefig(temp_name, format="png", dpi=110, bbox_inches="tight"))


def _plot_tradeoff(plt, results: Sequence[ModelResult], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for index, result in enumerate(results):
        color = f"C{index}"
        marker = "o" if result.kind == "snn" else "s"
        if result.tradeoff:
            points = sorted(result.tradeoff, key=lambda point: point[2])
            axis.plot(
                [point[2] for point in points],
                [100 * point[1] for point in points],
                marker=marker, color=color, alpha=0.7, label=f"{result.name} (sweep)",
            )
            for setting, accuracy, step in points:
                axis.annotate(str(setting), (step, 100 * accuracy), textcoords="offset points",
                              xytext=(4, 4), fontsize=7, color=color)
        axis.scatter([result.mean_decision_step], [100 * result.accuracy], s=140, marker=marker,
                     color=color, edgecolor="black", zorder=3, label=f"{result.name} (evaluated)")
    axis.set_xlabel(f"mean decision step (steps of {results[0].dt_ms:g} ms)")
    axis.set_ylabel("accuracy (%)")
    axis.set_title("Speed-accuracy trade-off: accuracy versus mean decision step")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    _save(figure, path)
    plt.close(figure)


def _plot_energy(plt, data: dict[str, Any], path: Path) -> None:
    entries = data["models"]
    presets = list(data["presets"])
    figure, (energy_axis, ops_axis) = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / len(entries)
    positions = np.arange(len(presets))
    for index, entry in enumerate(entries):
        values = [entry["energy_per_inference"][preset]["total_pj"] / 1000 for preset in presets]
        bars = energy_axis.bar(positions + index * width, values, width, label=entry["name"],
                               color=f"C{index}", hatch=None if entry["kind"] == "snn" else "//")
        for bar, value in zip(bars, values):
            energy_axis.annotate(format_number(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                 ha="center", va="bottom", fontsize=6, rotation=90)
    energy_axis.set_xticks(positions + width * (len(entries) - 1) / 2, presets)
    energy_axis.set_yscale("log")
    bottom, top = energy_axis.get_ylim()
    energy_axis.set_ylim(bottom, top * 6)  # room for the rotated labels of the tallest bars
    energy_axis.set_ylabel("energy per inference (nJ, log scale)")
    energy_axis.set_title("Energy per inference by preset (hatched: LSTM)")
    energy_axis.legend(fontsize=7)
    kinds = [("ACs", "effective_acs"), ("synaptic MACs", "effective_macs"),
             ("neuron-update MACs", "neuron_update_macs"), ("dense SynOps", "dense_synaptic_ops")]
    positions = np.arange(len(kinds))
    for index, entry in enumerate(entries):
        values = [max(entry["per_inference"][key], 0.0) for _, key in kinds]
        ops_axis.bar(positions + index * width, [value if value > 0 else np.nan for value in values], width,
                     label=entry["name"], color=f"C{index}", hatch=None if entry["kind"] == "snn" else "//")
    ops_axis.set_xticks(positions + width * (len(entries) - 1) / 2, [label for label, _ in kinds])
    ops_axis.set_yscale("log")
    ops_axis.set_ylabel("operations per inference (log scale; zero not drawn)")
    ops_axis.set_title("Operations per inference")
    ops_axis.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def _plot_decision_steps(plt, results: Sequence[ModelResult], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    last = max(int(np.max(result.decision_steps)) for result in results)
    bins = np.arange(0, last + 2) - 0.5 if last < 60 else np.linspace(-0.5, last + 0.5, 41)
    # side-by-side bars, so models that decide at the same step (full sequence) stay visible
    axis.hist([np.asarray(result.decision_steps) for result in results], bins=bins,
              color=[f"C{index}" for index in range(len(results))],
              label=[f"{result.name} (mean {result.mean_decision_step:.1f})" for result in results])
    axis.set_xlabel("decision step")
    axis.set_ylabel("samples")
    axis.set_title("When each sample decided")
    axis.legend(fontsize=7)
    _save(figure, path)
    plt.close(figure)


def _plot_raster(plt, result: ModelResult, path: Path) -> None:
    spikes, decision_step = result.raster
    spikes = np.asarray(spikes)
    times, neurons = np.nonzero(spikes)
    figure, axis = plt.subplots(figsize=(9, 4.5))
    counted = times <= decision_step
    # marker height about one neuron row of the ~250 pt tall axis
    size = float(np.clip((250.0 / max(spikes.shape[1], 1)) ** 2, 1.0, 150.0))
    axis.scatter(times[counted], neurons[counted], s=size, color="black", marker="|", label="counted spikes")
    axis.scatter(times[~counted], neurons[~counted], s=size, color="0.6", marker="|",
                 label="after the decision (not counted)")
    axis.axvline(decision_step, color="red", linewidth=2, label=f"decision step {decision_step}")
    axis.axvspan(decision_step + 0.5, spikes.shape[0] - 0.5, color="red", alpha=0.06)
    axis.set_xlim(-0.5, spikes.shape[0] - 0.5)
    axis.set_ylim(-0.5, spikes.shape[1] - 0.5)
    axis.set_xlabel(f"step ({result.dt_ms:g} ms each)")
    axis.set_ylabel("neuron")
    axis.set_title(f"{result.name}: spikes of one sample ({int(counted.sum())} before the decision)")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(figure, path)
    plt.close(figure)


def write_report(
    results: Sequence[ModelResult],
    out_dir: str | os.PathLike,
    presets: Sequence[str | EnergyModel] | None = None,
) -> dict[str, Path]:
    """Write report.json, report.md and the PNGs into ``out_dir``; return their paths by name.

    Keys of the returned dict: ``"json"``, ``"markdown"``, ``"tradeoff"``, ``"energy"``,
    ``"decision_steps"``, and ``"raster_<slug of model name>"`` for each model with a raster.
    """
    data = build_report_data(results, presets)
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    plt = _figure()
    paths: dict[str, Path] = {}
    paths["tradeoff"] = out_path / "tradeoff.png"
    _plot_tradeoff(plt, results, paths["tradeoff"])
    paths["energy"] = out_path / "energy.png"
    _plot_energy(plt, data, paths["energy"])
    paths["decision_steps"] = out_path / "decision_steps.png"
    _plot_decision_steps(plt, results, paths["decision_steps"])
    for result in results:
        if result.raster is not None:
            key = f"raster_{_slug(result.name)}"
            paths[key] = out_path / f"{key}.png"
            _plot_raster(plt, result, paths[key])
    data["plots"] = {key: path.name for key, path in paths.items()}
    paths["json"] = out_path / "report.json"
    _write_text(paths["json"], json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")
    paths["markdown"] = out_path / "report.md"
    plot_names = [path.name for path in paths.values() if path.suffix == ".png"]
    _write_text(paths["markdown"], render_markdown(data, plot_names))
    return paths


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def summary_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per model (name, accuracy, mean decision step, energy per preset in pJ)."""
    return [
        {
            "name": entry["name"],
            "accuracy": entry["accuracy"],
            "mean_decision_step": entry["mean_decision_step"],
            **{f"energy_pj_{preset}": value["total_pj"] for preset, value in entry["energy_per_inference"].items()},
        }
        for entry in data["models"]
    ]
