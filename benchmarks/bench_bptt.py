"""Compiled kernels, hand-written BPTT loop and autograd: training-step time on a trained network.

The decision steps of a trained rank-coded network are what let samples leave the batch early, so
the timing runs on one (``--run DIR`` from ``rc-snn train``; without it a rank-coded run is
trained first). Per repetition the six combinations (backward compiled | manual | autograd, see
``TrainConfig.backward``) x (loss full | rank) train on the same batches, interleaved; the
optimiser is not stepped, so every repetition sees the same network. Prints the median ms per
sample and the ratios.

    .venv/bin/python benchmarks/bench_bptt.py --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from rc_snn.training.config import BACKWARDS, TrainConfig
from rc_snn.training.evaluation import time_first
from rc_snn.training.loop import train
from rc_snn.training.step import training_step
from rc_snn.training.run import load_run, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained ALIF run folder (default: train one first)")
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    run = args.run
    if run is None:
        run = tempfile.mkdtemp(prefix="bench-bptt-")
        print(f"training a rank-coded run in {run} (nmnist-sim, 2000 samples, 8 epochs) ...", flush=True)
        train(TrainConfig(dataset="nmnist-sim", limit_train=2000, limit_val=200, epochs=8, device="cpu"), run,
              progress=False, log=lambda *a: None)
    trained = load_run(run)
    config, model = trained.config, trained.model
    if config.model != "alif":
        raise ValueError(f"{run} holds a {config.model!r} model; this benchmark times the ALIF network")
    model.train()
    dataset, _ = load_split(config, "train", args.samples)
    batches = [(time_first(x, torch.device("cpu")), y) for x, y in DataLoader(dataset, batch_size=args.batch_size)]
    n = sum(len(y) for _, y in batches)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {run}: hidden {config.hidden} x {config.layers},"
          f" threshold {config.decision_threshold}; {n} samples, batch {args.batch_size}")

    times, fraction = {}, None
    for _ in range(args.reps):
        for backward in BACKWARDS:
            for loss in ("full", "rank"):
                step_config = config.replace(loss=loss, backward=backward)
                started, sample_steps = time.perf_counter(), 0
                for x, y in batches:
                    out = training_step(model, x, y, step_config)
                    model.zero_grad(set_to_none=True)
                    out.loss.backward()
                    sample_steps += out.decision.sample_steps
                times.setdefault((backward, loss), []).append(1e3 * (time.perf_counter() - started) / n)
                if loss == "rank":
                    fraction = sample_steps / (n * batches[0][0].shape[0])

    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"\nrank-coded sample-steps: {fraction:.2f} of full\n")
    print("| backward | full BPTT ms/sample | rank coding ms/sample | full/rank |")
    print("|---|---|---|---|")
    for backward in BACKWARDS:
        full, rank = median[(backward, "full")], median[(backward, "rank")]
        print(f"| {backward} | {full:.2f} | {rank:.2f} | {full / rank:.2f}x |")
    for slow, fast in (("autograd", "manual"), ("manual", "compiled"), ("autograd", "compiled")):
        print(f"{slow}/{fast}: full {median[(slow, 'full')] / median[(fast, 'full')]:.2f}x,"
              f" rank {median[(slow, 'rank')] / median[(fast, 'rank')]:.2f}x")


if __name__ == "__main__":
    main()
