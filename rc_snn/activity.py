"""What a PyTorch run did, per sample up to its decision step, as ``deploy.counting.Activity``.

The counts are observed from the state the early-exit runner produces at every step (the models'
``forward`` is not instrumented), so they cover exactly the steps ``0 .. t*`` that were computed.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from deploy.counting import Activity

from .early_exit import Decision, run_until_decision


@torch.no_grad()
def record_activity(model: nn.Module, x_seq: Tensor, threshold: float, *, chunk_size: int = 16) -> Tuple[Decision, List[Activity]]:
    """Run ``model`` (an ``ALIFRSNN``) with early exit and count each sample's input events and spikes.

    ``input_counts`` counts the steps in which a channel was nonzero (one event delivery per
    nonzero value), as ``deploy.counting`` defines it.
    """
    batch = x_seq.shape[1]
    input_counts = torch.zeros(batch, x_seq.shape[2], dtype=torch.long, device=x_seq.device)
    spike_counts = [torch.zeros(batch, layer.n_neurons, dtype=torch.long, device=x_seq.device) for layer in model.layers]

    graded = torch.zeros(batch, dtype=torch.bool, device=x_seq.device)

    def observe(t: int, running: Tensor, x_t: Tensor, state) -> None:
        input_counts[running] += (x_t != 0).long()
        graded[running] |= ((x_t != 0) & (x_t != 1)).any(dim=-1)
        for counts, layer_state in zip(spike_counts, state.layers):
            counts[running] += layer_state.s.long()

    decision = run_until_decision(model, x_seq, threshold, chunk_size=chunk_size, observer=observe)
    activities = [
        Activity(n_steps=int(step) + 1, input_counts=input_counts[i].cpu().numpy(),
                 spike_counts=tuple(counts[i].cpu().numpy() for counts in spike_counts), input_is_binary=not bool(graded[i]))
        for i, step in enumerate(decision.steps.tolist())
    ]
    return decision, activities


@torch.no_grad()
def record_run(model: nn.Module, x_seq: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """Step an ``ALIFRSNN`` over the whole of ``x_seq``; returns outputs ``[T, B, C]`` and each layer's spikes ``[T, B, H]``."""
    state = model.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
    currents, params = model.encode(x_seq), model.step_params()
    outputs, spikes = [], [[] for _ in model.layers]
    for current in currents:
        output, state = model.step_encoded(current, state, params)
        outputs.append(output)
        for recorded, layer_state in zip(spikes, state.layers):
            recorded.append(layer_state.s)
    return torch.stack(outputs), [torch.stack(layer) for layer in spikes]
