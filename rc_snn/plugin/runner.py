"""Run any step-by-step network until the batch's last decision (rank coding's early exit).

``net`` is any callable from one time step's input ``[batch, features]`` to that step's outputs,
for example an snnTorch ``nn.Sequential`` of ``init_hidden=True`` neurons; the class scores are
its return value, or the last element of a tuple (``output=True``'s ``(spk, mem)``: the
membrane), or what ``scores`` picks::

    run = run_to_last_decision(net, data, decision_threshold=0.9)   # resets net (snntorch.utils.reset)
    loss = ce_rank_loss(0.9)(run.outputs, targets)                 # the loss at each sample's t*
    loss.backward()

What it costs, compared with rc-snn's own engine: the network keeps one state per module for the
whole batch, so every step runs every sample and the forward pass stops at the batch's *last*
decision (``run.outputs`` has that many steps), where rc-snn's runners
(:func:`rc_snn.training.early_exit.run_until_decision`, the compiled engine of
:mod:`rc_snn.training.compiled`) drop each sample at its own t*. The loss reads each sample at its
t*, so its gradient starts there in both; autograd here still walks the batch's graph back from
the last decision (zero gradient for a sample's steps after its t*). Saved against a full
forward pass: ``T - (max t* + 1)`` steps of the whole batch, forward and backward.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
from snntorch import utils
from torch import Tensor, nn

from ..training.early_exit import Decision, check_decision_threshold, crossed_threshold, select_decision
from .functional import class_scores


class RankCodedRun(NamedTuple):
    """``outputs`` ``[steps run, batch, classes]`` (with their graph) and the batch's :class:`Decision`."""

    outputs: Tensor
    decision: Decision


def run_to_last_decision(net: Callable, data: Tensor, decision_threshold: float = 0.9, *,
                       scores: Optional[Callable] = None, accumulate: bool = False,
                       reset: Optional[Callable[[], None]] = None) -> RankCodedRun:
    """Step ``net`` over ``data`` ``[time, batch, features]`` until every sample has decided.

    Args:
        scores: maps ``net``'s return value to ``[batch, classes]`` (default: module docstring).
        accumulate: the scores are spikes (the decision reads their running count).
        reset: called once before the first step; by default ``snntorch.utils.reset(net)`` when
            ``net`` is an ``nn.Module`` (clears its ``init_hidden`` state), else nothing.
    """
    threshold = check_decision_threshold(decision_threshold)
    if not isinstance(data, Tensor) or data.dim() < 3 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(f"expected data of shape [time >= 1, batch >= 1, ...]; got "
                         f"{tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__}")
    if reset is None and isinstance(net, nn.Module):
        utils.reset(net)
    elif reset is not None:
        reset()
    outputs, decided, running = [], None, None
    for x_t in data:
        output = net(x_t)
        output = scores(output) if scores is not None else output[-1] if isinstance(output, tuple) else output
        if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != data.shape[1]:
            raise ValueError(f"expected class scores [batch={data.shape[1]}, classes] at each step; got "
                             f"{tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__} "
                             "(pass scores= to pick them from the network's return value)")
        outputs.append(output)
        running = output.detach() if running is None or not accumulate else running + output.detach()
        crossed = crossed_threshold(running, threshold)
        decided = crossed if decided is None else decided | crossed
        if bool(decided.all()):
            break
    outputs = torch.stack(outputs)
    # Stopped early, every sample crossed, so the rule on the steps run gives the full run's decisions.
    return RankCodedRun(outputs, select_decision(class_scores(outputs.detach(), accumulate), threshold))
