"""Rank coding versus full BPTT: the same ALIF network trained both ways on the same data, one run.

Epochs of the two runs are interleaved (full e1, rank e1, full e2, ...) so machine noise hits
both alike. Per epoch: wall time of the training steps, steps simulated per batch (the forward
pass stops at the batch's last crossing), sample-steps computed (samples leave the batch at their own t*),
validation accuracy (early exit and last step) and mean decision step. Prints the medians and
the ratio full/rank of the time per epoch (goal: >= 2x with accuracy within 1 point).

    .venv/bin/python benchmarks/bench_rank_coding.py --dataset nmnist-sim --epochs 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from rc_snn.config import TrainConfig
from rc_snn.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="nmnist-sim")
    parser.add_argument("--data-dir")
    parser.add_argument("--model", default="alif", choices=("alif", "lstm"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--limit-train", type=int, default=2000)
    parser.add_argument("--limit-val", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backward", default="manual", choices=("manual", "autograd"),
                        help="ALIF gradients: hand-written BPTT or autograd (rc_snn.bptt)")
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--skip-epochs", type=int, default=1, help="epochs left out of the medians (warm-up)")
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()

    base = TrainConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, hidden=args.hidden,
                       threshold=args.threshold, lr=args.lr, batch_size=args.batch_size,
                       limit_train=args.limit_train, limit_val=args.limit_val, device="cpu",
                       backward=args.backward, chunk_size=args.chunk_size)
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-rank-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; runs in {root}")
    histories = {"full": [], "rank": []}
    for epoch in range(1, args.epochs + 1):
        for loss in ("full", "rank"):
            config = base.replace(loss=loss, epochs=epoch)
            histories[loss] = train(config, root / loss, progress=False, log=lambda *a: None)
            e = histories[loss][-1]
            print(f"epoch {epoch} {loss:4s}: {e['train_seconds']:6.1f} s,"
                  f" steps/batch {e['train_mean_steps_simulated']:4.1f},"
                  f" sample-steps {e['train_sample_steps_fraction']:.2f} of full,"
                  f" val acc {e['val_accuracy']:.3f} (last step {e['val_accuracy_last_step']:.3f}),"
                  f" mean decision step {e['val_mean_decision_step']:.1f}", flush=True)

    def median(loss, key):
        return statistics.median(e[key] for e in histories[loss][args.skip_epochs:])

    print("\n| training | s/epoch (median) | steps simulated per batch | sample-steps vs full |"
          " val acc (early exit) | val acc (last step) | mean decision step |")
    print("|---|---|---|---|---|---|---|")
    for loss in ("full", "rank"):
        last = histories[loss][-1]
        print(f"| {loss} | {median(loss, 'train_seconds'):.1f} | {median(loss, 'train_mean_steps_simulated'):.1f} |"
              f" {median(loss, 'train_sample_steps_fraction'):.2f} |"
              f" {100 * last['val_accuracy']:.1f}% | {100 * last['val_accuracy_last_step']:.1f}% |"
              f" {last['val_mean_decision_step']:.1f} |")
    speedup = median("full", "train_seconds") / median("rank", "train_seconds")
    # The full-sequence model's own answer is its last step; the rank-coded model's is its decision.
    gap = 100 * (histories["full"][-1]["val_accuracy_last_step"] - histories["rank"][-1]["val_accuracy"])
    print(f"\nfull/rank time per epoch: {speedup:.2f}x; accuracy gap (full last step - rank early exit): {gap:+.1f} points")


if __name__ == "__main__":
    main()
