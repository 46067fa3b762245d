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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from deploy.files import FolderLock

from .batches import epoch_batches, prefetched, training_batch
from .bptt import engine_for, run_alif
from .config import TrainConfig
from .distributed import World, launch, world_from_environment
from .evaluation import burn_in_of, evaluate_model, time_first
from .early_exit import Decision, mean_entropy_until, read_last_step, run_until_decision, select_decision
from .losses import activity_penalty, full_sequence_loss, per_step_accuracy, per_step_loss, rank_coded_loss
from .optim import build_average, build_optimizer, build_schedule, update_average
from .prune import Pruner
from .threads import refresh_threads, thread_budget
from .run import (CHECKPOINT_FILE, CHECKPOINT_FORMAT, TrainedRun, build_model, claim_run_folder, load_checkpoint,
                  load_run, load_split, load_state, resolve_device, save_run_state, set_aside_derived, start_from,
                  unclaim_if_empty)

class StepResult(NamedTuple):
    """One training step: the batch's loss (with its graph), each sample's decision and its score (1 or 0
    for a correct or wrong answer; for a per-step task its fraction of steps labelled correctly)."""

    loss: Tensor
    decision: Decision
    score: Tensor


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
        """These sums added over the processes (all but ``seconds``, which stays this process's)."""
        summed = world.sum_metrics(asdict(self), [f.name for f in fields(self) if f.name != "seconds"])
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
            "val_accuracy": val["accuracy"],
            "val_accuracy_last_step": val["accuracy_last_step"],
            "val_mean_decision_step": val.get("mean_decision_step"),  # None for a per-step task
            "val_fraction_crossed": val.get("fraction_crossed"),
        }


def check_task(config: TrainConfig, info) -> None:
    """Refuse a per-step loss on a dataset with one label per sample, and the reverse."""
    if info.per_step != (config.loss == "per-step"):
        raise ValueError(f"dataset {info.name!r} has {'a label at every step' if info.per_step else 'one label per sample'}: "
                         f"train it with --loss {'per-step' if info.per_step else 'rank or full'}; got {config.loss!r}")


def training_threshold(config: TrainConfig) -> float:
    """The decision threshold of the rank-coded loss in training (``training_decision_threshold``, else
    ``decision_threshold``)."""
    if config.training_decision_threshold is None:
        return config.decision_threshold
    return config.training_decision_threshold


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                  burn_in: int = 0) -> StepResult:
    """Loss, decisions and scores of one step (the caller runs backward on ``loss``); ``burn_in``: the
    first judged step of a per-step task."""
    rank = config.loss == "rank"
    threshold = training_threshold(config)
    # every sample runs to the last step (a model whose training needs whole sequences: always)
    full_run = not rank or config.last_step_weight > 0 or getattr(model, "needs_full_sequence", False)
    engine = engine_for(model, x, config.backward)
    compiled = engine == "compiled"
    penalise = config.activity_weight > 0  # the spikes' penalty needs their counts (ALIF only: config)
    if full_run:
        if engine != "autograd":
            logits_seq, full_decision = run_alif(model, x, None, chunk_size=config.chunk_size, compiled=compiled)
            spike_counts = full_decision.spike_counts  # over every step: every step is computed
        else:
            logits_seq, spike_counts = model(x)[0], None
    if rank and full_run:  # the rank-coded loss read off the whole sequence's outputs (rc_snn.training.losses)
        decision = select_decision(logits_seq, threshold)
        entropy = mean_entropy_until(logits_seq, decision.steps) if config.entropy_weight > 0 else None
        decision = replace(decision, mean_entropy=entropy, sample_steps=logits_seq.shape[0] * logits_seq.shape[1],
                           spike_counts=spike_counts)
    elif rank and engine != "autograd":
        _, decision = run_alif(model, x, threshold, chunk_size=config.chunk_size,
                               track_entropy=config.entropy_weight > 0, compiled=compiled)
    elif rank:
        decision = run_until_decision(model, x, threshold, chunk_size=config.chunk_size,
                                      track_entropy=config.entropy_weight > 0, track_spikes=penalise)
    if rank:
        loss = rank_coded_loss(decision.logits, y, decision.mean_entropy, config.entropy_weight,
                               logits_seq[-1] if full_run else None, config.last_step_weight, config.label_smoothing)
    elif config.loss == "per-step":
        loss = per_step_loss(logits_seq, y, burn_in, config.label_smoothing)
        decision = replace(read_last_step(logits_seq.detach()), spike_counts=spike_counts)
    else:
        loss = full_sequence_loss(logits_seq, y, config.full_readout, config.label_smoothing)
        decision = replace(read_last_step(logits_seq.detach()), spike_counts=spike_counts)
    if penalise:
        loss = loss + activity_penalty(decision.spike_counts, sum(layer.n_neurons for layer in model.layers),
                                       config.activity_weight)
    score = (per_step_accuracy(logits_seq.detach(), y, burn_in) if config.loss == "per-step"
             else (decision.predictions == y).double())
    return StepResult(loss, decision, score)


