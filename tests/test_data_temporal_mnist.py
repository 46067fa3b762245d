"""temporal-mnist: one spike per lit pixel, brighter earlier, 20 bins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rc_snn.data import load_dataset
from rc_snn.data.temporal_mnist import temporal_encode


def test_encoding_equation():
    image = np.array([[1.0, 0.0, 0.5, 0.96, 0.01]])
    spikes = temporal_encode(image, 20)
    assert spikes.shape == (1, 20, 5) and spikes.dtype == np.float32
    assert spikes.sum(axis=1).tolist() == [[1, 0, 1, 1, 1]]  # black pixels never fire
    assert np.argmax(spikes[0], axis=0)[[0, 2, 3, 4]].tolist() == [0, 10, 0, 19]  # brighter = earlier


def test_encoding_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        temporal_encode(np.array([[2.0]]))
    with pytest.raises(ValueError, match="n_bins"):
        temporal_encode(np.array([[0.5]]), 0)


def test_load_dataset(no_network):
    dataset, info = load_dataset("temporal-mnist", "test", limit=30)
    assert (info.n_inputs, info.n_steps, info.n_classes, info.dt_ms) == (784, 20, 10, None)
    x, label = dataset[0]
    assert x.shape == (20, 784) and x.dtype == torch.float32 and isinstance(label, int)
    assert sorted(int(dataset[i][1]) for i in range(30)) == sorted(list(range(10)) * 3)
    assert torch.all(x.sum(0) <= 1) and x.sum() > 50
    full, _ = load_dataset("temporal-mnist", "val")
    assert len(full) == 500
    coarse, info10 = load_dataset("temporal-mnist", "test", limit=30, n_bins=10)
    assert info10.n_steps == 10 and torch.equal(coarse[0][0].sum(0), x.sum(0))
    with pytest.raises(ValueError, match="bin_ms"):
        load_dataset("temporal-mnist", "test", bin_ms=5.0)
