"""Event streams to fixed-length count frames with tonic's transforms; helpers shared by the loaders.

Events are tonic structured arrays (fields x, y, t, p; t in microseconds). A sample becomes

    frames[k, p, y, x] = #{events e : k * bin_us <= e.t < (k + 1) * bin_us, e.p = p, e.y = y, e.x = x}

for ``k = 0 .. n_steps - 1`` (tonic ``ToFrame`` with a fixed ``time_window`` starting at t = 0), so
every step means the same stretch of time in every sample: events past ``n_steps * bin_us`` are
dropped and a short recording ends in empty frames. The model input is the frame flattened per
step, ``x [n_steps, 2 * 34 * 34]`` float32 (tonic's ``[T, P, H, W]`` order).

``n_bins`` splits the fixed window into that many equal bins (``bin_us = window_us / n_bins``).
tonic's own ``n_time_bins`` stretches each recording's first-to-last event span instead, which
would make step k a different time in each sample; the fixed window keeps ``dt_ms`` exact.
"""

from __future__ import annotations

import shutil
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np
import tonic
import tonic.transforms as T

# tonic's event dtype and sensor for N-MNIST: x, y, t, p as int64, sensor (x=34, y=34, polarities=2).
NMNIST_DTYPE = tonic.datasets.NMNIST.dtype
NMNIST_SENSOR = tonic.datasets.NMNIST.sensor_size
NMNIST_WINDOW_MS = 300.0
FIRST_SACCADE_US = 100_000  # tonic's first_saccade_only cut: events with t < 1e5 us
DEFAULT_BIN_MS = 5.0
PROGRESS_MIN = 300  # the loaders show a progress bar when binning more recordings than this
#: The most steps a binning may give: each sample is a dense [steps, features] float32 tensor
#: (2312 features for N-MNIST: 10,000 steps are 92 MB per sample), so a bin width far below the
#: sensor's microsecond resolution would otherwise ask for terabytes.
MAX_STEPS = 10_000
DOWNLOAD_TIMEOUT_S = 60.0  # a stalled connection fails instead of hanging (tonic's urlopen has none)


def binning(bin_ms: Optional[float], n_bins: Optional[int], window_ms: float,
            default_bin_ms: float) -> tuple[float, int]:
    """``(bin_us, n_steps)`` from either a bin width or a bin count over a ``window_ms`` window."""
    if bin_ms is not None and n_bins is not None:
        raise ValueError(f"expected bin_ms or n_bins, not both; got bin_ms={bin_ms}, n_bins={n_bins}")
    if n_bins is not None:
        if int(n_bins) != n_bins or not 1 <= n_bins <= MAX_STEPS:
            raise ValueError(f"expected n_bins an integer in [1, {MAX_STEPS}]; got {n_bins!r}")
        return window_ms * 1000.0 / int(n_bins), int(n_bins)
    bin_ms = default_bin_ms if bin_ms is None else float(bin_ms)
    if not (bin_ms > 0 and np.isfinite(bin_ms)) or bin_ms > window_ms:
        raise ValueError(f"expected 0 < bin_ms <= {window_ms} (the window in ms); got {bin_ms}")
    if window_ms / bin_ms > MAX_STEPS:
        raise ValueError(f"bin_ms {bin_ms} cuts the {window_ms} ms window into {window_ms / bin_ms:.3g} steps; "
                         f"expected at most {MAX_STEPS} (bin_ms >= {window_ms / MAX_STEPS:g})")
    n_steps = max(1, int(round(window_ms / bin_ms)))
    return bin_ms * 1000.0, n_steps


