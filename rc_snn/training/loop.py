"""Training loop with rank-coded or full-sequence loss, atomic checkpoints and resume.

:func:`train` fills a run folder (:mod:`rc_snn.training.run`): ``checkpoint.pt`` is written
atomically every epoch, every ``checkpoint_every_s`` seconds and on Ctrl-C. Resuming continues
from the saved batch of the interrupted epoch: each epoch's sample order is a function of
(seed, epoch), so the rest of the epoch is the same as it would have been. With ``nproc > 1`` (or
under ``torchrun``) the batches are shared out over processes (:mod:`rc_snn.training.distributed`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

from torch import Tensor, nn
from tqdm.auto import tqdm

from deploy.files import FolderLock

from .batches import epoch_batches, prefetched, training_batch
from .config import TrainConfig
from .distributed import World, launch, world_from_environment
from .evaluation import burn_in_of, evaluate_model, time_first
from .optim import build_average, build_optimizer, build_schedule, update_average
from .prune import Pruner
from .step import StepResult, check_decision_reachable, check_task, training_step
from .threads import refresh_threads, thread_budget
from .run import (CHECKPOINT_FILE, CHECKPOINT_FORMAT, TrainedRun, build_model, claim_run_folder, load_checkpoint,
                  load_run, load_split, load_state, resolve_device, save_run_state, set_aside_derived, start_from,
                  unclaim_if_empty)

@dataclass
class EpochSums:
    """An epoch's training figures so far, summed over its batches (over the processes once
    :meth:`over_processes` has run); a checkpoint holds them as a dict (``partial``)."""

    loss: float = 0.0  # each share's mean loss times its samples
    correct: float = 0.0  # the samples' scores (StepResult.score)
    samples: int = 0
    decision_steps: int = 0
    steps_simulated: int = 0  # steps each batch ran (its last decision)
    batches: int = 0
    sample_steps: int = 0  # steps computed, summed over samples
    full_sample_steps: int = 0  # what running every sample to the end would compute
    seconds: float = 0.0  # the training steps' time (model and optimiser)
    load_seconds: float = 0.0  # loading, augmenting and encoding the batches (beside a GPU: waiting for them)

    #: Divided by the number of processes after the sum: each process runs its own share of every batch.
    PER_PROCESS = ("steps_simulated", "batches")

    def add(self, step: StepResult, n_samples: int, n_steps: int) -> None:
        """One share of a batch: ``n_samples`` samples of ``n_steps`` steps."""
        self.loss += float(step.loss.detach()) * n_samples
        self.correct += float(step.score.sum())
        self.samples += n_samples
        self.decision_steps += int(step.decision.steps.sum())
        self.steps_simulated += step.decision.steps_simulated
        self.batches += 1
        self.sample_steps += step.decision.sample_steps
        self.full_sample_steps += n_steps * n_samples

    def summed(self, world: World) -> "EpochSums":
        """These sums added over the processes (all but the times, which stay this process's)."""
        summed = world.sum_metrics(asdict(self), [f.name for f in fields(self) if f.name not in ("seconds", "load_seconds")])
        return EpochSums(**summed)

    def over_processes(self, world: World) -> "EpochSums":
        """:meth:`summed`, with the per-process figures averaged (the epoch's figures)."""
        total = self.summed(world)
        for name in self.PER_PROCESS:
            setattr(total, name, getattr(total, name) / world.size)
        return total

    def history_entry(self, epoch: int, val: dict) -> dict:
        n = self.samples
        return {
            "epoch": epoch,
            "train_loss": self.loss / n,
            "train_accuracy": self.correct / n,
            "train_mean_decision_step": self.decision_steps / n,
            "train_steps_simulated": self.steps_simulated,
            "train_mean_steps_simulated": self.steps_simulated / max(self.batches, 1),
            "train_sample_steps": self.sample_steps,
            "train_sample_steps_fraction": self.sample_steps / self.full_sample_steps,
            "train_seconds": self.seconds,
            "train_load_seconds": self.load_seconds,
            "val_accuracy": val["accuracy"],
            "val_accuracy_last_step": val["accuracy_last_step"],
            "val_mean_decision_step": val.get("mean_decision_step"),  # None for a per-step task
            "val_fraction_crossed": val.get("fraction_crossed"),
        }


class Terminated(KeyboardInterrupt):
    """SIGTERM (how schedulers and ``kill`` stop a job), handled like Ctrl-C: checkpoint, then stop."""


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(
    config: TrainConfig, run_dir, *, resume: bool = True, progress: bool = True,
    checkpoint_every_s: float = 60.0, log=print, nproc: int = 1, world: Optional[World] = None,
) -> TrainedRun:
    """Train ``config`` in ``run_dir``; returns the trained run (model in eval mode, per-epoch
    metrics, also in ``metrics.json``). A finished run is loaded, an interrupted one resumes.

    The folder is claimed (``deploy.files.claim_folder``: a folder holding other files is refused)
    and locked for the whole run (``deploy.files.FolderLock``: a second training into it is
    refused); it changes only through :func:`~rc_snn.training.run.save_run_state`. Ctrl-C or
    SIGTERM, during training or validation, saves a checkpoint and re-raises (:class:`Terminated`
    for SIGTERM). With ``resume=False`` the old run stays whole until the new one's first checkpoint
    replaces it; then the files derived from the old weights are set aside
    (:func:`~rc_snn.training.run.set_aside_derived`). A finished run asked for fewer epochs than it
    has trained is refused (a run is never shortened).

    ``nproc > 1`` trains in that many processes on this machine (data parallel,
    :mod:`rc_snn.training.distributed`; the data is loaded here first, so its errors come as here);
    under ``torchrun`` each process joins the others from the environment. ``world`` is for the
    workers themselves.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"expected nproc as a positive integer; got {nproc!r}")
    resolve_device(config.device)  # a device this machine lacks: refused before any process starts
    run_dir = Path(run_dir)
    if world is not None or int(os.environ.get("RANK", "0")) != 0:  # a worker: the launching process owns the folder
        world = world or world_from_environment() or World()
        with sigterm_as_interrupt(), thread_budget():  # each worker is a job: the cores are shared
            return _train(config, run_dir, resume, progress and world.is_main, checkpoint_every_s,
                          log if world.is_main else (lambda *args, **kwargs: None), world)
    created = not run_dir.exists()
    claim_run_folder(run_dir)
    try:
        with FolderLock(run_dir):
            if nproc == 1:
                with sigterm_as_interrupt(), thread_budget():
                    return _train(config, run_dir, resume, progress, checkpoint_every_s, log,
                                  world_from_environment() or World())
            load_split(config, "train", config.limit_train, progress)  # user errors here, caches filled once
            load_split(config, "val", config.limit_val, progress)
            if resume and (run_dir / CHECKPOINT_FILE).exists():
                load_checkpoint(run_dir / CHECKPOINT_FILE, config)  # a checkpoint that does not fit: refused here
            launch(nproc, train, config, run_dir, resume=resume, progress=progress,
                   checkpoint_every_s=checkpoint_every_s)
            return load_run(run_dir)
    except BaseException:
        if created:  # failed before writing anything: leave no folder behind
            unclaim_if_empty(run_dir)
        raise


class _Session:
    """One training run in memory: the model and what trains it, the history and where the run stands.

    :meth:`restore` reads a checkpoint into it, :meth:`run_epoch` trains and validates one epoch
    (from the saved batch when resuming), :meth:`checkpoint` writes it to the run folder.
    """

    def __init__(self, config: TrainConfig, run_dir: Path, info, model: nn.Module, world: World, log) -> None:
        self.config, self.run_dir, self.info, self.world, self.log = config, run_dir, info, world, log
        self.model, self.optimizer = model, build_optimizer(model, config)
        self.schedule, self.average = build_schedule(self.optimizer, config), build_average(model, config)
        self.used = self.average.module if self.average is not None else model  # the weights validated and handed on
        self.pruner = (Pruner(model, config.prune_fraction, config.prune_epochs, self.used if self.average is not None else None)
                       if config.prune_fraction > 0 else None)
        self.history, self.epoch, self.batch_index, self.partial = [], 0, 0, None
        self.replacing = False  # set: the old run's derived files go at the first checkpoint

    def restore(self, checkpoint_path: Path) -> None:
        payload = load_checkpoint(checkpoint_path, self.config)
        if payload["epoch"] > self.config.epochs:
            raise ValueError(f"{self.run_dir} holds a run trained for {payload['epoch']} epochs; asked for "
                             f"{self.config.epochs}: a run is never shortened (ask for at least as many epochs, pick "
                             "another folder, or --no-resume to start over)")
        load_state(self.used, payload["model"], checkpoint_path)
        if self.average is not None:
            load_state(self.model, payload["trained_model"], checkpoint_path)
            self.average.n_averaged.fill_(payload["ema_updates"])
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"checkpoint {checkpoint_path} has an optimiser state that does not fit: {error}") from None
        self.schedule.load_state_dict(payload["schedule"])
        self.history, self.epoch, self.batch_index = payload["history"], payload["epoch"], payload["batch"]
        # the saved sums are over all processes: counted once
        self.partial = payload["partial"] if self.world.is_main else None
        self.log(f"{self.run_dir}: finished ({self.epoch} epochs)" if self.epoch == self.config.epochs
                 and self.batch_index == 0 else f"resuming {self.run_dir} at epoch {self.epoch + 1}, batch {self.batch_index}")

    def checkpoint(self, epoch_done: int, batch_done: int, sums: Optional[dict]) -> None:
        """Write the run folder's checkpoint (process 0 only); the first one of a replaced run sets the old
        run's derived files aside."""
        if not self.world.is_main:
            return
        if self.replacing:
            moved = set_aside_derived(self.run_dir)
            if moved:
                self.log(f"set aside in {self.run_dir / 'superseded'} (made from the old weights): "
                         + ", ".join(path.name for path in moved))
            self.replacing = False
        average = self.average
        averaged = {} if average is None else {"trained_model": self.model.state_dict(),
                                                "ema_updates": int(average.n_averaged)}
        save_run_state(self.run_dir, self.config, {
            "format": CHECKPOINT_FORMAT, "model_kind": self.config.model, "dataset_info": self.info.__dict__,
            "model": self.used.state_dict(), **averaged, "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": epoch_done, "batch": batch_done, "partial": sums, "history": self.history,
        })

    def _optimise(self, x: Tensor, y: Tensor, share: float) -> Optional[StepResult]:
        """One optimiser step on this process's share of a batch (``x`` None: no share); its step result."""
        self.optimizer.zero_grad(set_to_none=True)
        step = None
        if x is not None:
            step = training_step(self.model, x, y, self.config, self.info.burn_in)
            (step.loss * share).backward()  # this share's part of the batch's mean loss: summed over processes
        self.world.sum_gradients(self.model)
        self.optimizer.step()
        if self.pruner is not None:
            self.pruner.hold_model()
        if self.average is not None:  # (the pruned weights' zeros stay zeros: Pruner)
            update_average(self.average, self.model)
        return step

    def run_epoch(self, train_set, val_set, device, progress: bool, checkpoint_every_s: float):
        """Train the current epoch from the current batch and validate; ``(sums, val)`` (val: process 0's only).
        Ctrl-C or SIGTERM saves a checkpoint and re-raises; resuming re-runs what was cut short."""
        config, world = self.config, self.world
        if self.pruner is not None:  # the same fraction again on a resumed epoch: nothing changes
            self.pruner.start_epoch(self.epoch)
        batches = epoch_batches(len(train_set), config.batch_size, config.seed, self.epoch)
        sums = EpochSums(**(self.partial or {}))
        self.partial, last_save = None, time.monotonic()
        bar = tqdm(batches[self.batch_index:], desc=f"epoch {self.epoch + 1}/{config.epochs} [{config.model}/{config.loss}]",
                   total=len(batches), initial=self.batch_index, disable=not progress)
        try:
            # Each batch is loaded, augmented and encoded before the step's clock starts. Beside a GPU
            # that happens in a thread one batch ahead, as a DataLoader worker would; on the CPU in
            # turn, because the step's threads use every core this job has (.threads): a loader thread
            # there takes its time from the step's (measured on 2 cores: the step slower by what the
            # loading costs, the epoch no faster) and hides it in the step's clock.
            loading = (training_batch(train_set, world.share(batch), config, self.epoch, self.info)
                       for batch in batches[self.batch_index:])
            loaded = loading if device.type == "cpu" else prefetched(loading)
            for batch in bar:
                refresh_threads()  # another job started or ended: take this one's share of the cores
                asked = time.perf_counter()
                indices, x, y = next(loaded)  # a share can be empty (a last batch smaller than the processes)
                started = time.perf_counter()
                sums.load_seconds += started - asked
                if indices:
                    x, y = time_first(x, device), y.to(device)
                step = self._optimise(x if indices else None, y, len(indices) / len(batch))
                sums.seconds += time.perf_counter() - started
                self.batch_index += 1
                if step is not None:  # (process 0 always has a share: it shows the progress)
                    sums.add(step, len(indices), x.shape[0])
                    bar.set_postfix(loss=f"{sums.loss / sums.samples:.3f}", acc=f"{sums.correct / sums.samples:.3f}",
                                    t=f"{sums.decision_steps / sums.samples:.1f}")
                # every process takes part in this decision and the sums it may trigger, share or not
                if world.agree(time.monotonic() - last_save > checkpoint_every_s):
                    self.checkpoint(self.epoch, self.batch_index, asdict(sums.summed(world)))
                    last_save = time.monotonic()
            bar.close()
            sums = sums.over_processes(world)
            val = evaluate_model(self.used, val_set, config.decision_threshold, device=device, dt_ms=self.info.dt_ms,
                                 burn_in=burn_in_of(self.info), progress=progress,
                                 desc="validate") if world.is_main else None
        except KeyboardInterrupt as interrupt:  # also Terminated (SIGTERM)
            # Several processes cannot sum their metrics now: the epoch's resumed part is reported alone.
            self.checkpoint(self.epoch, self.batch_index, None if world.distributed else asdict(sums))
            cause = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
            self.log(f"\n{cause}: checkpoint saved at epoch {self.epoch + 1}, batch {self.batch_index}; run again to resume")
            raise
        finally:
            bar.close()
        self.epoch, self.batch_index = self.epoch + 1, 0
        with warnings.catch_warnings():  # a run resumed after its epoch's last batch steps no optimiser first
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.schedule.step()
        return sums, val


def _train(config: TrainConfig, run_dir: Path, resume: bool, progress: bool, checkpoint_every_s: float,
           log, world: World) -> TrainedRun:
    checkpoint_path = run_dir / CHECKPOINT_FILE
    device = world.device(resolve_device(config.device))
    train_set, info = load_split(config, "train", config.limit_train, progress)
    val_set, _ = load_split(config, "val", config.limit_val, progress)
    check_task(config, info)
    check_decision_reachable(config, info.n_classes)
    model = build_model(config, info)
    resuming = resume and checkpoint_path.exists()
    if config.init_from is not None and not resuming:  # a run with its own checkpoint needs its source no more
        start_from(model, config.init_from)
    session = _Session(config, run_dir, info, model.to(device), world, log)
    if resuming:
        session.restore(checkpoint_path)
    session.replacing = checkpoint_path.exists() and not resume
    world.broadcast_parameters(session.model)
    if session.average is not None:
        world.broadcast_parameters(session.average.module)
    while session.epoch < config.epochs:
        sums, val = session.run_epoch(train_set, val_set, device, progress, checkpoint_every_s)
        if not world.is_main:
            continue
        entry = sums.history_entry(session.epoch, val)
        session.history.append(entry)
        session.checkpoint(session.epoch, 0, None)
        decided = ("per step" if info.per_step else
                   f"mean decision step {entry['val_mean_decision_step']:.1f}/{val['n_steps']}")
        log(f"epoch {session.epoch}: train acc {entry['train_accuracy']:.3f}, val acc {entry['val_accuracy']:.3f} "
            f"(last step {entry['val_accuracy_last_step']:.3f}), {decided}, {entry['train_seconds']:.1f} s")
    return TrainedRun(config, session.used.eval(), info, run_dir, session.history)
