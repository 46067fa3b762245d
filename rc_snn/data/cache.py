"""On-disk cache of binned event frames: sparse, keyed by every parameter, written atomically.

A split of ``N`` samples binned to ``[n_steps, n_inputs]`` count frames is stored as one ``.npz``:

    offsets   int64  [N + 1]      sample i owns entries offsets[i]:offsets[i+1]
    flat      int32  [nnz]        position in the flattened frame, step * n_inputs + feature
    counts    uint16 [nnz]        events in that bin (> 0)
    labels    int64  [N]
    meta      str    JSON of the parameters that produced the file (checked on load)

N-MNIST-like frames are > 97 % zeros, so 5,000 samples x 60 x 2,312 (2.8 GB as dense float32) take
about 30 MB. Items are densified to float32 one at a time (:class:`SparseFrames`), or a training
batch at once, moved by the augmentation on the way (:class:`SparseBatch`).

The file name carries a hash of the parameters (:func:`cache_key`), so changing the binning, the
denoise filter, the window or the source files never reuses a stale file; the JSON inside is
compared again on load, and a file that cannot be read or fails the checks is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from deploy.files import check_writable, write_atomic

FORMAT_VERSION = 1
_COUNT_MAX = np.iinfo(np.uint16).max


def default_cache_dir(cache_dir=None) -> Path:
    """``cache_dir`` if given, else ``$RC_SNN_CACHE``, else ``~/.cache/rc-snn``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RC_SNN_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/rc-snn").expanduser()


def check_cache_writable(path: Path) -> None:
    """Fail before minutes of binning or simulation, not after, when the cache cannot be written."""
    try:
        check_writable(Path(path).parent)
    except OSError as error:
        raise _cache_error(path, error) from None


def _cache_error(path: Path, error: OSError) -> OSError:
    return OSError(f"cannot write the dataset cache {path} ({error.strerror or error}); point RC_SNN_CACHE to a "
                   "writable folder")


def cache_key(params: dict) -> str:
    """A short stable hash of a JSON-serialisable parameter dict (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` as ``.npz`` through :func:`deploy.files.write_atomic`."""

    def write(temp: Path) -> None:
        with temp.open("wb") as stream:  # a file object: given a name, np.savez would append ".npz"
            np.savez(stream, **arrays)

    try:
        write_atomic(path, write)
    except OSError as error:
        raise _cache_error(path, error) from None


