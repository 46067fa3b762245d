"""`rc-snn`: train, evaluate, export, lava, compare, demo."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .config import BACKWARDS, DEVICES, LOSSES, MODELS, TrainConfig, write_json_atomic
from .demo import DemoOptions

DEMO_DEFAULTS = DemoOptions()

# Types of the config fields whose default is None (argparse cannot infer them).
_OPTIONAL_TYPES = {"data_dir": str, "bin_ms": float, "limit_train": int, "limit_val": int}
_CHOICES = {"model": MODELS, "loss": LOSSES, "device": DEVICES, "full_readout": ("last", "mean"),
            "backward": BACKWARDS}
_HELP = {
    "threshold": "softmax probability a sample's output must exceed to decide (early exit)",
    "entropy_weight": "weight of the entropy reward in the rank-coded loss (higher = later, surer decisions)",
    "data_dir": "folder holding the dataset (N-MNIST: the folder containing NMNIST/ or NMNIST/ itself)",
    "bin_ms": "event-frame bin width in ms (N-MNIST-like data)",
    "limit_train": "use only this many training samples",
    "limit_val": "use only this many validation samples",
    "lr_decay": "factor applied to the learning rate after every epoch (1 = constant)",
    "layers": "number of recurrent layers",
    "hidden": "neurons (or LSTM units) per layer",
    "backward": "ALIF gradients, all equal: 'compiled' (numba kernels, one layer on the CPU; else 'manual'),"
                " 'manual' (hand-written BPTT in torch) or 'autograd'",
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; all default to None so only the flags given override."""
    group = parser.add_argument_group("training config (defaults: rc_snn.config.TrainConfig)")
    for field in fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        help_text = f"{_HELP.get(field.name, field.name.replace('_', ' '))} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=float, nargs=2, metavar=("MEAN", "SD"), default=None, help=help_text)
        else:
            kind = type(default) if default is not None else _OPTIONAL_TYPES[field.name]
            group.add_argument(flag, type=kind, choices=_CHOICES.get(field.name), default=None, help=help_text)


def config_overrides(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}


