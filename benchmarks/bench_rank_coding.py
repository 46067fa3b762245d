"""Rank coding versus full BPTT: the same ALIF network trained both ways on the same data, one run.

Epochs of the runs are interleaved (full e1, rank e1, full e2, ...) so machine noise hits all
alike; with several ``--thresholds`` the full-BPTT run is trained once and one rank-coded run per
threshold. Per epoch: wall time of the training steps, steps simulated per batch (the forward
pass stops at the batch's last crossing), sample-steps computed (samples leave the batch at their
own t*), validation accuracy (early exit and last step) and mean decision step. Prints the median
time per epoch, the ratio full/rank (median over all epochs and over the last quarter, epoch by
epoch) and the accuracy gap (at the last epoch and, epoch by epoch, the median over the last
quarter): the goal is
>= 2x with accuracy within 1 point of full BPTT (its last step, the answer it is trained for).

    .venv/bin/python benchmarks/bench_rank_coding.py --dataset nmnist-sim --epochs 10 --thresholds 0.9 0.99
    # a shipped recipe as it is (its data, threshold, augmentation, averaging) on fold 0 of 5:
    .venv/bin/python benchmarks/bench_rank_coding.py --config configs/nmnist-alif.json \
        --data-dir ../shared/data/nmnist-small --epochs 40
    # the README's real-data recipe, the whole run: both losses start from the nmnist-sim run
    .venv/bin/python benchmarks/bench_rank_coding.py --config configs/nmnist-alif.json \
        --data-dir ../shared/data/nmnist-small --epochs 200 --init-from runs/sim-alif
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from rc_snn.training.config import BACKWARDS, TrainConfig
from rc_snn.training.evaluation import evaluate_model
from rc_snn.training.loop import train
from rc_snn.training.run import load_run, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="nmnist-sim")
    parser.add_argument("--data-dir")
    parser.add_argument("--model", default="alif", choices=("alif", "lstm"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--limit-train", type=int, default=2000)
    parser.add_argument("--limit-val", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9], help="one rank-coded run per threshold")
    parser.add_argument("--entropy-weight", type=float, default=0.0, help="beta_H of the rank-coded runs")
    parser.add_argument("--training-thresholds", type=float, nargs="*", default=[],
                        help="more rank-coded runs, each deciding at this threshold in training only "
                             "(TrainConfig.training_decision_threshold; validated at the run's own)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch (TrainConfig.lr_decay)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backward", default="compiled", choices=BACKWARDS,
                        help="ALIF gradients (TrainConfig.backward)")
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="TrainConfig.seed: nmnist-sim's simulation and the initialisation")
    parser.add_argument("--test", action="store_true",
                        help="also evaluate the final models on the test split (held out from all choices)")
    parser.add_argument("--skip-epochs", type=int, default=1, help="epochs left out of the medians (warm-up)")
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--config", help="a shipped recipe (its every setting but the loss and epochs; "
                                         "fold 0 of 5 of --data-dir); the flags above then do not apply")
    parser.add_argument("--init-from", help="with --config: every run starts from this run's weights "
                                            "(TrainConfig.init_from; the README's real-data recipe starts from nmnist-sim)")
    args = parser.parse_args()
    if args.init_from and not args.config:
        parser.error("--init-from goes with --config")

    base = TrainConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, hidden=args.hidden,
                       lr=args.lr, lr_decay=args.lr_decay, batch_size=args.batch_size, limit_train=args.limit_train,
                       limit_val=args.limit_val, seed=args.seed, device="cpu", backward=args.backward, chunk_size=args.chunk_size)
    if args.config:
        base = TrainConfig.load(args.config).replace(data_dir=args.data_dir, folds=5, fold=0, device="cpu",
                                                     init_from=args.init_from)
    runs = {"full": base.replace(loss="full")}  # full BPTT ignores the threshold in training
    thresholds = [base.decision_threshold] if args.config else args.thresholds
    runs.update({f"rank {t:g}": base.replace(loss="rank", decision_threshold=t,
                                             entropy_weight=base.entropy_weight if args.config else args.entropy_weight)
                 for t in thresholds})
    runs.update({f"rank {runs[f'rank {thresholds[0]:g}'].decision_threshold:g}/train {t:g}":
                 runs[f"rank {thresholds[0]:g}"].replace(training_decision_threshold=t) for t in args.training_thresholds})
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-rank-"))

    def run_dir(name: str) -> Path:
        return root / name.replace(" ", "-")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backward {args.backward},"
          f" entropy weight {args.entropy_weight}; runs in {root}")
    histories = {name: [] for name in runs}
    for epoch in range(1, args.epochs + 1):
        for name, config in runs.items():
            histories[name] = train(config.replace(epochs=epoch), run_dir(name),
                                    progress=False, log=lambda *a: None).history
            e = histories[name][-1]
            print(f"epoch {epoch} {name:17s}: {e['train_seconds']:6.1f} s,"
                  f" steps/batch {e['train_mean_steps_simulated']:4.1f},"
                  f" sample-steps {e['train_sample_steps_fraction']:.2f} of full,"
                  f" val acc {e['val_accuracy']:.3f} (last step {e['val_accuracy_last_step']:.3f}),"
                  f" mean decision step {e['val_mean_decision_step']:.1f}", flush=True)

    def median(name, key):
        return statistics.median(e[key] for e in histories[name][args.skip_epochs:])

    full = histories["full"]
    tail = max(1, args.epochs // 4)  # the last quarter of the epochs: decisions come earliest there
    print(f"\n| training | s/epoch (median) | full/rank (median) | full/rank (median of the last {tail} epochs)"
          " | steps simulated per batch | sample-steps vs full (median; last epoch) | val acc (early exit)"
          " | val acc (last step) | accuracy gap (last epoch; median of the last epochs) | mean decision step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in runs:
        last = histories[name][-1]
        speedup = median("full", "train_seconds") / median(name, "train_seconds")
        speedup_tail = statistics.median(f["train_seconds"] / e["train_seconds"]
                                         for f, e in zip(full[-tail:], histories[name][-tail:]))
        # Full BPTT's own answer is its last step; a rank-coded model's is its decision.
        answer = "val_accuracy_last_step" if name == "full" else "val_accuracy"
        gap = 100 * (full[-1]["val_accuracy_last_step"] - last[answer])
        # One epoch's 500-sample validation moves 1-3 points: the median gap is the steadier figure.
        gap_tail = 100 * statistics.median(f["val_accuracy_last_step"] - e[answer]
                                           for f, e in zip(full[-tail:], histories[name][-tail:]))
        print(f"| {name} | {median(name, 'train_seconds'):.1f} | {speedup:.2f}x | {speedup_tail:.2f}x |"
              f" {median(name, 'train_mean_steps_simulated'):.1f} |"
              f" {median(name, 'train_sample_steps_fraction'):.2f}; {last['train_sample_steps_fraction']:.2f} |"
              f" {100 * last['val_accuracy']:.1f}% | {100 * last['val_accuracy_last_step']:.1f}% | {gap:+.1f}; {gap_tail:+.1f} |"
              f" {last['val_mean_decision_step']:.1f} |")

    # The first epoch also loads the compiled kernels: left out, as from the medians.
    for what, keys in (("training steps", ("train_seconds",)),
                       ("training steps and loading the batches", ("train_seconds", "train_load_seconds"))):
        totals = {name: sum(e[key] for e in histories[name][args.skip_epochs:] for key in keys) for name in runs}
        print(f"\nwhole run ({what}, epochs {args.skip_epochs + 1}-{args.epochs}): " + ", ".join(
            f"{name} {seconds:.1f} s ({totals['full'] / seconds:.2f}x faster, {seconds / totals['full']:.2f}x the time)"
            for name, seconds in totals.items()))
    if args.test:
        print("\n| final model, test split | accuracy (own answer) | gap to full | mean decision step |")
        print("|---|---|---|---|")
        own = {}
        for name, config in runs.items():
            trained = load_run(run_dir(name), device="cpu")
            test_set, _ = load_split(config, "test")
            result = evaluate_model(trained.model, test_set, config.decision_threshold, dt_ms=trained.info.dt_ms,
                                    progress=False)
            own[name] = result["accuracy_last_step" if name == "full" else "accuracy"]
            step = "(last)" if name == "full" else f"{result['mean_decision_step']:.1f}"
            print(f"| {name} | {100 * own[name]:.1f}% ({len(test_set)} samples) |"
                  f" {100 * (own['full'] - own[name]):+.1f} | {step} |")


if __name__ == "__main__":
    main()
