"""Nothing a user does loses work or mixes results: folder ownership, locks, provenance of derived
files, and every input validated (one test per finding of the hostile-user review, issue 26)."""

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
import torch

from deploy.counting import OpCounts
from deploy.files import FolderInUse, FolderLock, claim_folder, lock_path
from deploy.ir import load_network, save_network
from deploy.markdown import escape
from rc_snn.pipeline.cli import build_parser, main
from rc_snn.pipeline.compare import check_lava_provenance, check_lava_summary, unique_names
from rc_snn.training.run import load_run
from helpers import TOY_TRAIN, fails_cleanly, lively_irsnn, random_frames, write_copy

ROOT = Path(__file__).resolve().parents[1]


# 1. demo --fresh deleted whatever --out held ------------------------------------------------------

def test_demo_refuses_a_folder_of_someone_elses_files(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("notes")
    fails_cleanly(capsys, ["demo", "--fresh", "--models", "lstm", "--epochs", "1", "--hidden", "8",
                           "--limit-train", "64", "--limit-test", "16", "--out", str(precious)],
                  "holds files that rc-snn did not write", "notes.txt")
    assert (precious / "notes.txt").read_text() == "notes"


def test_demo_fresh_removes_only_its_own_runs_and_report(tmp_path, toy_run):
    from rc_snn.pipeline.demo import remove_own_folders

    out = claim_folder(tmp_path / "demo", "demo")
    (out / "lstm-rank").mkdir()
    for name in ("config.json", "checkpoint.pt"):
        (out / "lstm-rank" / name).write_bytes((toy_run / name).read_bytes())
    (out / "report").mkdir()
    (out / "report" / "report.md").write_text("old")
    (out / "notes.txt").write_text("mine")
    (out / "alif-rank").mkdir()  # a folder with the demo's name that rc-snn did not make
    (out / "alif-rank" / "data.csv").write_text("1,2")
    removed = remove_own_folders(out, ["lstm-rank", "alif-rank"])
    assert sorted(path.name for path in removed) == ["lstm-rank", "report"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "alif-rank" / "data.csv").exists()


def test_train_refuses_a_folder_holding_other_files(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")  # the user's, not a run's
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "mine"), *TOY_TRAIN], "did not write", "config.json")
    assert (tmp_path / "mine" / "config.json").read_text() == "{}"


# 2. two trainings into one folder -----------------------------------------------------------------

def test_a_second_training_into_a_locked_run_folder_is_refused(tmp_path, capsys):
    run = claim_folder(tmp_path / "run", "run")
    with FolderLock(run):  # held by this process; the training runs in another
        code = f"from rc_snn.pipeline.cli import main; raise SystemExit(main({['train', '--out', str(run), *TOY_TRAIN]!r}))"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert "is in use by process" in result.stderr and str(os.getpid()) in result.stderr
    assert not (run / "checkpoint.pt").exists()


