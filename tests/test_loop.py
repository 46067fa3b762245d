import json

import pytest
import torch

import rc_snn.training.loop as train_module
from torch.utils.data import TensorDataset

from rc_snn.training.config import TrainConfig
from rc_snn.training.early_exit import select_decision
from rc_snn.models import ALIFRSNN
from rc_snn.training.evaluation import evaluate_model
from rc_snn.training.loop import train
from rc_snn.training.run import load_checkpoint, load_run
from helpers import lively_alif64, random_spikes

TOY = dict(dataset="toy", hidden=16, batch_size=32, lr=1e-2, limit_train=256, limit_val=128, device="cpu")


def quiet(*args, **kwargs):
    pass


def weights(model):
    return {name: value.clone() for name, value in model.state_dict().items()}


def test_training_writes_config_checkpoint_and_metrics(tmp_path):
    config = TrainConfig(model="alif", loss="rank", epochs=2, **TOY)
    history = train(config, tmp_path, progress=False, log=quiet).history
    assert [entry["epoch"] for entry in history] == [1, 2]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == history
    for key in ("train_accuracy", "val_accuracy", "val_accuracy_last_step", "val_mean_decision_step",
                "train_seconds", "train_steps_simulated", "train_mean_steps_simulated", "train_sample_steps"):
        assert key in saved[-1]
    assert TrainConfig.load(tmp_path / "config.json") == config
    run = load_run(tmp_path)
    loaded_config, model, info = run.config, run.model, run.info
    assert loaded_config == config and info.n_inputs == 1 and info.n_classes == 2


def test_resume_after_interruption_mid_epoch_gives_the_same_model(tmp_path, monkeypatch):
    config = TrainConfig(model="lstm", loss="rank", epochs=2, lr_decay=0.5, **TOY)
    train(config, tmp_path / "straight", progress=False, log=quiet)
    reference = load_run(tmp_path / "straight").model

    real_step, calls = train_module.training_step, {"n": 0}

    def interrupted_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 11:  # epoch 2, batch 3 (8 batches per epoch)
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "training_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=False, log=quiet)
    payload = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt", config)
    assert (payload["epoch"], payload["batch"]) == (1, 2)
    monkeypatch.setattr(train_module, "training_step", real_step)
    history = train(config, tmp_path / "resumed", progress=False, log=quiet).history
    resumed = load_run(tmp_path / "resumed").model
    for name, value in weights(reference).items():
        assert torch.allclose(value, resumed.state_dict()[name], atol=1e-6), name
    assert len(history) == 2


def test_learning_rate_decays_once_per_epoch(tmp_path):
    config = TrainConfig(model="lstm", loss="rank", epochs=3, lr_decay=0.5, **TOY)
    train(config, tmp_path, progress=False, log=quiet)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", config)
    # epoch 3 trained at lr/4; the checkpoint holds the rate of the epoch that would come next
    assert payload["optimizer"]["param_groups"][0]["lr"] == pytest.approx(config.lr * 0.125)


def test_resuming_with_another_config_is_refused(tmp_path):
    train(TrainConfig(model="lstm", epochs=1, **TOY), tmp_path, progress=False, log=quiet)
    with pytest.raises(ValueError, match="another config \\(hidden: 16 -> 8\\)"):
        train(TrainConfig(model="lstm", epochs=2, **{**TOY, "hidden": 8}), tmp_path, progress=False, log=quiet)


def test_unreadable_or_foreign_checkpoints_give_clear_errors(tmp_path):
    config = TrainConfig(model="lstm", epochs=1, **TOY)
    train(config, tmp_path, progress=False, log=quiet)
    with pytest.raises(ValueError, match="holds a 'lstm' model"):
        load_checkpoint(tmp_path / "checkpoint.pt", config.replace(model="alif"))
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt", config)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_run(tmp_path / "nowhere")


def test_entropy_weight_delays_decisions(tmp_path):
    steps = []
    for weight in (0.0, 2.0):
        options = {**TOY, "limit_train": 512, "limit_val": 256}
        config = TrainConfig(model="lstm", loss="rank", epochs=2, entropy_weight=weight, **options)
        history = train(config, tmp_path / str(weight), progress=False, log=quiet).history
        steps.append(history[-1]["val_mean_decision_step"])
    assert steps[1] > steps[0] + 2, f"mean decision steps {steps} for entropy weights 0 and 2"


@pytest.mark.slow
def test_toy_task_rank_coding_decides_early_with_accuracy_close_to_full_sequence(tmp_path):
    """The paper's toy problem: the class can be told early, so RC should stop well before the end."""
    options = {**TOY, "limit_train": 1024, "limit_val": 512, "hidden": 32}
    results = {}
    for loss in ("rank", "full"):
        config = TrainConfig(model="alif", loss=loss, epochs=4, decision_threshold=0.9, **options)
        results[loss] = train(config, tmp_path / loss, progress=False, log=quiet).history[-1]
    rank, full = results["rank"], results["full"]
    assert rank["val_mean_decision_step"] < 0.6 * 24, rank
    assert rank["val_accuracy"] > full["val_accuracy_last_step"] - 0.08, (rank, full)
    assert rank["val_accuracy"] > 0.75


def test_evaluation_through_the_compiled_kernels_equals_the_model_itself():
    model = ALIFRSNN(7, 16, 4)
    with torch.no_grad():  # a network that spikes and crosses threshold 0.5 for some samples only
        model.layers[0].w_in.weight.mul_(4.0)
        model.readout.linear.weight.mul_(3.0)
    x, y = (torch.rand(40, 30, 7) < 0.4).float(), torch.randint(0, 4, (40,))
    result = evaluate_model(model, TensorDataset(x, y), 0.5, batch_size=16, progress=False)
    with torch.no_grad():
        logits_seq = model(x.transpose(0, 1))[0]
    decision = select_decision(logits_seq, 0.5)
    assert 0 < result["fraction_crossed"] < 1
    assert result["decision_steps"] == decision.steps.tolist()
    assert result["accuracy"] == int((decision.predictions == y).sum()) / 40
    assert result["accuracy_last_step"] == int((logits_seq[-1].argmax(-1) == y).sum()) / 40


@pytest.mark.parametrize("training", [True, False])
def test_evaluation_leaves_the_models_mode_as_it_was(training):
    model = ALIFRSNN(7, 8, 4).train(training)
    evaluate_model(model, TensorDataset(torch.rand(4, 5, 7), torch.zeros(4, dtype=torch.long)), 0.5, progress=False)
    assert model.training is training


def test_prefetched_batches_come_in_order_and_their_errors_reach_the_loop():
    from rc_snn.training.batches import prefetched

    assert list(prefetched(iter(range(7)), depth=2)) == list(range(7))

    def failing():
        yield 1
        raise ValueError("bad recording")

    items = prefetched(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad recording"):
        next(items)


def test_a_training_decision_threshold_moves_the_training_decisions_only():
    from rc_snn.training.step import training_step

    model, x, y = lively_alif64([12]).float(), random_spikes().float(), torch.randint(0, 4, (10,))
    low = training_step(model, x, y, TrainConfig(decision_threshold=0.3, hidden=12)).decision
    split = training_step(model, x, y, TrainConfig(decision_threshold=0.97, training_decision_threshold=0.3,
                                                   hidden=12)).decision
    high = training_step(model, x, y, TrainConfig(decision_threshold=0.97, hidden=12)).decision
    assert torch.equal(split.steps, low.steps) and not torch.equal(split.steps, high.steps)
    with pytest.raises(ValueError, match="training_decision_threshold"):
        TrainConfig(training_decision_threshold=1.5)
