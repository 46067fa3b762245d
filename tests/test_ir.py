"""deploy.ir: the network file round-trips exactly and malformed files are refused with ValueError."""

from __future__ import annotations

import numpy as np
import pytest

from deploy import ir as ir_module
from deploy.ir import AdaptiveReadoutIR, ALIFLayerIR, NetworkIR, ReadoutIR, load_network, networks_equal, save_network


def random_network(sizes=(12, 8, 6), n_outputs=4, seed=0, threshold=0.7, dt_ms=1.0) -> NetworkIR:
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n in zip(sizes[:-1], sizes[1:]):
        layers.append(ALIFLayerIR(
            w_in=rng.normal(0, 0.5, (n, n_in)), bias=rng.normal(0, 0.1, n), w_rec=rng.normal(0, 0.3, (n, n)),
            alpha=rng.uniform(0.8, 0.99, n), rho=rng.uniform(0.95, 0.999, n), b0=0.01, beta=1.8,
        ))
    readout = ReadoutIR(weight=rng.normal(0, 0.5, (n_outputs, sizes[-1])), bias=rng.normal(0, 0.1, n_outputs),
                        alpha=rng.uniform(0.8, 0.99, n_outputs))
    return NetworkIR(tuple(layers), readout, decision_threshold=threshold, dt_ms=dt_ms)


def write_arrays(path, arrays):
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def test_round_trip_is_exact(tmp_path):
    net = random_network()
    path = save_network(net, tmp_path / "net.npz")
    loaded = load_network(path)
    assert networks_equal(net, loaded)
    assert loaded.layer_sizes == (8, 6) and loaded.n_inputs == 12 and loaded.n_outputs == 4
    assert loaded.layers[0].w_in.dtype == np.float64 and not loaded.layers[0].w_in.flags.writeable
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def adaptive_network() -> NetworkIR:
    """``random_network`` with Yin et al.'s adaptive output layer instead of the leaky readout."""
    net = random_network()
    head = net.readout
    readout = AdaptiveReadoutIR(weight=head.weight, bias=head.bias, alpha=head.alpha, rho=np.full(4, 0.99), b0=0.01,
                                beta=1.8)
    return NetworkIR(net.layers, readout, decision_threshold=0.7)


def test_the_adaptive_output_layer_round_trips_and_is_told_from_the_leaky_readout(tmp_path):
    net = adaptive_network()
    loaded = load_network(save_network(net, tmp_path / "yin.npz"))
    assert type(loaded.readout) is AdaptiveReadoutIR and networks_equal(net, loaded)
    assert (loaded.readout.b0, loaded.readout.beta) == (0.01, 1.8)
    leaky = NetworkIR(net.layers, ReadoutIR(net.readout.weight, net.readout.bias, net.readout.alpha), 0.7)
    assert not networks_equal(net, leaky)  # same weights, another readout
    arrays = ir_module._to_arrays(net)
    arrays["readout.kind"] = np.array("leaky")  # a leaky readout with the adaptive one's keys
    write_arrays(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match="unexpected keys"):
        load_network(tmp_path / "bad.npz")
    arrays["readout.kind"] = np.array("spiking")
    write_arrays(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match="readout.kind among"):
        load_network(tmp_path / "bad.npz")


def test_dt_none_round_trips(tmp_path):
    net = random_network(dt_ms=None)
    assert load_network(save_network(net, tmp_path / "a.npz")).dt_ms is None


def test_networks_equal_sees_one_changed_weight():
    net = random_network()
    w_in = net.layers[0].w_in.copy()
    w_in[0, 0] = np.nextafter(w_in[0, 0], np.inf)
    changed = NetworkIR((ALIFLayerIR(w_in, *[getattr(net.layers[0], n) for n in ("bias", "w_rec", "alpha", "rho", "b0", "beta")]),
                         net.layers[1]), net.readout, net.decision_threshold, net.dt_ms)
    assert not networks_equal(net, changed)


def test_inputs_are_copied():
    w_in = np.ones((2, 3))
    layer = ALIFLayerIR(w_in, np.zeros(2), np.zeros((2, 2)), np.full(2, 0.9), np.full(2, 0.9), 0.01, 1.8)
    w_in[0, 0] = 5.0
    assert layer.w_in[0, 0] == 1.0


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = save_network(random_network(seed=1), tmp_path / "net.npz")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ir_module.np, "savez", broken)
    with pytest.raises(OSError):
        save_network(random_network(seed=2), path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.pop("layer1.w_rec"), "layer1.w_rec"),
        (lambda a: a.__setitem__("layer0.bias", np.zeros(5)), "bias of shape"),
        (lambda a: a.__setitem__("layer0.w_in", np.full((8, 12), np.nan)), "finite"),
        (lambda a: a.__setitem__("layer0.alpha", np.ones(8)), "decays in (0, 1)"),
        (lambda a: a.__setitem__("readout.alpha", np.zeros(4)), "decays in (0, 1)"),
        (lambda a: a.__setitem__("format_version", np.array(99)), "format_version"),
        (lambda a: a.__setitem__("format", np.array("something-else")), "format"),
        (lambda a: a.__setitem__("decision_threshold", np.array(1.5)), "decision_threshold"),
        (lambda a: a.__setitem__("layer1.w_in", np.zeros((6, 7))), "inputs"),
        (lambda a: a.__setitem__("layer0.b0", np.zeros(3)), "b0"),
        (lambda a: a.__setitem__("n_layers", np.array(3)), "layer2"),
    ],
)
def test_malformed_files_are_refused(tmp_path, mutate, message):
    arrays = ir_module._to_arrays(random_network())
    mutate(arrays)
    path = tmp_path / "bad.npz"
    write_arrays(path, arrays)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_network(path)


def test_pickled_arrays_and_garbage_are_refused(tmp_path):
    arrays = ir_module._to_arrays(random_network())
    arrays["layer0.bias"] = np.array([object()] * 8, dtype=object)
    write_arrays(tmp_path / "pickled.npz", arrays)
    with pytest.raises(ValueError, match="plain numeric arrays"):
        load_network(tmp_path / "pickled.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="expected an .npz network file"):
        load_network(tmp_path / "garbage.npz")
    with pytest.raises(ValueError, match="found none"):
        load_network(tmp_path / "missing.npz")


def test_constructor_validates():
    with pytest.raises(ValueError, match="w_rec of shape"):
        ALIFLayerIR(np.ones((2, 3)), np.zeros(2), np.zeros((3, 3)), np.full(2, 0.9), np.full(2, 0.9), 0.01, 1.8)
    net = random_network()
    with pytest.raises(ValueError, match="dt_ms"):
        NetworkIR(net.layers, net.readout, 0.5, dt_ms=-1.0)
