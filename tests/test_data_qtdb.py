"""qtdb: the reader against small files written here, folds that cover every recording once, the
test split's fallback, refusals, and the per-step task from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch

from rc_snn.data import load_dataset
from rc_snn.data.qtdb import BURN_IN, read_qtdb
from rc_snn.pipeline.cli import main
from helpers import LAVA_TIMEOUT


def write_mat(path, n=10, steps=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.choice([-1, 0, 1], size=(n, steps, 4), p=[0.1, 0.8, 0.1]).astype(np.int16)
    labels = rng.integers(0, 6, size=(n, steps))
    y = np.eye(6, dtype=np.uint8)[labels]
    y[0, :3] = 0  # unlabelled steps: class 0, as the authors' argmax reads them
    scipy.io.savemat(path, {"x": x, "y": y, "t": np.tile(np.arange(steps, dtype=np.uint16), (n, 1)),
                            "max_i": np.full((n, 1), steps, dtype=np.uint16)})
    labels[0, :3] = 0
    return x, labels


def test_the_reader_gives_up_and_down_crossings_as_events_and_one_label_per_step(tmp_path):
    x, labels = write_mat(tmp_path / "QTDB_train.mat")
    got_x, got_y = read_qtdb(tmp_path / "QTDB_train.mat")
    np.testing.assert_array_equal(got_x[..., :4] - got_x[..., 4:], x)  # the signed values, two event channels
    assert set(np.unique(got_x)) == {0.0, 1.0}
    np.testing.assert_array_equal(got_y, labels)
    dataset, info = load_dataset("qtdb", "train", data_dir=tmp_path, folds=5, fold=1)
    assert info.per_step and info.burn_in == BURN_IN and (info.n_inputs, info.n_classes, info.n_steps) == (8, 6, 40)
    item_x, item_y = dataset[0]
    assert item_x.dtype == torch.float32 and item_y.shape == (40,) and item_y.dtype == torch.int64


def test_folds_cover_every_recording_once_and_test_falls_back_with_a_warning(tmp_path):
    write_mat(tmp_path / "QTDB_train.mat", n=12)
    seen = []
    for fold in range(3):
        val, _ = load_dataset("qtdb", "val", data_dir=tmp_path, folds=3, fold=fold)
        train, _ = load_dataset("qtdb", "train", data_dir=tmp_path, folds=3, fold=fold)
        assert len(val) + len(train) == 12
        seen += [tuple(val[i][0].flatten().tolist()) for i in range(len(val))]
    assert len(set(seen)) == 12
    with pytest.warns(UserWarning, match="no QTDB_test.mat"):
        test, _ = load_dataset("qtdb", "test", data_dir=tmp_path)
    write_mat(tmp_path / "QTDB_test.mat", n=3, seed=1)
    test, _ = load_dataset("qtdb", "test", data_dir=tmp_path)
    assert len(test) == 3


def test_bad_files_are_refused_by_name(tmp_path):
    scipy.io.savemat(tmp_path / "QTDB_train.mat", {"x": np.zeros((2, 5, 3))})
    with pytest.raises(ValueError, match="expected array 'y'"):
        load_dataset("qtdb", "train", data_dir=tmp_path)
    (tmp_path / "QTDB_train.mat").write_text("not a mat file")
    with pytest.raises(ValueError, match="could not read it"):
        load_dataset("qtdb", "train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="QTDB_train.mat"):
        load_dataset("qtdb", "train", data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="needs --data-dir"):
        load_dataset("qtdb", "train")


@pytest.mark.parametrize("model", ["alif", "lstm", "gru"])
def test_train_evaluate_and_refusals_on_a_per_step_task(tmp_path, capsys, model):
    write_mat(tmp_path / "QTDB_train.mat", n=20, steps=30)
    run = tmp_path / "run"
    flags = ["--dataset", "qtdb", "--data-dir", str(tmp_path), "--hidden", "8", "--epochs", "2", "--no-progress"]
    assert main(["train", "--out", str(run), "--model", model, "--loss", "per-step", *flags]) == 0
    history = json.loads((run / "metrics.json").read_text())
    assert 0 <= history[-1]["val_accuracy"] <= 1 and history[-1]["val_mean_decision_step"] is None
    with pytest.warns(UserWarning, match="no QTDB_test.mat"):
        assert main(["evaluate", str(run), "--split", "test", "--no-progress"]) == 0
    result = json.loads((run / "evaluate-test.json").read_text())
    assert result["task"] == "per-step" and result["burn_in"] == BURN_IN
    assert result["accuracy"] == pytest.approx(np.mean(result["accuracy_per_sample"]))
    assert "accuracy (per step)" in capsys.readouterr().out
    assert main(["train", "--out", str(tmp_path / "rank"), "--model", model, *flags]) == 2
    assert "train it with --loss per-step" in capsys.readouterr().err


def test_cv_of_a_per_step_task_reports_the_per_step_accuracy_per_fold(tmp_path, capsys):
    write_mat(tmp_path / "QTDB_train.mat", n=12, steps=25)
    out = tmp_path / "cv"
    assert main(["cv", "--dataset", "qtdb", "--data-dir", str(tmp_path), "--loss", "per-step", "--hidden", "6",
                 "--epochs", "1", "--folds", "3", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "cv.json").read_text())
    assert summary["task"] == "per-step" and [f["n_samples"] for f in summary["per_fold"]] == [4, 4, 4]
    assert "mean_decision_step" not in summary and "mean_decision_step" not in summary["per_fold"][0]
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean([f["accuracy"] for f in summary["per_fold"]]))
    table = capsys.readouterr().out
    assert "| fold | recordings | per-step accuracy | training (s) |" in table and "decision" not in table


def test_the_shared_training_split_reads(qtdb):
    train, info = load_dataset("qtdb", "train", data_dir=qtdb, folds=5, fold=0)
    val, _ = load_dataset("qtdb", "val", data_dir=qtdb, folds=5, fold=0)
    assert len(train) + len(val) == 618 and info.n_steps == 1301


def test_compare_counts_whole_recordings_of_a_per_step_task(tmp_path, capsys):
    write_mat(tmp_path / "QTDB_train.mat", n=10, steps=20)
    runs = []
    for model in ("alif", "lstm"):
        runs.append(tmp_path / model)
        assert main(["train", "--out", str(runs[-1]), "--model", model, "--dataset", "qtdb", "--data-dir",
                     str(tmp_path), "--loss", "per-step", "--hidden", "4", "--epochs", "1", "--no-progress"]) == 0
        assert main(["evaluate", str(runs[-1]), "--split", "val", "--no-progress"]) == 0
    assert main(["compare", *map(str, runs), "--split", "val", "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    for run, entry in zip(runs, report["models"]):
        evaluated = json.loads((run / "evaluate-val.json").read_text())
        assert entry["accuracy"] == pytest.approx(evaluated["accuracy"])  # the per-step accuracy
        assert entry["mean_decision_step"] == 19  # every step of every recording is counted


def test_the_shipped_qtdb_recipes_train_and_export(tmp_path, capsys):
    from pathlib import Path

    from deploy.ir import AdaptiveReadoutIR, ALIFLayerIR, IRLayerIR, ReadoutIR, load_network

    configs = Path(__file__).resolve().parents[1] / "configs"
    write_mat(tmp_path / "QTDB_train.mat", n=8, steps=20)
    for name, layer, readout in (("qtdb-alif", ALIFLayerIR, ReadoutIR), ("qtdb-yin", ALIFLayerIR, AdaptiveReadoutIR),
                                 ("qtdb-irsnn", IRLayerIR, ReadoutIR)):
        assert main(["train", "--config", str(configs / f"{name}.json"), "--data-dir", str(tmp_path), "--epochs", "1",
                     "--out", str(tmp_path / name), "--no-progress"]) == 0
        assert main(["export", str(tmp_path / name)]) == 0
        network = load_network(tmp_path / name / "network.npz")
        assert [type(each) for each in network.layers] == [layer]
        assert type(network.readout) is readout


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("network", [["--output-layer", "leaky"], ["--output-layer", "adaptive"], ["--model", "irsnn"]],
                         ids=["alif-leaky", "alif-adaptive", "irsnn"])
def test_lava_predicts_every_step_as_pytorch_does(tmp_path, capsys, network):
    write_mat(tmp_path / "QTDB_train.mat", n=20, steps=30)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--dataset", "qtdb", "--data-dir", str(tmp_path), "--loss", "per-step",
                 "--hidden", "12", "--epochs", "2", "--lr", "0.02", *network, "--no-progress"]) == 0
    for fixed in ("--no-fixed-point", "--fixed-point"):
        assert main(["lava", str(run), "--split", "val", "--samples", "4", fixed, "--no-progress"]) == 0
    float_run = json.loads((run / "lava-float-val.json").read_text())
    fixed_run = json.loads((run / "lava-fixed-val.json").read_text())
    assert float_run["task"] == "per-step" and float_run["n_samples"] == 2 and float_run["n_steps"] == 30
    assert float_run["agreement_with_pytorch"] == 1.0 and float_run["recordings_identical_to_pytorch"] == 1.0
    assert float_run["accuracy"] == pytest.approx(float_run["pytorch_accuracy"])
    assert fixed_run["agreement_with_pytorch"] >= 0.8
    assert sum(float_run["counts"]["spikes_per_layer"]) > 0 and float_run["energy_per_step_pj"]["neurobench"]["loihi"] > 0
    assert "a prediction at every step" in capsys.readouterr().out
    assert main(["compare", str(run), str(run / "lava-float-val.json"), "--split", "val",
                 "--out", str(tmp_path / "report"), "--no-progress"]) == 2
