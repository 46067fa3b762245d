"""The optimiser and schedule of a run: which parameters decay, the learning rate each epoch
trains at, the moving average of the weights, and exact resumption with all of them."""

import math

import pytest
import torch

import rc_snn.training.loop as loop_module
from rc_snn.models import ALIFRSNN, IRSNN
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.optim import build_average, build_optimizer, build_schedule, update_average
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


def test_the_weight_average_follows_its_rule_with_warm_up():
    model = IRSNN(3, [4], 2)
    average = build_average(model, TrainConfig(ema_decay=0.5))
    assert build_average(model, TrainConfig()) is None
    reference = {name: p.detach().double().clone() for name, p in model.named_parameters()}
    for n in range(4):  # n = 0 copies; then d_n = min(0.5, (1 + n) / (10 + n)) = 0.18, 0.25, 0.31
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.layers[0].quantiser.value_range.fill_(float(n + 2))
        update_average(average, model)
        d = min(0.5, (1 + n) / (10 + n))
        for name, p in model.named_parameters():  # n = 0 copies the weights
            reference[name] = p.detach().double() if n == 0 else d * reference[name] + (1 - d) * p.detach().double()
    for name, p in average.module.named_parameters():
        torch.testing.assert_close(p.detach().double(), reference[name], rtol=1e-6, atol=1e-6, msg=name)
        assert not torch.equal(p, dict(model.named_parameters())[name]), name
    assert float(average.module.layers[0].quantiser.value_range) == 5.0  # buffers are the trained model's, not averaged


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_with_cosine_schedule_weight_decay_and_label_smoothing_is_exact(tmp_path, monkeypatch, ema_decay):
    config = TrainConfig(model="alif", epochs=3, lr_schedule="cosine", weight_decay=1e-2, label_smoothing=0.1,
                         ema_decay=ema_decay, **TOY)
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
    if ema_decay:  # the run hands on the average, and keeps the trained weights to resume from
        assert payload["ema_updates"] == 3 * 8
        for name, value in payload["model"].items():
            assert torch.equal(value, resumed.state_dict()[name]), name
        assert not torch.equal(payload["model"]["readout.linear.weight"], payload["trained_model"]["readout.linear.weight"])


def test_a_cosine_run_cannot_be_extended(tmp_path):
    config = TrainConfig(model="lstm", epochs=1, lr_schedule="cosine", **TOY)
    train(config, tmp_path, progress=False, log=quiet)
    with pytest.raises(ValueError, match="epochs: 1 -> 2"):
        train(config.replace(epochs=2), tmp_path, progress=False, log=quiet)


def test_a_run_starts_from_the_weights_of_init_from(tmp_path, monkeypatch):
    source = train(TrainConfig(model="alif", epochs=1, **TOY), tmp_path / "pretrained", progress=False, log=quiet)

    def stop_before_the_first_step(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "training_step", stop_before_the_first_step)
    config = TrainConfig(model="alif", epochs=1, init_from=str(tmp_path / "pretrained"), **{**TOY, "seed": 5})
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "fine-tuned", progress=False, log=quiet)
    started = load_checkpoint(tmp_path / "fine-tuned" / "checkpoint.pt", config)["model"]
    for name, value in source.model.state_dict().items():
        assert torch.equal(value, started[name]), name
    with pytest.raises(ValueError, match="init_from .*: its 'alif' model \\(hidden 16, layers 1\\) does not fit"):
        train(config.replace(hidden=8), tmp_path / "other", progress=False, log=quiet)


def test_the_time_constants_train_at_their_own_learning_rate():
    model = ALIFRSNN(3, [4], 2, output_layer="adaptive")
    config = TrainConfig(lr=0.1, tau_lr_scale=3.0, weight_decay=0.01, epochs=4, lr_decay=0.5)
    optimizer = build_optimizer(model, config)
    names = {id(p): name for name, p in model.named_parameters()}
    rates = {names[id(p)]: group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert set(rates) == {name for name, _ in model.named_parameters()}
    taus = {name for name in rates if "log_tau" in name}
    assert len(taus) == 4  # the hidden layer's and the output layer's membrane and adaptation
    assert all(rates[name] == pytest.approx(0.3 if name in taus else 0.1) for name in rates)
    schedule = build_schedule(optimizer, config)
    optimizer.step()
    schedule.step()  # the schedule scales every group
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.05, 0.05, 0.15])
    assert len(build_optimizer(model, TrainConfig()).param_groups) == 1
