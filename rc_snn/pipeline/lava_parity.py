"""Run a trained spiking network (ALIF, IR-SNN) as Lava processes and compare it with PyTorch on the same samples.

The network goes through the plain-data file format (``rc_snn.pipeline.export`` ->
``deploy.ir``), so Lava sees exactly what a user would deploy; PyTorch runs the same frames in
float64 (Lava's precision) with the same decision rule.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import NamedTuple, Optional

import numpy as np
import torch

from deploy.activity import activity_from_counts, check_frames
from deploy.counting import REPORT_CONVENTIONS, count_snn
from deploy.energy import energy_per_inference
from deploy.ir import NetworkIR
from deploy.lava_run import predict_every_step
from deploy.quantize import calibrate_headroom, to_device
from deploy.simulate import LavaEvaluation, counted_network, evaluate

from ..training.early_exit import select_decision
from ..training.config import SPIKING_MODELS
from ..training.evaluation import burn_in_of, time_first
from ..training.run import TrainedRun, load_split
from .compare import SUMMARY_PRESETS, firing_rate, run_label
from .export import export_model


class LavaParity(NamedTuple):
    """``summary``: JSON-ready figures (what ``rc-snn lava`` writes and ``rc-snn compare`` reads);
    ``evaluation``: the Lava run itself."""

    summary: dict
    evaluation: Optional[LavaEvaluation]  # None for a per-step task (its figures are all in the summary)


def network_sparsity(network: NetworkIR) -> float:
    """The fraction of the network file's weight entries (inputs, recurrent, readout) that are zero."""
    matrices = [m for layer in network.layers for m in (layer.w_in, layer.w_rec)] + [network.readout.weight]
    return sum(int(np.count_nonzero(m == 0)) for m in matrices) / sum(m.size for m in matrices)


def check_network_of_run(network: NetworkIR, run: TrainedRun) -> None:
    """Refuse a network file made from other weights than the run's (its ``weights_id``), or whose sizes
    are not those of the run's model."""
    model = run.model
    expected = (model.n_inputs, tuple(layer.n_neurons for layer in model.layers), model.n_outputs)
    got = (network.n_inputs, network.layer_sizes, network.n_outputs)
    if got != expected:
        raise ValueError(f"the network file has inputs, layers and outputs {got}; the model of "
                         f"{run.run_dir} has {expected}: it was exported from another run")
    if network.weights_id is not None and network.weights_id != run.weights_id:
        raise ValueError(f"the network file was exported from weights {network.weights_id}; {run.run_dir} now holds "
                         f"weights {run.weights_id} (retrained since?): export it again with `rc-snn export`")


def _frames(dataset) -> np.ndarray:
    """A split's inputs as one float64 array ``[N, T, F]``, as the network file's runs take them."""
    return np.stack([np.asarray(x) for x, _ in dataset]).astype(np.float64)


#: Training samples the fixed-point conversion is calibrated on (``deploy.quantize.calibrate_headroom``).
CALIBRATION_SAMPLES = 64


def device_network(network: NetworkIR, run: TrainedRun, config, progress: bool = False):
    """``(FixedNetwork, u_headroom)``: ``network`` in device integers, its state scale calibrated on the
    first :data:`CALIBRATION_SAMPLES` of the run's training split (never the samples judged)."""
    dataset, _ = load_split(config, "train", CALIBRATION_SAMPLES, progress)
    headroom = calibrate_headroom(network, _frames(dataset))
    return to_device(network, u_headroom=headroom), headroom


