"""N-MNIST loading: tonic's reader, the three data situations, offline safety, bad files, the frame cache."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rc_snn.data import load_dataset
from rc_snn.data.events import NMNIST_DTYPE, events_to_frames
from rc_snn.data.nmnist import read_events
from helpers import encode_bin, write_copy






def test_encode_bin_roundtrips_through_tonic_reader(tmp_path):
    path = tmp_path / "00001.bin"
    path.write_bytes(encode_bin([1, 33, 0], [2, 0, 33], [10, 5000, 299_999], [1, 0, 1]))
    events = read_events(path)
    assert events.dtype == NMNIST_DTYPE
    assert events["x"].tolist() == [1, 33, 0] and events["y"].tolist() == [2, 0, 33]
    assert events["t"].tolist() == [10, 5000, 299_999] and events["p"].tolist() == [1, 0, 1]


def test_frames_follow_the_binning_equation_and_leave_input_alone():
    events = np.zeros(4, dtype=NMNIST_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = [3, 3, 5, 7], [4, 4, 6, 8], [0, 4999, 5000, 300_000], [1, 1, 0, 1]
    before = events.copy()
    frames = events_to_frames(events, (34, 34, 2), 5000.0, 60)
    assert frames.shape == (60, 2, 34, 34)
    assert frames[0, 1, 4, 3] == 2 and frames[1, 0, 6, 5] == 1
    assert frames.sum() == 3  # the event at t = 300 ms is past the window
    assert np.array_equal(events, before)
    # a bin count that does not divide the window evenly still yields exactly n_steps frames
    assert events_to_frames(events, (34, 34, 2), 300_000 / 7, 7).shape[0] == 7


def test_real_nmnist_small_offline(nmnist_small, no_network, tmp_path):
    train, info = load_dataset("nmnist", "train", data_dir=nmnist_small, cache_dir=tmp_path)
    val, _ = load_dataset("nmnist", "val", data_dir=nmnist_small / "NMNIST", cache_dir=tmp_path)
    assert (info.n_inputs, info.n_classes, info.n_steps, info.dt_ms) == (2312, 10, 60, 5.0)
    assert len(train) + len(val) == 800 and len(val) == 80
    x, label = train[0]
    assert x.shape == (60, 2312) and x.dtype == torch.float32 and isinstance(label, int)
    # the cached frames hold every event of the file inside the 300 ms window
    first_train_file = next(path for path in sorted((nmnist_small / "NMNIST" / "Train" / str(label)).glob("*.bin"))
                            if int(path.stem) % 10 != 0)
    events = read_events(first_train_file)
    assert x.sum().item() == int((events["t"] < 300_000).sum())
    # frames are tonic's [T, P, H, W] flattened: compare one sample's layout
    expected = events_to_frames(events, (34, 34, 2), 5000.0, 60).reshape(60, -1)
    assert torch.equal(x, torch.from_numpy(expected.astype(np.float32)))


def test_real_test_split_without_test_folder_warns_and_uses_validation(nmnist_small, no_network, tmp_path):
    with pytest.warns(UserWarning, match="no Test/ folder"):
        test, _ = load_dataset("nmnist", "test", data_dir=nmnist_small, cache_dir=tmp_path, limit=20)
    val, _ = load_dataset("nmnist", "val", data_dir=nmnist_small, cache_dir=tmp_path, limit=20)
    assert torch.equal(test[3][0], val[3][0])


def test_full_copy_uses_test_folder(tmp_path, no_network):
    write_copy(tmp_path / "data", folders=("Train", "Test"), per_class=10)
    (tmp_path / "data" / "NMNIST" / "train.zip").write_bytes(b"")  # as tonic leaves a full copy
    train, _ = load_dataset("nmnist", "train", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    val, _ = load_dataset("nmnist", "val", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Test/ folder: no fallback warning
        test, _ = load_dataset("nmnist", "test", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert len(test) == 100
    assert len(train) + len(val) == 100 and len(val) == 10  # indices 1..100, val: index % 10 == 0


def test_partial_copy_and_limit_are_class_balanced(tmp_path, no_network):
    write_copy(tmp_path, per_class=3)
    train, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=tmp_path / "c", limit=10)
    assert sorted(train.labels.tolist()) == list(range(10))


def test_download_delegates_to_tonic(tmp_path, monkeypatch):
    calls = []

    class FakeNMNIST:
        def __init__(self, save_to, train=True, **kwargs):
            calls.append((save_to, train))
            write_copy(Path(save_to), folders=("Train",) if train else ("Test",))

    monkeypatch.setattr("tonic.datasets.NMNIST", FakeNMNIST)
    dataset, _ = load_dataset("nmnist", "train", data_dir=tmp_path / "dl", download=True, cache_dir=tmp_path / "c")
    assert calls == [(str(tmp_path / "dl"), True)] and len(dataset) == 18
    load_dataset("nmnist", "test", data_dir=tmp_path / "dl", download=True, cache_dir=tmp_path / "c")
    assert calls[-1] == (str(tmp_path / "dl"), False)


def test_without_download_tonic_is_never_constructed(tmp_path, monkeypatch, no_network):
    def refuse(*args, **kwargs):
        raise AssertionError("tonic.datasets.NMNIST must not be used without download=True")

    monkeypatch.setattr("tonic.datasets.NMNIST", refuse)
    write_copy(tmp_path)
    load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=tmp_path / "c")


def test_missing_data_names_folder_and_remedy(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("nmnist", "train", data_dir=tmp_path / "nowhere", cache_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "NMNIST" / "Train") in message and "download" in message
    (tmp_path / "only" / "NMNIST" / "Test" / "3").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="Train"):
        load_dataset("nmnist", "train", data_dir=tmp_path / "only", cache_dir=tmp_path)


@pytest.mark.parametrize("content, match", [(b"", "empty file"), (b"\x01\x02\x03\x04\x05\x06\x07", "not a whole number"),
                                            (encode_bin([40], [3], [100], [1]), "outside the 34x34")])
def test_bad_files_raise_naming_the_file(tmp_path, content, match, no_network):
    write_copy(tmp_path, per_class=1)
    bad = tmp_path / "NMNIST" / "Train" / "4" / "00077.bin"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=tmp_path / "c")
    assert str(bad) in str(error.value)


def test_folder_that_is_not_a_label_is_skipped_with_warning(tmp_path, no_network):
    write_copy(tmp_path, per_class=1)
    stray = tmp_path / "NMNIST" / "Train" / "10"
    stray.mkdir()
    (stray / "00099.bin").write_bytes(encode_bin([1], [1], [5], [1]))
    with pytest.warns(UserWarning, match="not a class label") as record:
        dataset, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=tmp_path / "c")
    assert any(str(stray) in str(w.message) for w in record)
    assert len(dataset) == 9 and 10 not in dataset.labels.tolist()  # file 00010 is val; 00099 never read


def test_cache_is_keyed_by_every_binning_parameter(tmp_path, no_network):
    write_copy(tmp_path, per_class=2)
    cache = tmp_path / "c"
    five, info5 = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    ten, info10 = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache, bin_ms=10.0)
    assert (info5.n_steps, info10.n_steps, info10.dt_ms) == (60, 30, 10.0)
    assert five[0][0].shape == (60, 2312) and ten[0][0].shape == (30, 2312)
    assert torch.equal(ten[0][0], five[0][0].view(30, 2, 2312).sum(1))
    bins, info_bins = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache, n_bins=30)
    assert info_bins.n_steps == 30 and torch.equal(bins[0][0], ten[0][0])
    first, info_first = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache, first_saccade=True)
    assert info_first.n_steps == 20 and torch.equal(first[0][0], five[0][0][:20])
    denoised, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache, denoise_us=1000.0)
    assert denoised[0][0].sum() < five[0][0].sum()  # random events are mostly isolated
    # one file per distinct binning; n_bins=30 and bin_ms=10 are the same frames, so they share one
    assert len(list((cache / "frames").glob("nmnist-train-*.npz"))) == 4


def test_corrupt_or_foreign_cache_entry_is_rebuilt(tmp_path, no_network):
    write_copy(tmp_path, per_class=2)
    cache = tmp_path / "c"
    fresh, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    (entry,) = (cache / "frames").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated write
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    assert all(torch.equal(rebuilt[i][0], fresh[i][0]) for i in range(len(fresh)))
    # a readable file made for other parameters, under this name, is not trusted either
    other_cache = tmp_path / "other"
    load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=other_cache, bin_ms=5.0, limit=3)
    (other,) = (other_cache / "frames").glob("*.npz")
    entry.write_bytes(other.read_bytes())
    with pytest.warns(RuntimeWarning, match="parameters differ"):
        rebuilt, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    assert len(rebuilt) == len(fresh)


def test_changed_source_file_invalidates_cache(tmp_path, no_network):
    write_copy(tmp_path, per_class=1)
    cache = tmp_path / "c"
    before, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    path = sorted((tmp_path / "NMNIST" / "Train" / "0").glob("*.bin"))[0]
    path.write_bytes(encode_bin([0, 1], [0, 1], [10, 20], [1, 1]))
    after, _ = load_dataset("nmnist", "train", data_dir=tmp_path, cache_dir=cache)
    assert after[0][0].sum() == 2 and before[0][0].sum() != 2
