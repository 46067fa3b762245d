"""Fixed point against floating point on trained networks: accuracy, decisions and agreement per fold.

    python benchmarks/bench_fixed_point.py runs/cv-alif runs/cv-irsnn

Each `rc-snn cv` folder's fold-K run is exported and run through the numpy reference (which
Lava's float and fixed-point processes equal exactly, tests/test_*lava*), in floating point and
in Loihi-style fixed point (``deploy.quantize``), on that fold's held-out recordings.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from deploy import reference
from deploy.quantize import to_device
from rc_snn.pipeline.export import export_model
from rc_snn.training.run import load_run, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv_folders", type=Path, nargs="+", metavar="CV_FOLDER")
    args = parser.parse_args()
    print("| cv folder | fold | float accuracy (%) | fixed accuracy (%) | same prediction (%) | mean t* float | mean t* fixed | saturated |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in args.cv_folders:
        rows = []
        for fold in sorted(folder.glob("fold-*")):
            run = load_run(fold)
            dataset, info = load_split(run.config, "val")
            frames = np.stack([np.asarray(x) for x, _ in dataset]).astype(np.float64)
            labels = np.array([int(y) for _, y in dataset])
            network = export_model(run.model, decision_threshold=run.config.decision_threshold, dt_ms=info.dt_ms)
            runs = [reference.simulate(precision, frames) for precision in (network, to_device(network))]
            row = [100 * np.mean(r.predictions == labels) for r in runs]
            row += [100 * np.mean(runs[0].predictions == runs[1].predictions)]
            row += [r.decision_steps.mean() for r in runs] + [runs[1].saturated]
            rows.append(row)
            print(f"| {folder.name} | {fold.name} | " + " | ".join(f"{v:.4g}" for v in row) + " |", flush=True)
        means = [f"{statistics.fmean(column):.4g} +- {statistics.pstdev(column):.2g}" for column in zip(*rows)]
        print(f"| {folder.name} | mean +- sd | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
