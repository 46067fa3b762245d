"""Data-parallel training on ``torch.distributed``: N processes on one machine, or ``torchrun`` across machines.

Each global batch of :func:`rc_snn.training.batches.epoch_batches` (a function of seed and epoch, so
the same in every process and for every N) is shared out by position: process ``r`` of ``N``
trains on samples ``r, r + N, ...`` of it. Every process runs its share with rank-coded early
exit on its own (its part of the batch leaves at its own last decision), scales its loss by its
share of the batch (``local samples / batch samples``) and the gradients are summed across
processes (:meth:`World.sum_gradients`): the update is then exactly that of the whole batch in
one process, whatever N (tested in float64, up to summation order).

Why an explicit all-reduce and not ``DistributedDataParallel``: the processes run different
numbers of steps per batch (each stops at its own last decision) and the compiled engine's
gradients come from custom autograd functions; parameters may get no gradient in a step (a share
where no sample reached a layer's use). DDP's bucketed hooks need every process to produce the
same gradients in the same order (or ``find_unused_parameters`` and its extra pass); one
``all_reduce`` of the flattened gradients after ``backward`` is simpler and exact.

Process 0 alone shows progress, validates, logs and writes the run folder; the epoch's training
metrics are summed over processes. Checkpoints hold the global position in the epoch, so a run
resumes with any N. On one machine :func:`launch` starts the N processes (gloo on CPU, NCCL
with one GPU each); under ``torchrun`` each process joins from the environment
(:func:`world_from_environment`). A worker that fails or is killed stops the others and raises
:class:`WorkerFailed` naming it; the last checkpoint is intact.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn


class WorkerFailed(RuntimeError):
    """A training process failed or was killed; the others were stopped."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (``size`` 1: no ``torch.distributed``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, indices: list) -> list:
        """This process's samples of a global batch: positions ``rank, rank + size, ...``."""
        return indices[self.rank::self.size]

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process on a machine; the CPU is shared."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.distributed else device

    def broadcast_parameters(self, model: nn.Module) -> None:
        """Process 0's parameters and buffers in every process (they start equal anyway: same seed)."""
        if self.distributed:
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor.data, src=0)

    def sum_gradients(self, model: nn.Module) -> None:
        """Sum every parameter's gradient over the processes (a missing gradient counts as zero)."""
        if not self.distributed:
            return
        parameters = [p for p in model.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in parameters])
        dist.all_reduce(flat)
        offset = 0
        for p in parameters:
            p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def sum_metrics(self, sums: dict, keys) -> dict:
        """``sums`` with ``keys`` summed over the processes (the others kept as process 0 has them)."""
        if not self.distributed:
            return sums
        values = torch.tensor([float(sums[key]) for key in keys], dtype=torch.float64)
        dist.all_reduce(values)
        return {**sums, **{key: (type(sums[key]))(value) for key, value in zip(keys, values.tolist())}}

    def agree(self, flag: bool) -> bool:
        """Process 0's ``flag`` in every process (for decisions that need a collective, like saving)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0])
        dist.broadcast(value, src=0)
        return bool(value.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def world_from_environment() -> Optional[World]:
    """The world ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joined; None outside it."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, size: int, port: int, job, args: tuple, kwargs: dict) -> None:
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        job(*args, world=World(rank, size, rank), **kwargs)
    finally:
        dist.destroy_process_group()


def launch(nproc: int, job, *args, **kwargs) -> None:
    """Run ``job(*args, world=World(...), **kwargs)`` in ``nproc`` processes on this machine.

    Raises :class:`WorkerFailed` (one line naming the process and why) when one fails or is killed;
    ``torch.multiprocessing`` then stops the others, so nothing waits on a dead peer.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"expected --nproc as a positive integer; got {nproc!r}")
    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise ValueError(f"--nproc {nproc} needs one GPU per process; torch sees {torch.cuda.device_count()}")
    import torch.multiprocessing as mp

    try:
        mp.spawn(_worker, args=(nproc, _free_port(), job, args, kwargs), nprocs=nproc, join=True)
    except mp.ProcessExitedException as error:
        raise WorkerFailed(f"training process {error.error_index} of {nproc} died ({error}); the others were "
                           "stopped and the last checkpoint is intact: run again to resume") from None
    except mp.ProcessRaisedException as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise WorkerFailed(f"training process {error.error_index} of {nproc} failed: {last}; the others were "
                           "stopped and the last checkpoint is intact: run again to resume") from None

