"""How much accuracy the first k steps of the data support: a yardstick for early exit.

For each k, the ALIF network is trained with the full-sequence loss (cross-entropy at the last
step, full BPTT) on the first k steps of every sample only, and read at step k. A rank-coded
network deciding at mean step ~k is up against this: where it is less accurate, its training is
what falls short; where this yardstick itself is more than a point below the whole sequence
(k = n_steps), the information after step k is what early exit gives up, whatever the method.
Same data, network and optimiser as ``bench_rank_coding.py`` (one config for all k).
The loop is written here rather than calling ``rc_snn.training.loop.train`` because a run has no option
to cut its sequences; the step itself is ``training_step``, as in training.

    .venv/bin/python benchmarks/bench_first_steps.py --steps 15 20 25 30 60 --epochs 20
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.data import DataLoader

from rc_snn.training.config import TrainConfig
from rc_snn.training.batches import epoch_batches
from rc_snn.training.evaluation import time_first
from rc_snn.training.step import training_step
from rc_snn.training.run import build_model, load_split


@torch.no_grad()
def accuracy_at(model, dataset, k: int) -> float:
    correct = 0
    for x, y in DataLoader(dataset, batch_size=256):
        logits_seq, _ = model(time_first(x, torch.device("cpu"))[:k])
        correct += int((logits_seq[-1].argmax(dim=-1) == y).sum())
    return correct / len(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="nmnist-sim")
    parser.add_argument("--data-dir")
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 60], help="the k to train and read at")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--limit-train", type=int, default=4000)
    parser.add_argument("--limit-val", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    config = TrainConfig(loss="full", dataset=args.dataset, data_dir=args.data_dir, hidden=args.hidden, lr=args.lr,
                         batch_size=args.batch_size, limit_train=args.limit_train, limit_val=args.limit_val,
                         device="cpu")
    train_set, info = load_split(config, "train", config.limit_train)
    val_set, _ = load_split(config, "val", config.limit_val)
    if max(args.steps) > info.n_steps or min(args.steps) < 1:
        raise SystemExit(f"--steps must lie in 1..{info.n_steps} (the dataset's steps)")
    tail = max(1, args.epochs // 4)
    rows = []
    for k in args.steps:
        model = build_model(config, info)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        accuracies = []
        for epoch in range(args.epochs):
            for x, y in DataLoader(train_set, batch_sampler=epoch_batches(len(train_set), config.batch_size,
                                                                          config.seed, epoch)):
                loss = training_step(model, time_first(x, torch.device("cpu"))[:k], y, config).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            accuracies.append(accuracy_at(model, val_set, k))
            print(f"k {k:3d} epoch {epoch + 1}: val acc {accuracies[-1]:.3f}", flush=True)
        last = accuracies[-tail:]
        rows.append((k, statistics.median(last), min(last), max(last)))

    print(f"\n{info.name}, {info.n_steps} steps of {info.dt_ms:g} ms, hidden {args.hidden}, {args.epochs} epochs;"
          f" val accuracy over the last {tail} epochs")
    print("| first k steps | ms | val acc (median) | range |")
    print("|---|---|---|---|")
    for k, median, low, high in rows:
        print(f"| {k} | {k * info.dt_ms:g} | {100 * median:.1f}% | {100 * low:.1f}-{100 * high:.1f}% |")


if __name__ == "__main__":
    main()
