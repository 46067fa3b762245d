"""`rc-snn`: train, cv, evaluate, export, lava, compare, demo."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from deploy.files import check_output_file, write_json
from deploy.nir_io import READOUTS

from .. import __version__
from ..training.distributed import WorkerFailed
from ..training.loop import Terminated
from ..training.threads import THREADS_VARIABLE, thread_budget
from ..training.config import (BACKWARDS, DEVICES, FULL_READOUTS, LOSSES, LR_SCHEDULES, MODELS, SPIKING_MODELS,
                               WINDOWS, TrainConfig)
from ..data.encoding import INPUT_ENCODINGS
from .demo import DemoOptions

# Types of the dataclass fields whose default is None (argparse cannot infer them).
_OPTIONAL_TYPES = {"data_dir": str, "init_from": str, "bin_ms": float, "limit_train": int, "limit_val": int,
                   "limit_test": int, "hidden": int, "decision_threshold": float, "training_decision_threshold": float}
_CHOICES = {"model": MODELS, "loss": LOSSES, "device": DEVICES, "full_readout": FULL_READOUTS, "window": WINDOWS,
            "input_encoding": INPUT_ENCODINGS,
            "backward": BACKWARDS, "lr_schedule": LR_SCHEDULES}
_NONE_MEANS = {"hidden": "the recipe's", "decision_threshold": "the recipe's"}  # the demo's options
_HELP = {
    "decision_threshold": "softmax probability a sample's output must exceed to decide (early exit)",
    "training_decision_threshold": "the decision threshold of the rank-coded loss in training (default: "
                                   "decision_threshold; lower decides earlier in training, so fewer steps are computed)",
    "entropy_weight": "weight of the entropy reward in the rank-coded loss (higher = later, surer decisions)",
    "last_step_weight": "weight of a cross-entropy at the last step added to the rank-coded loss (learning after t*)",
    "prune_fraction": "fraction of each weight matrix pruned by magnitude, held at zero (fewer synapses to count)",
    "prune_epochs": "epochs over which the pruned fraction grows to prune_fraction (0: all before the first epoch)",
    "activity_weight": "ALIF: weight of the penalty on spikes per neuron up to each decision (fewer accumulates)",
    "data_dir": "folder holding the dataset (N-MNIST: the folder containing NMNIST/ or NMNIST/ itself)",
    "download": "let tonic download the dataset (needs internet)",
    "bin_ms": "event-frame bin width in ms (N-MNIST-like data)",
    "window": "part of each recording used: 'full' (300 ms, three saccades) or 'first-saccade' (100 ms)",
    "input_encoding": "what a bin gives the first layer: its event 'counts', or 'binary' (1 if any event: the first "
                      "layer then only accumulates)",
    "folds": "a local N-MNIST Train/ folder is split by file index modulo this",
    "fold": "which remainder is held out for validation (0 .. folds-1)",
    "shift_px": "augmentation: random translation of each training sample within +-this many pixels",
    "rotate_deg": "augmentation: random rotation of each training sample within +-this many degrees",
    "zoom": "augmentation: random scaling of each training sample by 1 +- this",
    "drop_events": "augmentation: probability of dropping each event of a training sample",
    "limit_train": "use only this many training samples",
    "limit_val": "use only this many validation samples",
    "limit_test": "evaluate on only this many test samples",
    "lr_decay": "factor applied to the learning rate after every epoch (1 = constant; 'exponential' schedule)",
    "lr_schedule": "'exponential' (lr * lr_decay**epoch) or 'cosine' (annealed to 0 over the epochs)",
    "tau_lr_scale": "factor on the learning rate of the neurons' time constants (Yin et al.: 2-3)",
    "weight_decay": "AdamW's decoupled weight decay on the weight matrices (0 = Adam)",
    "label_smoothing": "label smoothing of every cross-entropy term",
    "init_from": "a trained run folder (same model and sizes) to start from, e.g. one trained on nmnist-sim",
    "ema_decay": "exponential moving average of the weights per optimiser step, used after training (0 = off)",
    "layers": "number of recurrent layers",
    "hidden": "neurons (or LSTM/GRU units) per layer",
    "bits": "IR-SNN: bits of each output (1: binary spikes; the paper's 6)",
    "dead_zone": "IR-SNN: output levels |q| <= this are not sent (the paper's 3; 0 at 1 bit)",
    "backward": "ALIF gradients, all equal: 'compiled' (numba kernels, on the CPU; else 'manual'),"
                " 'manual' (hand-written BPTT in torch) or 'autograd'",
    "out": "run folder (reused on a second run)",
    "models": "models to train and compare, comma-separated among alif, irsnn, lstm, gru",
    "lava_samples": "test samples run through Lava (each of float and fixed point) and counted for every model",
    "fresh": "delete the demo's own run folders and report in --out first (nothing else) instead of reusing them",
    "progress": "show progress bars",
}


_CV_HELP = {"folds": "how many folds (default: 5)"}


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, title: str, *, overrides_only: bool,
                            help_overrides: Optional[dict] = None) -> None:
    """One flag per field of the dataclass ``cls`` (``--field-name``), typed by its default.

    ``overrides_only``: every flag defaults to None, so only the flags given override a base
    (a config file, a run's own config); otherwise flags default to the field's default.
    """
    group = parser.add_argument_group(title)
    for field in fields(cls):
        flags = ["--" + field.name.replace("_", "-")]
        default = field.default
        shown = _NONE_MEANS.get(field.name, default) if default is None else default
        help_text = (help_overrides or {}).get(field.name) or \
            f"{_HELP.get(field.name, field.name.replace('_', ' '))} (default: {shown})"
        value = None if overrides_only else default
        if isinstance(default, bool):  # BooleanOptionalAction appends the default itself
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, default=value,
                               help=_HELP.get(field.name, field.name.replace("_", " ")))
        elif isinstance(default, tuple):
            group.add_argument(*flags, type=float, nargs=2, metavar=("MEAN", "SD"), default=value, help=help_text)
        else:
            kind = type(default) if default is not None else _OPTIONAL_TYPES[field.name]
            group.add_argument(*flags, type=kind, choices=_CHOICES.get(field.name), default=value, help=help_text)


def config_overrides(args: argparse.Namespace) -> dict:
    """The config fields given on the command line; ``init_from`` made absolute, so the run can be
    resumed from any working folder."""
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    if "init_from" in overrides:
        overrides["init_from"] = str(Path(overrides["init_from"]).expanduser().resolve())
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.loop import train
    from ..training.run import CHECKPOINT_FILE, saved_config

    run_dir = Path(args.out)
    overrides = config_overrides(args)
    if args.config:
        base = TrainConfig.load(args.config)
    elif args.resume and (run_dir / CHECKPOINT_FILE).exists():
        base = saved_config(run_dir)  # resuming: the run's own config
    else:
        base = TrainConfig()
    config = base.replace(**overrides)
    train(config, run_dir, resume=args.resume, progress=args.progress, nproc=args.nproc)
    if int(os.environ.get("RANK", 0)) == 0:  # under torchrun, one process says it
        print(f"run folder: {run_dir}")
    return 0


def base_config(args: argparse.Namespace) -> TrainConfig:
    """``--config`` (or the defaults) with the config flags given on the command line."""
    return (TrainConfig.load(args.config) if args.config else TrainConfig()).replace(**config_overrides(args))


def cmd_cv(args: argparse.Namespace) -> int:
    from ..training.crossval import CV_FILE, cross_validate, format_cv

    ignored = [flag for flag, value in (("--fold", args.fold), ("--limit-val", args.limit_val)) if value is not None]
    if ignored:
        raise ValueError(f"cv holds out every fold in turn, each whole: {' and '.join(ignored)} cannot be given")
    config = base_config(args)
    if config.init_from is not None and not Path(config.init_from).is_absolute():  # from a --config file
        config = config.replace(init_from=str(Path(config.init_from).resolve()))
    folds = args.folds if args.folds is not None else 5
    summary = cross_validate(config, args.out, folds, resume=args.resume, progress=args.progress)
    print()
    print(format_cv(summary))
    print(f"written: {Path(args.out) / CV_FILE}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..training.evaluation import burn_in_of, evaluate_model
    from ..training.run import load_run, load_split

    from ..training.early_exit import check_decision_threshold

    out = Path(args.out) if args.out else Path(args.run_dir) / f"evaluate-{args.split}.json"
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"expected --limit >= 1; got {args.limit}")
    check_output_file(out)  # before the evaluation, which the write would otherwise lose
    run = load_run(args.run_dir, device=args.device)
    config = run.config.replace(**({"data_dir": args.data_dir} if args.data_dir else {}))
    threshold = check_decision_threshold(
        args.decision_threshold if args.decision_threshold is not None else config.decision_threshold)
    dataset, _ = load_split(config, args.split, args.limit, args.progress)
    result = evaluate_model(run.model, dataset, threshold, dt_ms=run.info.dt_ms, burn_in=burn_in_of(run.info),
                            progress=args.progress)
    result.update({"run_dir": str(args.run_dir), "weights_id": run.weights_id, "dataset": config.dataset,
                   "split": args.split, "decision_threshold": threshold})
    write_json(out, result)
    print(format_evaluation(result))
    print(f"written: {out}")
    return 0


def format_evaluation(result: dict) -> str:
    if result.get("task") == "per-step":
        return "\n".join([
            f"samples              {result['n_samples']} ({result['split']} split, {result['n_steps']} steps each)",
            f"accuracy (per step)  {100 * result['accuracy']:.2f}% (steps {result['burn_in']}.., per recording, "
            f"averaged)",
            f"accuracy (last step) {100 * result['accuracy_last_step']:.2f}%"])
    lines = [
        f"samples              {result['n_samples']} ({result['split']} split, decision threshold {result['decision_threshold']})",
        f"accuracy (early exit) {100 * result['accuracy']:.2f}%",
        f"accuracy (last step)  {100 * result['accuracy_last_step']:.2f}%",
        f"mean decision step    {result['mean_decision_step']:.2f} of {result['n_steps']} "
        f"(median {result['median_decision_step']:g}; {100 * result['fraction_crossed']:.1f}% crossed the threshold)",
    ]
    if "mean_decision_ms" in result:
        lines.append(f"mean decision time    {result['mean_decision_ms']:.1f} ms")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from deploy.ir import save_network
    from deploy.nir_io import write_nir

    from ..training.run import load_run
    from .export import export_model

    default_name = "network.nir" if args.format == "nir" else "network.npz"
    out = check_output_file(Path(args.out) if args.out else Path(args.run_dir) / default_name)
    run = load_run(args.run_dir)
    if run.config.model not in SPIKING_MODELS:
        raise ValueError(f"{args.run_dir} holds a {run.config.model!r} model; only spiking networks "
                         f"{SPIKING_MODELS} are exported to Lava")
    network = export_model(run.model, decision_threshold=run.config.decision_threshold, dt_ms=run.info.dt_ms)
    if args.format == "nir":
        dt = args.dt if args.dt is not None else (network.dt_ms or 1.0) / 1000.0
        path = write_nir(network, out, dt=dt, readout=args.nir_readout)
    else:
        path = save_network(network, out)
    sizes = " -> ".join(str(size) for size in (network.n_inputs, *network.layer_sizes, network.n_outputs))
    print(f"network {sizes}, decision threshold {network.decision_threshold}, dt {network.dt_ms} ms")
    print(f"written: {path}")
    return 0


def cmd_lava(args: argparse.Namespace) -> int:
    from deploy.ir import load_network
    from deploy.nir_io import read_nir

    from ..training.run import load_run
    from .lava_parity import format_lava, lava_versus_pytorch

    kind = "fixed" if args.fixed_point else "float"
    out = Path(args.out) if args.out else Path(args.run_dir) / f"lava-{kind}-{args.split}.json"
    check_output_file(out)  # before the Lava run, which the write would otherwise lose
    run = load_run(args.run_dir)
    network = None
    if args.network and Path(args.network).suffix == ".nir":  # decided as the run decides
        network = read_nir(args.network, dt=args.dt, decision_threshold=run.config.decision_threshold)
    elif args.network:
        network = load_network(args.network)
    summary, _ = lava_versus_pytorch(run, split=args.split, samples=args.samples, fixed_point=args.fixed_point,
                                     data_dir=args.data_dir, network=network,
                                     network_name=Path(args.network).name if args.network else None,
                                     stream=args.stream,
                                     progress=args.progress)
    write_json(out, summary)
    print(format_lava(summary))
    print(f"written: {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    demo_main(DemoOptions(**{f.name: getattr(args, f.name) for f in fields(DemoOptions)}))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, format_summary

    data, paths = compare(args.paths, args.out, args.split, limit=args.limit, data_dir=args.data_dir,
                          progress=args.progress)
    print(format_summary(data))
    print(f"report: {paths['markdown']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rc-snn", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rc-snn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (or set RC_SNN_DEBUG=1)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="compute threads of each process (or set RC_SNN_THREADS; default: this job's share of "
                             "the cores it may use, with the other rc-snn jobs running beside it)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (rank-coded or full-sequence loss)")
    p.add_argument("--out", default="runs/train", help="run folder (checkpoint, config.json, metrics.json)")
    p.add_argument("--config", help="a config.json to start from (flags override it)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue the run in --out if it has a checkpoint")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    p.add_argument("--nproc", type=int, default=1,
                   help="training processes on this machine, data parallel (gloo on CPU, one GPU each with NCCL); "
                        "under torchrun leave it at 1")
    add_dataclass_arguments(p, TrainConfig, "training config (defaults: rc_snn.training.config.TrainConfig)",
                            overrides_only=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cv", help="K-fold cross-validation over a local N-MNIST copy: K runs, mean and spread")
    p.add_argument("--out", default="runs/cv", help="folder of the fold runs (fold-K/) and cv.json")
    p.add_argument("--config", help="a config.json to start from, e.g. configs/nmnist-alif.json (flags override it)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue the fold runs already in --out (--no-resume retrains every fold)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    add_dataclass_arguments(p, TrainConfig, "training config (--folds: how many folds, default 5 here; "
                            "--fold and --limit-val do not apply)", overrides_only=True, help_overrides=_CV_HELP)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("evaluate", help="early-exit inference figures of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="evaluate only this many samples")
    p.add_argument("--decision-threshold", type=float, help="decision threshold (default: the run's)")
    p.add_argument("--data-dir", help="dataset folder (default: the run's)")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="auto: a GPU if torch sees one, else the CPU")
    p.add_argument("--out", help="JSON file to write (default: RUN_DIR/evaluate-SPLIT.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="operations and energy per inference of trained runs; writes a report")
    p.add_argument("paths", nargs="+", metavar="RUN_OR_LAVA_JSON",
                   help="trained run folders (ALIF, IR-SNN, LSTM, GRU; rank coding or full sequence) and Lava results "
                        "(lava-*.json written by `rc-snn lava`)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="use only this many samples of the split")
    p.add_argument("--data-dir", help="dataset folder (default: each run's)")
    p.add_argument("--out", default="runs/compare", help="report folder")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="write a trained spiking network (ALIF, IR-SNN) to the network file deploy/ reads")
    p.add_argument("run_dir")
    p.add_argument("--out", help="network file (default: RUN_DIR/network.npz, or network.nir)")
    p.add_argument("--format", choices=("npz", "nir"), default="npz",
                   help="rc-snn's network file (npz) or a NIR graph (nir; leaky layers only, see docs/nir.md)")
    p.add_argument("--dt", type=float, help="NIR: the step in seconds readers integrate at (default: the run's bin)")
    p.add_argument("--nir-readout", choices=READOUTS, default="li",
                   help="NIR: the readout as NIR's LI, or as a LIF that never fires (for snnTorch 1.0 and Norse 1.1)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("lava", help="run a trained ALIF run as Lava processes; accuracy, agreement, counts")
    p.add_argument("run_dir")
    p.add_argument("--network", help="a network file from `rc-snn export`, or a NIR graph (.nir) from any tool "
                                     "(default: export the run in memory)")
    p.add_argument("--dt", type=float, help="NIR: the step in seconds to integrate the graph at (default: the graph's)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--samples", type=int, default=100, help="how many samples of the split to run")
    p.add_argument("--fixed-point", action=argparse.BooleanOptionalAction, default=False,
                   help="Loihi-style fixed point (fixed_pt ProcessModels) instead of floating point")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                   help="stream the samples through 100 slots, each taking the next sample as soon as its own has "
                        "decided (--no-stream: batches of 100, each run until its slowest sample decides)")
    p.add_argument("--data-dir", help="dataset folder (default: the run's)")
    p.add_argument("--out", help="JSON file (default: RUN_DIR/lava-float|fixed-SPLIT.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_lava)

    p = sub.add_parser("demo", help="the main job: train ALIF and LSTM (--models), run the SNN in Lava, compare energy")
    add_dataclass_arguments(p, DemoOptions, "demo options", overrides_only=False)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; a user error (bad value, bad file, filesystem, network, memory) prints one
    line and returns 2; a training process that died prints one line and returns 1; Ctrl-C returns
    130 and SIGTERM 143 (training saves a checkpoint first).
    ``--debug`` or ``RC_SNN_DEBUG=1`` lets the traceback through instead."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("RC_SNN_DEBUG", "") not in ("", "0")
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"expected --threads >= 1; got {args.threads}")
            os.environ[THREADS_VARIABLE] = str(args.threads)  # this process and the ones it starts
        if args.command in ("evaluate", "compare", "demo"):  # a job that computes (train and cv: each run is one)
            with thread_budget():
                return args.func(args)
        return args.func(args)
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    except WorkerFailed as error:  # not the user's input: a process died; the message says what to do
        if debug:
            raise
        print(f"rc-snn {args.command}: error: {describe(error)}", file=sys.stderr)
        return 1
    except (ValueError, OSError, MemoryError) as error:  # OSError: files, permissions, disk full, network
        if debug:
            raise
        print(f"rc-snn {args.command}: error: {describe(error)}", file=sys.stderr)
        return 2


def describe(error: BaseException) -> str:
    """One line saying what went wrong, in the error's own words where they are clear."""
    if isinstance(error, MemoryError):
        return f"out of memory{': ' + str(error) if str(error) else ''}; ask for less (fewer samples, a wider bin, a smaller batch)"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
