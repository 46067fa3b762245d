"""The command line on the toy task: train, evaluate, export, lava, compare, and its error handling."""

import json

import pytest

from deploy.ir import load_network
from rc_snn.pipeline.cli import main
from helpers import TOY_TRAIN



@pytest.fixture(scope="module")
def alif_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "alif"
    assert main(["train", "--out", str(run), *TOY_TRAIN]) == 0
    return run


def test_evaluate_writes_the_inference_figures(alif_run, capsys):
    assert main(["evaluate", str(alif_run), "--split", "val", "--limit", "32", "--no-progress"]) == 0
    result = json.loads((alif_run / "evaluate-val.json").read_text())
    assert result["n_samples"] == 32 and len(result["decision_steps"]) == 32
    assert sum(result["decision_step_histogram"]) == 32
    assert "accuracy (last step)" in capsys.readouterr().out


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_export_then_lava_agrees_with_pytorch(alif_run, capsys):
    assert main(["export", str(alif_run)]) == 0
    network = load_network(alif_run / "network.npz")
    assert network.n_inputs == 1 and network.decision_threshold == 0.9
    assert main(["lava", str(alif_run), "--network", str(alif_run / "network.npz"), "--split", "val",
                 "--samples", "5", "--no-progress"]) == 0
    result = json.loads((alif_run / "lava-float-val.json").read_text())
    assert result["n_samples"] == 5 and result["agreement_with_pytorch"] == 1.0
    assert "agreement w/ PyTorch" in capsys.readouterr().out

    # The Lava result joins the comparison from the command line, as a row of its own.
    report_dir = alif_run / "report-with-lava"
    assert main(["compare", str(alif_run), str(alif_run / "lava-float-val.json"), "--split", "val", "--limit", "5",
                 "--out", str(report_dir), "--no-progress"]) == 0
    rows = {m["name"]: m for m in json.loads((report_dir / "report.json").read_text())["models"]}
    lava_row = rows["ALIF rank coding, Lava floating point"]
    assert lava_row["accuracy"] == result["accuracy"] and lava_row["n_samples"] == 5
    assert lava_row["counts_total"] == rows["ALIF rank coding"]["counts_total"]  # same samples, same network


def test_compare_writes_a_report(alif_run, tmp_path):
    lstm = tmp_path / "lstm"
    assert main(["train", "--out", str(lstm), "--model", "lstm", *TOY_TRAIN]) == 0
    assert main(["compare", str(alif_run), str(lstm), "--split", "val", "--limit", "16",
                 "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["ALIF rank coding", "LSTM rank coding"]


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "error: expected a trained run folder" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x"), "--dataset", "no-such-set", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rc-snn train: error: config field 'dataset': expected one of") and "'no-such-set'" in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_irsnn_and_gru_through_every_command(tmp_path, capsys):
    irsnn, gru = tmp_path / "irsnn", tmp_path / "gru"
    assert main(["train", "--out", str(irsnn), "--model", "irsnn", "--bits", "4", "--dead-zone", "1", *TOY_TRAIN]) == 0
    assert main(["train", "--out", str(gru), "--model", "gru", *TOY_TRAIN]) == 0
    assert main(["export", str(irsnn)]) == 0
    network = load_network(irsnn / "network.npz")
    assert network.layers[0].bits == 4 and network.layers[0].dead_zone == 1
    assert main(["lava", str(irsnn), "--split", "val", "--samples", "5", "--no-progress"]) == 0
    assert json.loads((irsnn / "lava-float-val.json").read_text())["agreement_with_pytorch"] == 1.0
    capsys.readouterr()  # fixed point takes event counts; the toy task's inputs are not
    assert main(["lava", str(irsnn), "--split", "val", "--samples", "5", "--fixed-point", "--no-progress"]) == 2
    assert "expected integer event counts" in capsys.readouterr().err
    assert main(["export", str(gru)]) == 2
    assert "only spiking networks" in capsys.readouterr().err
    assert main(["compare", str(irsnn), str(gru), "--split", "val", "--limit", "16",
                 "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [(m["name"], m["family"]) for m in report["models"]] == [("IR-SNN rank coding", "snn"),
                                                                  ("GRU rank coding", "rnn")]
    assert "GRU rank coding" in report["models"][0]["energy_ratio_vs"]


def test_demo_refuses_unknown_models(tmp_path, capsys):
    assert main(["demo", "--models", "alif,transformer", "--out", str(tmp_path / "demo")]) == 2
    assert "expected --models as a comma-separated list" in capsys.readouterr().err
