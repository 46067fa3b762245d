"""Parameter memory of a network (NeuroBench's ``Footprint`` metric), in bytes.

Footprint is what a network must store, not what it does, so it lives apart from the operation
counts of ``deploy.counting``; the report shows both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .baselines import UNITS


def snn_footprint_bytes(network: Any, bytes_per_value: int = 4) -> int:
    """NeuroBench footprint: bytes of all parameters (every numpy array and float attribute of each
    layer and the readout: weights, biases, decays, b0, beta), ``bytes_per_value`` each."""
    total_values = 0
    for part in list(network.layers) + [network.readout]:
        values = vars(part) if hasattr(part, "__dict__") else {
            field.name: getattr(part, field.name) for field in dataclasses.fields(part)
        }
        for value in values.values():
            if isinstance(value, np.ndarray):
                total_values += value.size
            elif isinstance(value, (float, np.floating)):  # shared scalars such as b0, beta
                total_values += 1
    return int(total_values * bytes_per_value)


def recurrent_footprint_bytes(
    n_inputs: int, n_hidden: int, n_layers: int, n_outputs: int, bytes_per_value: int = 4, *, unit: str = "lstm"
) -> int:
    """Bytes of ``nn.LSTM`` or ``nn.GRU`` (``unit``: weights and both bias vectors per layer) + ``Linear`` readout."""
    gate_rows = UNITS[unit].gates * n_hidden
    values = 0
    for layer in range(n_layers):
        layer_inputs = n_inputs if layer == 0 else n_hidden
        values += gate_rows * (layer_inputs + n_hidden) + 2 * gate_rows
    values += n_outputs * n_hidden + n_outputs
    return int(values * bytes_per_value)
