"""Time the dataset paths offline: binning nmnist-small, simulating and loading nmnist-sim; with
``--full``, a full-size N-MNIST replica.

    .venv/bin/python benchmarks/bench_data.py [--nmnist-dir ../shared/data/nmnist-small] [--cache-dir DIR]
    .venv/bin/python benchmarks/bench_data.py --full [--config configs/nmnist-alif-full.json]

Uses a fresh cache folder (deleted first), with sockets patched to raise so that any network use fails.
``--full`` builds N-MNIST's layout with its sizes (60,000 training and 10,000 test recordings) in a
temporary folder from hard links to the shared recordings under new indices (no copy), then times
the first binning, the cached load, one epoch of ``rc-snn train --config CONFIG`` (wall time and
the epoch's ``train_seconds``) and the peak memory of that process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import socket
import tempfile
import time
from pathlib import Path

import torch  # noqa: F401  (imported before sockets are patched: torch.hub imports ssl)

from rc_snn.data import load_dataset


def refuse(*args, **kwargs):
    raise RuntimeError("network access attempted")


def timed(label, call):
    start = time.perf_counter()
    result = call()
    print(f"{label}: {time.perf_counter() - start:.2f} s", flush=True)
    return result


def full_replica(source: Path, target: Path, sizes=(("Train", 60_000), ("Test", 10_000))) -> None:
    """N-MNIST's layout at full size under ``target``: hard links to ``source``'s recordings, cycled."""
    files = sorted((source / "NMNIST" / "Train").glob("*/*.bin"))
    if not files:
        raise SystemExit(f"no recordings under {source / 'NMNIST' / 'Train'}")
    for folder, count in sizes:
        for index in range(count):
            original = files[index % len(files)]
            link = target / "NMNIST" / folder / original.parent.name / f"{index + 1:05d}.bin"
            link.parent.mkdir(parents=True, exist_ok=True)
            os.link(original, link)


def full(args) -> None:
    """The full-size replica: binning, cached load, one epoch, peak memory (module docstring)."""
    with tempfile.TemporaryDirectory(prefix="rc-snn-full-") as temp:
        temp = Path(temp)
        timed("build the replica (hard links)", lambda: full_replica(Path(args.nmnist_dir), temp / "data"))
        env = {**os.environ, "RC_SNN_CACHE": str(temp / "cache")}
        command = [sys.executable, "-m", "rc_snn.pipeline.cli", "train", "--config", args.config,
                   "--data-dir", str(temp / "data"), "--epochs", "1", "--out", str(temp / "run"), "--no-progress"]
        start = time.perf_counter()
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "training failed")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child: the training
        history = json.loads((temp / "run" / "metrics.json").read_text())
        print(f"first run (binning train + val, one epoch, validation): {wall:.1f} s wall, "
              f"train_seconds {history[0]['train_seconds']:.1f} s, peak memory {peak_kb / 1e6:.2f} GB")
        data_dir = str(temp / "data")
        train, _ = timed("cached train load", lambda: load_dataset("nmnist", "train", data_dir=data_dir,
                                                                   cache_dir=temp / "cache", bin_ms=5.0,
                                                                   first_saccade=True))
        print(f"  {len(train)} training recordings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmnist-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist-small"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--full", action="store_true", help="time a full-size N-MNIST replica (module docstring)")
    parser.add_argument("--config", default="configs/nmnist-alif-full.json", help="with --full: the recipe to train")
    args = parser.parse_args()
    if args.full:
        return full(args)
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="rc-snn-bench-data-"))
    shutil.rmtree(cache, ignore_errors=True)
    socket.socket = refuse
    socket.create_connection = refuse

    if (Path(args.nmnist_dir) / "NMNIST" / "Train").is_dir():
        def both():
            return [load_dataset("nmnist", s, data_dir=args.nmnist_dir, cache_dir=cache)[0] for s in ("train", "val")]
        train, val = timed("nmnist: bin nmnist-small train + val", both)
        print(f"  {len(train)} + {len(val)} files")
        timed("nmnist: cached train load", lambda: load_dataset("nmnist", "train", data_dir=args.nmnist_dir, cache_dir=cache))
    else:
        print(f"nmnist-small not found at {args.nmnist_dir}; skipping N-MNIST timings")
    timed("nmnist-sim: simulate 5000 + bin train", lambda: load_dataset("nmnist-sim", "train", cache_dir=cache))
    timed("nmnist-sim: val + test from cached events",
          lambda: [load_dataset("nmnist-sim", s, cache_dir=cache) for s in ("val", "test")])
    train, _ = timed("nmnist-sim: cached train load", lambda: load_dataset("nmnist-sim", "train", cache_dir=cache))
    timed(f"nmnist-sim: densify all {len(train)} items", lambda: sum(train[i][0].shape[0] for i in range(len(train))))
    for path in sorted(cache.rglob("*.npz")):
        print(f"  {path.relative_to(cache)}: {path.stat().st_size / 1e6:.1f} MB")
    if args.cache_dir is None:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
