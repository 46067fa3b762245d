"""Two trainings sharing the machine: each epoch's step time beside another job, against alone.

Runs the same short training (the shipped ALIF recipe on the shared real recordings, a few epochs)
alone, then two copies at once, first with every job taking one thread per core (``RC_SNN_THREADS``
= the cores: how rc-snn ran before its jobs shared the cores) and then with the shared count of
``rc_snn.training.threads``. Prints the median ``train_seconds`` of the epochs after the first
(which compiles and fills caches) and the ratio to the run alone:

    python benchmarks/bench_threads.py --data-dir ../shared/data/nmnist-small
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rc_snn.training.threads import available_cores

ROOT = Path(__file__).resolve().parents[1]


def start(out: Path, args, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "rc_snn.pipeline.cli", "train", "--config", str(ROOT / args.config),
               "--data-dir", str(args.data_dir), "--epochs", str(args.epochs), "--out", str(out), "--no-progress"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def step_seconds(out: Path) -> float:
    """Median train_seconds of the epochs after the first."""
    history = json.loads((out / "metrics.json").read_text())
    return statistics.median(entry["train_seconds"] for entry in history[1:])


def run(jobs: int, folder: Path, args, threads: str | None) -> list:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RC_SNN_THREADS", None)
    if threads is not None:
        env["RC_SNN_THREADS"] = threads
    outs = [folder / f"job-{index}" for index in range(jobs)]
    processes = [start(out, args, env) for out in outs]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"a training failed: {err.strip().splitlines()[-1] if err.strip() else process.returncode}")
    return [step_seconds(out) for out in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", default="configs/nmnist-alif.json")
    parser.add_argument("--epochs", type=int, default=4, help="at least 2 (the first epoch is left out)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch (compilation, caches) is left out")
    cores = available_cores()
    print(f"{cores} cores available; {args.config}, {args.epochs} epochs; median step time per epoch after the first")
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        alone = run(1, temp / "alone", args, None)[0]
        print(f"alone:                             {alone:.2f} s per epoch")
        for label, threads in (("two jobs, one thread per core each", str(cores)), ("two jobs, shared count", None)):
            times = run(2, temp / label.replace(" ", "-").replace(",", ""), args, threads)
            print(f"{label + ':':<34} {', '.join(f'{t:.2f}' for t in times)} s per epoch "
                  f"({', '.join(f'{t / alone:.2f}x' for t in times)} alone)")


if __name__ == "__main__":
    main()
