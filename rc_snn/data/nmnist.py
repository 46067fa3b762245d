"""N-MNIST (Orchard et al. 2015) through tonic, safe offline, binned to fixed-length frames.

N-MNIST holds the MNIST digits recorded by an ATIS event camera (34x34 pixels, 2 polarities) that
moves in three saccades of about 100 ms each (~300 ms, ~4,100 events per recording). Files are
read with tonic's reader (``tonic.io.read_mnist_file``) into tonic's NMNIST dtype and binned with
tonic's transforms (``Denoise``, ``ToFrame``; see :mod:`rc_snn.data.events` for the frame equation).

Where the data comes from (no code path touches the network unless ``download=True``):

1. ``download=True``: tonic's own ``tonic.datasets.NMNIST(save_to=data_dir, train=...)`` fetches and
   extracts the split into ``data_dir/NMNIST/{Train,Test}`` (needs internet).
2. A full local copy, as tonic leaves it: ``data_dir/NMNIST/Train/<label>/<index>.bin`` and
   ``data_dir/NMNIST/Test/...`` (tonic's zip files may be there too; they are not needed).
3. A partial copy in the same layout, e.g. only some files of ``Train/`` (like
   ``shared/data/nmnist-small``). tonic's ``NMNIST`` refuses this (it wants the zip and >= 10,000
   files) and tries to download; here the folder is read as it is.

``data_dir`` may name the folder that contains ``NMNIST/`` or the ``NMNIST/`` folder itself; when
it is None the default is ``<cache dir>/data`` (where ``download=True`` also puts it).

Splits (deterministic, by N-MNIST's file index, so a file keeps its split as a copy grows):
- ``train``: files of ``Train/`` whose index ``% 10 != 0`` (90 %);
- ``val``: files of ``Train/`` whose index ``% 10 == 0`` (10 %, about 6,000 of the full 60,000);
- ``test``: all of ``Test/``. With no ``Test/`` folder (a partial copy such as nmnist-small),
  ``test`` warns and returns the same held-out ``val`` files: a development figure, not
  N-MNIST's test result.

Bad input: an empty or truncated ``.bin`` (not a whole number of 5-byte events) or events outside
the 34x34 sensor raise ``ValueError`` naming the file; a folder under ``Train/`` or ``Test/`` whose
name is not a digit 0-9 (so no label) is skipped with a warning naming it, never guessed.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from .cache import SparseFrames, cache_key, cached_frames, default_cache_dir, encode_frames
from .events import (DEFAULT_BIN_MS, FIRST_SACCADE_US, NMNIST_DTYPE, NMNIST_SENSOR, NMNIST_WINDOW_MS, PROGRESS_MIN,
                     balanced_first, binning, check_sensor_bounds, download_guard, nmnist_frames)
from .info import DatasetInfo

N_INPUTS = NMNIST_SENSOR[0] * NMNIST_SENSOR[1] * NMNIST_SENSOR[2]  # 2 * 34 * 34 = 2312
SPLITS = ("train", "val", "test")


def _how_to_get(root: Path) -> str:
    return (f"Get N-MNIST with download=True (rc-snn --download) on a machine with internet, or point "
            f"data_dir (--data-dir) to a folder in N-MNIST's layout: NMNIST/Train/<label>/<index>.bin and "
            f"NMNIST/Test/<label>/<index>.bin (the folder containing NMNIST/ or NMNIST/ itself). "
            f"Looked in {root}.")


def default_data_dir(cache_dir=None) -> Path:
    return default_cache_dir(cache_dir) / "data"


def resolve_root(data_dir) -> Path:
    """The ``NMNIST`` folder for ``data_dir`` (the folder holding ``NMNIST/`` or ``NMNIST/`` itself)."""
    data_dir = Path(data_dir).expanduser()
    if (data_dir / "NMNIST").is_dir():
        return data_dir / "NMNIST"
    if (data_dir / "Train").is_dir() or (data_dir / "Test").is_dir():
        return data_dir
    raise FileNotFoundError(f"no N-MNIST folder found: expected {data_dir / 'NMNIST' / 'Train'} "
                            f"(or {data_dir / 'Train'}). " + _how_to_get(data_dir))


def download_nmnist(data_dir, folder: str) -> Path:
    """Fetch ``folder`` ("Train" or "Test") with tonic's own downloader; returns the NMNIST folder."""
    import tonic

    data_dir = Path(data_dir).expanduser()
    with download_guard(data_dir, f"N-MNIST {folder}"):
        tonic.datasets.NMNIST(save_to=str(data_dir), train=(folder == "Train"))
    return data_dir / "NMNIST"


