"""`rc-snn cv`: K runs on disjoint held-out folds that cover every recording, with mean and spread."""

from __future__ import annotations

import json
import statistics

import pytest

from rc_snn.pipeline.cli import main
from helpers import write_copy


def test_cv_judges_every_recording_once_and_reports_mean_and_spread(tmp_path, capsys, no_network):
    write_copy(tmp_path / "data", per_class=2)  # 20 recordings
    assert main(["cv", "--dataset", "nmnist", "--data-dir", str(tmp_path / "data"), "--window", "first-saccade",
                 "--hidden", "4", "--epochs", "1", "--batch-size", "8", "--folds", "4", "--out", str(tmp_path / "cv"),
                 "--no-progress"]) == 0
    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert [entry["fold"] for entry in summary["per_fold"]] == [0, 1, 2, 3]
    assert sum(entry["n_samples"] for entry in summary["per_fold"]) == 20
    accuracies = [entry["accuracy"] for entry in summary["per_fold"]]
    assert summary["accuracy"]["mean"] == pytest.approx(statistics.fmean(accuracies))
    assert summary["accuracy"]["sd"] == pytest.approx(statistics.pstdev(accuracies))
    assert all((tmp_path / "cv" / f"fold-{k}" / "checkpoint.pt").is_file() for k in range(4))
    assert "| mean +- sd | 20 |" in capsys.readouterr().out


def test_cv_needs_a_local_nmnist_copy(tmp_path, capsys):
    assert main(["cv", "--dataset", "toy", "--out", str(tmp_path / "cv"), "--no-progress"]) == 2
    assert "cross-validation splits a local N-MNIST" in capsys.readouterr().err
