"""The optimiser and schedule of a run: which parameters decay, the learning rate each epoch
trains at, and exact resumption with both."""

import math

import pytest
import torch

import rc_snn.training.loop as loop_module
from rc_snn.models import ALIFRSNN
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.optim import build_optimizer, build_schedule
from rc_snn.training.run import load_checkpoint, load_run

TOY = dict(dataset="toy", hidden=16, batch_size=32, lr=1e-2, limit_train=256, limit_val=64, device="cpu")


def quiet(*args, **kwargs):
    pass


def test_weight_decay_applies_to_weight_matrices_only():
    model = ALIFRSNN(3, [4], 2)
    optimizer = build_optimizer(model, TrainConfig(weight_decay=0.1))
    decayed, kept = optimizer.param_groups
    assert isinstance(optimizer, torch.optim.AdamW) and decayed["weight_decay"] == 0.1 and kept["weight_decay"] == 0
    names = {id(p): name for name, p in model.named_parameters()}
    assert {names[id(p)] for p in decayed["params"]} == {n for n, p in model.named_parameters() if p.dim() == 2}
    assert any("tau" in names[id(p)] for p in kept["params"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # a zero gradient: only the decay moves anything
    for name, p in model.named_parameters():
        moved = not torch.equal(before[name], p.detach())
        assert moved == (p.dim() == 2), name
    assert type(build_optimizer(model, TrainConfig())) is torch.optim.Adam


@pytest.mark.parametrize("changes, expected", [
    ({"lr_decay": 0.5}, lambda e: 0.5 ** e),
    ({"lr_schedule": "cosine"}, lambda e: (1 + math.cos(math.pi * e / 4)) / 2),
])
def test_each_epoch_trains_at_the_schedules_learning_rate(changes, expected):
    config = TrainConfig(epochs=4, lr=0.1, **changes)
    optimizer = build_optimizer(ALIFRSNN(3, [4], 2), config)
    schedule = build_schedule(optimizer, config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: changes nothing, but keeps the order torch expects
        schedule.step()
    assert rates == pytest.approx([0.1 * expected(e) for e in range(4)])


def test_resume_with_cosine_schedule_weight_decay_and_label_smoothing_is_exact(tmp_path, monkeypatch):
    config = TrainConfig(model="alif", epochs=3, lr_schedule="cosine", weight_decay=1e-2, label_smoothing=0.1, **TOY)
    train(config, tmp_path / "straight", progress=False, log=quiet)
    real_step, calls = loop_module.training_step, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] in (5, 19):  # epoch 1 batch 5, then epoch 3 batch 3 of the resumed run
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop_module, "training_step", interrupted)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "resumed", progress=False, log=quiet)
    monkeypatch.setattr(loop_module, "training_step", real_step)
    train(config, tmp_path / "resumed", progress=False, log=quiet)
    straight, resumed = load_run(tmp_path / "straight").model, load_run(tmp_path / "resumed").model
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    payload = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt", config)
    assert payload["schedule"]["last_epoch"] == 3


def test_a_cosine_run_cannot_be_extended(tmp_path):
    config = TrainConfig(model="lstm", epochs=1, lr_schedule="cosine", **TOY)
    train(config, tmp_path, progress=False, log=quiet)
    with pytest.raises(ValueError, match="epochs: 1 -> 2"):
        train(config.replace(epochs=2), tmp_path, progress=False, log=quiet)