def scan_folder(folder: Path) -> tuple[list[Path], np.ndarray]:
    """``(files, labels)`` of ``folder/<label>/*.bin`` sorted by label then name (tonic's order).

    Sub-folders whose name is not a single digit are skipped with a warning that names them.
    """
    files, labels = [], []
    for child in sorted(folder.iterdir()):
        if not child.is_dir():
            if child.suffix == ".bin":
                warnings.warn(f"skipping {child}: .bin files must sit in a label folder {folder}/<0-9>/",
                              UserWarning, stacklevel=2)
            continue
        if not re.fullmatch(r"[0-9]", child.name):
            warnings.warn(f"skipping folder {child}: its name is not a class label 0-9", UserWarning, stacklevel=2)
            continue
        for path in sorted(child.glob("*.bin")):
            if not path.is_file():
                warnings.warn(f"skipping {path}: a folder, not an N-MNIST recording", UserWarning, stacklevel=2)
                continue
            files.append(path)
            labels.append(int(child.name))
    return files, np.asarray(labels, dtype=np.int64)


def file_index(path: Path) -> int:
    """N-MNIST's sample number from ``<index>.bin``; a stable hash for other names."""
    return int(path.stem) if path.stem.isdigit() else zlib.crc32(path.name.encode())


def is_validation(path: Path, folds: int = 10, fold: int = 0) -> bool:
    """Whether a Train/ file is held out: its index is ``fold`` modulo ``folds`` (by default a tenth)."""
    return file_index(path) % folds == fold


def split_files(root: Path, split: str, folds: int = 10, fold: int = 0) -> tuple[list[Path], np.ndarray, str]:
    """``(files, labels, description)`` of ``split`` under the NMNIST folder ``root``.

    Without a Test/ folder, ``val`` (and ``test``) are the Train/ files whose index is ``fold``
    modulo ``folds`` and ``train`` the others: ``folds`` runs with ``fold = 0 .. folds - 1``
    validate on disjoint parts that cover every file (K-fold cross-validation).
    """
    if not (isinstance(folds, int) and isinstance(fold, int) and folds >= 2 and 0 <= fold < folds):
        raise ValueError(f"expected folds >= 2 and 0 <= fold < folds; got folds={folds!r}, fold={fold!r}")
    if split == "test" and (root / "Test").is_dir():
        files, labels = scan_folder(root / "Test")
        description = "Test/"
    else:
        train_dir = root / "Train"
        if not train_dir.is_dir():
            raise FileNotFoundError(f"N-MNIST split {split!r} needs {train_dir}. " + _how_to_get(root))
        files, labels = scan_folder(train_dir)
        if split == "test":
            warnings.warn(f"{root} has no Test/ folder: split 'test' returns the held-out validation part of "
                          f"Train/ (file index % {folds} == {fold}), not N-MNIST's test set", UserWarning, stacklevel=3)
        keep_val = split in ("val", "test")
        chosen = [i for i, path in enumerate(files) if is_validation(path, folds, fold) == keep_val]
        files = [files[i] for i in chosen]
        labels = labels[chosen]
        description = f"Train/ index % {folds} {'==' if keep_val else '!='} {fold}"
    if not files and description != "Test/" and scan_folder(root / "Train")[0]:
        raise ValueError(f"split {split!r} of {root / 'Train'} is empty under the fold rule ({description}): no file "
                         f"index falls there; choose fewer folds or another fold")
    if not files:
        folder = root / ("Test" if description == "Test/" else "Train")
        raise FileNotFoundError(f"no N-MNIST recordings for split {split!r} in {folder} "
                                f"(expected {folder}/<label 0-9>/<index>.bin). " + _how_to_get(root))
    return files, labels, description


