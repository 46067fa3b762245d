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


def test_label_smoothing_mixes_the_target_with_the_uniform_distribution():
    z, y, eps = torch.randn(3, 4), torch.tensor([0, 1, 2]), 0.2
    target = (1 - eps) * torch.nn.functional.one_hot(y, 4) + eps / 4
    by_hand = -(target * torch.log_softmax(z, -1)).sum(-1).mean()
    assert torch.allclose(rank_coded_loss(z, y, label_smoothing=eps), by_hand)
    assert torch.allclose(full_sequence_loss(z[None], y, "last", label_smoothing=eps), by_hand)
    assert not torch.allclose(rank_coded_loss(z, y), by_hand)


def test_the_per_step_loss_and_accuracy_are_the_formulas_of_the_docstring():
    import numpy as np

    from rc_snn.training.losses import per_step_accuracy, per_step_loss

    torch.manual_seed(0)
    logits, targets = torch.randn(12, 3, 5, dtype=torch.float64), torch.randint(0, 5, (3, 12))
    z, y = logits.numpy(), targets.numpy()
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    loss = np.mean([np.mean([-log_p[t, i, y[i, t]] for t in range(4, 12)]) for i in range(3)])
    accuracy = [np.mean([z[t, i].argmax() == y[i, t] for t in range(4, 12)]) for i in range(3)]
    torch.testing.assert_close(per_step_loss(logits, targets, burn_in=4), torch.tensor(loss, dtype=torch.float64))
    np.testing.assert_allclose(per_step_accuracy(logits, targets, burn_in=4).numpy(), accuracy)
    with pytest.raises(ValueError, match="per-step targets"):
        per_step_loss(logits, targets.t(), burn_in=4)
    with pytest.raises(ValueError, match="burn_in"):
        per_step_accuracy(logits, targets, burn_in=12)