def load_npz_checked(path: Path, required: Sequence[str]) -> Optional[dict]:
    """All arrays of ``path`` as a dict, or None (with a warning) when the file is unreadable or incomplete."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        warnings.warn(f"cache file {path} is unreadable ({error!r}); rebuilding it", RuntimeWarning, stacklevel=3)
        return None
    missing = [name for name in required if name not in arrays]
    if missing:
        warnings.warn(f"cache file {path} lacks {missing}; rebuilding it", RuntimeWarning, stacklevel=3)
        return None
    return arrays


class SparseBatch(NamedTuple):
    """Items of :class:`SparseFrames` not yet densified: the nonzero bins of ``shape[0]`` samples, as
    1-D tensors of each bin's ``sample`` (position in the batch), ``step``, ``feature`` and ``count``."""

    sample: torch.Tensor
    step: torch.Tensor
    feature: torch.Tensor
    count: torch.Tensor
    shape: tuple  # [batch, n_steps, n_inputs]

    def dense(self, targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Frames ``[batch, n_steps, n_inputs]``; with ``targets [batch, n_inputs]``, sample ``b``'s counts
        of feature ``f`` go to feature ``targets[b, f]`` (dropped where -1): the move of
        :func:`rc_snn.data.augment.move`, done on the nonzero bins only (3 % of a frame), in one
        scatter-add (counts are whole numbers: exact in any order)."""
        batch, n_steps, n_inputs = self.shape
        sample, step, feature, count = self.sample, self.step, self.feature, self.count
        if targets is not None:
            feature = targets[sample, feature]
            kept = feature >= 0
            sample, step, feature, count = sample[kept], step[kept], feature[kept], count[kept]
        frames = torch.zeros(batch * n_steps * n_inputs, dtype=torch.float32)
        frames.index_add_(0, (sample * n_steps + step) * n_inputs + feature, count)
        return frames.view(batch, n_steps, n_inputs)


class SparseFrames(Dataset):
    """Count frames stored sparsely; item ``i`` is ``(x float32 [n_steps, n_inputs], label int)``."""

    def __init__(self, offsets: np.ndarray, flat: np.ndarray, counts: np.ndarray, labels: np.ndarray,
                 n_steps: int, n_inputs: int):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.flat = torch.from_numpy(np.asarray(flat, dtype=np.int64))
        self.counts = torch.from_numpy(np.asarray(counts).astype(np.float32))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.n_steps = int(n_steps)
        self.n_inputs = int(n_inputs)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        start, stop = self.offsets[index], self.offsets[index + 1]
        x = torch.zeros(self.n_steps * self.n_inputs, dtype=torch.float32)
        x[self.flat[start:stop]] = self.counts[start:stop]
        return x.view(self.n_steps, self.n_inputs), int(self.labels[index])

    def batch(self, indices: Sequence[int]) -> tuple:
        """``(SparseBatch, labels [batch])`` of the items ``indices``, for :meth:`SparseBatch.dense`."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and not (0 <= indices.min() and indices.max() < len(self)):
            raise IndexError(f"indices out of range for {len(self)} samples")
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        entries = torch.from_numpy(np.concatenate([np.arange(start, stop) for start, stop in zip(starts, stops)]
                                                  or [np.zeros(0, np.int64)]))
        flat = self.flat[entries]
        sample = torch.repeat_interleave(torch.arange(len(indices)), torch.from_numpy(stops - starts))
        sparse = SparseBatch(sample, flat // self.n_inputs, flat % self.n_inputs, self.counts[entries],
                             (len(indices), self.n_steps, self.n_inputs))
        return sparse, torch.from_numpy(self.labels[indices])

    def dense(self, index: int) -> np.ndarray:
        """Item ``index`` as an integer array ``[n_steps, n_inputs]`` (for inspection and tests)."""
        return self[index][0].numpy().astype(np.int64)


def encode_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(flat int32, counts uint16)`` of the nonzero entries of one integer frame array."""
    flat_frames = np.asarray(frames).reshape(-1)
    if flat_frames.size and flat_frames.min() < 0:
        raise ValueError(f"expected non-negative event counts; got minimum {flat_frames.min()}")
    nonzero = np.flatnonzero(flat_frames)
    counts = flat_frames[nonzero]
    if counts.size and counts.max() > _COUNT_MAX:
        raise ValueError(f"expected at most {_COUNT_MAX} events per bin; got {counts.max()}")
    return nonzero.astype(np.int32), counts.astype(np.uint16)


def _check_arrays(arrays: dict, meta: dict, n_steps: int, n_inputs: int) -> Optional[str]:
    """Why the cached arrays cannot be trusted, or None."""
    try:
        stored = json.loads(str(arrays["meta"]))
    except (ValueError, TypeError):
        return "its metadata is not JSON"
    if stored != json.loads(json.dumps(meta, default=str)):
        return "its parameters differ from the ones asked for"
    offsets, flat, counts, labels = arrays["offsets"], arrays["flat"], arrays["counts"], arrays["labels"]
    if offsets.ndim != 1 or len(offsets) != len(labels) + 1 or offsets[0] != 0 or offsets[-1] != len(flat):
        return "its offsets do not match its entries"
    if len(flat) != len(counts) or np.any(np.diff(offsets) < 0):
        return "its offsets or entry arrays are inconsistent"
    if len(flat) and (flat.min() < 0 or flat.max() >= n_steps * n_inputs):
        return "it holds frame positions outside [n_steps * n_inputs]"
    return None


def cached_frames(path: Path, meta: dict, n_steps: int, n_inputs: int,
                  build: Callable[[], tuple[list, np.ndarray]]) -> SparseFrames:
    """Load ``path`` if it holds frames for exactly ``meta``; else call ``build`` and write it.

    ``build()`` returns ``(encoded, labels)`` with ``encoded`` a list of ``(flat, counts)`` pairs from
    :func:`encode_frames`.
    """
    path = Path(path)
    meta = dict(meta, format_version=FORMAT_VERSION)
    arrays = load_npz_checked(path, ("offsets", "flat", "counts", "labels", "meta"))
    if arrays is not None:
        problem = _check_arrays(arrays, meta, n_steps, n_inputs)
        if problem is None:
            return SparseFrames(arrays["offsets"], arrays["flat"], arrays["counts"], arrays["labels"], n_steps, n_inputs)
        warnings.warn(f"cache file {path} is not trusted ({problem}); rebuilding it", RuntimeWarning, stacklevel=2)
    check_cache_writable(path)
    encoded, labels = build()
    lengths = np.array([len(flat) for flat, _ in encoded], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate([f for f, _ in encoded]) if encoded else np.zeros(0, np.int32)
    counts = np.concatenate([c for _, c in encoded]) if encoded else np.zeros(0, np.uint16)
    labels = np.asarray(labels, dtype=np.int64)
    save_npz_atomic(path, offsets=offsets, flat=flat.astype(np.int32), counts=counts.astype(np.uint16),
                    labels=labels, meta=np.array(json.dumps(meta, sort_keys=True, default=str)))
    return SparseFrames(offsets, flat, counts, labels, n_steps, n_inputs)
