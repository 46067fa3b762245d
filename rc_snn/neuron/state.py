"""Helpers on caller-owned state: nested NamedTuples/tuples of tensors."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import Tensor

S = TypeVar("S")


def tree_map(fn: Callable[[Tensor], Tensor], state: S) -> S:
    """Apply ``fn`` to every tensor in a nest of (named) tuples, keeping the structure."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple):
        mapped = [tree_map(fn, item) for item in state]
        return type(state)(*mapped) if hasattr(state, "_fields") else type(state)(mapped)
    raise TypeError(f"expected a tensor or a tuple of tensors in the state; got {type(state).__name__}")


def detach(state: S) -> S:
    """Cut the graph at a state (truncated BPTT)."""
    return tree_map(Tensor.detach, state)


def select_rows(state: S, rows: Tensor) -> S:
    """Keep batch rows ``rows`` (an index or boolean mask over the batch axis 0) of every tensor."""
    return tree_map(lambda t: t[rows], state)
