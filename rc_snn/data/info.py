"""What a model needs to know about a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class DatasetInfo:
    """Shape and timing of a dataset's samples: each item is ``(x [n_steps, n_inputs] float32, label)``."""

    name: str
    n_inputs: int
    n_classes: int
    n_steps: int
    dt_ms: Optional[float] = None  # duration of one step for binned event data; None for abstract steps
