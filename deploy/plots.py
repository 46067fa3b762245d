"""The report's figures (matplotlib, Agg backend), each written atomically as a PNG.

* ``tradeoff.png`` -- accuracy versus mean decision step (the speed-accuracy trade-off);
* ``energy.png`` -- energy per inference as bars, one group per preset and counting convention, and
  operations per inference;
* ``frontier.png`` -- energy per inference against accuracy, each family's Pareto front per
  counting convention, with the matched-accuracy pairs (``deploy.frontier``);
* ``decision_steps.png`` -- the distribution of decision steps per model;
* ``raster_<model>.png`` -- one sample's spikes with its decision step marked.

:func:`write_plots` takes the ``ModelResult`` list and the report data of ``deploy.report``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .files import write_atomic


def format_number(value: float | None) -> str:
    """The one number format of the report: 4 significant digits, '-' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    write_atomic(path, lambda temp: figure.savefig(temp, format="png", dpi=110, bbox_inches="tight"))


def _plot_tradeoff(plt, results: Sequence[Any], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for index, result in enumerate(results):
        color = f"C{index}"
        marker = "o" if result.family == "snn" else "s"
        if result.tradeoff:
            points = sorted(result.tradeoff, key=lambda point: point.mean_decision_step)
            axis.plot(
                [point.mean_decision_step for point in points],
                [100 * point.accuracy for point in points],
                marker=marker, color=color, alpha=0.7, label=f"{result.name} (sweep)",
            )
            for setting, accuracy, step, _ in points:
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


def _plot_energy(plt, data: dict[str, Any], path: Path, conventions: Sequence[str]) -> None:
    entries = data["models"]
    columns = [(convention, preset) for convention in conventions for preset in data["presets"]]
    figure, (energy_axis, ops_axis) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(entries)
    positions = np.arange(len(columns))
    for index, entry in enumerate(entries):
        values = [entry["energy_per_inference"][convention][preset]["total_pj"] / 1000
                  for convention, preset in columns]
        bars = energy_axis.bar(positions + index * width, values, width, label=entry["name"],
                               color=f"C{index}", hatch=None if entry["family"] == "snn" else "//")
        for bar, value in zip(bars, values):
            energy_axis.annotate(format_number(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                 ha="center", va="bottom", fontsize=6, rotation=90)
    energy_axis.set_xticks(positions + width * (len(entries) - 1) / 2,
                           [f"{preset}\n{convention}" for convention, preset in columns], fontsize=7)
    energy_axis.set_yscale("log")
    bottom, top = energy_axis.get_ylim()
    energy_axis.set_ylim(bottom, top * 6)  # room for the rotated labels of the tallest bars
    energy_axis.set_ylabel("energy per inference (nJ, log scale)")
    energy_axis.set_title("Energy per inference by preset and counting convention (hatched: RNN)")
    energy_axis.legend(fontsize=7)
    kinds = [("ACs\n(NeuroBench)", "effective_acs"), ("MACs\n(NeuroBench)", "effective_macs"),
             ("ACs\n(event-driven)", "event_driven_acs"), ("MACs\n(event-driven)", "event_driven_macs"),
             ("neuron-update\nMACs", "neuron_update_macs")]
    positions = np.arange(len(kinds))
    for index, entry in enumerate(entries):
        values = [max(entry["per_inference"][key], 0.0) for _, key in kinds]
        ops_axis.bar(positions + index * width, [value if value > 0 else np.nan for value in values], width,
                     label=entry["name"], color=f"C{index}", hatch=None if entry["family"] == "snn" else "//")
    ops_axis.set_xticks(positions + width * (len(entries) - 1) / 2, [label for label, _ in kinds], fontsize=7)
    ops_axis.set_yscale("log")
    ops_axis.set_ylabel("operations per inference (log scale; zero not drawn)")
    ops_axis.set_title("Operations per inference")
    ops_axis.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


FRONTIER_PRESETS = ("cmos45_fp32", "loihi")


def _plot_frontier(plt, data: dict[str, Any], path: Path, conventions: Sequence[str]) -> None:
    presets = [preset for preset in FRONTIER_PRESETS if preset in data["presets"]] or list(data["presets"])[:1]
    figure, axes = plt.subplots(1, len(presets), figsize=(7 * len(presets), 5), squeeze=False)
    styles = {convention: style for convention, style in zip(conventions, ("-", "--", ":"))}
    colors, names = {"snn": "C0", "rnn": "C3"}, {"snn": "SNN", "rnn": "RNN"}
    for axis, preset in zip(axes[0], presets):
        for convention in conventions:
            result = data["frontier"][convention][preset]
            for family, front in result["fronts"].items():
                if not front:
                    continue
                axis.plot([100 * p["accuracy"] for p in front], [p["energy_pj"] / 1000 for p in front],
                          styles[convention], marker="o", color=colors[family], markersize=4,
                          label=f"{names[family]} front, {convention}")
            for matched in result["matched"].values():
                pair = [matched["snn"], matched["rnn"]]
                if None not in pair:
                    axis.plot([100 * p["accuracy"] for p in pair], [p["energy_pj"] / 1000 for p in pair],
                              color="0.5", linewidth=0.8, linestyle=styles[convention])
                    axis.annotate(f"{format_number(matched['ratio'])}x",
                                  (100 * pair[1]["accuracy"], pair[1]["energy_pj"] / 1000 * 0.7),
                                  fontsize=7, color="0.3")
        axis.set_yscale("log")
        axis.set_xlabel("accuracy (%)")
        axis.set_ylabel("energy per inference (nJ, log scale)")
        axis.set_title(f"Energy against accuracy, {preset} (Pareto fronts; grey: matched pairs)", fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def _plot_decision_steps(plt, results: Sequence[Any], path: Path) -> None:
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


def _plot_raster(plt, result: Any, path: Path) -> None:
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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "model"


def write_plots(results: Sequence[Any], data: dict[str, Any], out_dir: Path,
                conventions: Sequence[str] = ("event-driven", "neurobench")) -> dict[str, Path]:
    """Every figure of the report into ``out_dir``; returns their paths by name.

    Keys: ``"tradeoff"``, ``"energy"``, ``"frontier"``, ``"decision_steps"``, and ``"raster_<slug of model name>"``
    for each model with a raster. ``results`` are ``deploy.report.ModelResult``; ``data`` is
    ``deploy.report.build_report_data``'s.
    """
    plt = _figure()
    paths: dict[str, Path] = {}
    paths["tradeoff"] = out_dir / "tradeoff.png"
    _plot_tradeoff(plt, results, paths["tradeoff"])
    paths["energy"] = out_dir / "energy.png"
    _plot_energy(plt, data, paths["energy"], conventions)
    paths["frontier"] = out_dir / "frontier.png"
    _plot_frontier(plt, data, paths["frontier"], conventions)
    paths["decision_steps"] = out_dir / "decision_steps.png"
    _plot_decision_steps(plt, results, paths["decision_steps"])
    for result in results:
        if result.raster is not None:
            key = f"raster_{_slug(result.name)}"
            paths[key] = out_dir / f"{key}.png"
            _plot_raster(plt, result, paths[key])
    return paths
