"""What several test modules share: small networks that spike, random frames and spike inputs, Lava
comparisons, snnTorch networks, a small N-MNIST copy on disk, the toy run's flags and the CLI's
one-line-error check. (Fixtures live in conftest.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import snntorch as snn
import torch
from torch import nn

from rc_snn.models import ALIFRSNN, IRSNN
from rc_snn.neuron.alif import ALIFParams
from rc_snn.neuron.irsnn import IRParams
from rc_snn.pipeline.cli import main
from rc_snn.plugin import RALIF


#: Seconds a Lava test may run (pytest-timeout): an error in a recurrent Lava run can hang it.
LAVA_TIMEOUT = 120


def random_frames(n, t, f, rate=0.1, seed=0, graded=False):
    rng = np.random.default_rng(seed)
    frames = (rng.random((n, t, f)) < rate).astype(np.float64)
    if graded:
        frames *= rng.integers(1, 4, size=frames.shape)
    return frames


#: Yin et al.'s adaptive output neurons (their ECG script's constants, with some spread).
YIN_OUTPUT = ALIFParams(b0=0.01, beta=1.8, tau_m=(20.0, 5.0), tau_adp=(100.0, 10.0))


def lively_alif(n_inputs, hidden, n_outputs, seed=0, output_layer="leaky"):
    """A random network scaled so that every layer spikes (the default init is nearly silent on sparse input);
    ``output_layer="adaptive"``: Yin et al.'s adaptive output layer instead of the leaky readout."""
    torch.manual_seed(seed)
    model = ALIFRSNN(n_inputs, hidden, n_outputs, output_layer=output_layer, output_params=YIN_OUTPUT)
    with torch.no_grad():
        for layer in model.layers:
            layer.w_in.weight.mul_(8.0)
            layer.w_in.bias.uniform_(-0.02, 0.05)
        model.readout.linear.weight.mul_(3.0)
    return model


def lively_alif64(hidden, spike_grad=None, n_inputs=7, n_classes=4):
    """A float64 network that spikes and whose readout crosses moderate thresholds within 30 steps."""
    model = ALIFRSNN(n_inputs, hidden, n_classes, spike_grad=spike_grad).double()
    with torch.no_grad():
        model.layers[0].w_in.weight.mul_(4.0)
        model.readout.linear.weight.mul_(3.0)
    return model


def random_spikes(n_steps=30, batch=10, n_inputs=7):
    return (torch.rand(n_steps, batch, n_inputs) < 0.4).double()


def assert_same_activity(lava_activities, reference_activities):
    assert len(lava_activities) == len(reference_activities)
    for index, (ours, theirs) in enumerate(zip(lava_activities, reference_activities)):
        assert ours.n_steps == theirs.n_steps, index
        assert ours.input_is_binary == theirs.input_is_binary
        np.testing.assert_array_equal(ours.input_counts, theirs.input_counts)
        for layer, (a, b) in enumerate(zip(ours.spike_counts, theirs.spike_counts)):
            assert np.array_equal(a, b), f"sample {index} layer {layer}: {int(np.abs(a - b).sum())} spikes differ"


def assert_same_trains(result, ref, n_layers):
    """Spike trains and readout over every step the Lava run computed; prints mismatches."""
    for layer in range(n_layers):
        trains = result.spike_trains[layer]
        computed = ~np.isnan(trains[0, :, 0])
        assert computed.sum() >= result.decision_steps.max() + 1
        mismatches = int(np.sum(trains[:, computed] != ref.spikes[layer][:, computed]))
        print(f"layer {layer}: {mismatches} of {trains[:, computed].size} spike values differ")
        assert mismatches == 0
    computed = ~np.isnan(result.outputs[0, :, 0])
    assert np.array_equal(result.outputs[:, computed], ref.outputs[:, computed])


def lively_irsnn(n_inputs, hidden, n_outputs, *, bits=6, dead_zone=3, seed=0, frames=None):
    """An IR-SNN whose batch-norm statistics and quantiser ranges were learnt on ``frames`` (a few
    training-mode passes), with a readout scaled so that samples decide; in evaluation mode."""
    torch.manual_seed(seed)
    model = IRSNN(n_inputs, hidden, n_outputs, IRParams(bits=bits, dead_zone=dead_zone))
    x = torch.from_numpy(frames if frames is not None else random_frames(8, 30, n_inputs, seed=seed))
    with torch.no_grad():
        for _ in range(3):
            model(x.transpose(0, 1).float())
        model.readout.linear.weight.mul_(40.0)
    return model.eval()


def hidden_neuron(kind: str, n: int) -> nn.Module:
    if kind == "rleaky":
        return snn.RLeaky(beta=0.9, linear_features=n, init_hidden=True, learn_beta=True, learn_threshold=True)
    if kind == "rleaky-zero":
        return snn.RLeaky(beta=0.8, linear_features=n, init_hidden=True, reset_mechanism="zero")
    if kind == "rleaky-one-to-one":
        return snn.RLeaky(beta=0.8, all_to_all=False, V=0.5, init_hidden=True)
    if kind == "leaky-zero":
        return snn.Leaky(beta=torch.linspace(0.6, 0.95, n), init_hidden=True, reset_mechanism="zero")
    if kind == "ralif":
        return RALIF(n, init_hidden=True)
    raise ValueError(kind)


def snntorch_network(kind: str, n_inputs=30, hidden=16, classes=4, seed=0, gain=3.0) -> nn.Sequential:
    """The tutorial's shape; the output a leaky integrator read by its membrane."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(n_inputs, hidden), hidden_neuron(kind, hidden), nn.Linear(hidden, classes),
                        snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism="none"))
    with torch.no_grad():
        net[0].weight.mul_(gain)
        net[2].weight.mul_(4.0)
    return net


def encode_bin(x, y, t, p) -> bytes:
    """N-MNIST's 40-bit event format: x(8) y(8) p(1) t(23) big-endian, the inverse of tonic's reader."""
    x, y, t, p = (np.asarray(a, dtype=np.uint32) for a in (x, y, t, p))
    raw = np.zeros((len(x), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 127)
    raw[:, 3], raw[:, 4] = (t >> 8) & 255, t & 255
    return raw.tobytes()


def write_copy(root: Path, folders=("Train",), per_class: int = 2, start_index: int = 1) -> Path:
    """A small N-MNIST layout ``root/NMNIST/<folder>/<label>/<index>.bin`` with distinct events per file."""
    rng = np.random.default_rng(0)
    index = start_index
    for folder in folders:
        for label in range(10):
            target = root / "NMNIST" / folder / str(label)
            target.mkdir(parents=True, exist_ok=True)
            for _ in range(per_class):
                n = 50 + 10 * label
                t = np.sort(rng.integers(0, 300_000, n))
                (target / f"{index:05d}.bin").write_bytes(
                    encode_bin(rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n)))
                index += 1
    return root


#: ``rc-snn train`` flags of a run of seconds on the toy task (1 input, 8 neurons, 2 classes).
TOY_TRAIN = ["--dataset", "toy", "--hidden", "8", "--epochs", "1", "--limit-train", "64", "--limit-val", "32",
             "--batch-size", "32", "--no-progress"]


def fails_cleanly(capsys, argv, *expected) -> str:
    """``main(argv)`` returns 2 and prints one error line holding every ``expected`` text, no traceback."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rc-snn {argv[0]}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err
