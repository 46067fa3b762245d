"""What a PyTorch run did, step by step: outputs and every layer's spikes, for counting.

``deploy.activity.activities_from_batch`` cuts such a recording at each sample's decision step
into ``Activity`` values that ``deploy.counting`` reads (the same functions count Lava runs).
The model's ``forward`` is not instrumented: the recording observes the states its own step
function returns.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn


@torch.no_grad()
def record_run(model: nn.Module, x_seq: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """Step a spiking network (``ALIFRSNN``, ``IRSNN``) over the whole of ``x_seq``; returns outputs
    ``[T, B, C]`` and each layer's spikes ``[T, B, H]`` (1 where it sent anything: an IR-SNN's
    graded spikes count as spikes whatever their level)."""
    state = model.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
    currents, params = model.encode(x_seq), model.step_params()
    outputs, spikes = [], [[] for _ in model.layers]
    for current in currents:
        output, state = model.step_encoded(current, state, params)
        outputs.append(output)
        for recorded, layer_state in zip(spikes, state.layers):
            recorded.append((layer_state.s != 0).to(layer_state.s.dtype))
    return torch.stack(outputs), [torch.stack(layer) for layer in spikes]
