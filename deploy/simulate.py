"""Run a network file as Lava processes (Loihi-style simulation on CPU) with early exit.

``evaluate(ir, frames, labels)`` builds one Lava network with ``batch_size`` slots side by side
(every port carries ``[batch, n]``; see ``deploy.lava_procs.process``) and streams the samples
through it (:func:`run_stream`): each slot takes the next sample as soon as its current one has
decided, as a Loihi core moves on to its next input, so a run takes about (mean decision step +
pipeline depth) steps per sample and a slot's next sample is not held back by the slowest one.
``stream=False`` is the batch mode: one run per batch of ``batch_size`` samples, each until its
slowest sample decides. Either way a few counters are read once at the end. Alternatives measured
on the development machine (lava-nc 0.10.0, 2 cores): rebuilding the network per sample costs about
0.4 s per sample, and polling Vars from the host every step 4-9 ms per step; side by side, the
per-step synchronisation of Lava's processes (about 0.7 ms per step) is paid once for all slots.

Lava's timing, compensated here (details in ``deploy.lava_procs.process``):

* each Dense delays by one step, so the layer at depth d computes a sample's PyTorch step ``t`` at
  Lava step ``start + t + d`` (``start`` = 1 for the first samples) and holds at rest before (no
  bias integration); the readout (depth ``L + 1``) sees step ``T - 1`` at ``start + T + L``;
* a slot that takes a new sample is reset layer by layer as the sample's first step reaches it
  (state at rest, the recurrent input of the old sample's last spikes masked), so a sample gives
  the same result whatever ran before it in its slot;
* the recurrent Dense's one-step delay is the ``s[t-1]`` of the equations (no compensation);
* spikes use the same strict ``u > B`` as PyTorch, and the decision the same strict ``>``;
* the readout knows a sample's decision ``L + 1 - l`` steps after layer ``l`` computed that step, so
  layers count spikes with that lag (``ALIF.history``) and count only steps ``<= t*``.

Input event counts of ``Activity`` come from the frames on the host (they are the data, not
something the network produces); spike counts come from counters inside the ALIF processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import kernels
from .counting import EMPTY_COUNTS, OpCounts, count_snn
from .ir import NetworkIR, layer_kind
from .quantize import FixedNetwork, to_device
from .activity import Activity, activity_from_counts, check_frames

DEFAULT_BATCH_SIZE = 100


@dataclass(frozen=True)
class BatchResult:
    """What one Lava run returned: ``[N]`` decisions and per-layer ``[N, H]`` spike counts."""

    decision_steps: np.ndarray
    predictions: np.ndarray
    spike_counts: Tuple[np.ndarray, ...]
    lava_steps: int  # Lava steps executed
    build_s: float
    run_s: float
    read_s: float
    spike_trains: Optional[Tuple[np.ndarray, ...]] = None  # record=True: per layer [batch, T, H], PyTorch steps
    outputs: Optional[np.ndarray] = None  # record=True: readout m [batch, T, C] in float units (NaN: not run)


def _sparse_frames(frames: np.ndarray, fixed_point: bool):
    """CSR of frames ``[N, T, F]`` with row ``n * T + t`` (``FrameSource``'s layout)."""
    n_samples, n_time, n_channels = frames.shape
    rows = np.ascontiguousarray(frames).reshape(n_samples * n_time, n_channels)
    row_index, indices = np.nonzero(rows)
    values = rows[row_index, indices]
    indptr = np.zeros(n_samples * n_time + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_index, minlength=n_samples * n_time), out=indptr[1:])
    return indptr, indices.astype(np.int64), values.astype(np.int64 if fixed_point else np.float64)


#: The Vars each layer kind's neuron Process takes from its layer, named alike in a float layer
#: (``deploy.ir``) and in its fixed-point form (``deploy.quantize``).
NEURON_VARS = {
    "alif": ("bias", "alpha", "rho", "b0", "beta"),
    "irsnn": ("bias", "value_range", "lower", "delta", "dead_zone"),
    "lif": ("bias", "beta", "threshold", "reset"),
}


