"""Trained runs and Lava results as ``deploy.report.ModelResult``: the inputs of the report.

For each trained run (:func:`analyse_run`), on one split: accuracy at each sample's decision
(rank-coded runs: the early-exit rule at the run's decision threshold; full-sequence runs: the last
step, which is what they were trained to output), accuracy at the last step, the speed-accuracy
trade-off over several thresholds, and operation counts from the recorded activity cut at each
decision (``deploy.counting``). A Lava result (:func:`lava_result`, from ``rc-snn lava``'s JSON or
:func:`rc_snn.pipeline.lava_parity.lava_versus_pytorch`'s summary) carries its own counts.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from deploy.activity import activities_from_batch
from deploy.baselines import count_recurrent_from_activity, recurrent_weights
from deploy.files import FolderLock, check_folder_destination
from deploy.counting import EMPTY_COUNTS, OpCounts, count_snn, fan_out
from deploy.footprint import recurrent_footprint_bytes, snn_footprint_bytes
from deploy.frontier import TARGETS
from deploy.plots import format_number
from deploy.report import (REPORT_CONVENTIONS, ModelResult, OperatingPoint, build_report_data, is_report_folder,
                           write_report)

from ..training.early_exit import read_last_step, select_decision
from ..training.config import SPIKING_MODELS
from ..training.evaluation import burn_in_of, time_first
from ..training.losses import per_step_accuracy
from ..training.prune import connection_sparsity
from ..training.run import TrainedRun, load_run, load_split
from .export import export_model
from .recording import record_run

MODEL_LABELS = {"alif": "ALIF", "irsnn": "IR-SNN", "lstm": "LSTM", "gru": "GRU"}
TRADEOFF_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def run_label(config) -> str:
    """The name of a run's model in tables: ``"ALIF rank coding"``, ``"LSTM full sequence"``, ``"GRU per step"``."""
    training = {"rank": "rank coding", "full": "full sequence", "per-step": "per step"}[config.loss]
    return f"{MODEL_LABELS[config.model]} {training}"


