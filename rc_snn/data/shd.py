"""Spiking Heidelberg Digits (Cramer et al. 2020) through tonic, safe offline, binned to fixed-length frames.

SHD holds spoken digits 0-9 in English and German (20 classes) as spikes of 700 cochlear channels.
The HDF5 files (``shd_train.h5``, ``shd_test.h5``) hold ``spikes/times`` (seconds, one ragged array
per sample), ``spikes/units`` (channel 0-699) and ``labels``. A sample is read as tonic's
``HSD.__getitem__`` reads it (tonic's SHD dtype ``t, x, p``; t in microseconds, p = 1) and binned
with tonic's ``ToFrame`` over a fixed 1 s window (see :mod:`rc_snn.data.events`):

    x[k, c] = #{spikes of channel c with k * bin_us <= t < (k + 1) * bin_us},   k < n_steps

default ``bin_ms=10`` (100 steps), ``x [n_steps, 700]`` float32.

Where the data comes from: ``download=True`` delegates to ``tonic.datasets.SHD(save_to=data_dir)``
(internet); otherwise ``shd_{train,test}.h5`` are looked for in ``data_dir/SHD/`` (tonic's layout) or
``data_dir/`` itself, without the network (tonic's own class wants the .zip too and would download).
Splits: ``train`` = samples of ``shd_train.h5`` whose index ``% 10 != 0``, ``val`` = those with
``index % 10 == 0``, ``test`` = ``shd_test.h5``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import tonic
from tqdm.auto import tqdm

from .cache import SparseFrames, cache_key, cached_frames, default_cache_dir, encode_frames
from .events import PROGRESS_MIN, balanced_first, binning, download_guard, events_to_frames
from .info import DatasetInfo

SHD_DTYPE = tonic.datasets.SHD.dtype  # t, x, p (int64)
N_CHANNELS = 700
SENSOR = (N_CHANNELS, 1, 1)
WINDOW_MS = 1000.0
DEFAULT_BIN_MS = 10.0
FILES = {"train": "shd_train.h5", "val": "shd_train.h5", "test": "shd_test.h5"}
REQUIRED = ("spikes/times", "spikes/units", "labels")


def find_file(data_dir, split: str, download: bool = False) -> Path:
    """The HDF5 file of ``split``; FileNotFoundError says where it was expected and how to get it."""
    data_dir = Path(data_dir).expanduser()
    name = FILES[split]
    if download:
        with download_guard(data_dir, f"SHD {name}"):
            tonic.datasets.SHD(save_to=str(data_dir), train=(name == "shd_train.h5"))
        return data_dir / "SHD" / name
    for candidate in (data_dir / "SHD" / name, data_dir / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"SHD file {name} not found: expected {data_dir / 'SHD' / name} (tonic's layout) or {data_dir / name}. "
        f"Get it with download=True (rc-snn --download) on a machine with internet, or unzip {name}.zip from "
        f"the Heidelberg spiking datasets into one of those folders and pass data_dir (--data-dir).")


def read_samples(path: Path, indices: np.ndarray) -> list[np.ndarray]:
    """Samples ``indices`` of an SHD file as tonic SHD-dtype events, checked; ValueError names the file."""
    import h5py

    samples = []
    with h5py.File(path, "r") as file:
        for index in indices:
            times = np.asarray(file["spikes/times"][index], dtype=np.float64)
            units = np.asarray(file["spikes/units"][index])
            if times.shape != units.shape:
                raise ValueError(f"{path}: sample {index} has {times.size} spike times but {units.size} units")
            if units.size and (units.min() < 0 or units.max() >= N_CHANNELS):
                raise ValueError(f"{path}: sample {index} has units outside [0, {N_CHANNELS}): "
                                 f"[{units.min()}, {units.max()}]")
            events = np.empty(times.size, dtype=SHD_DTYPE)
            events["t"], events["x"], events["p"] = times * 1e6, units, 1  # as tonic's HSD.__getitem__
            samples.append(events[np.argsort(events["t"], kind="stable")])
    return samples


def read_labels(path: Path) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            missing = [key for key in REQUIRED if key not in file]
            if missing:
                raise ValueError(f"{path}: not an SHD file, it lacks {missing} (expected {list(REQUIRED)})")
            return np.asarray(file["labels"][()], dtype=np.int64)
    except OSError as error:
        raise ValueError(f"{path}: cannot be read as HDF5 ({error})") from error


def shd_dataset(split: str, *, data_dir=None, download: bool = False, cache_dir=None,
                bin_ms: Optional[float] = None, n_bins: Optional[int] = None, limit: Optional[int] = None,
                progress: Optional[bool] = None) -> tuple[SparseFrames, DatasetInfo]:
    """SHD ``split`` as count frames ``x [n_steps, 700]`` (see the module docstring)."""
    if split not in FILES:
        raise ValueError(f"expected split in {tuple(FILES)}; got {split!r}")
    bin_us, n_steps = binning(bin_ms, n_bins, WINDOW_MS, DEFAULT_BIN_MS)
    data_dir = default_cache_dir(cache_dir) / "data" if data_dir is None else Path(data_dir)
    path = find_file(data_dir, split, download)
    labels = read_labels(path)
    indices = np.arange(len(labels))
    if split != "test":
        indices = indices[(indices % 10 == 0) == (split == "val")]
    chosen = indices[balanced_first(labels[indices], limit)]
    stat = path.stat()
    meta = {"dataset": "shd", "split": split, "file": str(path.resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "limit": limit,
            "indices": hashlib.sha256(chosen.tobytes()).hexdigest()[:16], "bin_us": bin_us, "n_steps": n_steps}
    cache_path = default_cache_dir(cache_dir) / "frames" / f"shd-{split}-{cache_key(meta)}.npz"

    def build():
        show = progress if progress is not None else len(chosen) > PROGRESS_MIN
        encoded = []
        for events in tqdm(read_samples(path, chosen), desc=f"binning SHD {split}", unit="sample", disable=not show):
            encoded.append(encode_frames(events_to_frames(events, SENSOR, bin_us, n_steps)))
        return encoded, labels[chosen]

    dataset = cached_frames(cache_path, meta, n_steps, N_CHANNELS, build)
    n_classes = 20
    info = DatasetInfo(name="shd", n_inputs=N_CHANNELS, n_classes=n_classes, n_steps=n_steps, dt_ms=bin_us / 1000.0)
    return dataset, info