def _layer_parameters(ir: NetworkIR, fixed: Optional[FixedNetwork]):
    """Per layer and readout: Dense and neuron parameters in the units of the selected models;
    ``kind`` picks the layer's neuron Process."""
    layers = []
    for index, float_layer in enumerate(ir.layers):
        kind = layer_kind(float_layer)
        if fixed is None:
            layer, w_in, w_rec = float_layer, (float_layer.w_in.T, None), (float_layer.w_rec.T, None)
        else:
            layer = fixed.layers[index]
            w_in, w_rec = (layer.w_in_mant.T, layer.w_in_exp), (layer.w_rec_mant.T, layer.w_rec_exp)
        layers.append(dict(w_in=w_in, w_rec=w_rec, kind=kind,
                           neuron={name: getattr(layer, name) for name in NEURON_VARS[kind]}))
    if fixed is None:
        readout = dict(weights=(ir.readout.weight.T, None),
                       neuron=dict(bias=ir.readout.bias, alpha=ir.readout.alpha, scale=1.0))
    else:
        readout = dict(weights=(fixed.readout.weight_mant.T, fixed.readout.weight_exp),
                       neuron=dict(bias=fixed.readout.bias, alpha=fixed.readout.alpha, scale=fixed.readout.scale))
    return layers, readout


