"""Run a network file as Lava processes (Loihi-style simulation on CPU) with early exit.

``evaluate(network, frames, labels)`` (a ``NetworkIR`` in float, a ``FixedNetwork`` in fixed point) builds one Lava network with ``batch_size`` slots side by side
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
from typing import Any, Dict, Tuple

import numpy as np

from .activity import Activity, activity_from_counts, check_frames
from .counting import EMPTY_COUNTS, OpCounts, count_snn
from .ir import NetworkIR
from .lava_run import (BatchResult, max_lava_steps, predict_every_step, record_batch, run_batch,  # noqa: F401
                       run_stream)  # (this module's API too)
from .fixed import FixedNetwork, check_network
from .quantize import from_device

DEFAULT_BATCH_SIZE = 100


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


def counted_network(network: NetworkIR | FixedNetwork) -> NetworkIR:
    """The network whose synapses a run of ``network`` is counted with: a ``NetworkIR`` itself, a
    ``FixedNetwork`` as the float network its integers represent (``from_device``: the synapses the
    device has, a weight quantised to zero being none)."""
    return from_device(network) if check_network(network) else network


def evaluate(
    network: NetworkIR | FixedNetwork,
    frames,
    labels,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stream: bool = True,
    progress: bool = True,
) -> LavaEvaluation:
    """Run ``frames [N, T, F]`` (event counts per bin) with labels ``[N]`` through Lava with early exit:
    streamed through ``batch_size`` slots (``stream``), or in batches of ``batch_size`` (module docstring).
    A ``NetworkIR`` runs in floating point, a ``FixedNetwork`` (``deploy.quantize.to_device``) in
    device integers, counted on the synapses it has (weights quantised to zero are none).

    Validates everything (network, frames, labels) once, before any Lava process starts.
    """
    fixed_point = check_network(network)
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[2] != network.n_inputs or frames.shape[0] < 1 or frames.shape[1] < 1:
        raise ValueError(f"expected frames of shape [N >= 1, T >= 1, {network.n_inputs}]; got {frames.shape}")
    labels = np.asarray(labels)
    n_outputs = network.n_outputs
    if labels.shape != (frames.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape ({frames.shape[0]},); got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
        raise ValueError(f"expected labels among the network's {n_outputs} classes (0 .. {n_outputs - 1}); "
                         f"got values from {labels.min()} to {labels.max()}")
    if int(batch_size) < 1:
        raise ValueError(f"expected batch_size >= 1; got {batch_size}")
    batch_size = int(batch_size)
    batches = [(start, min(start + batch_size, frames.shape[0])) for start in range(0, frames.shape[0], batch_size)]
    for a, b in batches:  # every value checked before any Lava process starts (one batch in memory at a time)
        check_frames(frames[a:b], network.n_inputs, fixed_point=fixed_point, as_float64=False)

    runs = [(0, frames.shape[0])] if stream else batches  # one stream through the slots, or one run per batch
    iterator = iter(runs)
    if progress and not stream:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(runs), desc="lava " + ("fixed" if fixed_point else "float"), unit="batch")
    start = time.perf_counter()
    steps, predictions, activities = [], [], []
    lava_steps = build_s = run_s = read_s = 0.0
    for a, b in iterator:
        batch_frames = frames[a:b]
        result = run_stream(network, batch_frames, slots=min(batch_size, b - a), progress=progress and stream)
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
        batch_size=min(batch_size, frames.shape[0]),  # the slots side by side (streamed) or the largest batch
        streamed=stream,
        lava_steps=int(lava_steps),
        max_lava_steps=len(batches) * (frames.shape[1] + len(network.layers) + 1),
        build_s=build_s,
        run_s=run_s,
        read_s=read_s,
        wall_s=wall,
        counts=count_snn(counted_network(network), activities),
    )