@torch.no_grad()
def analyse_run(
    run: TrainedRun, split: str = "test", *, limit: Optional[int] = None, data_dir: Optional[str] = None,
    thresholds: Sequence[float] = TRADEOFF_THRESHOLDS, batch_size: int = 250, name: Optional[str] = None,
    progress: bool = True,
) -> ModelResult:
    """One run's :class:`deploy.report.ModelResult` on ``split`` (PyTorch, CPU).

    A per-step task (a label at every step, ``qtdb``) is counted over whole recordings (an
    "inference" is then a recording: divide by its steps for the energy per step) and scored by its
    per-step accuracy (``rc_snn.training.losses.per_step_accuracy``); it has no decision thresholds
    to trade.
    """
    config, info = run.config, run.info
    burn_in = burn_in_of(info)
    if burn_in is not None:
        thresholds = ()
    model = copy.deepcopy(run.model).cpu().eval()  # on the CPU, in evaluation mode; the run's model untouched
    if data_dir:
        config = config.replace(data_dir=data_dir)
    dataset, _ = load_split(config, split, limit, progress)
    is_snn = config.model in SPIKING_MODELS
    if is_snn:
        network = export_model(model, decision_threshold=config.decision_threshold, dt_ms=info.dt_ms)
        fan, footprint = fan_out(network), snn_footprint_bytes(network)
        count = lambda activities: count_snn(fan, activities)  # noqa: E731
    else:
        footprint = recurrent_footprint_bytes(model.n_inputs, model.n_hidden, model.n_layers, model.n_outputs,
                                              unit=config.model)
        params = [[p.detach().numpy() for p in layer] for layer in model.step_params()]  # (W_ih, W_hh, b_ih, b_hh)
        weights = recurrent_weights([p[0] for p in params], [p[1] for p in params],
                                    model.readout.weight.detach().numpy())  # pruned weights are not counted
        count = lambda activities: count_recurrent_from_activity(  # noqa: E731
            model.n_hidden, model.n_layers, model.n_outputs, activities, unit=config.model, weights=weights)
    counts, steps, correct, correct_last, raster = EMPTY_COUNTS, [], 0, 0, None
    # threshold -> [correct, sum of steps, counts]: each reading cut at its own decisions
    tradeoff = {threshold: [0, 0, EMPTY_COUNTS] for threshold in thresholds}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, y in tqdm(loader, desc=f"count {run_label(config)}", disable=not progress, leave=False):
        x = time_first(x, torch.device("cpu"))
        logits_seq, spikes = record_run(model, x) if is_snn else (model(x)[0], [])
        rank = config.loss == "rank"
        decision = select_decision(logits_seq, config.decision_threshold) if rank else read_last_step(logits_seq)
        if burn_in is not None:
            scored = float(per_step_accuracy(logits_seq, y, burn_in).sum())  # every step is the answer
            correct, correct_last = correct + scored, correct_last + scored
        else:
            correct += int((decision.predictions == y).sum())
            correct_last += int((logits_seq[-1].argmax(-1) == y).sum())
        steps.append(decision.steps.numpy())
        inputs, spike_arrays = x.numpy(), [s.numpy() for s in spikes]
        for threshold, sums in tradeoff.items():
            other = select_decision(logits_seq, threshold)
            sums[0] += int((other.predictions == y).sum())
            sums[1] += int(other.steps.sum())
            sums[2] += count(activities_from_batch(inputs, spike_arrays, other.steps.numpy()))
        counts += count(activities_from_batch(inputs, spike_arrays, decision.steps.numpy()))
        if raster is None and is_snn:  # show a sample that decided (the first one that crossed, if any)
            shown = int(decision.crossed.to(torch.int8).argmax())
            raster = (spikes[-1][:, shown].numpy().astype(bool), int(decision.steps[shown]))
    steps = np.concatenate(steps)
    n = steps.size
    return ModelResult(
        name=name or run_label(config), family="snn" if is_snn else "rnn", accuracy=correct / n,
        decision_steps=steps, counts=counts, dt_ms=info.dt_ms or 1.0, accuracy_at_last_step=correct_last / n,
        tradeoff=[OperatingPoint(threshold, c / n, s / n, point_counts)
                  for threshold, (c, s, point_counts) in tradeoff.items()],
        raster=raster, footprint_bytes=footprint, source="pytorch", dataset=config.dataset, split=split,
        weights_id=run.weights_id, connection_sparsity=connection_sparsity(model),
        firing_rate=firing_rate(counts, sum(layer.n_neurons for layer in model.layers)) if is_snn else None,
    )


def firing_rate(counts: OpCounts, n_neurons: int) -> float:
    """Spikes per hidden neuron per step simulated (each sample up to its decision)."""
    return counts.spikes / (n_neurons * counts.sample_steps) if counts.sample_steps else 0.0


def lava_result(summary: dict, source: str = "the Lava result") -> ModelResult:
    """A Lava run's :class:`deploy.report.ModelResult` from its summary (``lava-*.json``), validated
    field by field (:func:`check_lava_summary`)."""
    check_lava_summary(summary, source)
    return ModelResult(
        name=summary["name"], family="snn", accuracy=summary["accuracy"],
        decision_steps=np.asarray(summary["decision_steps"], dtype=np.int64),
        counts=OpCounts.from_dict(summary["counts"]), dt_ms=summary["dt_ms"] or 1.0,
        source=f"lava {'fixed' if summary['fixed_point'] else 'float'}, {summary['n_samples']} "
               f"{summary['split']} samples",
        dataset=summary["dataset"], split=summary["split"], weights_id=summary["weights_id"],
        connection_sparsity=summary.get("connection_sparsity"), firing_rate=summary.get("firing_rate"),
    )


