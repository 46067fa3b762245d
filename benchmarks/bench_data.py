"""Time the dataset paths offline: binning nmnist-small, simulating and loading nmnist-sim.

    .venv/bin/python benchmarks/bench_data.py [--nmnist-dir ../shared/data/nmnist-small] [--cache-dir DIR]

Uses a fresh cache folder (deleted first), with sockets patched to raise so that any network use fails.
"""

from __future__ import annotations

import argparse
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmnist-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist-small"))
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
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