def lava_versus_pytorch(
    run: TrainedRun, *, split: str = "test", samples: int = 200, fixed_point: bool = False,
    data_dir: Optional[str] = None, network: Optional[NetworkIR] = None, network_name: Optional[str] = None,
    stream: bool = True, progress: bool = True,
) -> LavaParity:
    """Lava figures of ``samples`` samples of ``split``, with PyTorch's on the same frames.

    ``network`` defaults to the run's model exported in memory (``rc-snn export`` writes the same file);
    a network from elsewhere (no ``weights_id``: a NIR graph, an snnTorch export) runs on the run's
    data under ``network_name``, and its result names no run (the PyTorch figures stay the run's).
    ``stream``: the samples stream through the slots (``deploy.simulate``), else batch mode.
    """
    config, model, info = run.config, run.model, run.info
    if config.model not in SPIKING_MODELS:
        raise ValueError(f"{run.run_dir} holds a {config.model!r} model; only spiking networks run in Lava")
    if samples < 1:
        raise ValueError(f"expected samples >= 1; got {samples}")
    if data_dir:
        config = config.replace(data_dir=data_dir)
    if network is not None:
        check_network_of_run(network, run)
    else:
        network = export_model(model, decision_threshold=config.decision_threshold, dt_ms=info.dt_ms)
    dataset, _ = load_split(config, split, samples, progress)
    frames = _frames(dataset)
    labels = np.stack([np.asarray(y, dtype=np.int64) for _, y in dataset])  # [N], or [N, T] for a per-step task
    ours = network.weights_id is not None
    name = f"{run_label(config) if ours else network_name or 'network'}, Lava {'fixed' if fixed_point else 'floating'} point"
    if info.per_step:
        network = replace(network, decision_threshold=1.0)  # max softmax never exceeds 1: nobody decides
    if fixed_point:  # the judged frames refused before any calibration runs
        check_frames(frames, network.n_inputs, fixed_point=True, as_float64=False)
    device, headroom = device_network(network, run, config, progress) if fixed_point else (network, None)
    if info.per_step:
        return _per_step_parity(run, network, device, frames, labels, name=name, ours=ours, split=split,
                                headroom=headroom)
    lava = evaluate(device, frames, labels, stream=stream, progress=progress)
    model64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()  # the run's model stays as it is
    with torch.no_grad():
        logits_seq, _ = model64(time_first(torch.from_numpy(frames), torch.device("cpu")).double())
    reference = select_decision(logits_seq, network.decision_threshold)
    torch_predictions, torch_steps = reference.predictions.numpy(), reference.steps.numpy()
    summary = {
        "name": name,
        "run_dir": str(run.run_dir) if ours else None, "weights_id": network.weights_id, "dataset": config.dataset,
        "split": split, "fixed_point": fixed_point, "u_headroom": headroom,
        "n_samples": int(labels.size),
        "accuracy": lava.accuracy,
        "pytorch_accuracy": float(np.mean(torch_predictions == labels)),
        "agreement_with_pytorch": float(np.mean(lava.predictions == torch_predictions)),
        "same_decision_step_as_pytorch": float(np.mean(lava.decision_steps == torch_steps)),
        "mean_decision_step": lava.mean_decision_step,
        "pytorch_mean_decision_step": float(np.mean(torch_steps)),
        "dt_ms": info.dt_ms,
        "connection_sparsity": network_sparsity(network),
        "firing_rate": firing_rate(lava.counts, sum(network.layer_sizes)),
        **{key: value for key, value in lava.to_json().items()
           if key not in ("accuracy", "mean_decision_step", "fixed_point", "n_samples")},
    }
    return LavaParity(summary, lava)


