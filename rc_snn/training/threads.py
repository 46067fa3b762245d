"""Compute threads that do not fight: each rc-snn job uses its share of the cores it may run on.

The compiled kernels' parallel regions wait for their slowest thread, so two jobs that each start
one thread per core on the same cores slow each other more than their share (a full-size N-MNIST
epoch ran 8.4x slower beside another training; benchmarks/RESULTS.md has the side-by-side figures
of bench_threads.py). Here every job that computes (training,
cross-validation, evaluation, each ``--nproc`` worker) registers itself in a folder of lock files
shared by the machine's rc-snn jobs and sets numba's and torch's thread counts to::

    threads = max(1, cores // live jobs)

``cores`` is what the process may use: its CPU affinity, capped by a cgroup (container) CPU quota.
The count is looked at again every few seconds (:meth:`ThreadBudget.refresh`), so a job that starts
beside another makes both step down, and one that ends gives its cores back. A job's lock file is
held with ``fcntl.flock``, which the kernel drops when the process dies: a killed job is not counted.

``RC_SNN_THREADS`` (or ``--threads``) fixes the count instead; the job is still registered, so
that the others make room for it.
"""

from __future__ import annotations

import fcntl
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

import numba
import torch

THREADS_VARIABLE = "RC_SNN_THREADS"
#: Seconds between two looks at how many jobs are running.
REFRESH_S = 5.0


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 (or v1) CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_quota() -> Optional[float]:
    """The cgroup's CPU quota in cores, or None where there is none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]  # v2: "max 100000" or "50000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())  # v1
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def fixed_threads() -> Optional[int]:
    """``RC_SNN_THREADS`` as a positive integer, None if unset; a clear error if it is not one."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected {THREADS_VARIABLE} as a positive integer; got {value!r}")
    return int(value)


class ThreadBudget:
    """This job's registration among the machine's rc-snn jobs and its thread count (module docstring).

    ``with ThreadBudget():`` registers, sets the threads, and unregisters on leaving; call
    :meth:`refresh` now and then (it looks at most every ``REFRESH_S`` seconds).
    """

    def __init__(self, registry: Optional[Path] = None) -> None:
        self.registry = Path(registry) if registry else Path(tempfile.gettempdir()) / "rc-snn-jobs"
        self.cores, self.threads, self._stream, self._path, self._last = available_cores(), 0, None, None, 0.0

    def __enter__(self) -> "ThreadBudget":
        self.registry.mkdir(parents=True, exist_ok=True)
        self._path = self.registry / f"{os.getpid()}-{id(self)}.lock"
        self._stream = open(self._path, "w")
        fcntl.flock(self._stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.refresh(force=True)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._stream is not None:
            self._path.unlink(missing_ok=True)
            self._stream.close()
            self._stream = None

    def live_jobs(self) -> int:
        """Registered jobs whose process still holds its lock (this one included); stale files are removed."""
        live = 0
        for path in self.registry.glob("*.lock"):
            if path == self._path:
                live += 1
                continue
            try:
                with open(path) as other:
                    try:
                        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        live += 1
                        continue
                    path.unlink(missing_ok=True)  # its process is gone
            except OSError:
                continue
        return max(live, 1)

    def refresh(self, force: bool = False) -> int:
        """Set numba's and torch's threads to this job's share now; returns the count."""
        now = time.monotonic()
        if not force and now - self._last < REFRESH_S:
            return self.threads
        self._last = now
        fixed = fixed_threads()
        threads = fixed if fixed is not None else max(1, self.cores // self.live_jobs())
        threads = min(threads, numba.config.NUMBA_NUM_THREADS)
        if threads != self.threads:
            numba.set_num_threads(threads)
            torch.set_num_threads(threads)
            self.threads = threads
        return threads


_current: list = []  # this process's budget and how many blocks use it


class thread_budget:  # noqa: N801 (used as a context manager, like a function)
    """``with thread_budget():`` -- this process counts as one job within the block (reentrant:
    nested blocks share one registration); :func:`refresh_threads` adjusts its threads."""

    def __enter__(self) -> ThreadBudget:
        if not _current:
            _current.extend([ThreadBudget().__enter__(), 0])
        _current[1] += 1
        return _current[0]

    def __exit__(self, *exc_info) -> None:
        _current[1] -= 1
        if _current[1] == 0:
            _current.pop()  # the count
            _current.pop().__exit__(*exc_info)


def refresh_threads() -> None:
    """Look again (at most every ``REFRESH_S`` seconds) at this process's share of the cores, if it is a job."""
    if _current:
        _current[0].refresh()
