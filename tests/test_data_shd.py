"""SHD through tonic's layout, offline: a small HDF5 file written here in SHD's layout."""

from __future__ import annotations


import h5py
import numpy as np
import pytest
import torch

from rc_snn.data import load_dataset


def write_shd(path, n_samples=40, seed=0, bad_unit=False):
    """An SHD-layout file: ragged spikes/times (s) and spikes/units, labels, extra/keys, extra/speaker."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    times, units = [], []
    for i in range(n_samples):
        n = 30 + i
        times.append(np.sort(rng.uniform(0, 0.9, n)).astype(np.float16))
        units.append(rng.integers(0, 700, n).astype(np.uint16))
    if bad_unit:
        units[3][0] = 700
    with h5py.File(path, "w") as file:
        file.create_dataset("spikes/times", data=np.array(times, dtype=object), dtype=h5py.vlen_dtype(np.float16))
        file.create_dataset("spikes/units", data=np.array(units, dtype=object), dtype=h5py.vlen_dtype(np.uint16))
        file.create_dataset("labels", data=(np.arange(n_samples) % 20).astype(np.uint8))
        file.create_dataset("extra/keys", data=np.array([f"d{i}".encode() for i in range(20)]))
        file.create_dataset("extra/speaker", data=np.zeros(n_samples, np.uint8))
    return times, units


def test_reads_tonic_layout_offline(tmp_path, no_network):
    times, units = write_shd(tmp_path / "SHD" / "shd_train.h5")
    train, info = load_dataset("shd", "train", data_dir=tmp_path, cache_dir=tmp_path / "c")
    val, _ = load_dataset("shd", "val", data_dir=tmp_path, cache_dir=tmp_path / "c")
    assert (info.n_inputs, info.n_classes, info.n_steps, info.dt_ms) == (700, 20, 100, 10.0)
    assert len(train) == 36 and len(val) == 4  # val: sample index % 10 == 0
    x, label = val[1]  # sample 10
    assert x.shape == (100, 700) and x.dtype == torch.float32 and label == 10
    expected = np.zeros((100, 700))
    t_us = times[10].astype(np.float64) * 1e6
    np.add.at(expected, ((t_us // 10_000).astype(int), units[10].astype(int)), 1)
    assert torch.equal(x, torch.from_numpy(expected.astype(np.float32)))


def test_missing_file_and_bad_units(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="shd_test.h5") as error:
        load_dataset("shd", "test", data_dir=tmp_path, cache_dir=tmp_path / "c")
    assert "download" in str(error.value) and str(tmp_path / "SHD" / "shd_test.h5") in str(error.value)
    write_shd(tmp_path / "shd_test.h5", bad_unit=True)
    with pytest.raises(ValueError, match="units outside"):
        load_dataset("shd", "test", data_dir=tmp_path, cache_dir=tmp_path / "c")
    (tmp_path / "x" / "shd_train.h5").parent.mkdir()
    (tmp_path / "x" / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="shd_train.h5"):
        load_dataset("shd", "train", data_dir=tmp_path / "x", cache_dir=tmp_path / "c")


def test_download_delegates_to_tonic(tmp_path, monkeypatch):
    calls = []

    class FakeSHD:
        def __init__(self, save_to, train=True, **kwargs):
            calls.append((save_to, train))
            write_shd(tmp_path / "dl" / "SHD" / ("shd_train.h5" if train else "shd_test.h5"))

    monkeypatch.setattr("tonic.datasets.SHD", FakeSHD)
    dataset, _ = load_dataset("shd", "test", data_dir=tmp_path / "dl", download=True, cache_dir=tmp_path / "c",
                              limit=20, bin_ms=50.0)
    assert calls == [(str(tmp_path / "dl"), False)] and len(dataset) == 20 and dataset[0][0].shape == (20, 700)
