"""The toy task of the rank-coding paper (Jeffares et al., ICLR 2022, section 4.1).

Each sequence is Gaussian noise around one of two means: ``x[t] = mu_c + sd * eps[t]`` with
``eps ~ N(0, 1)``, ``sd ~ U(0.05, 0.25)`` drawn once per sequence, ``mu_0 = 0.5 - margin/2`` and
``mu_1 = 0.5 + margin/2``. The class can be told from the first few steps, so a model that decides
early loses little accuracy: the setting in which rank coding should stop well before the end.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .info import DatasetInfo

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def toy_dataset(
    split: str, *, n_samples: int = 2000, n_steps: int = 25, margin: float = 0.2, seed: int = 0
) -> tuple[TensorDataset, DatasetInfo]:
    """``n_samples`` sequences ``[n_steps, 1]`` with labels 0/1 (balanced, one more 0 for an odd count),
    deterministic per split and seed."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"expected split in {sorted(SPLIT_SEEDS)}; got {split!r}")
    if n_samples < 1 or n_steps < 1 or margin <= 0:
        raise ValueError(f"expected n_samples >= 1, n_steps >= 1, margin > 0; got {n_samples}, {n_steps}, {margin}")
    generator = torch.Generator().manual_seed(1000 * seed + SPLIT_SEEDS[split])
    labels = torch.arange(n_samples) % 2
    labels = labels[torch.randperm(n_samples, generator=generator)]
    means = 0.5 + margin * (labels.float() - 0.5)
    sd = 0.05 + 0.2 * torch.rand(n_samples, generator=generator)
    noise = torch.randn(n_samples, n_steps, 1, generator=generator)
    x = means[:, None, None] + sd[:, None, None] * noise
    info = DatasetInfo(name="toy", n_inputs=1, n_classes=2, n_steps=n_steps)
    return TensorDataset(x, labels), info
