"""The main job end to end: train ALIF and LSTM with rank coding, run the ALIF network in Lava, compare energy.

Stages (each shows progress; a second run reuses finished stages unless ``fresh``):

1. train the ALIF network and the LSTM baseline with the rank-coded loss (``rc_snn.train``;
   a finished run is loaded, an interrupted one resumes);
2. export the ALIF network to the plain-data network file (``rc_snn.export``);
3. run test samples through Lava, floating and fixed point, with early exit, and check agreement
   with PyTorch (``rc_snn.lava``; results kept in ``lava-*.json``);
4. count operations and energy of every model and write the report (``rc_snn.compare``).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .config import TrainConfig, write_json_atomic


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("runs/demo")
    dataset: str = "nmnist-sim"
    data_dir: Optional[str] = None
    download: bool = False
    epochs: int = 10
    hidden: int = 128
    threshold: float = 0.9
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    lava_samples: int = 500  # the whole nmnist-sim test split: Lava and PyTorch rows count the same samples
    fresh: bool = False
    progress: bool = True


def training_configs(options: DemoOptions) -> dict:
    """The two runs of the demo: same data, size and decision rule; the LSTM gets its usual larger rate."""
    base = TrainConfig(dataset=options.dataset, data_dir=options.data_dir, download=options.download,
                       epochs=options.epochs, hidden=options.hidden, threshold=options.threshold, loss="rank",
                       limit_train=options.limit_train, limit_val=options.limit_test)
    return {"alif-rank": base.replace(model="alif"), "lstm-rank": base.replace(model="lstm", lr=5e-3)}


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main(options: DemoOptions) -> Path:
    """Run every stage; returns the path of ``report.md``."""
    from deploy.counting import count_snn
    from deploy.ir import load_network
    from deploy.report import ModelResult, load_report, summary_rows, write_report

    from .cli import print_summary
    from .compare import analyse_run
    from .export import export_to_file
    from .lava import format_lava, lava_versus_pytorch
    from .train import load_run, train

    out = Path(options.out)
    if options.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    configs = training_configs(options)

    for number, (name, config) in enumerate(configs.items(), start=1):
        stage(f"{number}/5 training {name} on {config.dataset} ({config.epochs} epochs, hidden {config.hidden})")
        train(config, out / name, progress=options.progress)

    stage("3/5 exporting the ALIF network to the network file")
    alif_config, alif_model, info = load_run(out / "alif-rank")
    network_path = export_to_file(alif_model, out / "alif-rank" / "network.npz",
                                  decision_threshold=alif_config.threshold, dt_ms=info.dt_ms)
    network = load_network(network_path)
    print(f"written: {network_path}")

    stage(f"4/5 running {options.lava_samples} test samples as Lava processes (floating and fixed point)")
    lava_results, lava_summaries = [], {}
    for fixed_point in (False, True):
        label = "fixed point" if fixed_point else "floating point"
        summary = lava_versus_pytorch(out / "alif-rank", samples=options.lava_samples, fixed_point=fixed_point,
                                      network=network, progress=options.progress)
        lava = summary.pop("evaluation")
        lava_summaries[label] = summary
        print(format_lava(summary), flush=True)
        lava_results.append(ModelResult(
            name=f"ALIF rank coding, Lava {label}", kind="snn", accuracy=lava.accuracy,
            decision_steps=np.asarray(lava.decision_steps), counts=count_snn(network, lava.activities),
            dt_ms=info.dt_ms or 1.0, source=f"lava {label}, {lava.n_samples} test samples"))
    write_json_atomic(out / "lava.json", lava_summaries)

    stage("5/5 counting operations and energy, writing the report")
    results = [analyse_run(out / name, "test", limit=options.limit_test, progress=options.progress)
               for name in configs]
    paths = write_report(results + lava_results, out / "report")
    print()
    print_summary(summary_rows(load_report(paths["json"])))
    print("\nLava agreement with PyTorch run in float64 (Lava's precision; the PyTorch rows above run in float32,"
          "\nwhere rounding can flip a spike and so a decision): " + ", ".join(
        f"{label} {100 * s['agreement_with_pytorch']:.1f}%" for label, s in lava_summaries.items()))
    print(f"finished in {time.perf_counter() - started:.0f} s")
    print(f"report: {paths['markdown']}")
    return paths["markdown"]
