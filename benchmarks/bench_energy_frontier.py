"""Energy against accuracy: the SNN/RNN energy ratio at matched accuracy, both counting conventions.

Two modes, each writing `rc-snn compare`'s report (report.md, frontier.png) and printing the
matched-accuracy ratios for the 45 nm fp32 and Loihi presets:

    # a family of sizes trained on nmnist-sim (ALIF 64/128/256, IR-SNN 64/128, LSTM 16/32/64/128,
    # GRU 32/64/128, rank-coded), compared on the first 500 test samples; every run is also read
    # at 7 other thresholds
    python benchmarks/bench_energy_frontier.py sim --out runs/frontier-sim

    # real N-MNIST: `rc-snn cv` folders with the same folds (any of ALIF, IR-SNN, LSTM, GRU); fold
    # k's runs are compared on fold k's held-out recordings; per model: accuracy, decision step,
    # parameters and multiplications (mean +- sd over folds), the SNN/RNN multiplication ratios,
    # and the matched-accuracy energy ratios per fold and as mean +- sd; IR-SNN folders at several
    # bit widths also give bits.png (accuracy and cost against bits)
    python benchmarks/bench_energy_frontier.py cv runs/cv-alif runs/cv-irsnn runs/cv-lstm runs/cv-gru \
        --out runs/frontier-real

Training in `sim` resumes (each run is an ordinary run folder); `cv` trains nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from deploy.counting import REPORT_CONVENTIONS, OpCounts, synaptic_operations
from deploy.frontier import TARGETS
from rc_snn.pipeline.compare import MODEL_LABELS, SUMMARY_PRESETS, analyse_run, format_summary, write_results
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.run import load_run

SIM_FAMILIES = {"alif": (64, 128, 256), "irsnn": (64, 128), "lstm": (16, 32, 64, 128), "gru": (32, 64, 128)}
SIM_LEARNING_RATES = {"alif": 2e-3, "irsnn": 2e-3, "lstm": 5e-3, "gru": 5e-3}


def ratios(data: dict) -> dict:
    """``{(convention, preset, target): matched pair}`` of one report."""
    return {(convention, preset, target): data["frontier"][convention][preset]["matched"][target]
            for convention in REPORT_CONVENTIONS for preset in SUMMARY_PRESETS for target in TARGETS}


def sim(args) -> None:
    results = []
    for model, sizes in SIM_FAMILIES.items():
        for hidden in sizes:
            config = TrainConfig(model=model, hidden=hidden, epochs=args.epochs, decision_threshold=0.9,
                                 lr=SIM_LEARNING_RATES[model], limit_val=args.limit)
            run = train(config, args.out / f"{model}-{hidden}", progress=False, log=lambda *a: None)
            print(f"trained {model} {hidden}: val accuracy {run.history[-1]['val_accuracy']:.3f}", flush=True)
            results.append(analyse_run(run, "test", limit=args.limit, name=model_name(config), progress=False))
    data, _ = write_results(results, args.out / "report")
    print(format_summary(data))


def model_name(config: TrainConfig) -> str:
    """``"IR-SNN 128 6b"``, ``"ALIF 256 binary act 0.02 pruned 50%"``: the model, its size and what
    sets it apart (IR-SNN bits, input encoding, activity penalty, pruning)."""
    parts = [MODEL_LABELS[config.model], str(config.hidden)]
    parts += [f"{config.bits}b"] if config.model == "irsnn" else []
    parts += [config.input_encoding] if config.input_encoding != "counts" else []
    parts += [f"act {config.activity_weight:g}"] if config.activity_weight else []
    parts += [f"pruned {100 * config.prune_fraction:.0f}%"] if config.prune_fraction else []
    return " ".join(parts)


def multiplications(counts: OpCounts, convention: str) -> float:
    """Multiplications per inference: the convention's synaptic MACs plus the neuron updates' MACs."""
    return (synaptic_operations(counts, convention)[1] + counts.neuron_update_macs) / counts.n_samples


def spread(values) -> str:
    return f"{statistics.fmean(values):.4g} +- {statistics.pstdev(values):.2g}"


def cross_validated(args) -> None:
    folds = sorted(path.name for path in args.cv_folders[0].glob("fold-*"))
    for folder in args.cv_folders:
        if not folds or sorted(path.name for path in folder.glob("fold-*")) != folds:
            sys.exit(f"expected the same fold-K folders in every cv folder; {folder} differs from {args.cv_folders[0]}")
    per_fold, rows = [], {}
    for fold in folds:
        runs = [load_run(folder / fold) for folder in args.cv_folders]
        results = [analyse_run(run, "val", name=model_name(run.config), progress=False) for run in runs]
        data, _ = write_results(results, args.out / fold)
        per_fold.append(ratios(data))
        for run, result in zip(runs, results):
            rows.setdefault(result.name, []).append((run.config, result))
        print(f"\n== {fold}\n{format_summary(data)}", flush=True)
    names = list(rows)
    print(f"\n== over {len(folds)} folds, each model on its fold's held-out recordings (mean +- sd)")
    print("| model | accuracy (%) | at the last step (%) | mean decision step | parameters "
          "| multiplications, neurobench | multiplications, event-driven |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        results = [result for _, result in rows[name]]
        print(f"| {name} | {spread([100 * r.accuracy for r in results])} "
              f"| {spread([100 * r.accuracy_at_last_step for r in results])} "
              f"| {spread([float(r.decision_steps.mean()) for r in results])} | {results[0].footprint_bytes // 4} "
              f"| {spread([multiplications(r.counts, 'neurobench') for r in results])} "
              f"| {spread([multiplications(r.counts, 'event-driven') for r in results])} |")
    snns = [name for name in names if rows[name][0][1].family == "snn"]
    rnns = [name for name in names if rows[name][0][1].family == "rnn"]
    if snns and rnns:
        print("\ntimes fewer multiplications than the RNN at each model's own decision threshold (mean +- sd over folds)")
        print("| SNN | RNN | neurobench | event-driven |")
        print("|---|---|---|---|")
        for snn in snns:
            for rnn in rnns:
                cells = [spread([multiplications(r_rnn.counts, convention) / multiplications(r_snn.counts, convention)
                                 for (_, r_snn), (_, r_rnn) in zip(rows[snn], rows[rnn])])
                         for convention in ("neurobench", "event-driven")]
                print(f"| {snn} | {rnn} | {' | '.join(cells)} |")
    print(f"\n== over {len(folds)} folds: times less energy than the RNN at matched accuracy "
          "(cheapest point at least as accurate; '-' where a fold never reaches the target)")
    print("| convention | preset | matched at | ratio per fold | mean +- sd (folds that reach it) |")
    print("|---|---|---|---|---|")
    for key in per_fold[0]:
        values = [fold[key]["ratio"] for fold in per_fold]
        reached = [value for value in values if value is not None]
        shown_spread = (f"{statistics.fmean(reached):.3g} +- {statistics.pstdev(reached):.2g} "
                        f"({len(reached)}/{len(values)})" if reached else "not reached")
        target = TARGETS[key[2]]
        shown = ", ".join("-" if value is None else f"{value:.3g}" for value in values)
        print(f"| {key[0]} | {key[1]} | {target} | {shown} | {shown_spread} |")
    bit_widths = sorted({config.bits for name in snns for config, _ in rows[name] if config.model == "irsnn"})
    if len(bit_widths) > 1:
        plot_bits(rows, args.out / "bits.png")


def plot_bits(rows: dict, path: Path) -> None:
    """Accuracy and multiplications per inference of the IR-SNN against its bits (mean +- sd over folds),
    with the other models as horizontal references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (accuracy_axis, cost_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    irsnn = sorted((configs_results[0][0].bits, name) for name, configs_results in rows.items()
                   if configs_results[0][0].model == "irsnn")
    bits = [b for b, _ in irsnn]
    for axis, values_of, label in (
            (accuracy_axis, lambda r: 100 * r.accuracy, "accuracy at the decision (%)"),
            (cost_axis, lambda r: multiplications(r.counts, "neurobench"), "multiplications per inference")):
        means = [statistics.fmean(values_of(r) for _, r in rows[name]) for _, name in irsnn]
        sds = [statistics.pstdev([values_of(r) for _, r in rows[name]]) for _, name in irsnn]
        axis.errorbar(bits, means, yerr=sds, marker="o", capsize=3, label="IR-SNN")
        for index, (name, configs_results) in enumerate(rows.items()):
            if configs_results[0][0].model != "irsnn":
                axis.axhline(statistics.fmean(values_of(r) for _, r in configs_results), color=f"C{index + 1}",
                             linestyle="--", linewidth=1, label=name)
        axis.set_xlabel("bits per output")
        axis.set_xticks(bits)
        axis.set_ylabel(label)
    cost_axis.set_yscale("log")
    cost_axis.set_title("NeuroBench convention: synaptic MACs + neuron-update MACs", fontsize=9)
    accuracy_axis.set_title("real N-MNIST, 5-fold cross-validation (mean +- sd)", fontsize=9)
    accuracy_axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"written: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sim", help="train a family of sizes on nmnist-sim and compare them")
    p.add_argument("--out", type=Path, default=Path("runs/frontier-sim"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--limit", type=int, default=500, help="test (and validation) samples")
    p.set_defaults(run=sim)
    p = commands.add_parser("cv", help="compare rc-snn cv folders fold by fold")
    p.add_argument("cv_folders", type=Path, nargs="+", metavar="CV_FOLDER")
    p.add_argument("--out", type=Path, default=Path("runs/frontier-real"))
    p.set_defaults(run=cross_validated)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
