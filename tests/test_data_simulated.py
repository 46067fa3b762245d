"""nmnist-sim: the DVS simulation over real digits, its agreement with real N-MNIST, splits and cache."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from rc_snn.data import load_dataset
from rc_snn.data.events import NMNIST_DTYPE
from rc_snn.data.simulated import (SimParams, event_statistics, load_digits, rate_correlation, saccade_offsets,
                                   simulate_events, split_indices)

from conftest import NMNIST_SMALL as REAL

# The band nmnist-sim must stay in, relative to real N-MNIST (module docstring of rc_snn.data.simulated).
BAND = {
    "events_mean": 0.20,        # relative difference of mean events per sample
    "active_pixels": 0.20,      # relative difference of active pixels per sample
    "on_fraction": 0.04,        # absolute difference
    "peak_ms": 15.0,            # each saccade's burst peak, ms
    "share": 0.08,              # each saccade's share of events, absolute
    "xy_mean_px": 1.0,          # centroid, pixels
    "xy_sd": 0.10,              # relative difference of the spatial spread
    "rate_correlation": 0.85,   # minimum correlation of mean 5 ms rate profiles
}
REAL_800 = {  # measured on nmnist-small's 800 recordings; used when the folder is absent
    "events_mean": 4101.3, "on_fraction": 0.498, "saccade_share": [0.362, 0.33, 0.307],
    "burst_peak_ms": [52.5, 152.5, 257.5], "active_pixels": 446.8,
    "x_mean": 16.68, "x_sd": 5.08, "y_mean": 17.27, "y_sd": 6.32,
    "on_off_offset": [[-0.84, -3.41], [-2.74, 3.52], [3.63, 0.31]],
}


@pytest.fixture(scope="module")
def sim_subset():
    """200 simulated recordings, the first 20 digits of each class, seed 0."""
    digits, labels = load_digits()
    ids = np.sort(np.concatenate([np.arange(c * 500, c * 500 + 20) for c in range(10)]))
    return ids, simulate_events(digits[ids], ids, SimParams(), seed=0)


def test_events_are_tonic_nmnist_records(sim_subset):
    _, recordings = sim_subset
    for events in recordings[:20]:
        assert events.dtype == NMNIST_DTYPE
        assert np.all(np.diff(events["t"]) >= 0)
        assert events["x"].min() >= 0 and events["x"].max() < 34 and events["y"].min() >= 0 and events["y"].max() < 34
        assert set(np.unique(events["p"])) <= {0, 1}
        assert 0 <= events["t"].min() and events["t"].max() < 330_000


def test_statistics_stay_within_band_of_real_nmnist(sim_subset):
    _, recordings = sim_subset
    sim = event_statistics(recordings)
    if (REAL / "NMNIST" / "Train").is_dir():
        from rc_snn.data.nmnist import read_events, scan_folder

        files, _ = scan_folder(REAL / "NMNIST" / "Train")
        real = event_statistics([read_events(f) for f in files])
        assert rate_correlation(real, sim) > BAND["rate_correlation"], (real["rate_per_5ms"], sim["rate_per_5ms"])
    else:
        real = REAL_800
    problems = []

    def check(name, ok, a, b):
        if not ok:
            problems.append(f"{name}: real {a} sim {b}")

    for key in ("events_mean", "active_pixels"):
        check(key, abs(sim[key] / real[key] - 1) <= BAND[key], real[key], sim[key])
    check("on_fraction", abs(sim["on_fraction"] - real["on_fraction"]) <= BAND["on_fraction"],
          real["on_fraction"], sim["on_fraction"])
    for leg in range(3):
        check(f"peak {leg}", abs(sim["burst_peak_ms"][leg] - real["burst_peak_ms"][leg]) <= BAND["peak_ms"],
              real["burst_peak_ms"], sim["burst_peak_ms"])
        check(f"share {leg}", abs(sim["saccade_share"][leg] - real["saccade_share"][leg]) <= BAND["share"],
              real["saccade_share"], sim["saccade_share"])
    for axis in ("x", "y"):
        check(f"{axis} mean", abs(sim[f"{axis}_mean"] - real[f"{axis}_mean"]) <= BAND["xy_mean_px"],
              real[f"{axis}_mean"], sim[f"{axis}_mean"])
        check(f"{axis} sd", abs(sim[f"{axis}_sd"] / real[f"{axis}_sd"] - 1) <= BAND["xy_sd"],
              real[f"{axis}_sd"], sim[f"{axis}_sd"])
    # Polarity convention: in each saccade the ON events' centroid sits on the same side of the OFF
    # events' as in the real recordings (wherever the real offset is clear, over half a pixel).
    for leg in range(3):
        for axis in range(2):
            real_offset, sim_offset = real["on_off_offset"][leg][axis], sim["on_off_offset"][leg][axis]
            check(f"ON-OFF offset, saccade {leg + 1}, axis {'xy'[axis]}",
                  abs(real_offset) < 0.5 or np.sign(real_offset) == np.sign(sim_offset), real_offset, sim_offset)
    assert not problems, problems


def test_simulation_is_deterministic_and_per_sample(sim_subset):
    ids, recordings = sim_subset
    digits, _ = load_digits()
    again = simulate_events(digits[ids[[5, 150]]], ids[[5, 150]], SimParams(), seed=0)
    assert np.array_equal(again[0], recordings[5]) and np.array_equal(again[1], recordings[150])
    other_seed = simulate_events(digits[ids[[5]]], ids[[5]], SimParams(), seed=1)
    assert not np.array_equal(other_seed[0], recordings[5])


def test_a_still_digit_gives_only_noise():
    digits, _ = load_digits()
    still = SimParams(saccades_ms=((400.0, 401.0), (402.0, 403.0), (404.0, 405.0)), noise_hz=0.0)
    (events,) = simulate_events(digits[:1], [0], still, seed=0)
    assert len(events) == 0
    moving = simulate_events(digits[:1], [0], SimParams(noise_hz=0.0), seed=0)[0]
    assert len(moving) > 1000 and abs(moving["p"].mean() - 0.5) < 0.1


def test_saccades_trace_the_triangle_and_return():
    params = SimParams()
    ends = np.array([end for _, end in params.saccades_ms]) * 1000
    dx, dy = saccade_offsets(np.concatenate([[0.0], ends]), params)
    assert np.allclose(dx, [0, 3.5, 7, 0]) and np.allclose(dy, [0, 7, 0, 0])


def test_splits_are_disjoint_and_balanced():
    parts = {split: split_indices(split) for split in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [4000, 500, 500]
    assert not set(parts["train"]) & set(parts["val"]) and not set(parts["val"]) & set(parts["test"])
    _, labels = load_digits()
    assert np.bincount(labels[parts["test"]]).tolist() == [50] * 10


def test_load_dataset_offline_limited_and_cached(no_network, tmp_path):
    dataset, info = load_dataset("nmnist-sim", "val", cache_dir=tmp_path, limit=20)
    assert (info.name, info.n_inputs, info.n_steps, info.dt_ms, info.n_classes) == ("nmnist-sim", 2312, 60, 5.0, 10)
    assert len(dataset) == 20 and sorted(dataset.labels.tolist()) == sorted(list(range(10)) * 2)
    x, label = dataset[0]
    assert x.shape == (60, 2312) and x.dtype == torch.float32 and isinstance(label, int) and x.sum() > 500
    cached = list((tmp_path / "frames").glob("nmnist-sim-val-*.npz"))
    assert len(cached) == 1
    again, _ = load_dataset("nmnist-sim", "val", cache_dir=tmp_path, limit=20)
    assert all(torch.equal(again[i][0], dataset[i][0]) for i in range(20))
    first, info_first = load_dataset("nmnist-sim", "val", cache_dir=tmp_path, limit=20, first_saccade=True, bin_ms=10)
    assert info_first.n_steps == 10 and torch.equal(first[3][0], dataset[3][0][:20].view(10, 2, 2312).sum(1))


def test_options_that_do_not_apply_are_refused(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset("nmnist-sim", "train", data_dir=tmp_path)
    with pytest.raises(ValueError, match="download"):
        load_dataset("nmnist-sim", "train", download=True)
    with pytest.raises(ValueError, match="bin_ms or n_bins"):
        load_dataset("nmnist-sim", "train", bin_ms=5, n_bins=60)
