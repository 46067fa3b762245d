"""The main job end to end: train spiking networks and baselines with rank coding, run the spiking
networks in Lava, compare energy. By default the ALIF network and the LSTM (``models``, any of
``alif, irsnn, lstm, gru``).

Each stage hands its result to the next in memory; files are written for the user and for
resuming, never read back to continue. A second run reuses finished training unless ``fresh``,
which deletes only the demo's own run folders and report (never other files in ``out``). The
``out`` folder is claimed and locked (``deploy.files``): a folder holding other files is refused,
and so is a second demo into the same folder.

1. train every model with the rank-coded loss and the real N-MNIST recipe's settings
   (:func:`rc_snn.training.config.recipe`: window, augmentation, decision threshold, each model's
   size and learning rate) on ``dataset`` for ``epochs``
   (:func:`rc_snn.training.loop.train`; a finished run is loaded, an interrupted one resumes);
2. export each spiking network to the plain-data network file (:mod:`rc_snn.pipeline.export`);
3. run test samples through Lava with early exit, floating and fixed point, and check agreement with PyTorch (:mod:`rc_snn.pipeline.lava_parity`; each result written as
   ``rc-snn lava`` does);
4. count operations and energy of every model and write the report (:mod:`rc_snn.pipeline.compare`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from deploy.files import FolderLock, claim_folder, owned_folder, write_json
from deploy.ir import save_network
from deploy.report import is_report_folder

from ..training.config import MODELS, SPIKING_MODELS, recipe
from ..training.loop import train
from ..training.run import is_run_folder
from .compare import analyse_run, format_summary, lava_result, write_results
from .export import export_model
from .lava_parity import format_lava, lava_versus_pytorch


@dataclass(frozen=True)
class DemoOptions:
    """The demo's settings; ``rc-snn demo`` has one flag per field.

    Every row of the report counts the same test samples: the first ``min(limit_test,
    lava_samples)`` of the split (``limit_val`` during training is ``limit_test`` too).
    ``hidden`` and ``decision_threshold``, when given, replace the recipe's for every model.
    """

    out: Path = Path("runs/demo")
    models: str = "alif,lstm"
    dataset: str = "nmnist-sim"
    data_dir: Optional[str] = None
    download: bool = False
    epochs: int = 30  # long enough that the ALIF network decides early (step 8 of 20; 12 after 10 epochs)
    hidden: Optional[int] = None
    decision_threshold: Optional[float] = None
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    lava_samples: int = 500  # the whole nmnist-sim test split
    fresh: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        names = self.model_names
        if not names or len(set(names)) != len(names) or not set(names) <= set(MODELS):
            raise ValueError(f"expected --models as a comma-separated list of distinct models among {MODELS}; "
                             f"got {self.models!r}")

    @property
    def model_names(self) -> list:
        return [name.strip() for name in str(self.models).split(",") if name.strip()]


def training_configs(options: DemoOptions) -> dict:
    """The demo's runs, one per model: the recipe's, on the demo's data and number of epochs."""
    changes = dict(dataset=options.dataset, data_dir=options.data_dir, download=options.download,
                   epochs=options.epochs, limit_train=options.limit_train, limit_val=options.limit_test)
    changes.update({name: getattr(options, name) for name in ("hidden", "decision_threshold")
                    if getattr(options, name) is not None})
    return {f"{model}-rank": recipe(model).replace(**changes) for model in options.model_names}


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


REPORT_FOLDER = "report"


def remove_own_folders(out: Path, run_names) -> list:
    """``fresh``: delete the demo's run folders and report in ``out`` (each only if rc-snn wrote it)."""
    removed = []
    for name in run_names:
        folder = out / name
        if folder.is_dir() and (owned_folder(folder, "run") or is_run_folder(folder)):
            shutil.rmtree(folder)
            removed.append(folder)
    report = out / REPORT_FOLDER
    if report.is_dir() and is_report_folder(report):
        shutil.rmtree(report)
        removed.append(report)
    return removed


def is_demo_folder(folder: Path) -> bool:
    """A folder holding only what the demo writes: run folders and its report."""
    return all(entry.is_dir() and (is_run_folder(entry) or owned_folder(entry, "run") or entry.name == REPORT_FOLDER)
               for entry in folder.iterdir())


def main(options: DemoOptions) -> Path:
    """Run every stage; returns the path of ``report.md``."""
    out = claim_folder(options.out, "demo", also_ours=is_demo_folder)
    with FolderLock(out):
        return _main(options, out)


def _main(options: DemoOptions, out: Path) -> Path:
    configs = training_configs(options)
    if options.fresh:
        for folder in remove_own_folders(out, configs):
            print(f"removed (--fresh): {folder}")
    started = time.perf_counter()

    runs = {}
    n_stages = len(configs) + 3
    for number, (name, config) in enumerate(configs.items(), start=1):
        stage(f"{number}/{n_stages} training {name} on {config.dataset} ({config.epochs} epochs, hidden {config.hidden})")
        runs[name] = train(config, out / name, progress=options.progress)

    spiking = {name: run for name, run in runs.items() if run.config.model in SPIKING_MODELS}
    stage(f"{len(configs) + 1}/{n_stages} exporting the spiking networks to network files")
    networks = {}
    for name, run in spiking.items():
        networks[name] = export_model(run.model, decision_threshold=run.config.decision_threshold,
                                      dt_ms=run.info.dt_ms)
        print(f"written: {save_network(networks[name], run.run_dir / 'network.npz')}")

    samples = options.lava_samples if options.limit_test is None else min(options.limit_test, options.lava_samples)
    stage(f"{len(configs) + 2}/{n_stages} running {samples} test samples as Lava processes "
          "(floating and fixed point)")
    lava_summaries = []
    for name, run in spiking.items():
        for fixed_point in (False, True):
            summary, _ = lava_versus_pytorch(run, samples=samples, fixed_point=fixed_point,
                                             network=networks[name], progress=options.progress)
            write_json(run.run_dir / f"lava-{'fixed' if fixed_point else 'float'}-test.json", summary)
            print(format_lava(summary), flush=True)
            lava_summaries.append(summary)

    stage(f"{n_stages}/{n_stages} counting operations and energy, writing the report")
    results = [analyse_run(run, "test", limit=samples, progress=options.progress) for run in runs.values()]
    data, paths = write_results(results + [lava_result(summary) for summary in lava_summaries], out / REPORT_FOLDER)
    print()
    print(format_summary(data))
    print("\nLava agreement with PyTorch run in float64 (Lava's precision; the PyTorch rows above run in float32,"
          "\nwhere rounding can flip a spike and so a decision): " + ", ".join(
        f"{s['name']} {100 * s['agreement_with_pytorch']:.1f}%" for s in lava_summaries))
    print(f"finished in {time.perf_counter() - started:.0f} s")
    print(f"report: {paths['markdown']}")
    return paths["markdown"]
