"""The main job end to end: train ALIF and LSTM with rank coding, run the ALIF network in Lava, compare energy.

Each stage hands its result to the next in memory; files are written for the user and for
resuming, never read back to continue. A second run reuses finished training unless ``fresh``.

1. train the ALIF network and the LSTM baseline with the rank-coded loss
   (:func:`rc_snn.training.loop.train`; a finished run is loaded, an interrupted one resumes);
2. export the ALIF network to the plain-data network file (:mod:`rc_snn.pipeline.export`);
3. run test samples through Lava, floating and fixed point, with early exit, and check agreement
   with PyTorch (:mod:`rc_snn.pipeline.lava_parity`; each result written as ``rc-snn lava`` does);
4. count operations and energy of every model and write the report (:mod:`rc_snn.pipeline.compare`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from deploy.files import write_json
from deploy.ir import save_network

from ..training.config import TrainConfig
from ..training.loop import train
from .compare import analyse_run, format_summary, lava_result, write_results
from .export import export_model
from .lava_parity import format_lava, lava_versus_pytorch


@dataclass(frozen=True)
class DemoOptions:
    """The demo's settings; ``rc-snn demo`` has one flag per field.

    Every row of the report counts the same test samples: the first ``min(limit_test,
    lava_samples)`` of the split (``limit_val`` during training is ``limit_test`` too).
    """

    out: Path = Path("runs/demo")
    dataset: str = "nmnist-sim"
    data_dir: Optional[str] = None
    download: bool = False
    epochs: int = 10
    hidden: int = 128
    decision_threshold: float = 0.9
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    lava_samples: int = 500  # the whole nmnist-sim test split
    fresh: bool = False
    progress: bool = True


def training_configs(options: DemoOptions) -> dict:
    """The two runs of the demo: same data, size and decision rule; the LSTM gets its usual larger rate."""
    base = TrainConfig(dataset=options.dataset, data_dir=options.data_dir, download=options.download,
                       epochs=options.epochs, hidden=options.hidden, decision_threshold=options.decision_threshold,
                       loss="rank", limit_train=options.limit_train, limit_val=options.limit_test)
    return {"alif-rank": base.replace(model="alif"), "lstm-rank": base.replace(model="lstm", lr=5e-3)}


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main(options: DemoOptions) -> Path:
    """Run every stage; returns the path of ``report.md``."""
    out = Path(options.out)
    if options.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    runs = {}
    for number, (name, config) in enumerate(training_configs(options).items(), start=1):
        stage(f"{number}/5 training {name} on {config.dataset} ({config.epochs} epochs, hidden {config.hidden})")
        runs[name] = train(config, out / name, progress=options.progress)

    stage("3/5 exporting the ALIF network to the network file")
    alif = runs["alif-rank"]
    network = export_model(alif.model, decision_threshold=alif.config.decision_threshold, dt_ms=alif.info.dt_ms)
    print(f"written: {save_network(network, alif.run_dir / 'network.npz')}")

    samples = options.lava_samples if options.limit_test is None else min(options.limit_test, options.lava_samples)
    stage(f"4/5 running {samples} test samples as Lava processes (floating and fixed point)")
    lava_summaries = []
    for fixed_point in (False, True):
        summary, _ = lava_versus_pytorch(alif, samples=samples, fixed_point=fixed_point,
                                         network=network, progress=options.progress)
        write_json(alif.run_dir / f"lava-{'fixed' if fixed_point else 'float'}-test.json", summary)
        print(format_lava(summary), flush=True)
        lava_summaries.append(summary)

    stage("5/5 counting operations and energy, writing the report")
    results = [analyse_run(run, "test", limit=samples, progress=options.progress) for run in runs.values()]
    data, paths = write_results(results + [lava_result(summary) for summary in lava_summaries], out / "report")
    print()
    print(format_summary(data))
    print("\nLava agreement with PyTorch run in float64 (Lava's precision; the PyTorch rows above run in float32,"
          "\nwhere rounding can flip a spike and so a decision): " + ", ".join(
        f"{'fixed' if s['fixed_point'] else 'floating'} point {100 * s['agreement_with_pytorch']:.1f}%"
        for s in lava_summaries))
    print(f"finished in {time.perf_counter() - started:.0f} s")
    print(f"report: {paths['markdown']}")
    return paths["markdown"]