def _import_lava_runtime() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` at import.

    That call raises when anything earlier fixed the start method (for example a data loader asking
    for it). When the method already is 'fork', which is what Lava wants, let Lava's call through.
    """
    import multiprocessing

    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    except RuntimeError as error:
        if "context has already been set" not in str(error):
            raise
        if multiprocessing.get_start_method() != "fork":
            raise RuntimeError(
                f"Lava needs the 'fork' start method; this process already uses "
                f"{multiprocessing.get_start_method()!r}. Import deploy.simulate first."
            ) from error
        multiprocessing.context._default_context._actual_context = None
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401,F811


def max_lava_steps(n_samples: int, slots: int, n_steps: int, n_layers: int) -> int:
    """A bound on the Lava steps a stream of ``n_samples`` through ``slots`` takes: a sample holds its
    slot at most ``T + L + 1`` steps (its ``T`` steps, the pipeline's depth, the step that starts
    the next), and a slot never waits while samples wait (list scheduling: at most the mean load
    plus one sample). With ``n_samples == slots``, ``T + L + 1``: the batch mode's run without exit."""
    per_sample = n_steps + n_layers + 1
    if n_samples <= slots:
        return per_sample
    return -(-n_samples // slots) * per_sample + per_sample


def run_batch(
    ir: NetworkIR, frames: np.ndarray, *, fixed: Optional[FixedNetwork] = None, record: bool = False
) -> BatchResult:
    """One Lava run of ``frames [B, T, F]``, one sample per slot (the batch mode); ``fixed``
    selects the ``fixed_pt`` models. ``record``: see :func:`run_stream`."""
    return run_stream(ir, frames, slots=frames.shape[0], fixed=fixed, record=record)


#: Lava steps per ``run`` call of a stream, between two looks at how many samples have decided.
PROGRESS_CHUNK = 10


def run_stream(
    ir: NetworkIR, frames: np.ndarray, *, slots: int, fixed: Optional[FixedNetwork] = None, record: bool = False,
    progress: bool = False,
) -> BatchResult:
    """One Lava run of ``frames [N, T, F]`` streamed through ``slots`` side by side (module docstring);
    ``fixed`` selects the ``fixed_pt`` models.

    ``record=True`` (batch mode only: ``slots == N``) attaches Lava Monitors to every layer's spikes
    and the readout's ``m`` (slow: about +0.7 ms per step each and one message per value read; for
    tests and debugging) and returns them shifted back to PyTorch's step index. ``progress`` shows
    a bar of the samples decided (and samples/s): the run goes in chunks of ``PROGRESS_CHUNK``
    steps, reading one counter between them. Always stops the Lava runtime (``finally``), also when
    a model raises.
    """
    _import_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from .lava_procs.process import ALIF, BatchDense, DecisionReadout, FrameSource, IRNeuron, LeakyNeuron

    start = time.perf_counter()
    n_samples, n_time, n_channels = frames.shape
    if not 1 <= int(slots) <= n_samples:
        raise ValueError(f"expected 1 <= slots <= {n_samples} (the samples); got {slots}")
    batch = int(slots)
    if record and batch != n_samples:
        raise ValueError("record=True needs the batch mode (slots equal to the samples)")
    n_layers = len(ir.layers)
    readout_depth = n_layers + 1
    total_steps = max_lava_steps(n_samples, batch, n_time, n_layers)
    indptr, indices, values = _sparse_frames(frames, fixed is not None)
    layer_params, readout_params = _layer_parameters(ir, fixed)

    source = FrameSource(indptr=indptr, indices=indices, values=values, n_steps=n_time, batch=batch,
                         n_samples=n_samples, n_channels=n_channels, name="source")
    upstream = source.s_out
    neurons: list = []
    neuron_processes = {"alif": ALIF, "irsnn": IRNeuron, "lif": LeakyNeuron}
    for depth, params in enumerate(layer_params, start=1):
        feedforward = BatchDense(weights_t=params["w_in"][0], exponents=params["w_in"][1], batch=batch,
                                 name=f"dense_in_{depth - 1}")
        recurrent = BatchDense(weights_t=params["w_rec"][0], exponents=params["w_rec"][1], batch=batch,
                               name=f"dense_rec_{depth - 1}")
        layer = neuron_processes[params["kind"]](batch=batch, n_samples=n_samples, n_steps=n_time, depth=depth,
                                                 count_lag=readout_depth - depth,
                                                 name=f"{params['kind']}_{depth - 1}", **params["neuron"])
        upstream.connect(feedforward.s_in)
        feedforward.a_out.connect(layer.a_in)
        layer.s_out.connect(recurrent.s_in)
        recurrent.a_out.connect(layer.r_in)
        upstream = layer.s_out
        neurons.append(layer)
    dense_out = BatchDense(weights_t=readout_params["weights"][0], exponents=readout_params["weights"][1],
                           batch=batch, name="dense_out")
    chunk = PROGRESS_CHUNK if progress else total_steps
    readout = DecisionReadout(batch=batch, n_samples=n_samples, threshold=ir.decision_threshold,
                              depth=readout_depth, n_steps=n_time, max_lava_steps=total_steps, run_chunk=chunk,
                              name="readout", **readout_params["neuron"])
    upstream.connect(dense_out.s_in)
    dense_out.a_out.connect(readout.a_in)
    readout.count_out.connect([layer.count_in for layer in neurons])
    readout.start_out.connect([source.start_in] + [layer.start_in for layer in neurons])

    monitors = []
    if record:
        from lava.proc.monitor.process import Monitor

        for layer in neurons + [readout]:
            monitor = Monitor()
            monitor.probe(layer.s if layer is not readout else readout.m, n_time + readout_depth)
            monitors.append(monitor)

    run_cfg = Loihi2SimCfg(select_tag="fixed_pt" if fixed is not None else "floating_pt")
    started = False
    try:
        readout.create_runtime(run_cfg=run_cfg)  # compile and start the processes
        started = True
        built = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_samples, desc="lava " + ("fixed" if fixed is not None else "float") + " stream",
                       unit="sample")
        executed = decided = 0
        while executed < total_steps and decided < n_samples:
            readout.run(condition=RunSteps(num_steps=min(chunk, total_steps - executed)), run_cfg=run_cfg)
            executed = int(readout.lava_steps.get()[0])
            if bar is not None:
                decided = int(readout.n_decided.get()[0])
                bar.update(decided - bar.n)
            else:
                break  # one run of every step: it ended at the last decision or at the bound
        if bar is not None:
            bar.close()
        ran = time.perf_counter()
        # Var.get moves one element per message: read only these counters, once.
        decision_steps = readout.decision_step.get().astype(np.int64)
        predictions = readout.prediction.get().astype(np.int64)
        lava_steps = int(readout.lava_steps.get()[0])
        spike_counts = tuple(kernels.unpack_counts(layer.packed_counts.get(), size, n_time)
                             for layer, size in zip(neurons, ir.layer_sizes))
        read = time.perf_counter()
        recorded = [_monitored(monitor) for monitor in monitors]
    finally:
        if started:
            readout.stop()
    if np.any(decision_steps < 0):
        raise RuntimeError(f"Lava run ended before every sample decided: decision steps {decision_steps}")
    spike_trains = outputs = None
    if record:
        # Layer at depth d computed PyTorch step t at Lava step t + 1 + d (Monitor row t + d).
        aligned = []
        for depth, data in enumerate(recorded, start=1):
            shifted = np.full((batch, n_time) + data.shape[2:], np.nan)
            available = min(n_time, lava_steps - depth)
            shifted[:, :available] = data[depth : depth + available].transpose(1, 0, *range(2, data.ndim))
            aligned.append(shifted)
        spike_trains = tuple(aligned[:-1])
        outputs = aligned[-1] / (1.0 if fixed is None else fixed.readout.scale)
    return BatchResult(decision_steps, predictions, spike_counts, lava_steps,
                       build_s=built - start, run_s=ran - built, read_s=read - ran,
                       spike_trains=spike_trains, outputs=outputs)


def _monitored(monitor) -> np.ndarray:
    """The one probed Var's data ``[steps, ...]`` of a Lava Monitor."""
    data = monitor.get_data()
    (per_var,) = data.values()
    (values,) = per_var.values()
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class LavaEvaluation:
    """Per-sample decisions and activity of a Lava run, with totals.

    ``activities[n]`` counts sample n's input events (from its frames) and spikes (from the ALIF
    processes' counters) over its steps ``0..decision_steps[n]``; ``counts`` are
    ``deploy.counting.count_snn``'s for those activities, and ``synaptic_ops`` their effective ACs +
    MACs (spikes and input events times fan-out).
    """

    decision_steps: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray
    activities: Tuple[Activity, ...]
    fixed_point: bool
    batch_size: int  # the slots side by side (batch mode: the samples of each run)
    lava_steps: int  # summed over runs
    max_lava_steps: int  # what batch mode takes without early exit: T + n_layers + 1 per batch of batch_size
    build_s: float
    run_s: float
    read_s: float
    wall_s: float
    counts: OpCounts = EMPTY_COUNTS
    streamed: bool = True

    @property
    def n_samples(self) -> int:
        return int(self.decision_steps.shape[0])

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels))

    @property
    def mean_decision_step(self) -> float:
        return float(np.mean(self.decision_steps))

    @property
    def synaptic_ops(self) -> int:
        return int(self.counts.effective_acs + self.counts.effective_macs)

    @property
    def spikes_per_layer(self) -> Tuple[int, ...]:
        return tuple(int(sum(a.spike_counts[l].sum() for a in self.activities)) for l in range(len(self.activities[0].spike_counts)))

    def to_json(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict (per-sample decisions; totals of the activity)."""
        return {
            "n_samples": self.n_samples,
            "fixed_point": self.fixed_point,
            "accuracy": self.accuracy,
            "mean_decision_step": self.mean_decision_step,
            "mean_steps": float(np.mean(self.decision_steps + 1)),
            "decision_steps": self.decision_steps.tolist(),
            "predictions": self.predictions.tolist(),
            "labels": self.labels.tolist(),
            "spikes_per_layer": list(self.spikes_per_layer),
            "input_events": int(sum(a.input_events for a in self.activities)),
            "synaptic_ops": self.synaptic_ops,
            "counts": self.counts.to_dict(),
            "batch_size": self.batch_size,
            "streamed": self.streamed,
            "lava_steps": self.lava_steps,
            "max_lava_steps": self.max_lava_steps,
            "build_s": self.build_s,
            "run_s": self.run_s,
            "read_s": self.read_s,
            "wall_s": self.wall_s,
            "samples_per_s": self.n_samples / self.wall_s if self.wall_s > 0 else None,
            "lava_steps_per_s": self.lava_steps / self.run_s if self.run_s > 0 else None,
        }


def evaluate(
    ir: NetworkIR,
    frames,
    labels,
    *,
    fixed_point: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stream: bool = True,
    progress: bool = True,
) -> LavaEvaluation:
    """Run ``frames [N, T, F]`` (event counts per bin) with labels ``[N]`` through Lava with early exit:
    streamed through ``batch_size`` slots (``stream``), or in batches of ``batch_size`` (module docstring).

    Validates everything (frames, labels, the fixed-point conversion) before any Lava process starts.
    """
    if not isinstance(ir, NetworkIR):
        raise ValueError(f"expected a NetworkIR; got {type(ir).__name__}")
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[2] != ir.n_inputs or frames.shape[0] < 1 or frames.shape[1] < 1:
        raise ValueError(f"expected frames of shape [N >= 1, T >= 1, {ir.n_inputs}]; got {frames.shape}")
    labels = np.asarray(labels)
    if labels.shape != (frames.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape ({frames.shape[0]},); got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= ir.n_outputs):
        raise ValueError(f"expected labels among the network's {ir.n_outputs} classes (0 .. {ir.n_outputs - 1}); "
                         f"got values from {labels.min()} to {labels.max()}")
    if int(batch_size) < 1:
        raise ValueError(f"expected batch_size >= 1; got {batch_size}")
    batch_size = int(batch_size)
    fixed = to_device(ir) if fixed_point else None
    batches = [(start, min(start + batch_size, frames.shape[0])) for start in range(0, frames.shape[0], batch_size)]
    for a, b in batches:  # every value checked before any Lava process starts (one batch in memory at a time)
        check_frames(frames[a:b], ir.n_inputs, fixed_point=fixed_point, as_float64=False)

    runs = [(0, frames.shape[0])] if stream else batches  # one stream through the slots, or one run per batch
    iterator = iter(runs)
    if progress and not stream:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(runs), desc="lava " + ("fixed" if fixed_point else "float"), unit="batch")
    start = time.perf_counter()
    steps, predictions, activities = [], [], []
    lava_steps = build_s = run_s = read_s = 0.0
    for a, b in iterator:
        batch_frames = check_frames(frames[a:b], ir.n_inputs, fixed_point=fixed_point, as_float64=False)
        result = run_stream(ir, batch_frames, slots=min(batch_size, b - a), fixed=fixed,
                            progress=progress and stream)
        steps.append(result.decision_steps)
        predictions.append(result.predictions)
        lava_steps += result.lava_steps
        build_s += result.build_s
        run_s += result.run_s
        read_s += result.read_s
        for index in range(batch_frames.shape[0]):
            activities.append(
                activity_from_counts(
                    batch_frames[index],
                    [counts[index] for counts in result.spike_counts],
                    int(result.decision_steps[index]),
                )
            )
    wall = time.perf_counter() - start
    return LavaEvaluation(
        decision_steps=np.concatenate(steps),
        predictions=np.concatenate(predictions),
        labels=labels.astype(np.int64),
        activities=tuple(activities),
        fixed_point=fixed_point,
        batch_size=batch_size,
        streamed=stream,
        lava_steps=int(lava_steps),
        max_lava_steps=len(batches) * (frames.shape[1] + len(ir.layers) + 1),
        build_s=build_s,
        run_s=run_s,
        read_s=read_s,
        wall_s=wall,
        counts=count_snn(ir, activities),
    )
