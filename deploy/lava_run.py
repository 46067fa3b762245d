"""Build and run one Lava network for a network file: B slots side by side, samples streamed
through them (``deploy.simulate`` has the timing and the modes; ``deploy.lava_procs`` the Processes).

:func:`run_stream` builds the network (source, per layer a Dense in, the neuron Process and a
recurrent Dense, a Dense out and the readout), runs it until every sample has decided (in chunks
with a progress bar when asked), reads a few counters once and stops it; :func:`run_batch` is the
batch mode, one sample per slot, :func:`record_batch` the same with every layer's spikes and the
readout recorded, and :func:`predict_every_step` with the readout's prediction at every step. Each
takes the network as a ``NetworkIR`` (float) or a ``FixedNetwork`` (fixed point): the type selects
the ProcessModels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import kernels, private_api
from .ir import AdaptiveReadoutIR, NetworkIR, layer_kind
from .fixed import FixedAdaptiveReadout, FixedNetwork, check_network


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
    step_predictions: Optional[np.ndarray] = None  # predict_every_step: [N, T] argmax m up to each decision


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
    "lif": ("bias", "alpha", "threshold", "reset"),
}


def _layer_parameters(network: NetworkIR | FixedNetwork):
    """Per layer and readout: Dense and neuron parameters in the network's units (float or device
    integers); ``kind`` picks the layer's neuron Process."""
    fixed_point = check_network(network)
    kinds = network.layer_kinds() if fixed_point else [layer_kind(layer) for layer in network.layers]
    layers = []
    for layer, kind in zip(network.layers, kinds):
        if fixed_point:
            w_in, w_rec = (layer.w_in_mant.T, layer.w_in_exp), (layer.w_rec_mant.T, layer.w_rec_exp)
        else:
            w_in, w_rec = (layer.w_in.T, None), (layer.w_rec.T, None)
        layers.append(dict(w_in=w_in, w_rec=w_rec, kind=kind,
                           neuron={name: getattr(layer, name) for name in NEURON_VARS[kind]}))
    head = network.readout
    if fixed_point:
        readout = dict(weights=(head.weight_mant.T, head.weight_exp),
                       neuron=dict(bias=head.bias, alpha=head.alpha, scale=head.scale))
    else:
        readout = dict(weights=(head.weight.T, None), neuron=dict(bias=head.bias, alpha=head.alpha, scale=1.0))
    if isinstance(head, (AdaptiveReadoutIR, FixedAdaptiveReadout)):  # Yin's adaptive output layer
        readout["neuron"].update(rho=head.rho, b0=head.b0, beta=head.beta)
    return layers, readout


def _import_lava_runtime() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` at import.

    That call raises when anything earlier fixed the start method (for example a data loader asking
    for it). When the method already is 'fork', which is what Lava wants, unset it (the public
    ``set_start_method(None, force=True)``) and let Lava's call through.
    """
    import multiprocessing

    private_api.check_lava()
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
        multiprocessing.set_start_method(None, force=True)
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


def run_batch(network: NetworkIR | FixedNetwork, frames: np.ndarray) -> BatchResult:
    """One Lava run of ``frames [B, T, F]``, one sample per slot (the batch mode); a ``FixedNetwork``
    runs the ``fixed_pt`` models."""
    return _run(network, frames, slots=frames.shape[0], record=False, progress=False)


def record_batch(network: NetworkIR | FixedNetwork, frames: np.ndarray) -> BatchResult:
    """:func:`run_batch` with Lava Monitors on every layer's spikes and the readout's ``m`` (slow: about
    +0.7 ms per step each and one message per value read; for tests and debugging): the result's
    ``spike_trains`` and ``outputs`` hold them, shifted back to PyTorch's step index."""
    return _run(network, frames, slots=frames.shape[0], record=True, progress=False)


def predict_every_step(network: NetworkIR | FixedNetwork, frames: np.ndarray) -> BatchResult:
    """:func:`run_batch` that also returns the readout's ``argmax m`` at every step up to each sample's
    decision (``step_predictions [N, T]``; all ``T`` steps with ``decision_threshold`` 1): how a
    per-step task, a label at every step, is judged. The readout packs them as it goes, so they are
    read in a few messages (a Monitor of ``m``, as in :func:`record_batch`, takes one per value: 3.6
    minutes for 124 ECG recordings of 1,301 steps, against seconds)."""
    return _run(network, frames, slots=frames.shape[0], record=False, progress=False, record_steps=True)


#: Lava steps per ``run`` call of a stream, between two looks at how many samples have decided.
PROGRESS_CHUNK = 10


def run_stream(network: NetworkIR | FixedNetwork, frames: np.ndarray, *, slots: int,
               progress: bool = False) -> BatchResult:
    """One Lava run of ``frames [N, T, F]`` streamed through ``slots`` side by side (module docstring);
    a ``FixedNetwork`` runs the ``fixed_pt`` models. ``progress`` shows a bar of the samples decided
    (and samples/s): the run goes in chunks of ``PROGRESS_CHUNK`` steps, reading one counter between
    them. Always stops the Lava runtime (``finally``), also when a model raises."""
    return _run(network, frames, slots=slots, record=False, progress=progress)


def _run(network: NetworkIR | FixedNetwork, frames: np.ndarray, *, slots: int, record: bool,
         progress: bool, record_steps: bool = False) -> BatchResult:
    _import_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from .lava_procs.process import ALIF, BatchDense, DecisionReadout, FrameSource, IRNeuron, LeakyNeuron

    start = time.perf_counter()
    n_samples, n_time, n_channels = frames.shape
    if not 1 <= int(slots) <= n_samples:
        raise ValueError(f"expected 1 <= slots <= {n_samples} (the samples); got {slots}")
    batch = int(slots)
    fixed_point = check_network(network)
    n_layers = len(network.layers)
    readout_depth = n_layers + 1
    total_steps = max_lava_steps(n_samples, batch, n_time, n_layers)
    indptr, indices, values = _sparse_frames(frames, fixed_point)
    layer_params, readout_params = _layer_parameters(network)

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
    readout = DecisionReadout(batch=batch, n_samples=n_samples, decision_threshold=network.decision_threshold,
                              depth=readout_depth, n_steps=n_time, max_lava_steps=total_steps, run_chunk=chunk,
                              record_steps=record_steps, name="readout", **readout_params["neuron"])
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

    run_cfg = Loihi2SimCfg(select_tag="fixed_pt" if fixed_point else "floating_pt")
    started = False
    try:
        readout.create_runtime(run_cfg=run_cfg)  # compile and start the processes
        started = True
        built = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_samples, desc="lava " + ("fixed" if fixed_point else "float") + " stream",
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
                             for layer, size in zip(neurons, [layer.n_neurons for layer in network.layers]))
        step_predictions = (kernels.unpack_counts(readout.step_predictions.get(), n_time, network.n_outputs - 1)
                            if record_steps else None)
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
        outputs = aligned[-1] / (network.readout.scale if fixed_point else 1.0)
    return BatchResult(decision_steps, predictions, spike_counts, lava_steps,
                       build_s=built - start, run_s=ran - built, read_s=read - ran,
                       spike_trains=spike_trains, outputs=outputs, step_predictions=step_predictions)


def _monitored(monitor) -> np.ndarray:
    """The one probed Var's data ``[steps, ...]`` of a Lava Monitor."""
    data = monitor.get_data()
    (per_var,) = data.values()
    (values,) = per_var.values()
    return np.asarray(values, dtype=np.float64)
