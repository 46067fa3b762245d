"""Operation counts of the conventional recurrent baselines (LSTM, GRU), in ``deploy.counting``'s terms.

The synaptic operations follow ``deploy.counting``'s definitions (effective, event-driven, dense);
what is particular to a gated unit (:data:`UNITS`) is its number of gates and its element-wise
update, counted as implemented (``rc_snn.models``):

  LSTM hidden unit, per layer per step (``UNITS["lstm"].update_macs``, 3; 5 activations:
  sigmoid i, f, o; tanh g, tanh c)::

      c = f*c + i*g                                      2  (f*c, i*g)
      h = o*tanh(c)                                      1

  GRU hidden unit (``UNITS["gru"].update_macs``, 3; 3 activations: sigmoid r, z; tanh n)::

      n = tanh(i_n + r*h_n)                              1  (r*h_n)
      h = (1-z)*n + z*h_prev                             2

  Activations are counted but not converted to MACs or energy.

A pruned baseline (``rc_snn.training.prune``) passes its weights' nonzero pattern
(:class:`RecurrentWeights`, from :func:`recurrent_weights`): its effective products then count
nonzero weights only, as the spiking networks' fan-out does (each nonzero input value costs the
nonzero weights of its column; each hidden value the nonzero weights it feeds), and the
event-driven convention charges the nonzero weights every step (a kernel that stores only them).
The dense count stays every weight, pruned or not.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np

from .activity import Activity
from .counting import EMPTY_COUNTS, OpCounts


class GatedUnit(NamedTuple):
    """A gated recurrent unit's shape for counting: gate rows per unit, element-wise MACs, activations."""

    gates: int
    update_macs: dict
    activations: int


UNITS: dict[str, GatedUnit] = {
    "lstm": GatedUnit(gates=4, update_macs={"cell": 2, "hidden": 1}, activations=5),
    "gru": GatedUnit(gates=3, update_macs={"reset": 1, "mix": 2}, activations=3),
}


class RecurrentWeights(NamedTuple):
    """The nonzero pattern of a (pruned) LSTM or GRU: ``input_fan [n_inputs]``, the nonzero weights of
    each input column of the first layer's input matrix; ``hidden_fan``, the nonzero weights fed by
    hidden values in one step (every layer's recurrent matrix, the deeper input matrices and the
    readout); ``nonzero``, every nonzero weight."""

    input_fan: np.ndarray
    hidden_fan: int
    nonzero: int


def recurrent_weights(input_matrices: Sequence[np.ndarray], recurrent_matrices: Sequence[np.ndarray],
                      readout: np.ndarray) -> RecurrentWeights:
    """:class:`RecurrentWeights` of a stacked unit from its matrices (layer 0's input matrix first)."""
    input_fan = np.count_nonzero(np.asarray(input_matrices[0]), axis=0).astype(np.int64)
    hidden = [np.asarray(m) for m in (*input_matrices[1:], *recurrent_matrices, readout)]
    hidden_fan = int(sum(np.count_nonzero(m) for m in hidden))
    return RecurrentWeights(input_fan, hidden_fan, int(input_fan.sum()) + hidden_fan)


def _unit(name: str) -> GatedUnit:
    if name not in UNITS:
        raise ValueError(f"expected a recurrent unit among {sorted(UNITS)}; got {name!r}")
    return UNITS[name]