def check_decision_reachable(config: TrainConfig, n_classes: int) -> None:
    """Refuse a rank-coded run whose label smoothing makes its decision threshold unreachable: the
    smoothed loss is lowest where the true class has probability ``1 - eps + eps / C``."""
    best = 1.0 - config.label_smoothing + config.label_smoothing / n_classes
    highest = max(config.decision_threshold, training_threshold(config))
    if config.loss == "rank" and highest >= best:
        raise ValueError(f"decision threshold {highest} cannot be reached with label_smoothing "
                         f"{config.label_smoothing} over {n_classes} classes: the loss is lowest at probability "
                         f"{best:.4g}; lower the threshold or the smoothing")


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
    model = model.to(device)
    optimizer = build_optimizer(model, config)
    schedule = build_schedule(optimizer, config)
    average = build_average(model, config)
    used = average.module if average is not None else model  # the weights validated and handed on
    history, epoch, batch_index, partial = [], 0, 0, None

    replacing = checkpoint_path.exists() and not resume  # the old run's derived files go at the first checkpoint
    if resuming:
        payload = load_checkpoint(checkpoint_path, config)
        if payload["epoch"] > config.epochs:
            raise ValueError(f"{run_dir} holds a run trained for {payload['epoch']} epochs; asked for {config.epochs}: "
                             "a run is never shortened (ask for at least as many epochs, pick another folder, or "
                             "--no-resume to start over)")
        load_state(used, payload["model"], checkpoint_path)
        if average is not None:
            load_state(model, payload["trained_model"], checkpoint_path)
            average.n_averaged.fill_(payload["ema_updates"])
        try:
            optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"checkpoint {checkpoint_path} has an optimiser state that does not fit: {error}") from None
        history, epoch, batch_index, partial = payload["history"], payload["epoch"], payload["batch"], payload["partial"]
        partial = partial if world.is_main else None  # the saved sums are over all processes: counted once
        schedule.load_state_dict(payload["schedule"])
        log(f"{run_dir}: finished ({epoch} epochs)" if epoch == config.epochs and batch_index == 0 else
            f"resuming {run_dir} at epoch {epoch + 1}, batch {batch_index}")
    world.broadcast_parameters(model)
    if average is not None:
        world.broadcast_parameters(average.module)

    def checkpoint(epoch_done: int, batch_done: int, sums) -> None:
        nonlocal replacing
        if not world.is_main:
            return
        if replacing:
            moved = set_aside_derived(run_dir)
            if moved:
                log(f"set aside in {run_dir / 'superseded'} (made from the old weights): "
                    + ", ".join(path.name for path in moved))
            replacing = False
        averaged = {} if average is None else {"trained_model": model.state_dict(),
                                                "ema_updates": int(average.n_averaged)}
        save_run_state(run_dir, config, {
            "format": CHECKPOINT_FORMAT, "model_kind": config.model, "dataset_info": info.__dict__,
            "model": used.state_dict(), **averaged, "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "epoch": epoch_done, "batch": batch_done, "partial": sums, "history": history,
        })

    pruner = (Pruner(model, config.prune_fraction, config.prune_epochs, average.module if average is not None else None)
              if config.prune_fraction > 0 else None)
    while epoch < config.epochs:
        if pruner is not None:  # the same fraction again on a resumed epoch: nothing changes
            pruner.start_epoch(epoch)
        batches = epoch_batches(len(train_set), config.batch_size, config.seed, epoch)
        sums = EpochSums(**(partial or {}))
        partial, last_save = None, time.monotonic()
        bar = tqdm(batches[batch_index:], desc=f"epoch {epoch + 1}/{config.epochs} [{config.model}/{config.loss}]",
                   total=len(batches), initial=batch_index, disable=not progress)
        try:
            # Loaded, augmented and encoded in a thread one batch ahead (as a DataLoader worker
            # would), so that the step's clock times the model and the optimiser alone.
            loaded = prefetched(training_batch(train_set, world.share(batch), config, epoch, info)
                                for batch in batches[batch_index:])
            for batch in bar:
                refresh_threads()  # another job started or ended: take this one's share of the cores
                indices, x, y = next(loaded)  # a share can be empty (a last batch smaller than the processes)
                started = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                if indices:
                    x, y = time_first(x, device), y.to(device)
                    step = training_step(model, x, y, config, info.burn_in)
                    # this share's part of the batch's mean loss: summed over processes, the batch's
                    (step.loss * (len(indices) / len(batch))).backward()
                world.sum_gradients(model)
                optimizer.step()
                if pruner is not None:
                    pruner.hold()
                if average is not None:
                    update_average(average, model)
                    if pruner is not None:
                        pruner.hold()
                sums.seconds += time.perf_counter() - started
                batch_index += 1
                if indices:  # (process 0 always has a share: it shows the progress)
                    sums.add(step, len(indices), x.shape[0])
                    bar.set_postfix(loss=f"{sums.loss / sums.samples:.3f}", acc=f"{sums.correct / sums.samples:.3f}",
                                    t=f"{sums.decision_steps / sums.samples:.1f}")
                # every process takes part in this decision and the sums it may trigger, share or not
                if world.agree(time.monotonic() - last_save > checkpoint_every_s):
                    checkpoint(epoch, batch_index, asdict(sums.summed(world)))
                    last_save = time.monotonic()
            bar.close()
            sums = sums.over_processes(world)
            val = evaluate_model(used, val_set, config.decision_threshold, device=device, dt_ms=info.dt_ms,
                                 burn_in=burn_in_of(info), progress=progress, desc="validate") if world.is_main else None
        except KeyboardInterrupt as interrupt:  # also Terminated (SIGTERM); resuming re-runs what was cut short
            # Several processes cannot sum their metrics now: the epoch's resumed part is reported alone.
            checkpoint(epoch, batch_index, None if world.distributed else asdict(sums))
            cause = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
            log(f"\n{cause}: checkpoint saved at epoch {epoch + 1}, batch {batch_index}; run again to resume")
            raise
        finally:
            bar.close()
        epoch, batch_index = epoch + 1, 0
        with warnings.catch_warnings():  # a run resumed after its epoch's last batch steps no optimiser first
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            schedule.step()
        if not world.is_main:
            continue
        history.append(sums.history_entry(epoch, val))
        checkpoint(epoch, 0, None)
        entry = history[-1]
        decided = ("per step" if info.per_step else
                   f"mean decision step {entry['val_mean_decision_step']:.1f}/{val['n_steps']}")
        log(f"epoch {epoch}: train acc {entry['train_accuracy']:.3f}, val acc {entry['val_accuracy']:.3f} "
            f"(last step {entry['val_accuracy_last_step']:.3f}), {decided}, {entry['train_seconds']:.1f} s")
    return TrainedRun(config, used.eval(), info, run_dir, history)
