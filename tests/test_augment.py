"""Augmentation: equal to the same operation on the events, deterministic per (seed, epoch, sample), training only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rc_snn.training.batches as batches_module
import rc_snn.training.loop as loop_module
from rc_snn.data.augment import augment_batch, destinations, move, translate
from rc_snn.data.cache import SparseFrames, encode_frames as sparse_entries
from rc_snn.data.encoding import encoded
from rc_snn.training.batches import load_batch, training_batch
from rc_snn.data.events import NMNIST_DTYPE, NMNIST_SENSOR, events_to_frames
from rc_snn.data.nmnist import split_files
from rc_snn.training.config import TrainConfig
from rc_snn.training.loop import train
from rc_snn.training.run import load_run
from helpers import write_copy

SENSOR = (2, 34, 34)


def random_events(n=400, seed=0):
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=NMNIST_DTYPE)
    events["x"], events["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    events["t"], events["p"] = np.sort(rng.integers(0, 100_000, n)), rng.integers(0, 2, n)
    return events


def frames_of(events):
    return torch.from_numpy(events_to_frames(events, NMNIST_SENSOR, 5000.0, 20).reshape(20, -1).astype(np.float32))


@pytest.mark.parametrize("dx, dy", [(2, -1), (-2, 2), (0, 0), (-1, 0)])
def test_translating_frames_equals_translating_the_events(dx, dy):
    events = random_events()
    moved = events.copy()
    moved["x"], moved["y"] = events["x"] + dx, events["y"] + dy
    on_sensor = (moved["x"] >= 0) & (moved["x"] < 34) & (moved["y"] >= 0) & (moved["y"] < 34)
    expected = frames_of(moved[on_sensor])
    frames = frames_of(events)
    before = frames.clone()
    assert torch.equal(translate(frames, SENSOR, dx, dy), expected)
    assert torch.equal(frames, before)  # input not mutated


def test_rotating_and_scaling_frames_equals_moving_each_event():
    events = random_events()
    theta, scale, dx, dy = 0.2, 1.1, 1, -2
    cx = cy = 16.5
    x, y = events["x"] - cx, events["y"] - cy
    moved = events.copy()
    new_x = np.round(scale * (np.cos(theta) * x - np.sin(theta) * y) + cx + dx).astype(int)
    new_y = np.round(scale * (np.sin(theta) * x + np.cos(theta) * y) + cy + dy).astype(int)
    on_sensor = (new_x >= 0) & (new_x < 34) & (new_y >= 0) & (new_y < 34)
    moved = moved[on_sensor]
    moved["x"], moved["y"] = new_x[on_sensor], new_y[on_sensor]
    got = move(frames_of(events), destinations(SENSOR, dx, dy, theta, scale))
    assert torch.equal(got, frames_of(moved))
    assert 0 < int(got.sum()) <= int(frames_of(events).sum())


def test_a_batch_moves_each_sample_by_its_own_move():
    frames = torch.stack([frames_of(random_events(seed=s)) for s in range(3)])
    moves = [(2, -1, 0.2, 1.1), (-2, 0, -0.25, 0.9), (0, 2, 0.0, 1.0)]
    batched = destinations(SENSOR, *(torch.tensor(v) for v in zip(*moves)))
    alone = [destinations(SENSOR, *m) for m in moves]
    assert torch.equal(batched, torch.stack(alone))
    assert torch.equal(move(frames, batched), torch.stack([move(f, d) for f, d in zip(frames, alone)]))


@pytest.mark.parametrize("encoding", ["counts", "binary"])
@pytest.mark.parametrize("options", [dict(), dict(shift_px=2, rotate_deg=15.0, zoom=0.15), dict(drop_events=0.3),
                                     dict(shift_px=1, drop_events=0.2)])
def test_a_sparse_batch_augments_to_the_collated_frames_augmented(encoding, options):
    frames = [frames_of(random_events(n=2000 + 50 * s, seed=s)) for s in range(5)]  # some bins hold 2+
    entries = [sparse_entries(f.numpy().astype(np.int64)) for f in frames]
    offsets = np.cumsum([0] + [len(flat) for flat, _ in entries])
    dataset = encoded(SparseFrames(offsets, np.concatenate([f for f, _ in entries]), np.concatenate([c for _, c in entries]),
                                   np.arange(5) % 3, 20, 2 * 34 * 34), encoding)
    indices = [3, 0, 4, 4]
    sparse, labels = load_batch(dataset, indices)
    collated = torch.stack([dataset[i][0] for i in indices])
    assert torch.equal(labels, torch.tensor([0, 0, 1, 1])) and bool((collated > 1).any()) == (encoding == "counts")
    got = augment_batch(sparse, indices, seed=1, epoch=2, sensor=SENSOR, **options)
    assert torch.equal(got, augment_batch(collated, indices, seed=1, epoch=2, sensor=SENSOR, **options))
    if not options:
        assert torch.equal(got, collated)


@pytest.mark.parametrize("options", [dict(shift_px=2, rotate_deg=15.0, zoom=0.15), dict(zoom=0.3, drop_events=0.3)])
def test_a_binary_training_batch_is_its_augmented_counts_above_zero(options):
    """Encoded again after the move (merged pixels: 2 -> 1), in the batch's own memory."""
    frames = [frames_of(random_events(n=2000 + 50 * s, seed=s)) for s in range(4)]
    entries = [sparse_entries(f.numpy().astype(np.int64)) for f in frames]
    binary = encoded(SparseFrames(np.cumsum([0] + [len(flat) for flat, _ in entries]), np.concatenate([f for f, _ in entries]),
                                  np.concatenate([c for _, c in entries]), np.arange(4) % 3, 20, 2 * 34 * 34), "binary")
    config = TrainConfig(input_encoding="binary", **options)
    indices = [2, 0, 3]
    moved = augment_batch(load_batch(binary, indices)[0], indices, seed=config.seed, epoch=1, sensor=SENSOR, **options)
    assert bool((moved > 1).any())
    _, x, _ = training_batch(binary, indices, config, 1, type("Info", (), {"sensor": SENSOR}))
    assert torch.equal(x, (moved > 0).float())


