"""Input checks shared by the models: clear ValueErrors instead of shape errors deep in a matmul."""

from __future__ import annotations

import torch
from torch import Tensor


def check_sequence(x: Tensor, n_inputs: int, name: str = "x_seq", *, finite: bool = True) -> None:
    """Require a floating tensor ``[time, batch, n_inputs]``, finite unless ``finite=False``."""
    if not isinstance(x, Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor [time, batch, {n_inputs}]; got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"expected {name} of rank 3 [time, batch, {n_inputs}]; got shape {tuple(x.shape)}")
    check_features(x, n_inputs, name, finite=finite)


def check_step(x: Tensor, n_inputs: int, name: str = "x_t") -> None:
    """Require a finite floating tensor ``[batch, n_inputs]``."""
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected {name} of rank 2 [batch, {n_inputs}]; got {shape}")
    check_features(x, n_inputs, name)


def check_features(x: Tensor, n_inputs: int, name: str, *, finite: bool = True) -> None:
    if x.shape[-1] != n_inputs:
        raise ValueError(f"expected {name} with {n_inputs} features in its last axis; got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"expected a floating-point {name}; got dtype {x.dtype}")
    # A sum is NaN or inf whenever an entry is, and costs a fraction of torch.isfinite(x).all() on a
    # large input; only when the sum is not finite (a bad entry, or finite values that overflow
    # when added) is the exact elementwise check run.
    if finite and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"expected finite values in {name}; found NaN or inf")