def check_lava_summary(summary, source: str = "the Lava result") -> None:
    """Raise ValueError naming the first field of a Lava summary that is missing, of the wrong type,
    not finite, negative where a count is, or inconsistent (accuracy not what its predictions and
    labels give, a list not one entry per sample, counts over another number of samples)."""
    def fail(field: str, expected: str) -> None:
        shown = repr(summary.get(field)) if isinstance(summary, dict) else ""
        raise ValueError(f"{source}: field {field!r}: expected {expected}; got {shown[:60]} (a file written by "
                         "`rc-snn lava`, unedited)")

    if not isinstance(summary, dict):
        raise ValueError(f"{source}: expected a Lava result (a JSON object); got {type(summary).__name__}")
    if summary.get("task") == "per-step":
        raise ValueError(f"{source} is the Lava run of a per-step task; compare the runs themselves (their counts "
                         "are over whole recordings, as Lava's)")
    for field in ("name", "dataset", "split"):
        if not isinstance(summary.get(field), str) or not summary[field]:
            fail(field, "a nonempty string")
    if not isinstance(summary.get("fixed_point"), bool):
        fail("fixed_point", "true or false")
    n = summary.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        fail("n_samples", "a positive integer")
    for field in ("decision_steps", "predictions", "labels"):
        values = summary.get(field)
        if not (isinstance(values, list) and len(values) == n and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)):
            fail(field, f"a list of {n} non-negative integers (one per sample)")
    accuracy = summary.get("accuracy")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        fail("accuracy", "a finite number")
    correct = sum(p == y for p, y in zip(summary["predictions"], summary["labels"]))
    if abs(accuracy - correct / n) > 1e-9:
        fail("accuracy", f"{correct}/{n} = {correct / n:.6g}, what its predictions and labels give")
    dt_ms = summary.get("dt_ms")
    if dt_ms is not None and (isinstance(dt_ms, bool) or not isinstance(dt_ms, (int, float))
                              or not math.isfinite(dt_ms) or dt_ms <= 0):
        fail("dt_ms", "a finite bin width > 0, or null")
    for field in ("connection_sparsity", "firing_rate"):  # optional
        value = summary.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= 1):
            fail(field, "a fraction in [0, 1], or null")
    if not isinstance(summary.get("weights_id"), (str, type(None))) or "weights_id" not in summary:
        fail("weights_id", "the identifier of the weights it ran (run `rc-snn lava` again to record it)")
    if not isinstance(summary.get("counts"), dict):
        fail("counts", "the operation counts (a JSON object)")
    try:
        counts = OpCounts.from_dict(summary["counts"])
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    if counts.n_samples != n or counts.sample_steps != sum(summary["decision_steps"]) + n:
        fail("counts", f"counts over its {n} samples up to their decisions ({sum(summary['decision_steps']) + n} "
                       f"steps); they hold {counts.n_samples} samples, {counts.sample_steps} steps")


def check_lava_provenance(summary: dict, source: str) -> None:
    """Refuse a Lava result whose run folder now holds other weights than the ones it ran."""
    run_dir = Path(summary.get("run_dir") or "")
    if not summary.get("run_dir") or not (run_dir / "checkpoint.pt").is_file():
        return  # the run is not here to compare with (moved, or not from a run)
    current = load_run(run_dir).weights_id
    if summary["weights_id"] != current:
        raise ValueError(f"{source} ran weights {summary['weights_id']}; its run {run_dir} now holds weights "
                         f"{current} (retrained since?): run `rc-snn lava` on it again")