def read_events(path) -> np.ndarray:
    """Events of one N-MNIST ``.bin`` as tonic's NMNIST structured array, checked; ValueError names the file."""
    from tonic.io import read_mnist_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: expected an N-MNIST .bin recording; found {'a folder' if path.is_dir() else 'nothing'}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: empty file (N-MNIST .bin files hold 5-byte events); delete or re-download it")
    if size % 5:
        raise ValueError(f"{path}: {size} bytes is not a whole number of 5-byte events (truncated?); "
                         f"delete or re-download it")
    events = read_mnist_file(str(path), dtype=NMNIST_DTYPE)
    check_sensor_bounds(events, NMNIST_SENSOR, str(path))
    if len(events) > 1 and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


def _fingerprint(files: list[Path], labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for path, label in zip(files, labels):
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{label}\n".encode())
    return digest.hexdigest()


def nmnist_dataset(split: str, *, data_dir=None, download: bool = False, cache_dir=None,
                   bin_ms: Optional[float] = None, n_bins: Optional[int] = None, first_saccade: bool = False,
                   denoise_us: Optional[float] = None, limit: Optional[int] = None, folds: int = 10, fold: int = 0,
                   progress: Optional[bool] = None) -> tuple[SparseFrames, DatasetInfo]:
    """N-MNIST ``split`` as count frames ``x [n_steps, 2312]`` (see the module docstring for sources and splits).

    The window is 300 ms (100 ms with ``first_saccade``, which keeps events with t < 100 ms as
    tonic's ``first_saccade_only`` does); ``n_steps = round(window / bin_ms)`` (default bin 5 ms) or
    ``n_bins``. Frames are cached under ``<cache dir>/frames`` keyed by every parameter.
    """
    if split not in SPLITS:
        raise ValueError(f"expected split in ('train', 'val', 'test'); got {split!r}")
    window_ms = FIRST_SACCADE_US / 1000.0 if first_saccade else NMNIST_WINDOW_MS
    bin_us, n_steps = binning(bin_ms, n_bins, window_ms, DEFAULT_BIN_MS)
    if denoise_us is not None and not denoise_us > 0:
        raise ValueError(f"expected denoise_us > 0 or None; got {denoise_us}")
    data_dir = default_data_dir(cache_dir) if data_dir is None else Path(data_dir).expanduser()
    if download:
        folder = "Test" if split == "test" else "Train"
        root = download_nmnist(data_dir, folder)
    else:
        root = resolve_root(data_dir)
    files, labels, description = split_files(root, split, folds, fold)
    chosen = balanced_first(labels, limit)
    files = [files[i] for i in chosen]
    labels = labels[chosen]

    meta = {"dataset": "nmnist", "split": split, "files": description, "n_files": len(files),
            "fingerprint": _fingerprint(files, labels), "bin_us": bin_us, "n_steps": n_steps,
            "window_ms": window_ms, "first_saccade": bool(first_saccade), "denoise_us": denoise_us,
            "sensor": list(NMNIST_SENSOR)}
    path = default_cache_dir(cache_dir) / "frames" / f"nmnist-{split}-{cache_key(meta)}.npz"

    def build():
        encoded = []
        show = progress if progress is not None else len(files) > PROGRESS_MIN
        for file in tqdm(files, desc=f"binning N-MNIST {split}", unit="file", disable=not show):
            encoded.append(encode_frames(nmnist_frames(read_events(file), bin_us, n_steps, first_saccade, denoise_us)))
        return encoded, labels

    dataset = cached_frames(path, meta, n_steps, N_INPUTS, build)
    info = DatasetInfo(name="nmnist", n_inputs=N_INPUTS, n_classes=10, n_steps=n_steps, dt_ms=bin_us / 1000.0,
                       sensor=(NMNIST_SENSOR[2], NMNIST_SENSOR[1], NMNIST_SENSOR[0]))
    return dataset, info
