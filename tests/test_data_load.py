"""load_dataset's contract: names, splits, options that do not apply, toy, cache location."""

from __future__ import annotations

import pytest

from rc_snn.data import DATASETS, load_dataset
from rc_snn.data.cache import default_cache_dir


def test_names_and_splits_are_checked():
    assert DATASETS == ("nmnist-sim", "nmnist", "temporal-mnist", "shd", "toy", "qtdb")
    with pytest.raises(ValueError, match="nmnist-sim"):
        load_dataset("mnist", "train")
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        load_dataset("toy", "validation")


@pytest.mark.parametrize("name, option", [("toy", {"bin_ms": 5.0}), ("toy", {"data_dir": "x"}),
                                          ("temporal-mnist", {"denoise_us": 10.0}),
                                          ("shd", {"first_saccade": True}), ("nmnist-sim", {"download": True})])
def test_options_that_do_not_apply_raise(name, option):
    with pytest.raises(ValueError, match="do not apply") as error:
        load_dataset(name, "train", **option)
    assert "accepts" in str(error.value)


def test_toy_through_load_dataset():
    dataset, info = load_dataset("toy", "val", limit=10, n_bins=7, seed=3)
    x, label = dataset[0]
    assert len(dataset) == 10 and x.shape == (7, 1) and info.n_steps == 7 and int(label) in (0, 1)


def test_seed_is_accepted_everywhere(tmp_path):
    with pytest.raises(FileNotFoundError, match="no N-MNIST folder found"):  # the seed passes; only the data is missing
        load_dataset("nmnist", "train", data_dir=tmp_path, seed=5)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RC_SNN_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("RC_SNN_CACHE")
    assert str(default_cache_dir()).endswith(".cache/rc-snn")
