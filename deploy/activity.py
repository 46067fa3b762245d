"""What a sample did, up to its decision step: :class:`Activity`, the input of operation counting.

Frames are a network's input, ``[N, T, F]`` (N samples, T steps, F channels; event counts per
bin); :func:`check_frames` is the one check of them on the deploy side. An ``Activity`` is built
from a recording (:meth:`Activity.from_recording`, :func:`activities_from_batch`: PyTorch runs
record every step) or from spike counters (:func:`activity_from_counts`: Lava processes count
inside), and the same counting functions (``deploy.counting``) read both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def is_binary(values: Any) -> bool:
    """True when every value is 0 or 1: the inputs are spikes, not graded counts.

    NeuroBench's rule: graded inputs make the first layer's synaptic operations MACs, not ACs.
    """
    values = np.asarray(values)
    return bool(np.all((values == 0) | (values == 1)))


#: The most events one input channel may carry in one bin (a 24-bit count, as the device's state holds).
MAX_EVENTS_PER_BIN = 2**24


def check_frames(frames, n_inputs: int, *, fixed_point: bool = False, as_float64: bool = True) -> np.ndarray:
    """``frames [N, T, F]`` with ``F == n_inputs``: event counts, so finite, in ``[0, MAX_EVENTS_PER_BIN]``,
    and integer-valued for fixed point.

    Returns them as float64 (``as_float64``) or in their own numeric dtype (a view when possible).
    """
    array = np.asarray(frames)
    if array.ndim != 3 or array.shape[2] != n_inputs or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected frames of shape [N >= 1, T >= 1, {n_inputs}]; got {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"expected numeric frames; got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError("expected finite frame values; got NaN or inf")
        if fixed_point and not np.array_equal(array, np.rint(array)):
            raise ValueError("expected integer event counts in frames for a fixed-point run; got fractional values")
    if array.size and (array.min() < 0 or array.max() > MAX_EVENTS_PER_BIN):
        raise ValueError(f"expected event counts in frames, 0 <= count <= {MAX_EVENTS_PER_BIN}; got values from "
                         f"{array.min()} to {array.max()}")
    return array.astype(np.float64, copy=False) if as_float64 else array


def activity_from_counts(sample_frames: np.ndarray, spike_counts: Sequence[np.ndarray], decision_step: int) -> Activity:
    """``Activity`` of one sample from its frames ``[T, F]`` and per-layer spike counts up to ``decision_step``.

    Input counts are the nonzero entries per channel over steps ``0..decision_step``
    (:class:`Activity`'s definition); they come from the frames, not from the network.
    """
    used = sample_frames[: decision_step + 1]
    return Activity(
        n_steps=decision_step + 1,
        input_counts=np.count_nonzero(used, axis=0),
        spike_counts=tuple(np.asarray(counts) for counts in spike_counts),
        input_is_binary=is_binary(used),
        input_event_counts=event_counts(used),
    )


def event_counts(values: np.ndarray) -> np.ndarray:
    """Events per channel of ``values [T, F]``: the sum over steps of each value, a bin holding k
    events counting k; a graded value that is not a whole count is rounded up (at least one event)."""
    return np.ceil(np.abs(np.asarray(values, dtype=np.float64))).sum(axis=0).astype(np.int64)


def _as_count_vector(values: Any, name: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"expected {name} as a 1-d array of counts; got shape {array.shape}")
    if array.size and (not np.all(np.isfinite(array)) or np.any(array < 0)):
        raise ValueError(f"expected {name} to hold nonnegative finite counts; got min {array.min()}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"expected {name} of length {length}; got {array.shape[0]}")
    return array.astype(np.int64)


@dataclass(frozen=True)
class Activity:
    """What one sample did, up to and including its decision step.

    Attributes:
        n_steps: steps simulated, ``decision_step + 1`` (early exit stops counting there).
        input_counts: ``[n_inputs]`` nonzero input values per channel over those steps, i.e. the
            number of steps in which the channel was nonzero (NeuroBench's effective inputs).
        spike_counts: one ``[n_neurons_l]`` array per ALIF layer: spikes per neuron over those
            steps.
        input_is_binary: True when every input value was 0 or 1; graded inputs make the
            first-layer synaptic operations MACs instead of ACs (NeuroBench's rule).
        input_event_counts: ``[n_inputs]`` events per channel (:func:`event_counts`: a bin holding
            k events counts k), what event-driven hardware receives; None means one event per
            nonzero value (binary inputs), i.e. ``input_counts``.
    """

    n_steps: int
    input_counts: np.ndarray
    spike_counts: tuple[np.ndarray, ...]
    input_is_binary: bool = True
    input_event_counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if int(self.n_steps) != self.n_steps or self.n_steps < 0:
            raise ValueError(f"expected n_steps as a nonnegative integer; got {self.n_steps!r}")
        object.__setattr__(self, "n_steps", int(self.n_steps))
        object.__setattr__(self, "input_counts", _as_count_vector(self.input_counts, "input_counts"))
        if isinstance(self.spike_counts, np.ndarray) and self.spike_counts.ndim == 1:
            raise ValueError("expected spike_counts as a sequence of per-layer arrays; got one array")
        layers = tuple(
            _as_count_vector(counts, f"spike_counts[{index}]")
            for index, counts in enumerate(self.spike_counts)
        )
        object.__setattr__(self, "spike_counts", layers)
        events = self.input_counts if self.input_event_counts is None else self.input_event_counts
        events = _as_count_vector(events, "input_event_counts", self.input_counts.shape[0])
        if np.any(events < self.input_counts):
            raise ValueError("expected at least one input event per nonzero input value (input_event_counts >= "
                             "input_counts)")
        object.__setattr__(self, "input_event_counts", events)
        for name, counts in [("input_counts", self.input_counts)] + [
            (f"spike_counts[{index}]", counts) for index, counts in enumerate(layers)
        ]:
            if counts.size and counts.max() > self.n_steps:
                raise ValueError(
                    f"expected at most one event per channel per step in {name} "
                    f"(<= n_steps={self.n_steps}); got {counts.max()}"
                )

    @property
    def input_events(self) -> int:
        return int(self.input_counts.sum())

    @classmethod
    def from_recording(
        cls, inputs: Any, spikes: Sequence[Any], n_steps: int
    ) -> "Activity":
        """Sum a recording of one sample over its first ``n_steps`` steps.

        Args:
            inputs: ``[T, n_inputs]`` input values per step (events, 0/1 or graded counts).
            spikes: per ALIF layer ``[T, n_neurons_l]`` spikes (0/1) per step.
            n_steps: steps to count, ``decision_step + 1``; ``1 <= n_steps <= T``.
        """
        input_array = np.asarray(inputs)
        if input_array.ndim != 2:
            raise ValueError(f"expected inputs of shape [T, n_inputs]; got {input_array.shape}")
        n_time = input_array.shape[0]
        if not 0 <= n_steps <= n_time:
            raise ValueError(f"expected 0 <= n_steps <= T={n_time}; got n_steps={n_steps}")
        used_inputs = input_array[:n_steps]
        spike_counts = []
        for index, layer_spikes in enumerate(spikes):
            layer_array = np.asarray(layer_spikes)
            if layer_array.ndim != 2 or layer_array.shape[0] != n_time:
                raise ValueError(
                    f"expected spikes[{index}] of shape [T={n_time}, n_neurons]; got {layer_array.shape}"
                )
            used = layer_array[:n_steps]
            if used.size and not np.all((used == 0) | (used == 1)):
                raise ValueError(f"expected spikes[{index}] to hold only 0 and 1")
            spike_counts.append(np.count_nonzero(used, axis=0))
        return cls(
            n_steps=n_steps,
            input_counts=np.count_nonzero(used_inputs, axis=0),
            spike_counts=tuple(spike_counts),
            input_is_binary=is_binary(used_inputs),
            input_event_counts=event_counts(used_inputs),
        )


def activities_from_batch(
    inputs: Any, spikes: Sequence[Any], decision_steps: Any
) -> list[Activity]:
    """One ``Activity`` per sample of a time-major batch, each cut at its own decision step.

    Args:
        inputs: ``[T, B, n_inputs]`` input values.
        spikes: per ALIF layer ``[T, B, n_neurons_l]`` spikes.
        decision_steps: ``[B]`` integer decision step per sample (0-based; counted inclusively).
    """
    input_array = np.asarray(inputs)
    if input_array.ndim != 3:
        raise ValueError(f"expected inputs of shape [T, B, n_inputs]; got {input_array.shape}")
    steps = np.asarray(decision_steps)
    n_time, n_batch = input_array.shape[:2]
    if steps.shape != (n_batch,):
        raise ValueError(f"expected decision_steps of shape [{n_batch}]; got {steps.shape}")
    if steps.size and (steps.min() < 0 or steps.max() >= n_time):
        raise ValueError(f"expected decision steps in [0, {n_time - 1}]; got {steps.min()}..{steps.max()}")
    layer_arrays = [np.asarray(layer) for layer in spikes]
    for index, layer in enumerate(layer_arrays):
        if layer.ndim != 3 or layer.shape[:2] != (n_time, n_batch):
            raise ValueError(
                f"expected spikes[{index}] of shape [T={n_time}, B={n_batch}, n_neurons]; got {layer.shape}"
            )
    return [
        Activity.from_recording(
            input_array[:, sample], [layer[:, sample] for layer in layer_arrays], int(steps[sample]) + 1
        )
        for sample in range(n_batch)
    ]
