import pytest
import torch

from rc_snn.training.losses import full_sequence_loss, rank_coded_loss


def test_full_sequence_loss_reads_last_step_or_mean():
    z = torch.randn(5, 3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    last = full_sequence_loss(z, y, "last")
    assert torch.allclose(last, torch.nn.functional.cross_entropy(z[-1], y))
    last.backward()
    assert z.grad[:-1].abs().sum() == 0 and z.grad[-1].abs().sum() > 0
    assert torch.allclose(full_sequence_loss(z, y, "mean"), torch.nn.functional.cross_entropy(z.mean(0), y))
    with pytest.raises(ValueError, match="readout"):
        full_sequence_loss(z, y, "sum")


def test_rank_coded_loss_validates_its_entropy_arguments():
    logits, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="entropy_weight >= 0"):
        rank_coded_loss(logits, y, torch.zeros(3), -1.0)
    with pytest.raises(ValueError, match="track_entropy"):
        rank_coded_loss(logits, y, None, 0.5)
