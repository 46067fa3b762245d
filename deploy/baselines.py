"""Operation counts of the conventional recurrent baselines (the LSTM), in ``deploy.counting``'s terms.

The synaptic operations follow ``deploy.counting``'s definitions (effective, event-driven, dense);
what is particular to a gated unit is its element-wise update, counted as implemented:

  LSTM hidden unit, per layer per step (``LSTM_UPDATE_MACS``, 3)::

      c = f*c + i*g                                      2  (f*c, i*g)
      h = o*tanh(c)                                      1

  plus ``activations`` = 5 nonlinear evaluations (sigmoid i, f, o; tanh g, tanh c) per hidden
  unit per step, counted but not converted to MACs or energy.
"""

from __future__ import annotations

from typing import Iterable

from .activity import Activity
from .counting import EMPTY_COUNTS, OpCounts

LSTM_UPDATE_MACS: dict[str, int] = {"cell": 2, "hidden": 1}
LSTM_ACTIVATIONS_PER_UNIT = 5  # sigmoid(i), sigmoid(f), sigmoid(o), tanh(g), tanh(c)
LSTM_GATES = 4


def count_lstm(
    n_inputs: int,
    n_hidden: int,
    n_layers: int,
    n_outputs: int,
    n_steps: int,
    input_nonzeros: int,
    hidden_nonzeros: int | None = None,
    n_samples: int = 1,
) -> OpCounts:
    """Counts for ``nn.LSTM(n_inputs, n_hidden, n_layers)`` + ``Linear(n_hidden, n_outputs)`` each step.

    Per step, dense (NeuroBench "dense"): ``sum_l 4*(n_in_l + H)*H + C*H`` with ``n_in_0 =
    n_inputs`` and ``n_in_l = H`` above. Effective MACs skip zero input operands: layer 0's
    input product costs ``4*H`` per nonzero input value (``input_nonzeros``, summed over the
    steps and samples); the hidden-state products (recurrent, next layer, readout) are counted
    dense unless ``hidden_nonzeros`` (nonzero hidden values over all layers, steps and samples)
    is given, in which case each nonzero hidden value of layer l costs its fan-out
    (``4*H`` recurrent + ``4*H`` into layer l+1 or ``C`` into the readout). Zeros within an
    LSTM's hidden state are rare, so the dense assumption is close and, if anything, slightly
    favours the SNN; pass ``hidden_nonzeros`` where it matters.

    Element-wise: ``LSTM_UPDATE_MACS`` (3) MACs per hidden unit per step and 5 activations.
    ``n_steps`` is the total of simulated steps over ``n_samples`` samples.
    """
    for name, value in [("n_inputs", n_inputs), ("n_hidden", n_hidden), ("n_layers", n_layers),
                        ("n_outputs", n_outputs)]:
        if int(value) != value or value < 1:
            raise ValueError(f"expected {name} as a positive integer; got {value!r}")
    if n_steps < 0 or input_nonzeros < 0:
        raise ValueError(f"expected nonnegative n_steps and input_nonzeros; got {n_steps}, {input_nonzeros}")
    if input_nonzeros > n_inputs * n_steps:
        raise ValueError(
            f"expected input_nonzeros <= n_inputs * n_steps = {n_inputs * n_steps}; got {input_nonzeros}"
        )
    hidden_values = n_hidden * n_layers * n_steps
    if hidden_nonzeros is not None and not 0 <= hidden_nonzeros <= hidden_values:
        raise ValueError(f"expected 0 <= hidden_nonzeros <= {hidden_values}; got {hidden_nonzeros}")
    gate_rows = LSTM_GATES * n_hidden
    dense_per_step = (
        gate_rows * (n_inputs + n_hidden)
        + (n_layers - 1) * gate_rows * (n_hidden + n_hidden)
        + n_outputs * n_hidden
    )
    # Fan-out of one hidden value, averaged over layers: recurrent 4H, next layer 4H or readout C.
    hidden_fan_total = n_layers * gate_rows + (n_layers - 1) * gate_rows + n_outputs
    if hidden_nonzeros is None:
        hidden_ops = hidden_fan_total * n_hidden * n_steps
        nonzero_hidden = hidden_values
    else:
        # Each layer's values share the same per-value fan-out only on average; exact for one layer.
        hidden_ops = round(hidden_nonzeros * hidden_fan_total / n_layers)
        nonzero_hidden = int(hidden_nonzeros)
    units = n_hidden * n_layers
    return OpCounts(
        n_samples=int(n_samples),
        n_steps=int(n_steps),
        effective_acs=0,
        effective_macs=int(input_nonzeros) * gate_rows + int(hidden_ops),
        dense_synaptic_ops=dense_per_step * int(n_steps),
        event_driven_acs=0,
        event_driven_macs=dense_per_step * int(n_steps),
        neuron_updates=(units + n_outputs) * int(n_steps),
        neuron_update_macs=units * sum(LSTM_UPDATE_MACS.values()) * int(n_steps),
        activations=units * LSTM_ACTIVATIONS_PER_UNIT * int(n_steps),
        input_events=int(input_nonzeros),
        spikes_per_layer=(),
        activations_total=hidden_values,
        nonzero_activations=nonzero_hidden,
    )


def count_lstm_from_activity(
    n_hidden: int, n_layers: int, n_outputs: int, activity: Activity | Iterable[Activity]
) -> OpCounts:
    """``count_lstm`` over recorded inputs (``Activity`` with no spike counts), per sample summed."""
    items = [activity] if isinstance(activity, Activity) else list(activity)
    total = EMPTY_COUNTS
    for item in items:
        total = total + count_lstm(
            n_inputs=item.input_counts.shape[0],
            n_hidden=n_hidden,
            n_layers=n_layers,
            n_outputs=n_outputs,
            n_steps=item.n_steps,
            input_nonzeros=item.input_events,
        )
    return total
