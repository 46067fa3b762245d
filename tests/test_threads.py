"""Threads that do not fight (rc_snn.training.threads): each job takes its share of the cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest
import torch

from rc_snn.training import threads
from rc_snn.training.threads import ThreadBudget, available_cores

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def adaptive(monkeypatch):
    """The shared count, not the tests' fixed one; the thread counts restored after."""
    monkeypatch.delenv(threads.THREADS_VARIABLE, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    before = numba.get_num_threads(), torch.get_num_threads()
    yield
    numba.set_num_threads(before[0])
    torch.set_num_threads(before[1])


def hold_a_job(registry: Path) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time
        from rc_snn.training.threads import ThreadBudget
        with ThreadBudget({str(registry)!r}):
            print("registered", flush=True)
            time.sleep(120)
    """)
    job = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert job.stdout.readline().strip() == "registered"
    return job


def test_jobs_share_the_cores_and_a_killed_one_gives_them_back(tmp_path, adaptive):
    with ThreadBudget(tmp_path) as budget:
        assert budget.cores == 4 and budget.live_jobs() == 1
        assert budget.threads == min(4, numba.config.NUMBA_NUM_THREADS) == numba.get_num_threads()
        others = [hold_a_job(tmp_path), hold_a_job(tmp_path)]
        try:
            assert budget.refresh(force=True) == 1 and budget.live_jobs() == 3  # 4 cores // 3 jobs
            assert numba.get_num_threads() == torch.get_num_threads() == 1
            others[0].send_signal(signal.SIGKILL)
            others[0].wait()
            assert budget.refresh(force=True) == min(2, numba.config.NUMBA_NUM_THREADS)  # 4 // 2
            assert len(list(tmp_path.glob("*.lock"))) == 2  # the dead job's file was removed
        finally:
            for job in others:
                job.kill()
                job.wait()
        assert budget.live_jobs() == 1  # killed jobs are not counted (and their files go)
    assert not list(tmp_path.glob("*.lock"))


def test_the_variable_fixes_the_count(tmp_path, adaptive, monkeypatch):
    monkeypatch.setenv(threads.THREADS_VARIABLE, "1")
    with ThreadBudget(tmp_path) as budget:
        assert budget.threads == 1 == numba.get_num_threads()
    monkeypatch.setenv(threads.THREADS_VARIABLE, "two")
    with pytest.raises(ValueError, match="RC_SNN_THREADS as a positive integer"):
        with ThreadBudget(tmp_path):
            pass


def test_available_cores_respects_the_affinity():
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))
