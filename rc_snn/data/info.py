"""What a model needs to know about a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class DatasetInfo:
    """Shape and timing of a dataset's samples: each item is ``(x [n_steps, n_inputs] float32, label)``, the
    label an int, or for a per-step task (``per_step``) an int64 tensor ``[n_steps]``."""

    name: str
    n_inputs: int
    n_classes: int
    n_steps: int
    dt_ms: Optional[float] = None  # duration of one step for binned event data; None for abstract steps
    sensor: Optional[Tuple[int, int, int]] = None  # (polarities, height, width) of camera frames; None otherwise
    per_step: bool = False  # a label at every step (labels [n_steps]), judged from step burn_in on; else one per sample
    burn_in: int = 0

    def __post_init__(self) -> None:
        if self.sensor is not None:  # checkpoints store it as a list
            object.__setattr__(self, "sensor", tuple(int(v) for v in self.sensor))