@contextmanager
def download_guard(folder: Path, what: str):
    """Around a tonic download into ``folder``: a socket timeout, a clear error, and nothing left behind.

    tonic's downloader opens URLs without a timeout, so a network that drops packets would hang
    forever; a failure is raised as ``OSError`` naming what could not be fetched and where, and
    whatever the attempt created under ``folder`` (empty folders, a partial archive) is removed.
    """
    folder = Path(folder)
    existed = set(folder.rglob("*")) | {folder} if folder.exists() else set()
    folder.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    except OSError as error:  # URLError and socket errors are OSErrors
        for path in sorted(set(folder.rglob("*")) | {folder}, key=lambda p: len(p.parts), reverse=True):
            if path in existed:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise OSError(f"could not download {what} into {folder} (no network, or the server did not answer "
                      f"within {DOWNLOAD_TIMEOUT_S:g} s): {error}") from None
    finally:
        socket.setdefaulttimeout(previous)


def events_to_frames(events: np.ndarray, sensor_size: tuple, bin_us: float, n_steps: int,
                     denoise_us: Optional[float] = None) -> np.ndarray:
    """``[n_steps, P, H, W]`` int16 counts of ``events`` (see the module docstring); input not mutated.

    ``denoise_us`` applies tonic's ``Denoise(filter_time=denoise_us)`` first (drops events with no
    neighbour event within 1 pixel and ``denoise_us`` microseconds).
    """
    events = np.array(events, copy=True)
    if denoise_us is not None and len(events):
        events = T.Denoise(filter_time=float(denoise_us))(events)
    # +0.5 us keeps tonic's float slice count at n_steps; timestamps are integers, so no event moves bin.
    to_frame = T.ToFrame(sensor_size=sensor_size, time_window=bin_us, start_time=0,
                         end_time=n_steps * bin_us + 0.5)
    frames = to_frame(events)
    if len(frames) >= n_steps:
        return frames[:n_steps]
    padded = np.zeros((n_steps, *frames.shape[1:]), dtype=frames.dtype)
    padded[: len(frames)] = frames
    return padded


def nmnist_frames(events: np.ndarray, bin_us: float, n_steps: int, first_saccade: bool = False,
                  denoise_us: Optional[float] = None) -> np.ndarray:
    """One N-MNIST-layout recording's frames (:func:`events_to_frames` on N-MNIST's sensor), cut to
    the first saccade (``t < FIRST_SACCADE_US``) when ``first_saccade``."""
    if first_saccade:
        events = events[events["t"] < FIRST_SACCADE_US]
    return events_to_frames(events, NMNIST_SENSOR, bin_us, n_steps, denoise_us)


def check_sensor_bounds(events: np.ndarray, sensor_size: tuple, source: str) -> None:
    """ValueError naming ``source`` when an event lies outside the sensor or has a bad polarity."""
    width, height, polarities = sensor_size
    if not len(events):
        return
    problems = []
    if events["x"].min() < 0 or events["x"].max() >= width:
        problems.append(f"x in [{events['x'].min()}, {events['x'].max()}] (sensor width {width})")
    if "y" in events.dtype.names and (events["y"].min() < 0 or events["y"].max() >= height):
        problems.append(f"y in [{events['y'].min()}, {events['y'].max()}] (sensor height {height})")
    if events["p"].min() < 0 or events["p"].max() >= max(polarities, 2):
        problems.append(f"p in [{events['p'].min()}, {events['p'].max()}]")
    if problems:
        raise ValueError(f"{source}: events outside the {width}x{height}x{polarities} sensor: " + "; ".join(problems))


def balanced_first(labels: np.ndarray, limit: Optional[int]) -> np.ndarray:
    """Positions of the first ``limit`` samples taken round-robin over classes (all when None).

    Within a class the original order is kept; the result is sorted, so ``limit=n`` of a split is
    a subset of ``limit=n+1``.
    """
    labels = np.asarray(labels)
    if limit is None:
        return np.arange(len(labels))
    if int(limit) != limit or limit < 1:
        raise ValueError(f"expected limit a positive integer or None; got {limit!r}")
    limit = int(limit)
    if limit >= len(labels):
        return np.arange(len(labels))
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank_in_class[where] = np.arange(len(where))
    order = np.lexsort((labels, rank_in_class))  # by rank within class, then by class
    return np.sort(order[:limit])


def warn_once(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)
