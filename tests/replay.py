"""A stand-in model whose output at step t is its input x[t]: hand-built output sequences."""

from __future__ import annotations

import torch
from torch import nn


class ReplayModel(nn.Module):
    """``z[t] = gain * x[t]``; counts the steps it is asked to compute."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_inputs = n_classes
        self.gain = nn.Parameter(torch.ones(()))
        self.steps_called = 0

    def initial_state(self, batch_size, *, device=None, dtype=None):
        return (torch.zeros(batch_size, device=device, dtype=dtype),)

    def encode(self, x):
        return x

    def step_params(self):
        return None

    def step_encoded(self, current, state, params=None):
        self.steps_called += 1
        return self.gain * current, state

    def forward(self, x_seq, state=None):
        return self.gain * x_seq, state
