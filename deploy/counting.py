"""Operation counts from what a network actually did: ACs, MACs, neuron updates, spikes.

Counting observes recorded activity (input events and spikes per step, cut at each sample's
decision step) and the network's fan-out (nonzero weights); it never instruments ``forward``.
The same functions read PyTorch runs and Lava runs, so both give identical counts for identical
activity. Names follow NeuroBench (Yik et al., "NeuroBench: a framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 2025; the ``neurobench``
package's ``SynapticOperations``, ``ActivationSparsity`` and ``Footprint`` metrics).

What is counted, per sample, over the steps ``0 .. decision_step`` (``n_steps = decision_step + 1``,
from the sample's :class:`deploy.activity.Activity`)
----------------------------------------------------------------------------------------------------
Synaptic operations (one per weight that is used in a step):

* ``effective_acs`` -- accumulates triggered by binary events. For the ALIF network::

      input events[i] * fan_in_layer0[i]                  (only if the inputs are binary)
    + sum_l spikes_l[j] * (fan_rec_l[j] + fan_next_l[j])

  where ``fan_in_layer0[i] = nnz(W_in_0[:, i])``, ``fan_rec_l[j] = nnz(W_rec_l[:, j])`` and
  ``fan_next_l[j] = nnz(W_in_{l+1}[:, j])`` (or ``nnz(W_o[:, j])`` for the last layer). Weights
  that are exactly zero (for example quantised away) are not synapses and are not counted.
  A spike is charged its whole fan-out in the step it is emitted (event-driven view: the spike is
  sent to all its targets at once), including the recurrent delivery of spikes emitted in the
  decision step itself.
* ``effective_macs`` -- multiply-accumulates whose input operand is nonzero (NeuroBench's
  "effective MACs"). For the ALIF network this is nonzero only when the inputs are graded
  (not all 0/1): then each nonzero input value costs ``fan_in_layer0[i]`` MACs instead of ACs,
  as NeuroBench does for non-binary layer inputs. For the LSTM and GRU see ``deploy.baselines``.

  An IR-SNN layer (``deploy.ir.IRLayerIR``) counts the same way with ``2H`` gate rows per column
  (``fan_rec``, ``fan_in`` are counted over ``[2H, .]`` matrices). Its outputs are graded spikes
  (levels ``q``) above 1 bit: each then costs its fan-out in MACs, not ACs, under every convention
  (NeuroBench's rule for non-binary inputs, and the paper's; a multiplication by the level, not a
  shift: the levels are not powers of two). This is decided by the layer's ``bits``, not by the
  values seen: a 2-bit layer sends only 0 and 1 in practice (its ``v >= 0``), yet counts as graded;
  1 bit is the binary-spike setting.
* ``dense_synaptic_ops`` -- NeuroBench's "dense" count: every weight entry of every matrix (the
  full shape, zeros included) used once per step, as a dense processor would.

* ``event_driven_acs`` / ``event_driven_macs`` -- the same synapses under the event-driven
  convention (``CONVENTIONS``): for the ALIF network every input event (a bin holding k events
  delivers k) and every spike costs one AC per synapse it reaches, and nothing is a MAC::

      event_driven_acs = input_event_counts[i] * fan_in_layer0[i] + (the spike term above)

  for the LSTM every weight is multiplied every step: ``event_driven_macs = dense_synaptic_ops``.

Conventions (``CONVENTIONS``, :func:`synaptic_operations`): which of these counts an energy figure
charges. ``"neurobench"`` charges the effective ACs and MACs, ``"event-driven"`` the event-driven
ones, ``"dense"`` every weight every step as a MAC, for every model.

Neuron-state updates (dense: every neuron every step, whatever its input):

* ``neuron_updates`` -- neuron-steps (units x steps). Loihi charges energy per neuron update.
* ``neuron_update_macs`` -- the multiply-accumulates inside those updates, counted as implemented
  (``rc_snn.neuron.alif`` and ``deploy.kernels``), with bias additions folded into the
  accumulator and comparisons not counted:

  ALIF neuron, per step (``ALIF_UPDATE_MACS``, 6 in total)::

      membrane    u = alpha*u + (1-alpha)*I - B*s_prev   3  (alpha*u, (1-alpha)*I, B*s_prev)
      adaptation  b = rho*b + (1-rho)*s_prev             2  (rho*b, (1-rho)*s_prev)
      threshold   B = b0 + beta*b                        1
      spike       s = H(u - B)                           0  (a comparison)

  IR-SNN neuron, per step (``IR_UPDATE_MACS``, 4; ``IR_ACTIVATIONS``, 1: the sigmoid)::

      leak        h = (1-z)*c + z*h_prev                 2  ((1-z)*c, z*h_prev; c = relu(.): a comparison)
      quantise    q = trunc(v / delta)                   1  (v = a + h: an addition)
      reset       a = v - q*delta                        1

  snnTorch leaky neuron (``deploy.ir.LIFLayerIR``), per step (``LIF_UPDATE_MACS``, 2)::

      mem = alpha*mem + I - threshold*s_prev             2  (alpha*mem; threshold*s_prev, or the
                                                            zero reset's product with (1 - s_prev))

  Leaky readout neuron, per step (``READOUT_UPDATE_MACS``, 2; Yin's adaptive output neuron,
  ``deploy.ir.AdaptiveReadoutIR``: ``ALIF_UPDATE_MACS``, its spikes going nowhere)::

      m = alpha_o*m + (1-alpha_o)*(W_o s + b_o)          2  (alpha_o*m, (1-alpha_o)*(...))

  The LSTM's are in ``deploy.baselines``.

Spikes: ``spikes_per_layer`` (ALIF layers), ``input_events``.
Activation sparsity (NeuroBench): ``1 - nonzero_activations / activations_total`` over the
hidden layers' outputs (spikes for the SNN; hidden values for the LSTM, dense unless told).

All counts in ``OpCounts`` are totals over ``n_samples`` samples; ``OpCounts.per_inference``
divides by the sample count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .activity import Activity
from .ir import AdaptiveReadoutIR, IRLayerIR, LIFLayerIR

CONVENTIONS: dict[str, str] = {
    "event-driven": (
        "how each kind of hardware runs its network: the SNN on an event-driven chip, where every input event "
        "(a frame bin holding k events delivers k) and every spike is one accumulate (AC) per synapse it "
        "reaches; the LSTM on a CPU, GPU or accelerator, which multiplies every weight every step (dense MACs)"
    ),
    "neurobench": (
        "NeuroBench's effective synaptic operations (SynapticOperations): a weight counts when its input is "
        "nonzero, as an AC if the layer's input is binary (spikes, 0/1 inputs) and as a MAC otherwise; graded "
        "SNN inputs (event counts of 2 or more in a bin) make every first-layer operation of that sample a "
        "MAC; the LSTM's input products skip zero inputs, its hidden-state products are counted dense"
    ),
    "dense": "NeuroBench's dense count: every weight entry once per step as a MAC, for every model",
}


REPORT_CONVENTIONS = ("event-driven", "neurobench")  # shown in the report's tables; report.json holds all


def synaptic_operations(counts: "OpCounts", convention: str) -> tuple[int, int]:
    """``(ACs, MACs)`` of ``counts`` under one of ``CONVENTIONS``."""
    if convention == "neurobench":
        return counts.effective_acs, counts.effective_macs
    if convention == "event-driven":
        return counts.event_driven_acs, counts.event_driven_macs
    if convention == "dense":
        return 0, counts.dense_synaptic_ops
    raise ValueError(f"expected a counting convention among {sorted(CONVENTIONS)}; got {convention!r}")


# Multiply-accumulates per neuron per step, as implemented (see the module docstring).
ALIF_UPDATE_MACS: dict[str, int] = {"membrane": 3, "adaptation": 2, "threshold": 1}
IR_UPDATE_MACS: dict[str, int] = {"leak": 2, "quantise": 1, "reset": 1}
IR_ACTIVATIONS = 1  # sigmoid(z) per neuron per step
LIF_UPDATE_MACS: dict[str, int] = {"membrane": 1, "reset": 1}
READOUT_UPDATE_MACS: dict[str, int] = {"membrane": 2}


@dataclass(frozen=True)
class OpCounts:
    """Operation counts summed over ``n_samples`` samples (see the module docstring for each).

    ``spikes_per_layer`` is empty for the LSTM. ``sample_steps`` is the total of simulated steps over
    the samples (``sample_steps / n_samples`` is the mean decision step + 1), as in training.
    """

    n_samples: int
    sample_steps: int
    effective_acs: int
    effective_macs: int
    dense_synaptic_ops: int
    event_driven_acs: int
    event_driven_macs: int
    neuron_updates: int
    neuron_update_macs: int
    activations: int
    input_events: int
    spikes_per_layer: tuple[int, ...]
    activations_total: int
    nonzero_activations: int

    @property
    def spikes(self) -> int:
        return int(sum(self.spikes_per_layer))

    @property
    def total_macs(self) -> int:
        """Effective synaptic MACs plus neuron-update MACs."""
        return self.effective_macs + self.neuron_update_macs

    @property
    def activation_sparsity(self) -> float:
        """NeuroBench activation sparsity: share of hidden outputs that were zero."""
        if self.activations_total == 0:
            return 0.0
        return 1.0 - self.nonzero_activations / self.activations_total

    def per_inference(self) -> dict[str, float]:
        """Every count divided by the number of samples, plus derived figures."""
        if self.n_samples == 0:
            raise ValueError("expected counts over at least one sample; got n_samples=0")
        divide = float(self.n_samples)
        result = {
            field.name: getattr(self, field.name) / divide
            for field in dataclasses.fields(self)
            if field.name not in ("n_samples", "spikes_per_layer")
        }
        result["spikes_per_layer"] = [count / divide for count in self.spikes_per_layer]
        result["spikes"] = self.spikes / divide
        result["total_macs"] = self.total_macs / divide
        result["activation_sparsity"] = self.activation_sparsity
        return result

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["spikes_per_layer"] = list(self.spikes_per_layer)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OpCounts":
        names = {field.name for field in dataclasses.fields(cls)}
        missing = names - set(data)
        if missing:
            raise ValueError(f"expected OpCounts fields {sorted(names)}; missing {sorted(missing)} (counts written "
                             "by an older version of rc-snn: count them again)")
        def count(name: str, value) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"expected count {name!r} as a non-negative integer; got {value!r}")
            return value

        values = {name: count(name, data[name]) for name in names if name != "spikes_per_layer"}
        if not isinstance(data["spikes_per_layer"], (list, tuple)):
            raise ValueError(f"expected 'spikes_per_layer' as a list of counts; got {data['spikes_per_layer']!r}")
        values["spikes_per_layer"] = tuple(count("spikes_per_layer", value) for value in data["spikes_per_layer"])
        return cls(**values)

    def __add__(self, other: "OpCounts") -> "OpCounts":
        if not isinstance(other, OpCounts):
            return NotImplemented
        if self.n_samples and other.n_samples and len(self.spikes_per_layer) != len(other.spikes_per_layer):
            raise ValueError(f"expected counts of the same network; got {len(self.spikes_per_layer)} and "
                             f"{len(other.spikes_per_layer)} spiking layers")
        if not self.n_samples:
            return other
        if not other.n_samples:
            return self
        values = {
            field.name: getattr(self, field.name) + getattr(other, field.name)
            for field in dataclasses.fields(self)
            if field.name != "spikes_per_layer"
        }
        values["spikes_per_layer"] = tuple(left + right for left, right in zip(self.spikes_per_layer,
                                                                               other.spikes_per_layer))
        return OpCounts(**values)


EMPTY_COUNTS = OpCounts(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (), 0, 0)


def sum_counts(counts: Iterable[OpCounts]) -> OpCounts:
    """Total of per-sample (or per-batch) counts."""
    total = EMPTY_COUNTS
    for item in counts:
        total = total + item
    return total


# ----------------------------------------------------------------------------------------------
# Fan-out of a network given as plain numpy arrays (duck-typed deploy.ir.NetworkIR)


@dataclass(frozen=True)
class FanOut:
    """Synapses leaving each source, from nonzero weights.

    Attributes:
        inputs: ``[n_inputs]`` nnz per column of layer 0's ``w_in``.
        recurrent: per layer ``[n_l]`` nnz per column of ``w_rec``.
        forward: per layer ``[n_l]`` nnz per column of the next layer's ``w_in`` (or the
            readout weight for the last layer).
        layer_sizes: neurons per layer; ``n_outputs``: readout neurons.
        dense_ops_per_step: all weight entries (zeros included) used once per step.
        graded: per layer, whether its spikes are graded (IR-SNN above 1 bit): MACs, not ACs.
        update_macs, update_activations: per layer, per neuron per step (module docstring).
        readout_update_macs: per readout neuron per step (leaky, or Yin's adaptive output neuron).
    """

    inputs: np.ndarray
    recurrent: tuple[np.ndarray, ...]
    forward: tuple[np.ndarray, ...]
    layer_sizes: tuple[int, ...]
    n_outputs: int
    dense_ops_per_step: int
    graded: tuple[bool, ...] = ()
    update_macs: tuple[int, ...] = ()
    update_activations: tuple[int, ...] = ()
    readout_update_macs: int = sum(READOUT_UPDATE_MACS.values())

    def __post_init__(self) -> None:
        layers = len(self.layer_sizes)
        defaults = {"graded": (False,) * layers, "update_macs": (sum(ALIF_UPDATE_MACS.values()),) * layers,
                    "update_activations": (0,) * layers}
        for name, default in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, default)


def _matrix(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"expected {name} as a 2-d [n_out, n_in] weight matrix; got shape {array.shape}")
    return array


def fan_out(network: Any) -> FanOut:
    """Fan-out of a network with ``.layers[l].w_in [R_l, F_l]``, ``.layers[l].w_rec [R_l, H_l]``
    and ``.readout.weight [C, H_last]`` (``deploy.ir.NetworkIR`` or any object shaped like it;
    ``R_l = H_l`` for an ALIF layer, ``2 H_l`` for an IR-SNN layer)."""
    layers = list(network.layers)
    if not layers:
        raise ValueError("expected a network with at least one ALIF layer; got none")
    readout_weight = _matrix(network.readout.weight, "readout.weight")
    inputs_fan = None
    recurrent, forward, sizes, graded, update_macs, update_activations = [], [], [], [], [], []
    dense = readout_weight.size
    previous_size = None
    for index, layer in enumerate(layers):
        w_in = _matrix(layer.w_in, f"layers[{index}].w_in")
        w_rec = _matrix(layer.w_rec, f"layers[{index}].w_rec")
        size = w_rec.shape[1]
        ir = isinstance(layer, IRLayerIR)
        rows = 2 * size if ir else size
        if w_rec.shape != (rows, size) or w_in.shape[0] != rows:
            raise ValueError(f"expected layers[{index}].w_in with {rows} rows and w_rec of shape ({rows}, {size}); "
                             f"got {w_in.shape} and {w_rec.shape}")
        if previous_size is not None and w_in.shape[1] != previous_size:
            raise ValueError(f"expected layers[{index}].w_in with {previous_size} columns (layer {index - 1}'s "
                             f"size); got {w_in.shape[1]}")
        nnz_columns = np.count_nonzero(w_in, axis=0).astype(np.int64)
        if index == 0:
            inputs_fan = nnz_columns
        else:
            forward.append(nnz_columns)
        recurrent.append(np.count_nonzero(w_rec, axis=0).astype(np.int64))
        sizes.append(size)
        graded.append(bool(ir and layer.graded))
        update_macs.append(sum((IR_UPDATE_MACS if ir else LIF_UPDATE_MACS if isinstance(layer, LIFLayerIR)
                                else ALIF_UPDATE_MACS).values()))
        update_activations.append(IR_ACTIVATIONS if ir else 0)
        dense += w_in.size + w_rec.size
        previous_size = size
    if readout_weight.shape[1] != previous_size:
        raise ValueError(f"expected readout.weight with {previous_size} columns (last layer's size); got "
                         f"{readout_weight.shape[1]}")
    forward.append(np.count_nonzero(readout_weight, axis=0).astype(np.int64))
    return FanOut(
        inputs=inputs_fan,
        recurrent=tuple(recurrent),
        forward=tuple(forward),
        layer_sizes=tuple(sizes),
        n_outputs=readout_weight.shape[0],
        dense_ops_per_step=int(dense),
        graded=tuple(graded),
        update_macs=tuple(update_macs),
        update_activations=tuple(update_activations),
        readout_update_macs=sum((ALIF_UPDATE_MACS if isinstance(network.readout, AdaptiveReadoutIR)
                                 else READOUT_UPDATE_MACS).values()),
    )


def count_snn(network: Any, activity: Activity | Iterable[Activity]) -> OpCounts:
    """Counts for a spiking network (ALIF, IR-SNN) over one sample's ``Activity`` (or the sum over several).

    ``network`` may also be a precomputed ``FanOut``. See the module docstring for the formulas.
    """
    fan = network if isinstance(network, FanOut) else fan_out(network)
    if not isinstance(activity, Activity):
        return sum_counts(count_snn(fan, item) for item in activity)
    if activity.input_counts.shape[0] != fan.inputs.shape[0]:
        raise ValueError(
            f"expected input_counts for {fan.inputs.shape[0]} input channels; got {activity.input_counts.shape[0]}"
        )
    if len(activity.spike_counts) != len(fan.layer_sizes):
        raise ValueError(
            f"expected spike counts for {len(fan.layer_sizes)} layers; got {len(activity.spike_counts)}"
        )
    for index, (counts, size) in enumerate(zip(activity.spike_counts, fan.layer_sizes)):
        if counts.shape[0] != size:
            raise ValueError(f"expected spike_counts[{index}] for {size} neurons; got {counts.shape[0]}")
    input_ops = int(activity.input_counts @ fan.inputs)
    input_event_ops = int(activity.input_event_counts @ fan.inputs)
    spike_ops = [int(counts @ (recurrent + forward))
                 for counts, recurrent, forward in zip(activity.spike_counts, fan.recurrent, fan.forward)]
    binary_spike_ops = sum(ops for ops, graded in zip(spike_ops, fan.graded) if not graded)
    graded_spike_ops = sum(spike_ops) - binary_spike_ops
    steps = activity.n_steps
    hidden_neurons = sum(fan.layer_sizes)
    spikes_per_layer = tuple(int(counts.sum()) for counts in activity.spike_counts)
    return OpCounts(
        n_samples=1,
        sample_steps=steps,
        effective_acs=binary_spike_ops + (input_ops if activity.input_is_binary else 0),
        effective_macs=graded_spike_ops + (0 if activity.input_is_binary else input_ops),
        dense_synaptic_ops=fan.dense_ops_per_step * steps,
        event_driven_acs=binary_spike_ops + input_event_ops,
        event_driven_macs=graded_spike_ops,
        neuron_updates=(hidden_neurons + fan.n_outputs) * steps,
        neuron_update_macs=(sum(size * macs for size, macs in zip(fan.layer_sizes, fan.update_macs))
                            + fan.n_outputs * fan.readout_update_macs) * steps,
        activations=sum(size * count for size, count in zip(fan.layer_sizes, fan.update_activations)) * steps,
        input_events=activity.input_events,
        spikes_per_layer=spikes_per_layer,
        activations_total=hidden_neurons * steps,
        nonzero_activations=sum(spikes_per_layer),
    )
