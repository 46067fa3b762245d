"""Event augmentation of training batches, on the binned frames, deterministic per (seed, epoch, sample).

Two transforms, each exactly what the same operation on the events would give, so they run on
the cached count frames ``[T, P * H * W]`` (no re-binning, no event cache):

- **translation** by an integer ``(dx, dy)`` drawn uniformly from ``[-shift_px, shift_px]^2`` per
  sample: ``x'[t, p, y, x] = x[t, p, y - dy, x - dx]``, zero where the source is off the sensor.
  Translating every event by ``(dx, dy)`` and dropping those that leave the sensor, then binning,
  gives the same frames. (tonic's ``SpatialJitter`` moves each event by its own Gaussian amount and
  ``RandomCrop`` cuts a smaller sensor; neither moves the whole recording, which is what the saccades
  of N-MNIST vary between recordings, so this one is written here.)
- **event drop** with probability ``drop_events``: each bin's count ``n`` becomes
  ``Binomial(n, 1 - drop_events)``, the distribution of what survives when each of its ``n``
  events is dropped independently, as tonic's ``DropEvent`` does on events.

Randomness comes from a generator seeded by ``(seed, epoch, sample index)`` alone, so a resumed
epoch sees the same augmentation, and a sample's augmentation does not depend on its batch.
Validation and test data are never augmented (only the training loop calls this).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one sample's augmentation in one epoch."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1))


def translate(frames: Tensor, sensor: Tuple[int, int, int], dx: int, dy: int) -> Tensor:
    """Frames ``[T, P*H*W]`` of a ``(P, H, W)`` sensor moved by ``dx`` columns and ``dy`` rows, zero-filled."""
    channels, height, width = sensor
    grid = frames.view(frames.shape[0], channels, height, width)
    moved = torch.zeros_like(grid)
    rows_to = slice(max(dy, 0), height + min(dy, 0))
    rows_from = slice(max(-dy, 0), height + min(-dy, 0))
    cols_to = slice(max(dx, 0), width + min(dx, 0))
    cols_from = slice(max(-dx, 0), width + min(-dx, 0))
    moved[:, :, rows_to, cols_to] = grid[:, :, rows_from, cols_from]
    return moved.view_as(frames)


def augment_batch(x: Tensor, indices: Sequence[int], *, seed: int, epoch: int, shift_px: int = 0,
                  drop_events: float = 0.0, sensor: Optional[Tuple[int, int, int]] = None) -> Tensor:
    """A new batch ``[B, T, F]`` (``x`` itself if nothing is asked for); ``indices`` are the samples'
    indices in the training set. ``x`` is not modified."""
    if shift_px == 0 and drop_events == 0.0:
        return x
    if shift_px < 0 or not 0.0 <= drop_events < 1.0:
        raise ValueError(f"expected shift_px >= 0 and 0 <= drop_events < 1; got {shift_px}, {drop_events}")
    if shift_px and (sensor is None or x.shape[-1] != sensor[0] * sensor[1] * sensor[2]):
        raise ValueError(f"translation needs frames of a known sensor (P, H, W); got sensor {sensor} for "
                         f"{x.shape[-1]} features")
    out = []
    for sample, index in zip(x, indices):
        generator = sample_generator(seed, epoch, int(index))
        if shift_px:
            dx, dy = (int(v) for v in torch.randint(-shift_px, shift_px + 1, (2,), generator=generator))
            sample = translate(sample, sensor, dx, dy)
        if drop_events:
            sample = torch.binomial(sample, torch.full_like(sample, 1.0 - drop_events), generator=generator)
        out.append(sample)
    return torch.stack(out)
