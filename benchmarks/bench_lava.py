"""Lava simulation cost: start-up, per-step cost, samples/s and steps/s, float and fixed point,
streamed and in batches.

Runs N-MNIST samples through ``deploy.simulate.evaluate`` (``--batch-size`` slots side by side, early
exit), each configuration streamed (each slot takes the next sample when its own decides) and in
batches (each batch until its slowest sample decides), and prints one JSON line per configuration,
then the stream's figures against the batch mode's measured in the same run. The network is a
trained run's (``--run DIR``; its own data, split and bins, e.g. the demo's ALIF run on nmnist-sim's
test split) or, without one, a random 2312-128-10 ALIF network scaled so that it spikes, on
``../shared/data/nmnist-small`` (train split) at ``--bin-ms`` when present, else random sparse frames.

    .venv/bin/python benchmarks/bench_lava.py --run runs/demo/alif-rank --samples 500
    .venv/bin/python benchmarks/bench_lava.py [--samples 300] [--bin-ms 1] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy import reference, simulate  # noqa: E402
from deploy.quantize import to_device  # noqa: E402
from rc_snn.pipeline.export import export_model  # noqa: E402
from rc_snn.models import ALIFRSNN  # noqa: E402

NMNIST_SMALL = ROOT.parent / "shared" / "data" / "nmnist-small"


def load_frames(n_samples: int, bin_ms: float):
    if (NMNIST_SMALL / "NMNIST" / "Train").is_dir():
        from rc_snn.data import load_dataset

        dataset, info = load_dataset("nmnist", "train", data_dir=NMNIST_SMALL, bin_ms=bin_ms, limit=n_samples)
        frames = np.stack([dataset[i][0].numpy() for i in range(len(dataset))])
        if frames.max() > 255:
            raise ValueError(f"expected at most 255 events per bin; got {frames.max()}")
        labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
        return frames.astype(np.uint8), labels, f"nmnist-small train, {bin_ms} ms bins"
    rng = np.random.default_rng(0)
    n_steps = int(round(300 / bin_ms))
    rate = 4100 / (300 / bin_ms) / 2312  # about 4,100 events per 300 ms recording
    frames = (rng.random((n_samples, n_steps, 2312)) < rate).astype(np.uint8)
    return frames, rng.integers(0, 10, n_samples), "random sparse frames (nmnist-small absent)"


def run_frames(run_dir, split: str, n_samples: int):
    """The trained run's own split, binned and encoded as it was trained."""
    from rc_snn.training.run import load_run, load_split

    config = load_run(run_dir).config
    dataset, info = load_split(config, split, n_samples, progress=False)
    frames = np.stack([np.asarray(dataset[i][0]) for i in range(len(dataset))])
    labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    return frames, labels, f"{config.dataset} {split}, {info.dt_ms} ms bins"


def build_network(run_dir, threshold, bin_ms: float):
    if run_dir:
        from rc_snn.training.run import load_run

        trained = load_run(run_dir)
        model, info = trained.model, trained.info
        threshold = threshold if threshold is not None else trained.config.decision_threshold
        return (export_model(model, decision_threshold=threshold, dt_ms=info.dt_ms),
                f"trained run {run_dir} ({info.dt_ms} ms bins, decision threshold {threshold})")
    threshold = threshold if threshold is not None else 0.9
    torch.manual_seed(0)
    model = ALIFRSNN(2312, 128, 10)
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(4.0)
        model.readout.linear.weight.mul_(3.0)
    return export_model(model, decision_threshold=threshold, dt_ms=bin_ms), "random 2312-128-10 (w_in x4, readout x3)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--bin-ms", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the run's, or 0.9)")
    parser.add_argument("--run", default=None, help="trained run folder to export (default: random network)")
    parser.add_argument("--split", default="test", help="with --run: the split of the run's dataset")
    parser.add_argument("--fixed", action=argparse.BooleanOptionalAction, default=True, help="also run fixed point")
    parser.add_argument("--no-exit", action=argparse.BooleanOptionalAction, default=False,
                        help="also run without early exit (threshold 1.0) for the full-length per-step cost")
    args = parser.parse_args(argv)

    frames, labels, source = (run_frames(args.run, args.split, args.samples) if args.run
                              else load_frames(args.samples, args.bin_ms))
    net, network = build_network(args.run, args.threshold, args.bin_ms)
    print(json.dumps({"frames": source, "shape": list(frames.shape), "network": network}))

    start = time.perf_counter()
    ref = reference.simulate(net, frames.astype(np.float64))
    print(json.dumps({"config": "numpy reference (float, all steps)", "wall_s": round(time.perf_counter() - start, 2),
                      "accuracy": float(np.mean(ref.predictions == labels)),
                      "mean_decision_step": float(ref.decision_steps.mean())}))

    configs = [("float", net)]
    if args.fixed:
        configs.append(("fixed", to_device(net)))
    if args.no_exit:
        from dataclasses import replace

        configs.append(("float, no early exit", replace(net, decision_threshold=1.0)))
    # Lava's first run in a process pays its imports and model compilation: paid here, outside the
    # timings, so that it does not land on whichever mode runs first.
    simulate.evaluate(net, frames[:2], labels[:2], batch_size=2, progress=False)
    comparisons = []
    for name, network_ir in configs:
        runs = {}
        for stream in (True, False):
            evaluation = simulate.evaluate(network_ir, frames, labels, batch_size=args.batch_size, stream=stream,
                                           progress=False)
            runs[stream] = evaluation
            report = evaluation.to_json()
            n_runs = 1 if stream else -(-len(labels) // args.batch_size)
            summary = {key: report[key] for key in ("n_samples", "accuracy", "mean_decision_step", "lava_steps",
                                                     "max_lava_steps", "build_s", "run_s", "read_s", "wall_s",
                                                     "samples_per_s", "lava_steps_per_s")}
            summary = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary.items()}
            summary.update(config=f"{name}, {'streamed' if stream else 'batches'}", batch_size=args.batch_size,
                           startup_s_per_run=round(report["build_s"] / n_runs, 3),
                           ms_per_lava_step=round(1000 * report["run_s"] / report["lava_steps"], 2))
            if name == "float":
                summary["decisions_equal_reference"] = bool(
                    np.array_equal(evaluation.decision_steps, ref.decision_steps)
                    and np.array_equal(evaluation.predictions, ref.predictions))
            if name == "fixed":
                summary["prediction_agreement_with_float"] = float(np.mean(evaluation.predictions == ref.predictions))
            print(json.dumps(summary), flush=True)
        streamed, batched = runs[True], runs[False]
        comparisons.append({
            "config": name, "samples": int(len(labels)), "slots": args.batch_size,
            "same_predictions": float(np.mean(streamed.predictions == batched.predictions)),
            "same_decision_steps": float(np.mean(streamed.decision_steps == batched.decision_steps)),
            "same_counts": streamed.counts == batched.counts,
            "lava_steps_streamed": streamed.lava_steps, "lava_steps_batches": batched.lava_steps,
            "max_lava_steps": batched.max_lava_steps,
            "steps_ratio_X_over_Y": round(streamed.lava_steps / batched.max_lava_steps, 3),
            "samples_per_s_streamed": round(streamed.n_samples / streamed.wall_s, 2),
            "samples_per_s_batches": round(batched.n_samples / batched.wall_s, 2),
            "speedup": round(batched.wall_s / streamed.wall_s, 2),
        })
    print("\nstreamed against batches, measured in this run:")
    for comparison in comparisons:
        print(json.dumps(comparison))


if __name__ == "__main__":
    main()
