"""Energy against accuracy: the SNN/LSTM energy ratio at matched accuracy, both counting conventions.

Two modes, each writing `rc-snn compare`'s report (report.md, frontier.png) and printing the
matched-accuracy ratios for the 45 nm fp32 and Loihi presets:

    # a family of sizes trained on nmnist-sim (ALIF 64/128/256, LSTM 16/32/64/128, rank-coded),
    # compared on the first 500 test samples; every run is also read at 7 other thresholds
    python benchmarks/bench_energy_frontier.py sim --out runs/frontier-sim

    # real N-MNIST: two `rc-snn cv` folders (the same folds); fold k's runs are compared on fold k's
    # held-out recordings, and the ratios are reported per fold and as mean +- sd over folds
    python benchmarks/bench_energy_frontier.py cv runs/cv-alif runs/cv-lstm --out runs/frontier-real

Training in `sim` resumes (each run is an ordinary run folder); `cv` trains nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from deploy.counting import REPORT_CONVENTIONS
from deploy.frontier import TARGETS
from rc_snn.pipeline.compare import SUMMARY_PRESETS, analyse_run, format_summary, write_results
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.run import load_run

SIM_FAMILIES = {"alif": (64, 128, 256), "lstm": (16, 32, 64, 128)}


def ratios(data: dict) -> dict:
    """``{(convention, preset, target): matched pair}`` of one report."""
    return {(convention, preset, target): data["frontier"][convention][preset]["matched"][target]
            for convention in REPORT_CONVENTIONS for preset in SUMMARY_PRESETS for target in TARGETS}


def sim(args) -> None:
    results = []
    for model, sizes in SIM_FAMILIES.items():
        for hidden in sizes:
            config = TrainConfig(model=model, hidden=hidden, epochs=args.epochs, decision_threshold=0.9,
                                 lr=2e-3 if model == "alif" else 5e-3, limit_val=args.limit)
            run = train(config, args.out / f"{model}-{hidden}", progress=False, log=lambda *a: None)
            print(f"trained {model} {hidden}: val accuracy {run.history[-1]['val_accuracy']:.3f}", flush=True)
            results.append(analyse_run(run, "test", limit=args.limit, name=f"{model.upper()} {hidden}",
                                       progress=False))
    data, _ = write_results(results, args.out / "report")
    print(format_summary(data))


def cross_validated(args) -> None:
    per_fold = []
    folds = sorted(path.name for path in args.snn_cv.glob("fold-*"))
    if not folds or folds != sorted(path.name for path in args.lstm_cv.glob("fold-*")):
        sys.exit(f"expected the same fold-K folders in {args.snn_cv} and {args.lstm_cv}")
    for fold in folds:
        results = [analyse_run(load_run(folder / fold), "val", name=name, progress=False)
                   for folder, name in ((args.snn_cv, "ALIF"), (args.lstm_cv, "LSTM"))]
        data, _ = write_results(results, args.out / fold)
        per_fold.append(ratios(data))
        print(f"\n== {fold}\n{format_summary(data)}", flush=True)
    print(f"\n== over {len(folds)} folds: times less energy than the LSTM at matched accuracy "
          "(cheapest point at least as accurate; '-' where a fold never reaches the target)")
    print("| convention | preset | matched at | ratio per fold | mean +- sd (folds that reach it) |")
    print("|---|---|---|---|---|")
    for key in per_fold[0]:
        values = [fold[key]["ratio"] for fold in per_fold]
        reached = [value for value in values if value is not None]
        spread = (f"{statistics.fmean(reached):.3g} +- {statistics.pstdev(reached):.2g} ({len(reached)}/{len(values)})"
                  if reached else "not reached")
        target = TARGETS[key[2]]
        shown = ", ".join("-" if value is None else f"{value:.3g}" for value in values)
        print(f"| {key[0]} | {key[1]} | {target} | {shown} | {spread} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sim", help="train a family of sizes on nmnist-sim and compare them")
    p.add_argument("--out", type=Path, default=Path("runs/frontier-sim"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--limit", type=int, default=500, help="test (and validation) samples")
    p.set_defaults(run=sim)
    p = commands.add_parser("cv", help="compare two rc-snn cv folders fold by fold")
    p.add_argument("snn_cv", type=Path)
    p.add_argument("lstm_cv", type=Path)
    p.add_argument("--out", type=Path, default=Path("runs/frontier-real"))
    p.set_defaults(run=cross_validated)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