def count_recurrent(
    n_inputs: int,
    n_hidden: int,
    n_layers: int,
    n_outputs: int,
    sample_steps: int,
    input_nonzeros: int,
    hidden_nonzeros: int | None = None,
    n_samples: int = 1,
    *,
    unit: str = "lstm",
    weights: Optional[RecurrentWeights] = None,
    input_counts: Optional[np.ndarray] = None,
) -> OpCounts:
    """Counts for ``nn.LSTM`` or ``nn.GRU`` (``unit``) ``(n_inputs, n_hidden, n_layers)`` +
    ``Linear(n_hidden, n_outputs)`` each step; ``G`` below is the unit's gates (LSTM 4, GRU 3).

    Per step, dense (NeuroBench "dense"): ``sum_l G*(n_in_l + H)*H + C*H`` with ``n_in_0 =
    n_inputs`` and ``n_in_l = H`` above. Effective MACs skip zero input operands: layer 0's
    input product costs ``G*H`` per nonzero input value (``input_nonzeros``, summed over the
    steps and samples); the hidden-state products (recurrent, next layer, readout) are counted
    dense unless ``hidden_nonzeros`` (nonzero hidden values over all layers, steps and samples)
    is given, in which case each nonzero hidden value of layer l costs its fan-out
    (``G*H`` recurrent + ``G*H`` into layer l+1 or ``C`` into the readout). Zeros within a
    hidden state are rare, so the dense assumption is close and, if anything, slightly
    favours the SNN; pass ``hidden_nonzeros`` where it matters.

    Element-wise: the unit's ``update_macs`` (3) per hidden unit per step and its activations.
    ``sample_steps`` is the total of simulated steps over ``n_samples`` samples.

    ``weights`` (a pruned unit, module docstring) with ``input_counts [n_inputs]`` (each input
    channel's nonzero values over the steps) counts nonzero weights only.
    """
    shape = _unit(unit)
    for name, value in [("n_inputs", n_inputs), ("n_hidden", n_hidden), ("n_layers", n_layers),
                        ("n_outputs", n_outputs)]:
        if int(value) != value or value < 1:
            raise ValueError(f"expected {name} as a positive integer; got {value!r}")
    if sample_steps < 0 or input_nonzeros < 0:
        raise ValueError(f"expected nonnegative sample_steps and input_nonzeros; got {sample_steps}, {input_nonzeros}")
    if input_nonzeros > n_inputs * sample_steps:
        raise ValueError(
            f"expected input_nonzeros <= n_inputs * sample_steps = {n_inputs * sample_steps}; got {input_nonzeros}"
        )
    hidden_values = n_hidden * n_layers * sample_steps
    if hidden_nonzeros is not None and not 0 <= hidden_nonzeros <= hidden_values:
        raise ValueError(f"expected 0 <= hidden_nonzeros <= {hidden_values}; got {hidden_nonzeros}")
    gate_rows = shape.gates * n_hidden
    dense_per_step = (
        gate_rows * (n_inputs + n_hidden)
        + (n_layers - 1) * gate_rows * (n_hidden + n_hidden)
        + n_outputs * n_hidden
    )
    # Fan-out of one hidden value, averaged over layers: recurrent 4H, next layer 4H or readout C.
    hidden_fan_total = n_layers * gate_rows + (n_layers - 1) * gate_rows + n_outputs
    if hidden_nonzeros is None:
        hidden_ops = hidden_fan_total * n_hidden * sample_steps
        nonzero_hidden = hidden_values
    else:
        # Each layer's values share the same per-value fan-out only on average; exact for one layer.
        hidden_ops = round(hidden_nonzeros * hidden_fan_total / n_layers)
        nonzero_hidden = int(hidden_nonzeros)
    input_ops, used_per_step = int(input_nonzeros) * gate_rows, dense_per_step
    if weights is not None:
        counts = np.asarray(input_counts, dtype=np.int64)
        if counts.shape != weights.input_fan.shape or int(counts.sum()) != int(input_nonzeros):
            raise ValueError(f"expected input_counts over the {weights.input_fan.size} inputs summing to "
                             f"input_nonzeros ({input_nonzeros}); got shape {counts.shape}, sum {int(counts.sum())}")
        input_ops, used_per_step = int(counts @ weights.input_fan), weights.nonzero
        hidden_ops = round(hidden_ops * weights.hidden_fan / (hidden_fan_total * n_hidden))
    units = n_hidden * n_layers
    return OpCounts(
        n_samples=int(n_samples),
        sample_steps=int(sample_steps),
        effective_acs=0,
        effective_macs=input_ops + int(hidden_ops),
        dense_synaptic_ops=dense_per_step * int(sample_steps),
        event_driven_acs=0,
        event_driven_macs=used_per_step * int(sample_steps),
        neuron_updates=(units + n_outputs) * int(sample_steps),
        neuron_update_macs=units * sum(shape.update_macs.values()) * int(sample_steps),
        activations=units * shape.activations * int(sample_steps),
        input_events=int(input_nonzeros),
        spikes_per_layer=(),
        activations_total=hidden_values,
        nonzero_activations=nonzero_hidden,
    )


def count_recurrent_from_activity(
    n_hidden: int, n_layers: int, n_outputs: int, activity: Activity | Iterable[Activity], *, unit: str = "lstm",
    weights: Optional[RecurrentWeights] = None,
) -> OpCounts:
    """``count_recurrent`` over recorded inputs (``Activity`` with no spike counts), per sample summed;
    ``weights``: a pruned unit's nonzero pattern."""
    items = [activity] if isinstance(activity, Activity) else list(activity)
    total = EMPTY_COUNTS
    for item in items:
        total = total + count_recurrent(
            n_inputs=item.input_counts.shape[0],
            n_hidden=n_hidden,
            n_layers=n_layers,
            n_outputs=n_outputs,
            sample_steps=item.n_steps,
            input_nonzeros=item.input_events,
            unit=unit,
            weights=weights,
            input_counts=item.input_counts,
        )
    return total