def _per_step_parity(run: TrainedRun, network: NetworkIR, device, frames: np.ndarray, labels: np.ndarray, *,
                     name: str, ours: bool, split: str, headroom: Optional[float]) -> LavaParity:
    """A per-step task in Lava: every recording runs all its steps (no decision: threshold 1), the
    readout's argmax at every step is the prediction (``deploy.lava_run.predict_every_step``), against
    PyTorch's in float64; energy per step from the Lava run's spike counts, under both conventions."""
    burn_in = burn_in_of(run.info)
    result = predict_every_step(device, frames)  # network in float or device integers
    lava_predictions = result.step_predictions  # [N, T]
    model64 = copy.deepcopy(run.model).to(device="cpu", dtype=torch.float64).eval()
    with torch.no_grad():
        logits_seq, _ = model64(time_first(torch.from_numpy(frames), torch.device("cpu")).double())
    torch_predictions = logits_seq.argmax(-1).t().numpy()
    judged = slice(burn_in, None)
    last = frames.shape[1] - 1
    activities = [activity_from_counts(frames[i], [c[i] for c in result.spike_counts], last)
                  for i in range(frames.shape[0])]
    counts = count_snn(counted_network(device), activities)  # a fixed run: the synapses the device has
    summary = {
        "task": "per-step", "name": name, "run_dir": str(run.run_dir) if ours else None,
        "weights_id": network.weights_id, "dataset": run.config.dataset, "split": split,
        "fixed_point": headroom is not None, "u_headroom": headroom,
        "n_samples": int(frames.shape[0]), "n_steps": int(frames.shape[1]), "burn_in": burn_in,
        "accuracy": float(np.mean(lava_predictions[:, judged] == labels[:, judged])),
        "pytorch_accuracy": float(np.mean(torch_predictions[:, judged] == labels[:, judged])),
        "agreement_with_pytorch": float(np.mean(lava_predictions == torch_predictions)),
        "recordings_identical_to_pytorch": float(np.mean(np.all(lava_predictions == torch_predictions, axis=1))),
        "dt_ms": run.info.dt_ms, "connection_sparsity": network_sparsity(network),
        "firing_rate": firing_rate(counts, sum(network.layer_sizes)), "counts": counts.to_dict(),
        "energy_per_step_pj": {convention: {preset: energy_per_inference(counts, preset, convention).total_pj
                                            / frames.shape[1] for preset in SUMMARY_PRESETS}
                               for convention in REPORT_CONVENTIONS},
        "wall_s": result.build_s + result.run_s + result.read_s,
    }
    return LavaParity(summary, None)


def format_lava(summary: dict) -> str:
    kind = (f"fixed point, u_headroom {summary['u_headroom']:g} calibrated on {CALIBRATION_SAMPLES} training samples"
            if summary["fixed_point"] else "floating point")
    if summary.get("task") == "per-step":
        energy = summary["energy_per_step_pj"]
        return "\n".join([
            f"Lava ({kind}), {summary['n_samples']} recordings of the {summary['split']} split, "
            f"{summary['n_steps']} steps each, a prediction at every step",
            f"  accuracy per step     {100 * summary['accuracy']:.2f}%  (PyTorch in float64 "
            f"{100 * summary['pytorch_accuracy']:.2f}%; from step {summary['burn_in']})",
            f"  agreement w/ PyTorch  {100 * summary['agreement_with_pytorch']:.3f}% of steps, "
            f"{100 * summary['recordings_identical_to_pytorch']:.1f}% of recordings at every step",
            "  energy per step       " + "; ".join(f"{convention} {energy[convention]['cmos45_fp32']:.4g} pJ "
                                                    f"(45 nm), {energy[convention]['loihi']:.4g} pJ (Loihi)"
                                                    for convention in energy),
            f"  wall time             {summary['wall_s']:.1f} s"])
    spikes = ", ".join(f"{count}" for count in summary["spikes_per_layer"])
    return "\n".join([
        f"Lava ({kind}), {summary['n_samples']} samples of the {summary['split']} split",
        f"  accuracy              {100 * summary['accuracy']:.2f}%  (PyTorch in float64 {100 * summary['pytorch_accuracy']:.2f}%)",
        f"  agreement w/ PyTorch  {100 * summary['agreement_with_pytorch']:.2f}% of predictions, "
        f"{100 * summary['same_decision_step_as_pytorch']:.2f}% of decision steps",
        f"  mean decision step    {summary['mean_decision_step']:.2f}  (PyTorch {summary['pytorch_mean_decision_step']:.2f})",
        f"  spikes per layer      {spikes}  (total over samples, up to each decision)",
        f"  input events          {summary['input_events']}",
        f"  synaptic events       {summary['synaptic_ops']}  (spikes and input events times fan-out)",
        f"  Lava steps run        {summary['lava_steps']} of {summary['max_lava_steps']} in batches without early exit"
        f" ({'streamed through' if summary.get('streamed') else 'batches of'} {summary['batch_size']}"
        f"{' slots' if summary.get('streamed') else ''})",
        f"  wall time             {summary['wall_s']:.1f} s ({summary['samples_per_s']:.2f} samples/s)",
    ])