def test_augmentation_is_a_function_of_seed_epoch_and_sample_only():
    frames = torch.stack([frames_of(random_events(seed=s)) for s in range(4)])
    options = dict(seed=3, shift_px=2, rotate_deg=10.0, zoom=0.1, drop_events=0.2, sensor=SENSOR)
    whole = augment_batch(frames, [10, 11, 12, 13], epoch=5, **options)
    again = augment_batch(frames[[2, 0]], [12, 10], epoch=5, **options)  # other batch, other order
    assert torch.equal(whole[[2, 0]], again)
    assert not torch.equal(augment_batch(frames, [10, 11, 12, 13], epoch=6, **options), whole)
    assert not torch.equal(augment_batch(frames, [10, 11, 12, 13], epoch=5, **{**options, "seed": 4}), whole)
    # Drop thins the counts: never more events than before, none created, about (1 - p) kept.
    thinned = augment_batch(frames, [0, 1, 2, 3], epoch=0, seed=0, drop_events=0.2, sensor=SENSOR)
    assert bool((thinned <= frames).all()) and bool((thinned == thinned.round()).all())
    assert 0.75 < float(thinned.sum() / frames.sum()) < 0.85
    assert augment_batch(frames, [0, 1, 2, 3], epoch=0, seed=0) is frames  # nothing asked, nothing done


def test_translation_needs_a_known_sensor():
    with pytest.raises(ValueError, match="known sensor"):
        augment_batch(torch.zeros(1, 5, 7), [0], seed=0, epoch=0, shift_px=1, sensor=None)


def test_folds_are_disjoint_and_cover_every_file(tmp_path):
    write_copy(tmp_path, per_class=3)  # 30 files, indices 1..30
    root = tmp_path / "NMNIST"
    every = {str(path) for path in split_files(root, "train", 10, 0)[0] + split_files(root, "val", 10, 0)[0]}
    held_out = [set(map(str, split_files(root, "val", 5, fold)[0])) for fold in range(5)]
    assert all(not (a & b) for i, a in enumerate(held_out) for b in held_out[i + 1:])
    assert set().union(*held_out) == every and len(every) == 30
    for fold in range(5):
        trained = set(map(str, split_files(root, "train", 5, fold)[0]))
        assert trained == every - held_out[fold]


def test_training_augments_only_training_batches_and_resumes_exactly(tmp_path, monkeypatch, no_network):
    write_copy(tmp_path / "data", per_class=4)
    config = TrainConfig(dataset="nmnist", data_dir=str(tmp_path / "data"), window="first-saccade", hidden=8,
                         batch_size=8, epochs=2, shift_px=2, drop_events=0.1, lr_decay=0.5, device="cpu")
    seen = []
    real_augment = batches_module.augment_batch

    def recording(x, indices, **kwargs):
        seen.append((list(indices), kwargs["epoch"]))
        return real_augment(x, indices, **kwargs)

    monkeypatch.setattr(batches_module, "augment_batch", recording)
    train(config, tmp_path / "straight", progress=False, log=lambda *a: None)
    assert sorted(i for indices, epoch in seen if epoch == 0 for i in indices) == list(range(36))  # train only

    real_step, calls = loop_module.training_step, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 2, batch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop_module, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=False, log=lambda *a: None)
    monkeypatch.setattr(loop_module, "training_step", real_step)
    train(config, tmp_path / "resumed", progress=False, log=lambda *a: None)
    straight, resumed = load_run(tmp_path / "straight").model, load_run(tmp_path / "resumed").model
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
