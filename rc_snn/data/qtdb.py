"""qtdb: the ECG streaming task of Yin, Corradi and Bohte (2020; Nature Machine Intelligence 2021).

The QT Database's ECG recordings (PhysioNet; Laguna et al. 1997) as the authors encoded them
(byin-cwi/Efficient-spiking-networks, ``QTDB_train.mat`` and ``QTDB_test.mat``, read with
``scipy.io.loadmat``): ``x`` int16 ``[N, 1301, 4]``, level-crossing spikes of two leads (+1, 0 or
-1 per channel and step), and ``y`` ``[N, 1301, 6]``, the waveform segment of each step (P, PQ,
QR, RS, ST, TP) one-hot. A step whose one-hot row is empty is labelled 0, as the authors' script
does (``argmax``), so that accuracies compare with theirs.

The task is streaming (a per-step task, ``DatasetInfo.per_step``): a label at every step, judged
from step :data:`BURN_IN` on (the script's ``sub_seq_length``). Items are ``(x float32 [1301, 8],
y int64 [1301])``: each of the 4 channels' level crossings as two event channels, upward (+1) in
channels 0-3 and downward (-1) in 4-7, as a DVS sensor's ON and OFF polarities, so the inputs are
binary events that Lava and the counting take as they are. The authors feed the 4 signed values; a
network of theirs with input weights ``W`` is this one with ``[W, -W]``. ``dt_ms`` is 4 ms, the
database's 250 Hz sampling (the authors' detection tolerance is given at 250 samples per second).

Splits: ``test`` is ``QTDB_test.mat`` (141 recordings) when ``data_dir`` holds it; ``train`` and
``val`` split ``QTDB_train.mat`` (618) by recording index modulo ``folds`` (``val``: index ``fold``
modulo ``folds``; by default a tenth), so K folds cover every recording once (cross-validation).
Without the test file ``test`` warns and returns the held-out ``val`` part, as for a partial
N-MNIST copy.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .info import DatasetInfo

FILES = {"train": "QTDB_train.mat", "test": "QTDB_test.mat"}
#: Steps at the start of each recording that are not judged (the authors' ``sub_seq_length``).
BURN_IN = 10
N_CLASSES = 6
DT_MS = 4.0


class StepLabelled(Dataset):
    """Items ``(x[i] float32 [T, F], y[i] int64 [T])``: one label per step."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if x.shape[:2] != y.shape:
            raise ValueError(f"expected one label per step; got inputs {tuple(x.shape)} and labels {tuple(y.shape)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


def read_qtdb(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(x float32 [N, T, 8], y int64 [N, T])`` of one of the authors' ``.mat`` files, checked: the
    signed level crossings as upward and downward event channels (module docstring)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as error:
        raise ValueError(f"expected a MATLAB file with arrays x and y at {path}; could not read it: {error}") from None
    for key in ("x", "y"):
        if key not in data:
            raise ValueError(f"expected array {key!r} in {path} (the authors' QTDB encoding); found "
                             f"{sorted(k for k in data if not k.startswith('__'))}")
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    if x.ndim != 3 or x.shape[2] != 4 or y.shape != x.shape[:2] + (N_CLASSES,):
        raise ValueError(f"expected x [recordings, steps, 4] and y [recordings, steps, {N_CLASSES}] in {path}; got "
                         f"{x.shape} and {y.shape}")
    if not np.isin(x, (-1, 0, 1)).all() or not np.isin(y, (0, 1)).all():
        raise ValueError(f"expected level-crossing spikes -1/0/1 in x and one-hot labels 0/1 in y in {path}")
    events = np.concatenate([x > 0, x < 0], axis=2).astype(np.float32)
    return events, y.argmax(axis=2).astype(np.int64)


def _file(data_dir, split_file: str) -> Path:
    if data_dir is None:
        raise ValueError("dataset 'qtdb' needs --data-dir: the folder holding QTDB_train.mat (and QTDB_test.mat), "
                         "from byin-cwi/Efficient-spiking-networks' data/ folder")
    return Path(data_dir).expanduser() / split_file


def qtdb_dataset(split: str, *, data_dir=None, limit: Optional[int] = None, folds: int = 10, fold: int = 0
                 ) -> tuple[StepLabelled, DatasetInfo]:
    """qtdb ``split`` (module docstring): items ``(x [1301, 8], y [1301])``."""
    if not (isinstance(folds, int) and folds >= 2 and isinstance(fold, int) and 0 <= fold < folds):
        raise ValueError(f"expected folds >= 2 and 0 <= fold < folds; got {folds}, {fold}")
    test_file = _file(data_dir, FILES["test"])
    if split == "test" and test_file.is_file():
        x, y = read_qtdb(test_file)
    else:
        train_file = _file(data_dir, FILES["train"])
        if not train_file.is_file():
            raise FileNotFoundError(f"no {FILES['train']} in {train_file.parent}: --data-dir must hold the authors' "
                                    f"{FILES['train']} (and {FILES['test']})")
        if split == "test":
            warnings.warn(f"no {FILES['test']} in {test_file.parent}: 'test' is the held-out validation fold of "
                          f"{FILES['train']} (a development figure, not the test split)", UserWarning, stacklevel=3)
        x, y = read_qtdb(train_file)
        held_out = np.arange(len(x)) % folds == fold
        keep = held_out if split in ("val", "test") else ~held_out
        x, y = x[keep], y[keep]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    info = DatasetInfo(name="qtdb", n_inputs=x.shape[2], n_classes=N_CLASSES, n_steps=x.shape[1], dt_ms=DT_MS,
                       per_step=True, burn_in=BURN_IN)
    return StepLabelled(torch.from_numpy(x), torch.from_numpy(y)), info