def read_lava_result(path) -> ModelResult:
    """:func:`lava_result` of a ``lava-*.json`` file, checked against its run folder's weights."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the Lava result {path}: {error}") from None
    result = lava_result(summary, str(path))
    check_lava_provenance(summary, str(path))
    return result


def unique_names(results: Iterable[ModelResult], sources: Sequence) -> List[ModelResult]:
    """Where two results would get the same label, append the shortest end of each one's source path
    (run folder or file) that tells them apart, else its position."""
    results = list(results)
    labels = [r.name for r in results]
    parts = [Path(source).resolve().parts for source in sources]

    def suffix(index: int) -> str:
        others = [j for j, r in enumerate(results) if r.name == results[index].name and j != index]
        for depth in range(1, len(parts[index]) + 1):
            end = parts[index][-depth:]
            if all(parts[j][-depth:] != end for j in others):
                return "/".join(end)
        return f"#{index + 1}"

    return [r if labels.count(r.name) == 1 else ModelResult(**{**r.__dict__, "name": f"{r.name} ({suffix(i)})"})
            for i, r in enumerate(results)]


def compare(paths: Sequence, out_dir, split: str = "test", *, limit: Optional[int] = None,
            data_dir: Optional[str] = None, progress: bool = True) -> Tuple[dict, dict]:
    """Analyse each path (a run folder, or a Lava result ``lava-*.json``), write the report.

    Returns ``(data, paths)``: the report's data (``deploy.report.build_report_data``) and the
    files written.
    """
    check_folder_destination(out_dir, replaceable=is_report_folder)  # before the analysis, which it would lose
    for path in paths:
        if Path(out_dir).resolve() == Path(path).resolve():
            raise ValueError(f"--out {out_dir} is one of the inputs; pick a new folder for the report")
    with FolderLock(out_dir, beside=True):  # a second compare into the same folder is refused from the start
        results = [read_lava_result(path) if Path(path).is_file() else
                   analyse_run(load_run(path), split, limit=limit, data_dir=data_dir, progress=progress)
                   for path in paths]
        return write_results(unique_names(results, paths), out_dir)


def write_results(results: Sequence[ModelResult], out_dir) -> Tuple[dict, dict]:
    """Build the report data once and write the report; returns ``(data, paths)``."""
    data = build_report_data(results)
    return data, write_report(results, out_dir, data=data)


SUMMARY_PRESETS = ("cmos45_fp32", "loihi")


def format_summary(data: dict) -> str:
    """The report's headline figures as a terminal table (accuracy, mean t*, connection sparsity,
    firing rate in spikes per neuron per step, energy per inference for the 45 nm fp32 and Loihi
    presets under both counting conventions), then the SNN/RNN energy ratio at matched accuracy."""
    presets = [preset for preset in SUMMARY_PRESETS if preset in data["presets"]]
    columns = [(convention, preset) for convention in REPORT_CONVENTIONS for preset in presets]
    labels = [f"{preset} {convention} (nJ)" for convention, preset in columns]
    width = max([len(entry["name"]) for entry in data["models"]] + [5])
    header = (f"{'model':<{width}}  accuracy  mean t*  sparsity  rate  "
              + "  ".join(f"{label:>{len(label)}}" for label in labels))
    lines = [header, "-" * len(header)]
    for entry in data["models"]:
        energies = "  ".join(
            f"{entry['energy_per_inference'][convention][preset]['total_pj'] / 1000:>{len(label)}.4g}"
            for (convention, preset), label in zip(columns, labels))
        sparsity, rate = entry["connection_sparsity"], entry["firing_rate"]
        lines.append(f"{entry['name']:<{width}}  {100 * entry['accuracy']:7.2f}%  "
                     f"{entry['mean_decision_step']:7.1f}  "
                     f"{'-' if sparsity is None else f'{100 * sparsity:.0f}%':>8}  "
                     f"{'-' if rate is None else f'{rate:.3f}':>4}  {energies}")
    lines += ["", "times less energy than the RNN (LSTM, GRU) at matched accuracy (cheapest point at least as accurate):"]
    for convention, preset in columns:
        matched = data["frontier"][convention][preset]["matched"]
        if not matched:
            lines.append(f"  {preset} {convention}: needs an SNN and an RNN (LSTM or GRU)")
            continue
        parts = []
        for target, pair in matched.items():
            where = f"at {100 * pair['target_accuracy']:.2f} % ({TARGETS[target]})"
            parts.append(f"{format_number(pair['ratio'])}x {where}" if pair["ratio"] is not None else
                         f"not reached {where}")
        lines.append(f"  {preset} {convention}: " + "; ".join(parts))
    return "\n".join(lines)
