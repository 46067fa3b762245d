"""The training batches of an epoch: which samples (a function of seed and epoch only), loaded,
augmented and encoded (beside a GPU one batch ahead in a background thread, as a DataLoader worker
would: :func:`prefetched`)."""

from __future__ import annotations

import queue
import threading

import torch
from torch.utils.data import default_collate

from ..data.augment import augment_batch
from ..data.cache import SparseFrames
from ..data.encoding import EncodedFrames, encode_frames
from .config import TrainConfig


def epoch_batches(n_samples: int, batch_size: int, seed: int, epoch: int) -> list:
    """The epoch's shuffled batches of indices; a function of (seed, epoch) only."""
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n_samples, batch_size)]


def training_batch(train_set, indices: list, config: TrainConfig, epoch: int, info) -> tuple:
    """``(indices, x [batch, time, features], y)`` of one share of a training batch: loaded,
    augmented (a function of seed, epoch and index) and encoded; ``x, y`` are None for an empty share."""
    if not indices:
        return indices, None, None
    x, y = load_batch(train_set, indices)
    x = augment_batch(x, indices, seed=config.seed, epoch=epoch, shift_px=config.shift_px,
                      rotate_deg=config.rotate_deg, zoom=config.zoom, drop_events=config.drop_events,
                      sensor=info.sensor)
    # encoded after the move (it can merge pixels), in place: x is this batch's own (collated or densified)
    return indices, encode_frames(x, config.input_encoding, in_place=True), y


def load_batch(dataset, indices: list) -> tuple:
    """``(x, y)`` of the items ``indices``: from sparse frames (:class:`~rc_snn.data.cache.SparseFrames`,
    encoded or not) a :class:`~rc_snn.data.cache.SparseBatch` for :func:`augment_batch` to densify and
    move at once; from any other dataset the collated frames ``[batch, time, features]``."""
    source = dataset.dataset if isinstance(dataset, EncodedFrames) else dataset
    if not isinstance(source, SparseFrames):
        return default_collate([dataset[index] for index in indices])
    sparse, y = source.batch(indices)
    if source is not dataset:  # the encodings map each count alone and 0 to 0: the nonzero bins' counts suffice
        sparse = sparse._replace(count=encode_frames(sparse.count, dataset.encoding))
    return sparse, y


def prefetched(items, depth: int = 2):
    """Iterate ``items`` (a generator) computed in a background thread up to ``depth`` ahead; an
    exception there is raised here; the thread stops when this iterator is closed or collected."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((done, None))
        except BaseException as error:  # handed to the consumer
            buffer.put((None, error))

    worker = threading.Thread(target=produce, daemon=True, name="rc-snn-prefetch")
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