def test_a_killed_holder_leaves_no_lock_that_blocks(tmp_path):
    folder = tmp_path / "run"
    code = textwrap.dedent(f"""
        import os, signal
        from deploy.files import FolderLock
        with FolderLock({str(folder)!r}):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == -signal.SIGKILL
    assert lock_path(folder).exists()  # the stale file is there ...
    with FolderLock(folder):  # ... and does not block
        pass
    assert not lock_path(folder).exists()


def test_the_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from deploy.files import FolderLock
        with FolderLock({str(tmp_path / 'r')!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUse, match=f"in use by process {holder.pid}"):
            with FolderLock(tmp_path / "r"):
                pass
    finally:
        holder.kill()
        holder.wait()


# 3. --no-resume left the old network's derived files; compare paired them ------------------------

def test_no_resume_sets_derived_files_aside_and_stale_ones_are_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TOY_TRAIN, "--seed", "1"]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "old.npz")]) == 0
    assert main(["export", str(run)]) == 0
    old_id = load_run(run).weights_id
    (run / "lava-float-test.json").write_text(json.dumps({"weights_id": old_id}))
    assert main(["train", "--out", str(run), *TOY_TRAIN, "--seed", "2", "--no-resume"]) == 0
    new_id = load_run(run).weights_id
    assert new_id != old_id
    assert not (run / "network.npz").exists() and not (run / "lava-float-test.json").exists()
    assert sorted(p.name for p in (run / "superseded").iterdir()) == ["lava-float-test.json", "network.npz"]
    assert load_network(tmp_path / "old.npz").weights_id == old_id
    fails_cleanly(capsys, ["lava", str(run), "--network", str(tmp_path / "old.npz"), "--samples", "2",
                           "--no-progress"], old_id, new_id, "export it again")
    with pytest.raises(ValueError, match=f"ran weights {old_id}.*now holds weights {new_id}"):
        check_lava_provenance({"run_dir": str(run), "weights_id": old_id}, "lava.json")
    check_lava_provenance({"run_dir": str(run), "weights_id": new_id}, "lava.json")


def test_derived_files_record_the_weights_they_came_from(toy_run, tmp_path):
    assert main(["evaluate", str(toy_run), "--split", "val", "--out", str(tmp_path / "e.json"), "--no-progress"]) == 0
    weights = load_run(toy_run).weights_id
    assert json.loads((tmp_path / "e.json").read_text())["weights_id"] == weights
    assert main(["export", str(toy_run), "--out", str(tmp_path / "n.npz")]) == 0
    assert load_network(tmp_path / "n.npz").weights_id == weights


# 4 and 18. cv.json recorded settings not used; a finished run asked for fewer epochs -------------

def test_a_run_is_never_shortened(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TOY_TRAIN, "--epochs", "2"]) == 0
    fails_cleanly(capsys, ["train", "--out", str(run), *TOY_TRAIN, "--epochs", "1"], "trained for 2 epochs",
                  "asked for 1", "never shortened")


@pytest.mark.slow
def test_cv_writes_the_folds_own_settings_and_refuses_what_it_ignores(tmp_path, capsys, no_network):
    data = write_copy(tmp_path / "data", per_class=2)
    cv = ["cv", "--data-dir", str(data), "--dataset", "nmnist", "--model", "lstm", "--hidden", "4",
          "--batch-size", "8", "--folds", "2", "--no-progress", "--out", str(tmp_path / "cv")]
    fails_cleanly(capsys, [*cv, "--fold", "1"], "--fold")
    fails_cleanly(capsys, [*cv, "--limit-val", "3"], "--limit-val")
    assert main([*cv, "--epochs", "2"]) == 0
    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert summary["config"]["epochs"] == 2 and "fold" not in summary["config"]
    fails_cleanly(capsys, [*cv, "--epochs", "1"], "never shortened")
    assert json.loads((tmp_path / "cv" / "cv.json").read_text()) == summary


# 15 and 16. empty folds; cv's --no-resume --------------------------------------------------------

def test_cv_refuses_folds_that_leave_a_part_empty_before_training(tmp_path, capsys, no_network):
    data = write_copy(tmp_path / "data", per_class=1)  # 10 files, indices 1..10
    fails_cleanly(capsys, ["cv", "--data-dir", str(data), "--dataset", "nmnist", "--folds", "900", "--no-progress",
                           "--out", str(tmp_path / "cv")], "fold rule", "index % 900 == 0", "fewer folds")
    assert not (tmp_path / "cv").exists()


def test_cv_takes_no_resume_and_says_five_folds():
    args = build_parser().parse_args(["cv", "--no-resume"])
    assert args.resume is False
    assert "default: 5" in build_parser()._subparsers._group_actions[0].choices["cv"].format_help()


# 5. IR-SNN fixed point at widths it cannot carry --------------------------------------------------

def test_ir_snn_widths_beyond_the_fixed_point_format_are_refused_with_the_bound():
    from deploy import quantize
    from rc_snn.pipeline.export import export_model

    frames = random_frames(8, 30, 30, graded=True, seed=3)
    net = export_model(lively_irsnn(30, [16, 12], 5, bits=quantize.MAX_IR_BITS + 1, seed=6, frames=frames),
                       decision_threshold=0.5)
    with pytest.raises(ValueError, match=f"at most {quantize.MAX_IR_BITS} bits"):
        quantize.to_device(net)


def test_ir_snn_fixed_point_agrees_at_the_widest_accepted_width():
    from deploy import quantize, reference
    from rc_snn.pipeline.export import export_model

    frames = random_frames(200, 30, 30, graded=True, seed=3)
    net = export_model(lively_irsnn(30, [16, 12], 5, bits=quantize.MAX_IR_BITS, seed=6, frames=frames[:8]),
                       decision_threshold=0.5)
    floating = reference.simulate(net, frames)
    fixed = reference.simulate(quantize.to_device(net), frames)
    assert np.mean(fixed.predictions == floating.predictions) >= 0.99


# 6. snnTorch neurons with a threshold at or below zero --------------------------------------------

def test_snntorch_negative_firing_thresholds_are_refused():
    import snntorch as snn
    from torch import nn

    from rc_snn.pipeline.snntorch_export import export_snntorch

    net = nn.Sequential(nn.Linear(4, 6), snn.Leaky(beta=0.9, threshold=-0.5, init_hidden=True),
                        nn.Linear(6, 3), snn.Leaky(beta=0.8, reset_mechanism="none", init_hidden=True, output=True))
    with pytest.raises(ValueError, match="thresholds must be > 0"):
        export_snntorch(net, decision_threshold=0.5)


# 7 and 12. the snnTorch plugin's inputs -----------------------------------------------------------

def test_plugin_targets_must_be_class_indices_of_the_batch():
    from rc_snn.plugin import accuracy_rank, ce_rank_loss

    out = torch.zeros(5, 4, 3)
    out[:, :, 0] = 5.0  # every sample decides for class 0 at step 0
    y = torch.tensor([0, 0, 0, 1])
    assert accuracy_rank(out, y, 0.5)[0] == 0.75
    for bad in (y[:, None], y.float(), torch.tensor([0, 0, 0, 7])):
        with pytest.raises(ValueError, match="targets"):
            accuracy_rank(out, bad, 0.5)
        with pytest.raises(ValueError, match="targets"):
            ce_rank_loss(0.5)(out, bad)


def test_plugin_refuses_zero_length_time():
    import snntorch as snn
    from torch import nn

    from rc_snn.plugin import accuracy_rank, ce_rank_loss, run_to_last_decision

    net = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.8, reset_mechanism="none", init_hidden=True, output=True))
    x, out, y = torch.rand(6, 2, 4), torch.rand(6, 2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="time >= 1"):
        run_to_last_decision(net, x[:0], 0.5)
    with pytest.raises(ValueError, match="time >= 1"):
        ce_rank_loss(0.5)(out[:0], y)
    with pytest.raises(ValueError, match="time >= 1"):
        accuracy_rank(out[:0], y)


# 8 and 11. compare trusted a hand-edited Lava JSON ------------------------------------------------

def valid_summary() -> dict:
    counts = {name: 0 for name in OpCounts.__dataclass_fields__}
    counts.update(n_samples=4, sample_steps=10, effective_acs=30, spikes_per_layer=[7])
    return {"name": "ALIF rank coding, Lava floating point", "dataset": "toy", "split": "test", "fixed_point": False,
            "n_samples": 4, "accuracy": 0.75, "decision_steps": [0, 1, 2, 3], "predictions": [0, 1, 1, 0],
            "labels": [0, 1, 1, 1], "dt_ms": None, "weights_id": "abc", "counts": counts, "run_dir": "gone"}


@pytest.mark.parametrize("change, field", [
    ({"counts": {"effective_acs": -5}}, "effective_acs"), ({"counts": {"effective_acs": float("nan")}}, "effective_acs"),
    ({"counts": {"effective_acs": "30"}}, "effective_acs"), ({"accuracy": 1.0}, "3/4"),
    ({"fixed_point": "no"}, "fixed_point"), ({"n_samples": -3}, "n_samples"), ({"dt_ms": float("inf")}, "dt_ms"),
    ({"counts": {"n_samples": 3}}, "counts"), ({"decision_steps": [0, 1, 2]}, "decision_steps"),
    ({"name": 5}, "name"),
])
def test_hand_edited_lava_results_are_refused_naming_the_field(change, field):
    summary = valid_summary()
    check_lava_summary(summary)
    for key, value in change.items():
        summary[key] = {**summary[key], **value} if isinstance(value, dict) else value
    with pytest.raises(ValueError, match=field):
        check_lava_summary(summary, "lava.json")


def test_compare_with_text_counts_is_one_line_and_exit_2(toy_run, tmp_path, capsys):
    summary = valid_summary()
    summary["counts"]["effective_acs"] = "many"
    (tmp_path / "lava.json").write_text(json.dumps(summary))
    fails_cleanly(capsys, ["compare", str(tmp_path / "lava.json"), "--out", str(tmp_path / "report"),
                           "--no-progress"], "effective_acs", "non-negative integer")


def test_names_go_into_report_md_as_text():
    assert escape("<b>x</b> *y* | [z](u)") == "\\<b\\>x\\</b\\> \\*y\\* \\| \\[z\\]\\(u\\)"
    assert escape("ALIF rank coding") == "ALIF rank coding"


# 9, 10, 23. configs that pass validation but cannot work ------------------------------------------

@pytest.mark.parametrize("flags, expected", [
    (["--tau-m", "1e39", "0"], "'tau_m'"), (["--tau-adp", "5", "1e7"], "'tau_adp'"),
    (["--seed", "200000000000000"], "'seed'"),
    (["--label-smoothing", "0.5", "--decision-threshold", "0.97"], "cannot be reached"),
])
def test_configs_that_cannot_work_are_refused(tmp_path, capsys, flags, expected):
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), *TOY_TRAIN, *flags], expected)
    assert not (tmp_path / "run").exists()


# 13 and 24. devices this machine lacks ------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_exit_2_before_any_process_starts(tmp_path, capsys, toy_run):
    err = fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), *TOY_TRAIN, "--device", "cuda", "--nproc", "2"],
                        "sees no GPU")
    assert "checkpoint" not in err and not (tmp_path / "run").exists()
    err = fails_cleanly(capsys, ["evaluate", str(toy_run), "--device", "cuda", "--no-progress"], "--device cpu")
    assert "auto" not in err
    assert main(["evaluate", str(toy_run), "--device", "auto", "--split", "val", "--no-progress",
                 "--out", str(tmp_path / "e.json")]) == 0


# 14 and 17. init_from ------------------------------------------------------------------------------

def test_init_from_is_stored_absolute_and_not_needed_once_the_run_has_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "source", *TOY_TRAIN]) == 0
    assert main(["train", "--out", "child", *TOY_TRAIN, "--init-from", "source"]) == 0
    config = json.loads((tmp_path / "child" / "config.json").read_text())
    assert config["init_from"] == str(tmp_path / "source")
    (tmp_path / "source" / "checkpoint.pt").unlink()
    monkeypatch.chdir(ROOT)
    assert main(["train", "--out", str(tmp_path / "child"), *TOY_TRAIN, "--epochs", "2",
                 "--init-from", str(tmp_path / "source")]) == 0
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "other"), *TOY_TRAIN, "--init-from", str(tmp_path / "source")],
                  "init_from", "checkpoint.pt")


def test_init_from_a_model_of_another_size_says_what_differs(toy_run, tmp_path, capsys):
    fails_cleanly(capsys, ["train", "--out", str(tmp_path / "run"), *TOY_TRAIN, "--hidden", "4", "--init-from", str(toy_run)],
                  "does not fit", "hidden 8", "[8, 1] there, [4, 1] here")


# 19, 20, 21, 22. compare's names and --out; output names -------------------------------------------

def test_results_with_the_same_label_get_the_shortest_distinct_path():
    from deploy.report import ModelResult

    result = ModelResult(name="ALIF", family="snn", accuracy=1.0, decision_steps=np.zeros(1, dtype=np.int64),
                         counts=OpCounts.from_dict({**valid_summary()["counts"], "n_samples": 1, "n_steps": 1}))
    names = [r.name for r in unique_names([result, result, result], ["a/run/lava.json", "b/run/lava.json", "x.json"])]
    assert names == ["ALIF (a/run/lava.json)", "ALIF (b/run/lava.json)", "ALIF (x.json)"]


def test_a_second_compare_into_the_same_folder_is_refused(toy_run, tmp_path, capsys):
    with FolderLock(tmp_path / "report", beside=True):  # held by this process; the compare runs in another
        code = ("from rc_snn.pipeline.cli import main; raise SystemExit(main(['compare', "
                f"{str(toy_run)!r}, '--out', {str(tmp_path / 'report')!r}, '--no-progress']))")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "in use by process" in result.stderr, result.stderr


@pytest.mark.parametrize("where", ["run", "cwd", "parent"])
def test_compare_out_is_checked_before_the_analysis(toy_run, tmp_path, monkeypatch, capsys, where):
    import rc_snn.pipeline.compare as compare

    monkeypatch.setattr(compare, "analyse_run", lambda *a, **k: pytest.fail("analysed before checking --out"))
    monkeypatch.chdir(tmp_path)
    out = {"run": str(toy_run), "cwd": ".", "parent": ".."}[where]
    fails_cleanly(capsys, ["compare", str(toy_run), "--out", out, "--no-progress"], "pick")


def test_output_names_are_checked_before_the_work(toy_run, tmp_path, capsys):
    long_name = "x" * 245
    fails_cleanly(capsys, ["evaluate", str(toy_run), "--out", str(tmp_path / long_name), "--no-progress"], "too long")
    fails_cleanly(capsys, ["export", str(toy_run), "--out", str(tmp_path)], "is a folder")
    fails_cleanly(capsys, ["compare", str(toy_run), "--out", str(tmp_path / long_name), "--no-progress"], "too long")


# 25. the deploy side's own checks -----------------------------------------------------------------

def test_lava_evaluate_checks_labels_and_counts_before_running(toy_run):
    from deploy.simulate import evaluate
    from rc_snn.pipeline.export import export_model

    run = load_run(toy_run)
    net = export_model(run.model, decision_threshold=0.9)
    frames = np.ones((2, 5, 1))
    with pytest.raises(ValueError, match="labels among the network's 2 classes"):
        evaluate(net, frames, np.array([0, 2]), progress=False)
    with pytest.raises(ValueError, match="event counts"):
        evaluate(net, -frames, np.array([0, 1]), progress=False)
    with pytest.raises(ValueError, match="event counts"):
        evaluate(net, frames * 1e300, np.array([0, 1]), progress=False)


def test_network_files_with_a_fractional_version_or_unknown_keys_are_refused(toy_run, tmp_path):
    from rc_snn.pipeline.export import export_model

    path = save_network(export_model(load_run(toy_run).model, decision_threshold=0.9), tmp_path / "n.npz")
    arrays = dict(np.load(path))
    for change, expected in (({"format_version": np.array(2.7)}, "format_version as an integer"),
                             ({"layer0.extra": np.zeros(3)}, "unexpected keys")):
        with (tmp_path / "bad.npz").open("wb") as stream:
            np.savez(stream, **{**arrays, **change})
        with pytest.raises(ValueError, match=expected):
            load_network(tmp_path / "bad.npz")


# 26. small ones ------------------------------------------------------------------------------------

def test_evaluate_limit_one_is_one_sample_and_the_median_is_the_middle(toy_run, tmp_path):
    from rc_snn.training.evaluation import evaluate_model
    from rc_snn.training.run import load_split

    assert main(["evaluate", str(toy_run), "--limit", "1", "--out", str(tmp_path / "e.json"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["n_samples"] == 1
    run = load_run(toy_run)
    dataset, _ = load_split(run.config, "val", 32)
    result = evaluate_model(run.model, dataset, 0.6, progress=False)
    assert result["median_decision_step"] == float(np.median(result["decision_steps"]))


def test_no_progress_hides_the_binning_bar(tmp_path, capsys, monkeypatch, no_network):
    import rc_snn.data.nmnist as nmnist

    monkeypatch.setattr(nmnist, "PROGRESS_MIN", 0)  # the bar shows for any folder
    data = write_copy(tmp_path / "data", per_class=2)
    train = ["train", "--dataset", "nmnist", "--data-dir", str(data), "--model", "lstm", "--hidden", "4", "--epochs", "1"]
    assert main([*train, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "binning" not in capsys.readouterr().err
    assert main([*train, "--out", str(tmp_path / "run2"), "--bin-ms", "7"]) == 0  # another binning: not cached
    assert "binning" in capsys.readouterr().err
