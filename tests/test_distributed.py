"""Data-parallel training: N processes give the update of one process with the whole batch, a run
resumes with another N, and a dead worker is a clear error, not a hang (every test under a timeout)."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from rc_snn.models import ALIFRSNN
from rc_snn.training.config import TrainConfig
from rc_snn.training.distributed import World, WorkerFailed, launch
from rc_snn.training.loop import train
from rc_snn.training.step import training_step
from rc_snn.training.run import load_run

CONFIG = TrainConfig(decision_threshold=0.6, hidden=8)


def batch_of_64():
    generator = torch.Generator().manual_seed(11)
    x = (torch.rand(30, 64, 6, generator=generator, dtype=torch.float64) < 0.3).double() * 2
    return x, torch.randint(0, 3, (64,), generator=generator)


def one_step(world: World, batch=range(64)) -> dict:
    """One optimiser step on this process's share of ``batch`` of a fixed 64 samples (float64)."""
    torch.manual_seed(2)
    model = ALIFRSNN(6, 8, 3).double()
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = batch_of_64()
    share = world.share(list(batch))
    loss, _, _ = training_step(model, x[:, share], y[share], CONFIG)
    (loss * (len(share) / len(batch))).backward()
    world.sum_gradients(model)
    optimizer.step()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def one_step_job(path, *, world: World) -> None:
    parameters = one_step(world)
    if world.is_main:
        torch.save(parameters, path)


@pytest.mark.timeout(180)
def test_two_processes_of_32_make_the_step_of_one_process_of_64(tmp_path):
    launch(2, one_step_job, tmp_path / "two.pt")
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    one = one_step(World())
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-12, atol=1e-14)
    half = one_step(World(), range(0, 64, 2))  # process 0's share alone: another step
    assert any(not torch.allclose(value, half[name]) for name, value in one.items())


@pytest.mark.timeout(300)
def test_a_two_process_run_resumes_with_one_process(tmp_path):
    # 97 samples: the last batch has one, so process 1 has an empty share there and must still take part
    config = TrainConfig(dataset="toy", hidden=8, epochs=1, limit_train=97, limit_val=32, batch_size=32)
    two = train(config, tmp_path / "two", nproc=2, progress=False)
    one = train(config, tmp_path / "one", progress=False, log=lambda *a: None)
    for (name, a), b in zip(two.model.state_dict().items(), one.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)  # the same training, another sum order
    assert two.history[0]["train_accuracy"] == pytest.approx(one.history[0]["train_accuracy"])
    # steps simulated per batch: the mean of the processes' shares (each runs to its own last decision),
    # about what one process running the whole batch simulates (summed over processes, it doubled);
    # the two runs' decisions may differ a little (another sum order), hence the margin
    assert 0 < two.history[0]["train_steps_simulated"] < 1.5 * one.history[0]["train_steps_simulated"]
    resumed = train(config.replace(epochs=2), tmp_path / "two", progress=False, log=lambda *a: None)
    assert [entry["epoch"] for entry in resumed.history] == [1, 2]
    assert resumed.history[0] == load_run(tmp_path / "two").history[0] == two.history[0]


def dying_job(*, world: World) -> None:
    if world.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    torch.distributed.barrier()  # would wait forever on the dead peer without the launcher's clean-up


@pytest.mark.timeout(120)
def test_a_killed_worker_is_a_clear_error_not_a_hang():
    with pytest.raises(WorkerFailed, match="training process 1 of 2 died.*run again to resume"):
        launch(2, dying_job)
    with pytest.raises(ValueError, match="nproc"):
        launch(0, dying_job)


@pytest.mark.timeout(120)
def test_a_run_that_does_not_fit_its_checkpoint_is_refused_before_any_worker_starts(tmp_path):
    config = TrainConfig(dataset="toy", hidden=8, epochs=1, limit_train=32, limit_val=16, batch_size=32)
    train(config, tmp_path / "run", progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="hidden"):
        train(config.replace(hidden=16, epochs=2), tmp_path / "run", nproc=2, progress=False)
