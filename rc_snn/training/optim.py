"""The optimiser and learning-rate schedule of a run, built from its config.

Adam, or AdamW (decoupled weight decay, Loshchilov and Hutter 2019) when ``weight_decay > 0``.
Weight decay applies to the weight matrices only: the neurons' time constants and the biases keep
their values unless the loss moves them (decaying a time constant in steps towards 0 would make
every neuron forget within a step).

The schedule is one of ``torch.optim.lr_scheduler``'s, stepped once per finished epoch, so epoch
``e`` (from 0) trains at

- ``"exponential"``: ``lr * lr_decay**e`` (``ExponentialLR``; ``lr_decay = 1`` keeps it constant);
- ``"cosine"``: ``lr * (1 + cos(pi e / epochs)) / 2`` (``CosineAnnealingLR`` to 0 at ``epochs``).

Both states go into the checkpoint, so a resumed run continues at the same learning rate.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam at ``config.lr``; AdamW with two parameter groups (matrices decayed, the rest not)
    when ``config.weight_decay > 0``."""
    if config.weight_decay == 0:
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": matrices, "weight_decay": config.weight_decay},
                              {"params": others, "weight_decay": 0.0}], lr=config.lr)


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The run's learning-rate schedule (module docstring), at epoch 0."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
