"""Shared fixtures: fixed seeds, blocked network, the real N-MNIST sample folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NMNIST_SMALL = Path(os.environ.get("RC_SNN_NMNIST_SMALL", ROOT.parent / "shared" / "data" / "nmnist-small"))
QTDB = Path(os.environ.get("RC_SNN_QTDB", ROOT.parent / "shared" / "data" / "qtdb"))


# The tests' models are tiny: one thread is as fast, and two OpenMP threads spin-waiting on a
# 2-core machine where anything else runs made small matmuls up to 30x slower (measured here).
# RC_SNN_THREADS fixes the count for training in the tests and the CLI processes they start, so
# that results do not depend on other rc-snn jobs running on the machine (rc_snn.training.threads);
# tests/test_threads.py checks the shared count itself.
torch.set_num_threads(1)
os.environ["RC_SNN_THREADS"] = "1"


@pytest.fixture(autouse=True)
def fixed_seeds():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes dataset caches under a temporary folder, never ~/.cache."""
    monkeypatch.setenv("RC_SNN_CACHE", str(tmp_path_factory.getbasetemp() / "rc-snn-cache"))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open an internet socket fails loudly (local Unix sockets, which Lava's
    runtime and multiprocessing use between processes, still work)."""
    real_socket = socket.socket

    class GuardedSocket(real_socket):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
                raise RuntimeError("network access attempted in a test that must run offline")
            super().__init__(family, type, proto, fileno)

    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted in a test that must run offline")

    monkeypatch.setattr(socket, "socket", GuardedSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def nmnist_small() -> Path:
    """The 800 real N-MNIST recordings beside the repository.

    Absent, the test is skipped with the reason (pytest prints it: ``-rs`` in setup.cfg), except
    in CI (``CI`` set), where the folder is always laid beside the clone: there a missing folder
    fails the test instead of silently dropping the real-data checks.
    """
    if not (NMNIST_SMALL / "NMNIST" / "Train").is_dir():
        message = f"real N-MNIST sample not found at {NMNIST_SMALL} (set RC_SNN_NMNIST_SMALL to its folder)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the real-data tests")
        pytest.skip(message)
    return NMNIST_SMALL


@pytest.fixture
def qtdb() -> Path:
    """The folder holding Yin et al.'s QTDB_train.mat beside the repository; absent, the test is skipped."""
    if not (QTDB / "QTDB_train.mat").is_file():
        pytest.skip(f"QTDB_train.mat not found in {QTDB} (set RC_SNN_QTDB to its folder)")
    return QTDB


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A run folder of the toy task trained for one epoch (``helpers.TOY_TRAIN``), once per test module."""
    from helpers import TOY_TRAIN
    from rc_snn.pipeline.cli import main

    run = tmp_path_factory.mktemp("toy") / "toy"
    assert main(["train", "--out", str(run), *TOY_TRAIN]) == 0
    return run