def cmd_train(args: argparse.Namespace) -> int:
    from .train import CONFIG_FILE, CHECKPOINT_FILE, train

    run_dir = Path(args.out)
    overrides = config_overrides(args)
    if args.config:
        base = TrainConfig.load(args.config)
    elif args.resume and (run_dir / CHECKPOINT_FILE).exists():
        base = TrainConfig.load(run_dir / CONFIG_FILE)  # resuming: the run's own config
    else:
        base = TrainConfig()
    config = base.replace(**overrides)
    train(config, run_dir, resume=args.resume, progress=args.progress)
    print(f"run folder: {run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .train import evaluate_model, load_run, load_split

    config, model, info = load_run(args.run_dir, device=args.device)
    config = config.replace(**({"data_dir": args.data_dir} if args.data_dir else {}))
    dataset, _ = load_split(config, args.split, args.limit)
    threshold = args.threshold if args.threshold is not None else config.threshold
    result = evaluate_model(model, dataset, threshold, dt_ms=info.dt_ms, progress=args.progress)
    result.update({"run_dir": str(args.run_dir), "split": args.split, "threshold": threshold})
    out = Path(args.out) if args.out else Path(args.run_dir) / f"evaluate-{args.split}.json"
    write_json_atomic(out, result)
    print(format_evaluation(result))
    print(f"written: {out}")
    return 0


def format_evaluation(result: dict) -> str:
    lines = [
        f"samples              {result['n_samples']} ({result['split']} split, threshold {result['threshold']})",
        f"accuracy (early exit) {100 * result['accuracy']:.2f}%",
        f"accuracy (last step)  {100 * result['accuracy_last_step']:.2f}%",
        f"mean decision step    {result['mean_decision_step']:.2f} of {result['n_steps']} "
        f"(median {result['median_decision_step']:.0f}; {100 * result['fraction_crossed']:.1f}% crossed the threshold)",
    ]
    if "mean_decision_ms" in result:
        lines.append(f"mean decision time    {result['mean_decision_ms']:.1f} ms")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from deploy.ir import load_network

    from .export import export_to_file
    from .train import load_run

    config, model, info = load_run(args.run_dir)
    if config.model != "alif":
        raise ValueError(f"{args.run_dir} holds a {config.model!r} model; only ALIF networks are exported to Lava")
    out = Path(args.out) if args.out else Path(args.run_dir) / "network.npz"
    path = export_to_file(model, out, decision_threshold=config.threshold, dt_ms=info.dt_ms)
    network = load_network(path)  # read back through the same validation deploy/ applies
    sizes = " -> ".join([str(network.n_inputs)] + [str(layer.w_in.shape[0]) for layer in network.layers]
                        + [str(network.readout.weight.shape[0])])
    print(f"network {sizes}, decision threshold {network.decision_threshold}, dt {network.dt_ms} ms")
    print(f"written: {path}")
    return 0


def cmd_lava(args: argparse.Namespace) -> int:
    from deploy.ir import load_network

    from .lava import format_lava, lava_versus_pytorch

    network = load_network(args.network) if args.network else None
    summary = lava_versus_pytorch(args.run_dir, split=args.split, samples=args.samples, fixed_point=args.fixed_point,
                                  data_dir=args.data_dir, network=network, progress=args.progress)
    summary.pop("evaluation")
    kind = "fixed" if args.fixed_point else "float"
    out = Path(args.out) if args.out else Path(args.run_dir) / f"lava-{kind}-{args.split}.json"
    write_json_atomic(out, summary)
    print(format_lava(summary))
    print(f"written: {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    options = DemoOptions(out=Path(args.out), dataset=args.dataset, data_dir=args.data_dir, download=args.download,
                          epochs=args.epochs, hidden=args.hidden, limit_train=args.limit_train,
                          limit_test=args.limit_test, lava_samples=args.lava_samples, fresh=args.fresh,
                          progress=args.progress)
    demo_main(options)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from deploy.report import load_report, summary_rows

    from .compare import compare_runs

    paths = compare_runs(args.run_dirs, args.out, args.split, limit=args.limit, data_dir=args.data_dir,
                         progress=args.progress)
    print_summary(summary_rows(load_report(paths["json"])))
    print(f"report: {paths['markdown']}")
    return 0


def print_summary(rows) -> None:
    """The report's headline figures as a terminal table."""
    presets = [key[len("energy_pj_"):] for key in rows[0] if key.startswith("energy_pj_")] if rows else []
    width = max([len(row["name"]) for row in rows] + [5])
    header = f"{'model':<{width}}  accuracy  mean t*  " + "  ".join(f"{p + ' (nJ)':>18}" for p in presets)
    print(header)
    print("-" * len(header))
    for row in rows:
        energies = "  ".join(f"{row['energy_pj_' + p] / 1000:>18.4g}" for p in presets)
        print(f"{row['name']:<{width}}  {100 * row['accuracy']:7.2f}%  {row['mean_decision_step']:7.1f}  {energies}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rc-snn", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rc-snn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (rank-coded or full-sequence loss)")
    p.add_argument("--out", default="runs/train", help="run folder (checkpoint, config.json, metrics.json)")
    p.add_argument("--config", help="a config.json to start from (flags override it)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue the run in --out if it has a checkpoint")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    add_config_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="early-exit inference figures of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="evaluate only this many samples")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the run's)")
    p.add_argument("--data-dir", help="dataset folder (default: the run's)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--out", help="JSON file to write (default: RUN_DIR/evaluate-SPLIT.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="operations and energy per inference of trained runs; writes a report")
    p.add_argument("run_dirs", nargs="+", help="trained run folders (ALIF and LSTM, rank coding and full sequence)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="use only this many samples of the split")
    p.add_argument("--data-dir", help="dataset folder (default: each run's)")
    p.add_argument("--out", default="runs/compare", help="report folder")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="write a trained ALIF run to the plain-data network file deploy/ reads")
    p.add_argument("run_dir")
    p.add_argument("--out", help="network file (default: RUN_DIR/network.npz)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("lava", help="run a trained ALIF run as Lava processes; accuracy, agreement, counts")
    p.add_argument("run_dir")
    p.add_argument("--network", help="a network file from `rc-snn export` (default: export the run in memory)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--samples", type=int, default=100, help="how many samples of the split to run")
    p.add_argument("--fixed-point", action=argparse.BooleanOptionalAction, default=False,
                   help="Loihi-style fixed point (fixed_pt ProcessModels) instead of floating point")
    p.add_argument("--data-dir", help="dataset folder (default: the run's)")
    p.add_argument("--out", help="JSON file (default: RUN_DIR/lava-float|fixed-SPLIT.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_lava)

    p = sub.add_parser("demo", help="the main job: train ALIF and LSTM, run ALIF in Lava, compare energy")
    p.add_argument("--out", default="runs/demo", help="run folder (reused on a second run)")
    p.add_argument("--dataset", default="nmnist-sim", help="nmnist-sim (embedded, default) or nmnist")
    p.add_argument("--data-dir", help="N-MNIST folder (the one containing NMNIST/) for --dataset nmnist")
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=False,
                   help="let tonic download N-MNIST (needs internet)")
    p.add_argument("--epochs", type=int, default=DEMO_DEFAULTS.epochs)
    p.add_argument("--hidden", type=int, default=DEMO_DEFAULTS.hidden)
    p.add_argument("--limit-train", type=int, help="train on only this many samples")
    p.add_argument("--limit-test", type=int, help="evaluate on only this many test samples")
    p.add_argument("--lava-samples", type=int, default=DEMO_DEFAULTS.lava_samples,
                   help="test samples run through Lava (each of float and fixed point)")
    p.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=False,
                   help="delete the run folder first instead of reusing finished stages")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"rc-snn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
