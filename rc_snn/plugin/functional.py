"""Rank coding for any snnTorch network, in the shape of ``snntorch.functional``.

Both take a recorded output sequence ``[time, batch, classes]``, as snnTorch's losses do: the
output layer's membrane potential (``accumulate=False``: read as class scores each step) or its
spikes (``accumulate=True``: the scores at step t are the spike counts up to t). The decision
rule is rc-snn's (:mod:`rc_snn.training.early_exit`): each sample decides at the first step t*
where ``max softmax(scores[t]) > decision_threshold`` (else the last step), and the loss is the
rank-coded loss (:mod:`rc_snn.training.losses`) at t*::

    loss_fn = ce_rank_loss(decision_threshold=0.9)
    loss = loss_fn(mem_rec, targets)                 # like SF.ce_rate_loss()(spk_rec, targets)
    accuracy, steps = accuracy_rank(mem_rec, targets, decision_threshold=0.9)

Nothing after a sample's t* enters its loss, so its gradient starts there; to also stop the
forward pass early, record the outputs with :func:`rc_snn.plugin.runner.run_to_last_decision`.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..training.early_exit import check_decision_threshold, mean_entropy_until, select_decision
from ..training.losses import rank_coded_loss


def class_scores(outputs: Tensor, accumulate: bool = False) -> Tensor:
    """The scores the decision rule reads: ``outputs`` ``[time, batch, classes]`` or their running sum."""
    if not isinstance(outputs, Tensor) or outputs.dim() != 3 or 0 in outputs.shape:
        raise ValueError(f"expected recorded outputs of shape [time >= 1, batch >= 1, classes >= 1]; got "
                         f"{tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__}")
    return outputs.cumsum(0) if accumulate else outputs


def check_targets(targets: Tensor, scores: Tensor) -> Tensor:
    """``targets`` as class indices ``[batch]`` of the recorded ``scores [time, batch, classes]``."""
    batch, classes = scores.shape[1], scores.shape[2]
    if (not isinstance(targets, Tensor) or targets.shape != (batch,) or targets.dtype.is_floating_point
            or targets.dtype == torch.bool or targets.is_complex()):
        raise ValueError(f"expected targets as class indices of shape [batch={batch}] (an integer tensor); got "
                         f"{tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__}"
                         + (f" {targets.dtype}" if isinstance(targets, Tensor) else ""))
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= classes):
        raise ValueError(f"expected targets among the {classes} classes (0 .. {classes - 1}); got values from "
                         f"{int(targets.min())} to {int(targets.max())}")
    return targets


class ce_rank_loss:  # noqa: N801 (named as snntorch.functional's losses are)
    """Rank-coded cross-entropy at each sample's decision step (Jeffares et al., ICLR 2022).

    Args:
        decision_threshold: softmax probability a sample's scores must exceed to decide.
        entropy_weight: ``beta_H``, reward for uncertain outputs before the decision (delays it).
        accumulate: the outputs are spikes, scored by their running count.
    """

    def __init__(self, decision_threshold: float = 0.9, entropy_weight: float = 0.0, *, accumulate: bool = False):
        self.decision_threshold = check_decision_threshold(decision_threshold)
        if not entropy_weight >= 0:
            raise ValueError(f"expected entropy_weight >= 0; got {entropy_weight!r}")
        self.entropy_weight, self.accumulate = float(entropy_weight), bool(accumulate)

    def __call__(self, outputs: Tensor, targets: Tensor) -> Tensor:
        scores = class_scores(outputs, self.accumulate)
        targets = check_targets(targets, scores)
        decision = select_decision(scores, self.decision_threshold)
        entropy = mean_entropy_until(scores, decision.steps) if self.entropy_weight > 0 else None
        return rank_coded_loss(decision.logits, targets, entropy, self.entropy_weight)


@torch.no_grad()
def accuracy_rank(outputs: Tensor, targets: Tensor, decision_threshold: float = 0.9, *,
                  accumulate: bool = False) -> Tuple[float, Tensor]:
    """Accuracy of the predictions at each sample's decision step, and the decision steps ``[batch]`` (0-based)."""
    scores = class_scores(outputs, accumulate)
    targets = check_targets(targets, scores)
    decision = select_decision(scores, check_decision_threshold(decision_threshold))
    return float((decision.predictions == targets).float().mean()), decision.steps
