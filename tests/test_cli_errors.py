"""Every user error found by trying rc-snn with bad inputs and faults: one clear line, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from deploy import ir as ir_module
from deploy.ir import load_network
from rc_snn.pipeline.cli import main
from helpers import TOY_TRAIN, fails_cleanly, write_copy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def other_dataset_run(tmp_path_factory):
    """A run on another dataset (temporal-mnist: 784 inputs, 10 classes), from the embedded digits."""
    run = tmp_path_factory.mktemp("errors") / "temporal"
    assert main(["train", "--out", str(run), "--dataset", "temporal-mnist", "--model", "lstm", "--hidden", "4",
                 "--epochs", "1", "--limit-train", "32", "--limit-val", "16", "--no-progress"]) == 0
    return run




@pytest.mark.parametrize("flags, field", [
    (["--lr", "inf"], "'lr'"), (["--beta", "nan"], "'beta'"), (["--b0", "nan"], "'b0'"),
    (["--tau-m", "nan", "1"], "'tau_m'"), (["--entropy-weight", "nan"], "'entropy_weight'"),
    (["--decision-threshold", "1.5"], "'decision_threshold'"),
])
def test_non_finite_or_out_of_range_hyperparameters_are_refused(tmp_path, capsys, flags, field):
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), *TOY_TRAIN, *flags], "config field", field)
    assert not (tmp_path / "run").exists()  # nothing half-made is left


@pytest.mark.parametrize("threshold", ["7", "-1", "nan"])
def test_evaluation_thresholds_are_validated(toy_run, capsys, threshold):
    fails_cleanly(capsys, ["evaluate", str(toy_run), "--decision-threshold", threshold, "--no-progress"],
                  "expected a decision threshold 0 < p <= 1")


@pytest.mark.parametrize("content, expected", [
    ({"hidden": None}, "'hidden': expected an integer >= 1; got None"),
    ({"tau_m": 5}, "'tau_m'"), ({"decision_threshold": "0.9"}, "got '0.9'"), ({"hidden": 1.5}, "'hidden'"),
    ([], "expected a config as a JSON object"),
])
def test_wrongly_typed_config_files_are_refused(tmp_path, capsys, content, expected):
    (tmp_path / "config.json").write_text(json.dumps(content))
    fails_cleanly(capsys, ["train", "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "run"),
                           "--no-progress"], expected)


def test_compare_refuses_runs_on_different_data(toy_run, other_dataset_run, tmp_path, capsys):
    fails_cleanly(capsys, ["compare", str(toy_run), str(other_dataset_run), "--split", "val", "--limit", "16",
                           "--out", str(tmp_path / "report"), "--no-progress"],
                  "expected every model evaluated on the same samples", "toy val", "temporal-mnist val")
    assert not (tmp_path / "report").exists()


def test_the_report_names_the_data_of_every_row(toy_run, tmp_path):
    assert main(["compare", str(toy_run), "--split", "val", "--limit", "16", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    entry = json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]
    assert (entry["dataset"], entry["split"], entry["n_samples"]) == ("toy", "val", 16)
    assert "| toy val |" in (tmp_path / "r" / "report.md").read_text()


def test_lava_refuses_a_network_file_of_another_run(toy_run, other_dataset_run, tmp_path, capsys):
    # An ALIF network shaped like the temporal-mnist data: 784 inputs, 10 classes.
    assert main(["train", "--out", str(tmp_path / "alif"), "--dataset", "temporal-mnist", "--hidden", "4",
                 "--epochs", "1", "--limit-train", "32", "--limit-val", "16", "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "alif"), "--out", str(tmp_path / "other.npz")]) == 0
    fails_cleanly(capsys, ["lava", str(toy_run), "--network", str(tmp_path / "other.npz"), "--samples", "2",
                           "--no-progress"], "(784, (4,), 10)", "(1, (8,), 2)", "another run")


def test_network_files_with_absurd_values_or_no_archive_are_refused(toy_run, tmp_path, capsys):
    assert main(["export", str(toy_run), "--out", str(tmp_path / "net.npz")]) == 0
    arrays = ir_module._to_arrays(load_network(tmp_path / "net.npz"))
    arrays["layer0.w_in"] = arrays["layer0.w_in"] * 1e308
    with open(tmp_path / "huge.npz", "wb") as stream:
        np.savez(stream, **arrays)
    fails_cleanly(capsys, ["lava", str(toy_run), "--network", str(tmp_path / "huge.npz"), "--no-progress"],
                  "expected magnitudes up to 1e+09 in w_in")
    (tmp_path / "text.npz").write_text("hello")
    fails_cleanly(capsys, ["lava", str(toy_run), "--network", str(tmp_path / "text.npz"), "--no-progress"],
                  "is not one")


@pytest.mark.parametrize("where", ["file", "sys", "under_file"])
def test_unwritable_run_folders(tmp_path, capsys, where):
    (tmp_path / "a_file").write_text("x")
    out = {"file": tmp_path / "a_file", "sys": Path("/sys/rc-snn-test"), "under_file": tmp_path / "a_file" / "run"}
    fails_cleanly(capsys, ["train", "--out", str(out[where]), *TOY_TRAIN], str(out[where]) if where != "under_file" else "")


def test_an_unwritable_cache_is_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("RC_SNN_CACHE", str(tmp_path / "a_file" / "cache"))
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), "--dataset", "nmnist-sim", "--limit-train",
                           "10", "--no-progress"], "cannot write the dataset cache", "RC_SNN_CACHE")


def test_a_download_without_network_fails_fast_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import socket

    def unreachable(*args, **kwargs):  # what a machine without a route to the internet answers
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    data = tmp_path / "data"
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), "--dataset", "nmnist", "--download",
                           "--data-dir", str(data), "--no-progress"], "could not download N-MNIST Train")
    assert not data.exists() and not (tmp_path / "run").exists()


def test_a_bin_width_that_would_need_terabytes_is_refused(tmp_path, capsys, no_network):
    write_copy(tmp_path / "data", per_class=1)
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), "--dataset", "nmnist", "--data-dir",
                           str(tmp_path / "data"), "--bin-ms", "1e-9", "--no-progress"], "expected at most 10000")


def test_a_checkpoint_missing_keys_is_named(toy_run, tmp_path, capsys):
    import torch

    run = tmp_path / "damaged"
    run.mkdir()
    (run / "config.json").write_text((toy_run / "config.json").read_text())
    payload = torch.load(toy_run / "checkpoint.pt", weights_only=True)
    del payload["dataset_info"]
    torch.save(payload, run / "checkpoint.pt")
    fails_cleanly(capsys, ["evaluate", str(run), "--no-progress"], "lacks ['dataset_info']")


@pytest.mark.parametrize("command", ["evaluate", "compare", "export"])
def test_an_unwritable_output_fails_before_the_work(toy_run, capsys, monkeypatch, command):
    import rc_snn.pipeline.compare as compare_module
    import rc_snn.training.loop as loop_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr(loop_module, "evaluate_model", must_not_run)
    monkeypatch.setattr(compare_module, "analyse_run", must_not_run)
    out = "/proc/rc-snn-test/out.json" if command != "compare" else "/proc/rc-snn-test/report"
    argv = {"evaluate": ["evaluate", str(toy_run), "--out", out],
            "compare": ["compare", str(toy_run), "--out", out],
            "export": ["export", str(toy_run), "--out", out]}[command]
    fails_cleanly(capsys, argv, "/proc/rc-snn-test")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="config field 'lr'"):
        main(["--debug", "train", "--out", str(tmp_path / "run"), *TOY_TRAIN, "--lr", "nan"])


def test_kill_9_during_compare_leaves_the_old_report_whole_and_no_litter_after(toy_run, tmp_path):
    report = tmp_path / "report"
    args = ["compare", str(toy_run), "--split", "val", "--limit", "16", "--out", str(report), "--no-progress"]
    assert main(args) == 0
    before = {path.name: path.read_bytes() for path in report.iterdir()}
    code = f"""
        import os, signal
        import deploy.plots as plots
        from rc_snn.pipeline.cli import main
        real = plots._plot_energy
        def die(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)  # mid-report: some files written, others not
        plots._plot_energy = die
        main({args!r})
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert {path.name: path.read_bytes() for path in report.iterdir()} == before  # the old report, whole
    assert main(args) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report"]  # the next run cleared the half-built one


def test_a_folder_named_like_a_recording_is_skipped(tmp_path, no_network):
    from rc_snn.data.nmnist import scan_folder

    write_copy(tmp_path, per_class=1)
    (tmp_path / "NMNIST" / "Train" / "3" / "x.bin").mkdir()
    with pytest.warns(UserWarning, match="a folder, not an N-MNIST recording"):
        files, _ = scan_folder(tmp_path / "NMNIST" / "Train")
    assert len(files) == 10
