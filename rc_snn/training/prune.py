"""Magnitude pruning with fine-tuning, for every model (ALIF, IR-SNN, LSTM, GRU).

Every weight matrix (each 2-D parameter: input, recurrent, readout) is pruned on its own: the
fraction ``s`` of its weights with the smallest magnitude is set to exactly zero. The fraction
grows with the epochs on Zhu and Gupta's gradual schedule ("To prune, or not to prune", 2017)::

    s(e) = s_final * (1 - (1 - min(1, (e + 1) / E))**3)      epoch e from 0, E = prune_epochs

so most weights go early, when the network can still recover, and the last ones gently; with
``E = 0`` the whole fraction goes before the first epoch. Between prunings the zeros stay zero:
after every optimiser step (and every update of the weight average) each matrix is multiplied by
its mask. The mask is the matrix's nonzero pattern, so it needs no state of its own: a resumed
run recovers it from the checkpoint's weights.

Pruned weights reach the network file as zeros, so ``deploy.counting.fan_out`` counts only the
synapses that remain, in Lava and in fixed point alike (a zero weight quantises to zero); the
LSTM's and GRU's counts read their nonzero weights the same way (``deploy.baselines``).

``torch.nn.utils.prune`` is not used: it reparametrises each weight as ``weight_orig *
weight_mask``, which renames the state-dict keys that the checkpoint, ``init_from``, the network
file and the compiled kernels read.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import nn


def prunable(model: nn.Module) -> List[nn.Parameter]:
    """The weight matrices of ``model``: its 2-D parameters (biases, decays and time constants are kept)."""
    return [parameter for parameter in model.parameters() if parameter.dim() == 2]


def fraction_at(epoch: int, prune_fraction: float, prune_epochs: int) -> float:
    """``s(epoch)`` of the module docstring."""
    if prune_fraction == 0:
        return 0.0
    progress = 1.0 if prune_epochs == 0 else min(1.0, (epoch + 1) / prune_epochs)
    return prune_fraction * (1.0 - (1.0 - progress) ** 3)


@torch.no_grad()
def prune_to(model: nn.Module, fraction: float) -> None:
    """Zero the ``floor(fraction * n)`` smallest-magnitude weights of each matrix (already-zero ones count)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"expected a pruned fraction 0 <= f < 1; got {fraction!r}")
    for weight in prunable(model):
        n_pruned = math.floor(fraction * weight.numel())
        if n_pruned == 0:
            continue
        smallest = weight.abs().flatten().argsort(stable=True)[:n_pruned]
        weight[torch.unravel_index(smallest, weight.shape)] = 0.0  # whatever the memory layout


class Pruner:
    """Gradual magnitude pruning of ``model`` during training (module docstring), holding the zeros of
    ``model`` in ``average`` (the weight average) too.

    The average needs its zeros put back only when the mask changes (:meth:`start_epoch`): between
    prunings the model's pruned weights are exactly 0 before every update of the average (its caller
    runs :meth:`hold_model` first), and a moving average of 0 and 0 is exactly 0 (``lerp``)."""

    def __init__(self, model: nn.Module, prune_fraction: float, prune_epochs: int, average: nn.Module = None):
        self.model, self.average = model, average
        self.prune_fraction, self.prune_epochs = prune_fraction, prune_epochs
        self.weights = prunable(model)
        self.masks = self._masks()  # a resumed run's zeros: its mask

    def _masks(self) -> List[torch.Tensor]:
        # 1.0 where a weight is kept, 0.0 where pruned, in the weight's dtype: multiplying by it is
        # exactly what multiplying by the boolean mask does, without converting the mask every step.
        return [(weight != 0).to(weight.dtype) for weight in self.weights]

    @torch.no_grad()
    def start_epoch(self, epoch: int) -> None:
        """Prune to this epoch's fraction, then hold the new zeros in the model and the average."""
        prune_to(self.model, fraction_at(epoch, self.prune_fraction, self.prune_epochs))
        self.masks = self._masks()
        self.hold_model()
        if self.average is not None:
            self._hold(prunable(self.average))

    @torch.no_grad()
    def hold_model(self) -> None:
        """Put the model's pruned weights back to zero (after an optimiser step moved them)."""
        self._hold(self.weights)

    def _hold(self, weights: List[torch.Tensor]) -> None:
        for weight, mask in zip(weights, self.masks):
            weight.mul_(mask)


def connection_sparsity(model: nn.Module) -> float:
    """The fraction of the weight matrices' entries that are zero."""
    weights = prunable(model)
    total = sum(weight.numel() for weight in weights)
    return sum(int((weight == 0).sum()) for weight in weights) / total if total else 0.0
