"""Data-parallel scaling: the training time of one epoch with 1 and with N processes, side by side.

    python benchmarks/bench_distributed.py                 # ALIF 128 on 1,024 nmnist-sim samples, N = 2
    python benchmarks/bench_distributed.py --nproc 4 --model lstm

Each setting trains one epoch in a fresh run folder, ``--repeats`` times, and the median of the
epoch's training time (``train_seconds`` of process 0: its batches, gradient sums included; no
validation, no start-up) is printed with the ratio. On a machine whose cores the processes share
(this project's 2-core development machine), expect little: the single process already uses both
cores for its matrix products.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rc_snn.training.config import MODELS, TrainConfig
from rc_snn.training.loop import train


def epoch_seconds(config: TrainConfig, nproc: int, folder: Path) -> float:
    run = train(config, folder, resume=False, progress=False, log=lambda *a: None, nproc=nproc)
    return run.history[-1]["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--model", default="alif", choices=MODELS)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = TrainConfig(model=args.model, hidden=args.hidden, epochs=1, limit_train=args.samples, limit_val=16,
                         batch_size=args.batch_size)
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for nproc in (1, args.nproc):
            times[nproc] = [epoch_seconds(config, nproc, Path(folder) / f"n{nproc}-{repeat}")
                            for repeat in range(args.repeats)]
            print(f"{nproc} process(es): epoch {statistics.median(times[nproc]):.2f} s "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times[nproc])})", flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[args.nproc])
    print(f"{args.model} {args.hidden}, {args.samples} samples, batch {args.batch_size}: "
          f"{args.nproc} processes take {many / one:.2f}x the time of 1 (speed-up {one / many:.2f}x)")


if __name__ == "__main__":
    main()
