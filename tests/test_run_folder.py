"""A run folder stays consistent through crashes, kill -9, Ctrl-C and SIGTERM, and says what differs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import rc_snn.training.loop as loop_module
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.run import load_checkpoint, load_run, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TOY = dict(dataset="toy", hidden=8, batch_size=32, lr=1e-2, limit_train=128, limit_val=64, device="cpu", epochs=2)


def quiet(*args, **kwargs):
    pass


def crash_at_batch(monkeypatch, batch: int, error: BaseException) -> None:
    """Make ``training_step`` raise ``error`` when it is called for the ``batch``-th time (from 1)."""
    real_step, calls = loop_module.training_step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == batch:
            raise error
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop_module, "training_step", step)


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_new_run_that_dies_before_its_first_checkpoint_leaves_the_old_run_whole(tmp_path, monkeypatch):
    old = TrainConfig(**TOY)
    train(old, tmp_path, progress=False, log=quiet)
    before = {name: (tmp_path / name).read_bytes() for name in ("config.json", "checkpoint.pt", "metrics.json")}

    crash_at_batch(monkeypatch, 1, RuntimeError("the machine died"))
    new = old.replace(lr=0.05)
    with pytest.raises(RuntimeError, match="the machine died"):
        train(new, tmp_path, resume=False, progress=False, log=quiet)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before

    # Running again says what differs instead of adopting the old weights under the new config.
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"another config \(lr: 0.01 -> 0.05\)"):
        train(new, tmp_path, progress=False, log=quiet)
    assert load_run(tmp_path).config == old


def test_kill_9_during_a_new_run_leaves_config_and_weights_paired(tmp_path):
    """A real SIGKILL in the middle of a --no-resume run over a finished one."""
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--dataset", "toy", "--hidden", "8", "--batch-size", "32", "--limit-train",
            "128", "--limit-val", "64", "--epochs", "2", "--no-progress"]
    code = f"""
        import os, signal, sys
        import rc_snn.training.loop as loop
        from rc_snn.pipeline.cli import main
        assert main({args!r}) == 0
        real, calls = loop.training_step, [0]
        def step(*a, **k):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)
        loop.training_step = step
        main({args!r} + ["--no-resume", "--lr", "0.05"])
    """
    result = run_python(code)
    assert result.returncode == -signal.SIGKILL, result.stderr
    config = json.loads((run / "config.json").read_text())
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert config["lr"] == checkpoint["config"]["lr"] == 2e-3 and checkpoint["epoch"] == 2
    assert not list(run.glob(".*tmp"))


def test_ctrl_c_during_validation_keeps_the_epoch(tmp_path, monkeypatch):
    config = TrainConfig(**TOY)
    train(config, tmp_path / "straight", progress=False, log=quiet)
    reference = load_run(tmp_path / "straight").model.state_dict()

    real_evaluate = loop_module.evaluate_model

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "evaluate_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", progress=False, log=quiet)
    payload = load_checkpoint(tmp_path / "run" / "checkpoint.pt", config)
    assert (payload["epoch"], payload["batch"]) == (0, 4)  # every batch of epoch 1 trained, validation cut short

    monkeypatch.setattr(loop_module, "evaluate_model", real_evaluate)
    history = train(config, tmp_path / "run", progress=False, log=quiet).history
    assert [entry["epoch"] for entry in history] == [1, 2]
    resumed = load_run(tmp_path / "run").model.state_dict()
    assert all(torch.equal(resumed[name], value) for name, value in reference.items())


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--dataset", "toy", "--hidden", "8", "--batch-size", "32", "--limit-train",
            "128", "--limit-val", "64", "--epochs", "2", "--no-progress"]
    code = f"""
        import os, signal, sys
        import rc_snn.training.loop as loop
        from rc_snn.pipeline.cli import main
        real, calls = loop.training_step, [0]
        def step(*a, **k):
            calls[0] += 1
            if calls[0] == 6:  # epoch 2, batch 2
                os.kill(os.getpid(), signal.SIGTERM)
            return real(*a, **k)
        loop.training_step = step
        sys.exit(main({args!r}))
    """
    result = run_python(code)
    assert result.returncode == 143, result.stderr
    assert "terminated: checkpoint saved at epoch 2, batch 1" in result.stdout
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"]) == (1, 1)
    assert run_python(f"from rc_snn.pipeline.cli import main; import sys; sys.exit(main({args!r}))").returncode == 0
    assert [entry["epoch"] for entry in json.loads((run / "metrics.json").read_text())] == [1, 2]


def test_a_failed_first_run_leaves_no_empty_folder(tmp_path, monkeypatch):
    crash_at_batch(monkeypatch, 1, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        train(TrainConfig(**TOY), tmp_path / "new", progress=False, log=quiet)
    assert not (tmp_path / "new").exists()


def test_damaged_checkpoints_say_what_is_wrong(tmp_path):
    config = TrainConfig(**TOY)
    train(config, tmp_path, progress=False, log=quiet)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)

    del payload["dataset_info"]
    save_checkpoint(tmp_path / "checkpoint.pt", payload)
    with pytest.raises(ValueError, match=r"lacks \['dataset_info'\]"):
        load_run(tmp_path)

    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        load_run(tmp_path)

    class Payload:  # a pickled object: weights_only refuses it, and the message must not advise otherwise
        def __reduce__(self):
            return (print, ("pickle payload ran",))

    torch.save({"format": "rc-snn-checkpoint/1", "x": Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="refused to load it") as error:
        load_run(tmp_path)
    assert "weights_only" not in str(error.value)


def test_a_full_disk_during_a_checkpoint_is_an_os_error(tmp_path, monkeypatch):
    def full_disk(payload, path):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="is the disk full"):
        save_checkpoint(tmp_path / "checkpoint.pt", {})
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_checkpoint_of_an_earlier_format_is_refused_with_its_format(tmp_path):
    from rc_snn.training.run import CHECKPOINT_FORMAT, load_run

    run = tmp_path / "old"
    run.mkdir()
    torch.save({"format": "rc-snn-checkpoint/1", "model": {}}, run / "checkpoint.pt")
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="format 'rc-snn-checkpoint/1', written by an earlier rc-snn") as error:
        load_run(run)
    assert CHECKPOINT_FORMAT in str(error.value)
