"""Event augmentation of training batches, on the binned frames, deterministic per (seed, epoch, sample).

Each transform is exactly what the same operation on the events would give, so they run on the
cached count frames ``[T, P * H * W]`` (no re-binning, no event cache):

- **affine move** of the whole recording: every event at pixel ``q = (x, y)`` goes to
  ``round(S R (q - c) + c + d)`` with ``c`` the sensor's centre, ``R`` a rotation by ``theta``
  uniform in ``+-rotate_deg``, ``S`` a scale ``1 + s`` with ``s`` uniform in ``+-zoom``, and an
  integer translation ``d`` uniform in ``[-shift_px, shift_px]^2``; events that leave the sensor are
  dropped. On frames this is a scatter-add of each pixel's counts to its destination, which is the
  same as moving the events one by one, then binning. (tonic's ``SpatialJitter`` moves each event by
  its own Gaussian amount and ``RandomCrop`` cuts a smaller sensor; neither moves the whole
  recording, which is what N-MNIST's saccades and the digits' writing vary, so this one is written
  here.)
- **event drop** with probability ``drop_events``: each bin's count ``n`` becomes
  ``Binomial(n, 1 - drop_events)``, the distribution of what survives when each of its ``n``
  events is dropped independently, as tonic's ``DropEvent`` does on events.

Randomness comes from a generator seeded by ``(seed, epoch, sample index)`` alone, so a resumed
epoch sees the same augmentation, and a sample's augmentation does not depend on its batch.
Validation and test data are never augmented (only the training loop calls this).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .cache import SparseBatch


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one sample's augmentation in one epoch."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1))


def destinations(sensor: Tuple[int, int, int], dx, dy, theta=0.0, scale=1.0) -> Tensor:
    """Flat destination of every ``(p, y, x)`` pixel of the sensor under the module docstring's move, -1 if off it.

    Numbers give ``[P * H * W]``; tensors of ``B`` moves (one per sample) give ``[B, P * H * W]``.
    """
    channels, height, width = sensor
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    theta, scale, dx, dy = (torch.as_tensor(v, dtype=torch.float64) for v in (theta, scale, dx, dy))
    # math's cosine and sine, not torch's: they differ in the last bit for about 0.1 % of angles, which
    # would move a rounded pixel now and then and change the augmentation runs were trained with
    cos, sin = (torch.tensor([f(v) for v in theta.reshape(-1).tolist()], dtype=torch.float64).reshape(theta.shape)
                * scale for f in (math.cos, math.sin))
    cos, sin, dx, dy = (v[..., None, None] for v in (cos, sin, dx, dy))
    new_x = torch.round(cos * (x - cx) - sin * (y - cy) + cx + dx).long()
    new_y = torch.round(sin * (x - cx) + cos * (y - cy) + cy + dy).long()
    inside = (new_x >= 0) & (new_x < width) & (new_y >= 0) & (new_y < height)
    flat = torch.where(inside, new_y * width + new_x, torch.full_like(new_x, -1)).flatten(-2)
    return torch.cat([torch.where(flat >= 0, flat + p * height * width, flat) for p in range(channels)], dim=-1)


def move(frames: Tensor, targets: Tensor) -> Tensor:
    """Frames ``[..., T, F]`` with each feature's counts added to feature ``targets[..., f]`` (dropped where -1).

    One scatter-add for a whole batch (``targets [B, F]``, frames ``[B, T, F]``); counts are whole
    numbers, so the sums are exact in any order.
    """
    n = frames.shape[-1]
    index = torch.where(targets >= 0, targets, n)  # what leaves the sensor lands in a spare column
    moved = frames.new_zeros(frames.shape[:-1] + (n + 1,))
    moved.scatter_add_(-1, index.unsqueeze(-2).expand(frames.shape), frames)
    return moved[..., :n].contiguous()


def translate(frames: Tensor, sensor: Tuple[int, int, int], dx: int, dy: int) -> Tensor:
    """Frames ``[T, P*H*W]`` of a ``(P, H, W)`` sensor moved by ``dx`` columns and ``dy`` rows."""
    return move(frames, destinations(sensor, dx, dy))


def augment_batch(x, indices: Sequence[int], *, seed: int, epoch: int, shift_px: int = 0,
                  rotate_deg: float = 0.0, zoom: float = 0.0, drop_events: float = 0.0,
                  sensor: Optional[Tuple[int, int, int]] = None) -> Tensor:
    """A new batch ``[B, T, F]`` (``x`` itself if nothing is asked for); ``indices`` are the samples'
    indices in the training set. ``x`` is not modified.

    ``x``: frames ``[B, T, F]``, or a :class:`~rc_snn.data.cache.SparseBatch`, densified here (the
    move then touches its nonzero bins only; the same frames either way, tested).
    """
    sparse = isinstance(x, SparseBatch)
    moves = shift_px != 0 or rotate_deg != 0.0 or zoom != 0.0
    if not moves and drop_events == 0.0:
        return x.dense() if sparse else x
    if shift_px < 0 or rotate_deg < 0 or not 0.0 <= zoom < 1.0 or not 0.0 <= drop_events < 1.0:
        raise ValueError(f"expected shift_px >= 0, rotate_deg >= 0, 0 <= zoom < 1 and 0 <= drop_events < 1; got "
                         f"{shift_px}, {rotate_deg}, {zoom}, {drop_events}")
    if moves and (sensor is None or x.shape[-1] != sensor[0] * sensor[1] * sensor[2]):
        raise ValueError(f"moving a recording needs frames of a known sensor (P, H, W); got sensor {sensor} for "
                         f"{x.shape[-1]} features")
    generators = [sample_generator(seed, epoch, int(index)) for index in indices]
    if moves:  # each sample's move drawn from its own generator, then all moved at once
        shifts = torch.stack([torch.randint(-shift_px, shift_px + 1, (2,), generator=g) for g in generators])
        limits = torch.tensor([math.radians(rotate_deg), zoom], dtype=torch.float64)
        theta, stretch = torch.stack([(2 * torch.rand(2, generator=g, dtype=torch.float64) - 1) * limits
                                      for g in generators]).T
        targets = destinations(sensor, shifts[:, 0], shifts[:, 1], theta, 1.0 + stretch)
        x = x.dense(targets) if sparse else move(x, targets)
    elif sparse:
        x = x.dense()
    if drop_events:
        x = torch.stack([torch.binomial(sample, torch.full_like(sample, 1.0 - drop_events), generator=g)
                         for sample, g in zip(x, generators)])
    return x
