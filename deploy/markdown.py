"""report.md: the report's data (``deploy.report.build_report_data``) as tables a person reads.

Every number goes through ``deploy.plots.format_number``; nothing here computes a figure that is
not in the data, so report.md and report.json cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .counting import REPORT_CONVENTIONS
from .energy import DAVIES_2018, HOROWITZ_2014
from .frontier import TARGETS
from .plots import format_number

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
    ("connection sparsity", lambda entry: entry["connection_sparsity"]),
    ("firing rate (spikes / neuron / step)", lambda entry: entry["firing_rate"]),
    ("footprint (bytes)", lambda entry: entry["footprint_bytes"]),
)


_MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+!|~&"


def escape(text: Any) -> str:
    """``text`` shown literally in Markdown (and HTML): its special characters escaped. Names come from
    files a user can edit, so they are never written into report.md as markup."""
    return "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in " ".join(str(text).split()))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(data: dict[str, Any], plot_names: Sequence[str] = ()) -> str:
    """report.md from the report data; every number goes through ``format_number``."""
    entries = data["models"]
    presets = list(data["presets"])
    lines = ["# SNN versus RNN (LSTM, GRU): accuracy, operations and energy per inference", ""]
    lines += [
        "Counts are taken from what each network did, each sample up to and including its decision step; "
        "energy is arithmetic only (memory access, control and static power are not modelled).",
        "",
        "## Operations",
        "",
    ]
    lines += _table(
        ["model", "family", "data"] + [name for name, _ in OPERATION_COLUMNS],
        [[escape(entry["name"]), entry["family"], escape(f"{entry['dataset'] or '-'} {entry['split']}".strip())]
         + [format_number(get(entry)) for _, get in OPERATION_COLUMNS] for entry in entries],
    )
    columns = [(convention, preset) for convention in REPORT_CONVENTIONS for preset in presets]
    header = ["model"] + [f"{preset}, {convention}" for convention, preset in columns]
    lines += ["", "## Energy per inference (nJ)", "",
              "Each column counts synaptic operations by one convention (see \"How operations are counted\").", ""]
    lines += _table(header, [
        [escape(entry["name"])] + [format_number(entry["energy_per_inference"][convention][preset]["total_pj"] / 1000)
                           for convention, preset in columns]
        for entry in entries
    ])
    rnn_names = [entry["name"] for entry in entries if entry["family"] == "rnn"]
    for rnn_name in rnn_names:
        lines += ["", f"## Times less energy than {escape(rnn_name)}", ""]
        lines += _table(header, [
            [escape(entry["name"])] + [format_number(entry["energy_ratio_vs"][rnn_name][convention][preset])
                               for convention, preset in columns]
            for entry in entries
        ])
    lines += ["", "## Against the claim", "", data["claim_under_test"], ""]
    for convention in REPORT_CONVENTIONS:
        snn_ratios = [
            (entry["energy_ratio_vs"][rnn_name][convention][preset], entry["name"], rnn_name, preset)
            for entry in entries
            if entry["family"] == "snn"
            for rnn_name in rnn_names
            for preset in presets
            if entry["energy_ratio_vs"][rnn_name][convention][preset] is not None
        ]
        lines.append(f"- **{convention}**: {data['claim_conventions'][convention]}")
        if snn_ratios:
            best, worst = max(snn_ratios), min(snn_ratios)
            lines.append(f"  Measured here: from {format_number(worst[0])}x ({escape(worst[1])} vs {escape(worst[2])}, "
                         f"{worst[3]}) to {format_number(best[0])}x ({escape(best[1])} vs {escape(best[2])}, {best[3]}) "
                         "less energy "
                         "(below 1 means the SNN used more).")
        else:
            lines.append("  Measured here: no SNN and RNN pair to compare.")
    lines += ["", "These ratios pair models whatever their accuracy; the next section pairs them at equal accuracy."]
    lines += ["", "## Energy at matched accuracy", "", MATCHED_EXPLAINED, ""]
    lines += _table(
        ["convention", "preset", "matched at", "SNN point", "RNN point", "times less energy"],
        [[convention, preset, f"{format_number(100 * matched['target_accuracy'])} % ({TARGETS[target]})",
          _point_text(matched["snn"]), _point_text(matched["rnn"]), format_number(matched["ratio"])]
         for convention in REPORT_CONVENTIONS for preset in presets
         for target, matched in data["frontier"][convention][preset]["matched"].items()],
    )
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
    lines += ["", "## How operations are counted", "", "Conventions:", ""]
    lines += [f"- **{name}**: {text}" for name, text in data["conventions"].items()]
    lines += ["", "Counts:", ""]
    lines += [f"- {key}: {text}" for key, text in data["counting"].items()]
    if plot_names:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


MATCHED_EXPLAINED = (
    "Each family's points are its runs at their own decision threshold and each run read at the other "
    "thresholds of the trade-off; on each family's Pareto front the cheapest point at least as accurate as the "
    "target is taken (measured points only, no interpolation). The ratio is the RNN's energy there over the "
    "SNN's; '-' means a family never reaches the target. With a few hundred test samples, accuracies closer "
    "than about 2 points are within noise."
)


def _point_text(point: Mapping[str, Any] | None) -> str:
    if point is None:
        return "not reached"
    setting = point["setting"] if point["setting"] == "evaluated" else f"threshold {point['setting']}"
    return (f"{escape(point['model'])} ({setting}): {format_number(100 * point['accuracy'])} %, "
            f"{format_number(point['energy_pj'] / 1000)} nJ")
