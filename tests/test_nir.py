"""NIR graphs in and out (deploy.nir_io): snnTorch and Norse networks through NIR to Lava with the
same decisions as their own runs, rc-snn networks to snnTorch's and Norse's importers with the same
outputs, exact round trips, and refusals that name the node and the reason."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from deploy import quantize, reference, simulate
from deploy.ir import AdaptiveReadoutIR, ALIFLayerIR, LIFLayerIR, NetworkIR, ReadoutIR
from deploy.ir_layers import LIF_RESETS
from deploy.nir_io import NORSE_DT, NORSE_DT_SQUARED, SNNTORCH_DT, from_nir, read_nir, to_nir, write_nir
from rc_snn.pipeline.cli import main
from rc_snn.pipeline.snntorch_export import export_snntorch, record_snntorch
from rc_snn.training.early_exit import select_decision
from helpers import LAVA_TIMEOUT, random_frames

FRAMES = random_frames(5, 40, 30, rate=0.2, seed=1)


def snntorch_net(kind: str, seed: int = 0) -> nn.Sequential:
    """snnTorch's tutorial shape, with the resets NIR states: to zero (RLeaky without reset_delay)."""
    torch.manual_seed(seed)
    hidden = (snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero") if kind == "leaky" else
              snn.RLeaky(beta=0.8, linear_features=16, init_hidden=True, reset_mechanism="zero", reset_delay=False))
    net = nn.Sequential(nn.Linear(30, 16), hidden, nn.Linear(16, 4),
                        snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism="none"))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(4.0)
    return net


def norse_net(seed: int = 0):
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(seed)
    net = norse.SequentialState(
        nn.Linear(30, 16), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0),
                                                                    v_th=torch.tensor(0.5))),
        nn.Linear(16, 4), norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.tensor(100.0))))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[2].weight.mul_(8.0)
    return net.double()


def run_norse(net, frames):
    """Norse's own run (float64): the readout's membrane [T, B, C] and the hidden spikes [B, T, H]."""
    spikes, outputs, state = [], [], None
    handle = net[1].register_forward_hook(lambda module, args, output: spikes.append(output[0]))
    with torch.no_grad():
        for x_t in torch.from_numpy(frames).transpose(0, 1):
            output, state = net(x_t, state)
            outputs.append(output)
    handle.remove()
    return torch.stack(outputs), torch.stack(spikes).transpose(0, 1).numpy()


def lif_network(seed=0, alpha=(0.8,), recurrent=True, reset="zero", threshold=0.7) -> NetworkIR:
    rng = np.random.default_rng(seed)
    layers = []
    for index, a in enumerate(alpha):
        n_in = 30 if index == 0 else 12
        layers.append(LIFLayerIR(w_in=rng.normal(0, 1.0, (12, n_in)), bias=rng.normal(0, 0.1, 12),
                                 w_rec=rng.normal(0, 0.3, (12, 12)) if recurrent else np.zeros((12, 12)),
                                 alpha=np.full(12, a), threshold=np.full(12, threshold),
                                 reset=LIF_RESETS.index(reset)))
    readout = ReadoutIR(weight=rng.normal(0, 1.0, (4, 12)), bias=rng.normal(0, 0.1, 4), alpha=np.full(4, 0.9))
    return NetworkIR(layers=tuple(layers), readout=readout, decision_threshold=0.5, dt_ms=1.0, weights_id="abc")


# ------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("alpha, recurrent", [((0.8,), True), ((0.8, 0.0), False), ((1.0,), True), ((0.5, 0.9), True)])
@pytest.mark.parametrize("readout", ["li", "lif"])
def test_a_written_graph_reads_back_to_the_same_network(tmp_path, alpha, recurrent, readout):
    network = lif_network(alpha=alpha, recurrent=recurrent)
    back = read_nir(write_nir(network, tmp_path / "net.nir", dt=1e-3, readout=readout))
    assert back.weights_id == "abc" and back.decision_threshold == 0.5 and back.dt_ms == pytest.approx(1.0)
    for a, b in zip(network.layers + (network.readout,), back.layers + (back.readout,)):
        for name in a.__dataclass_fields__:
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12, atol=1e-12)
    first, second = reference.simulate(network, FRAMES), reference.simulate(back, FRAMES)
    assert 0.02 < first.spikes[0].mean() < 0.9
    np.testing.assert_array_equal(first.spikes[0], second.spikes[0])
    np.testing.assert_array_equal(first.decision_steps, second.decision_steps)


def test_the_graph_says_the_equations_it_was_written_for():
    graph = to_nir(lif_network(alpha=(0.8,)), dt=2e-3)
    lif = graph.nodes["layer0.lif"]
    np.testing.assert_allclose(lif.tau, 2e-3 / 0.2)  # alpha = 1 - dt/tau
    np.testing.assert_array_equal(lif.r, 1.0)
    assert ("layer0.lif", "layer0.w_rec") in graph.edges and ("layer0.w_rec", "layer0.lif") in graph.edges
    assert isinstance(graph.nodes["readout.li"], nir.LI) and graph.metadata["dt"] == 2e-3


def test_a_recurrent_layer_reads_the_same_as_a_flat_loop_or_a_subgraph():
    graph = to_nir(lif_network(alpha=(0.8,)), dt=1e-3)
    lif, w_rec = graph.nodes.pop("layer0.lif"), graph.nodes.pop("layer0.w_rec")
    shape = {"input": np.array([12])}
    graph.nodes["layer0"] = nir.NIRGraph(  # the form snnTorch's export writes for an RLeaky
        nodes={"input": nir.Input(input_type=shape), "lif": lif, "w_rec": w_rec,
               "output": nir.Output(output_type={"output": np.array([12])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph.edges = [(a.replace("layer0.lif", "layer0"), b.replace("layer0.lif", "layer0")) for a, b in graph.edges
                   if "layer0.w_rec" not in (a, b)]
    flat, nested = from_nir(to_nir(lif_network(alpha=(0.8,)), dt=1e-3)), from_nir(graph)
    assert np.any(nested.layers[0].w_rec != 0)
    np.testing.assert_array_equal(nested.layers[0].w_rec, flat.layers[0].w_rec)
    np.testing.assert_array_equal(reference.simulate(nested, FRAMES).spikes[0], reference.simulate(flat, FRAMES).spikes[0])


def test_an_if_and_a_threshold_node_read_as_their_equations():
    rng = np.random.default_rng(0)
    w1, w2, w3 = rng.normal(0, 1, (6, 30)), rng.normal(0, 1, (5, 6)), rng.normal(0, 1, (3, 5))
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([30])}), "a": nir.Linear(weight=w1),
        "s": nir.Scale(scale=np.full(6, 2.0)), "if": nir.IF(r=np.full(6, 0.5), v_threshold=np.ones(6)),
        "b": nir.Linear(weight=w2), "th": nir.Threshold(threshold=np.full(5, 0.3)), "c": nir.Linear(weight=w3),
        "li": nir.LI(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3)), "out": nir.Output(
            output_type={"output": np.array([3])})},
        edges=[("in", "a"), ("a", "s"), ("s", "if"), ("if", "b"), ("b", "th"), ("th", "c"), ("c", "li"), ("li", "out")])
    network = from_nir(graph, dt=1e-3, decision_threshold=0.5)
    run = reference.simulate(network, FRAMES)
    v, expected = np.zeros((5, 6)), []  # IF: v += r I, reset to 0; Threshold: s = H(I - 0.3)
    for t in range(FRAMES.shape[1]):
        v = v + 0.5 * (2.0 * FRAMES[:, t] @ w1.T)
        s = (v > 1.0).astype(float)
        v = np.where(s > 0, 0.0, v)
        expected.append(s)
    np.testing.assert_array_equal(run.spikes[0], np.stack(expected, axis=1))
    np.testing.assert_array_equal(run.spikes[1], (run.spikes[0] @ w2.T > 0.3).astype(float))


# ----------------------------------------------------------------- other tools -> rc-snn -> Lava

@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
@pytest.mark.parametrize("kind", ["leaky", "rleaky"])
def test_snntorch_through_a_nir_file_to_lava_decides_as_snntorch(tmp_path, kind):
    net = snntorch_net(kind)
    mem, spikes = record_snntorch(net, torch.from_numpy(FRAMES).float().transpose(0, 1))
    path = write_nir(export_snntorch(net, decision_threshold=0.5), tmp_path / "net.nir", dt=SNNTORCH_DT)
    network = read_nir(path)
    torch_spikes = spikes[0].transpose(0, 1).numpy()
    assert 0.02 < torch_spikes.mean() < 0.9
    np.testing.assert_array_equal(reference.simulate(network, FRAMES).spikes[0], torch_spikes)
    lava = simulate.run_batch(network, FRAMES)
    decision = select_decision(mem, 0.5)
    assert decision.steps.max() < FRAMES.shape[1] - 1
    np.testing.assert_array_equal(lava.decision_steps, decision.steps.numpy())
    np.testing.assert_array_equal(lava.predictions, decision.predictions.numpy())


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_norse_through_its_own_to_nir_to_lava_decides_as_norse():
    norse = pytest.importorskip("norse.torch")
    net = norse_net()
    outputs, spikes = run_norse(net, FRAMES)
    graph = norse.to_nir(net, torch.zeros(1, 30, dtype=torch.float64))
    network = from_nir(graph, dt=NORSE_DT_SQUARED, decision_threshold=0.5)  # Norse's tau convention
    ref = reference.simulate(network, FRAMES)
    assert 0.02 < spikes.mean() < 0.9
    np.testing.assert_array_equal(ref.spikes[0], spikes)
    np.testing.assert_allclose(ref.outputs, outputs.transpose(0, 1).numpy(), rtol=1e-6, atol=1e-6)
    lava = simulate.run_batch(network, FRAMES)
    decision = select_decision(outputs, 0.5)
    np.testing.assert_array_equal(lava.decision_steps, decision.steps.numpy())
    np.testing.assert_array_equal(lava.predictions, decision.predictions.numpy())


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_an_imported_graph_runs_in_fixed_point_as_the_fixed_reference():
    network = read_nir_of(snntorch_net("rleaky", seed=3))
    fixed = quantize.to_device(network)
    ref = reference.simulate(fixed, FRAMES)
    lava = simulate.run_batch(fixed, FRAMES)
    np.testing.assert_array_equal(lava.decision_steps, ref.decision_steps)
    np.testing.assert_array_equal(lava.predictions, ref.predictions)
    assert np.mean(ref.predictions == reference.simulate(network, FRAMES).predictions) >= 0.8


def read_nir_of(net: nn.Sequential) -> NetworkIR:
    return from_nir(to_nir(export_snntorch(net, decision_threshold=0.5), dt=SNNTORCH_DT))


# ----------------------------------------------------------------- rc-snn -> NIR -> other tools

def test_snntorch_imports_an_rc_snn_graph_with_the_same_spikes():
    from snntorch.import_nir import import_from_nir

    network = export_snntorch(snntorch_net("leaky"), decision_threshold=0.5)
    ref = reference.simulate(network, FRAMES)
    model = import_from_nir(to_nir(network, dt=SNNTORCH_DT, readout="lif"))
    neurons = dict(model.named_modules())
    spikes, membranes = [], []
    neurons["layer0_lif"].register_forward_hook(lambda module, args, output: spikes.append(output))
    snn.utils.reset(model)
    with torch.no_grad():
        for x_t in torch.from_numpy(FRAMES).float().transpose(0, 1):
            model(x_t)
            membranes.append(neurons["readout_lif"].mem.clone())
    np.testing.assert_array_equal(torch.stack(spikes).transpose(0, 1).numpy(), ref.spikes[0])
    # snnTorch reads r dt / tau != 1 by scaling the threshold: its membrane is NIR's over dt / tau
    np.testing.assert_allclose(torch.stack(membranes).transpose(0, 1).numpy() * (1 - 0.9), ref.outputs, atol=2e-5)


def test_norse_imports_an_rc_snn_graph_with_the_same_outputs(tmp_path):
    norse = pytest.importorskip("norse.torch")
    network = lif_network(alpha=(0.8,), recurrent=False)
    ref = reference.simulate(network, FRAMES)
    model = norse.from_nir(nir.read(write_nir(network, tmp_path / "n.nir", dt=NORSE_DT, readout="lif"))).double()
    spikes, membranes, state = [], [], None
    model.layer0_lif.register_forward_hook(lambda module, args, output: spikes.append(output[0]))
    with torch.no_grad():
        for x_t in torch.from_numpy(FRAMES).transpose(0, 1):
            _, state = model(x_t, state)
            readout = state.state["readout_lif"]
            membranes.append((readout[0] if isinstance(readout, tuple) else readout).v)
    assert 0.02 < ref.spikes[0].mean() < 0.9
    np.testing.assert_array_equal(torch.stack(spikes).transpose(0, 1).numpy(), ref.spikes[0])
    # Norse's from_nir keeps the time constants in float32: agreement to float32's precision
    np.testing.assert_allclose(torch.stack(membranes).transpose(0, 1).numpy(), ref.outputs, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ refusals

def alif_network() -> NetworkIR:
    rng = np.random.default_rng(0)
    layer = ALIFLayerIR(w_in=rng.normal(size=(4, 3)), bias=np.zeros(4), w_rec=np.zeros((4, 4)),
                        alpha=np.full(4, 0.9), rho=np.full(4, 0.95), b0=0.1, beta=1.8)
    return NetworkIR(layers=(layer,), readout=ReadoutIR(weight=np.ones((2, 4)), bias=np.zeros(2),
                                                          alpha=np.full(2, 0.9)), decision_threshold=0.5)


def adaptive_output_network() -> NetworkIR:
    """Leaky layers NIR states, read by Yin's adaptive output layer, which it does not."""
    net = lif_network()
    head = net.readout
    return NetworkIR(net.layers, AdaptiveReadoutIR(head.weight, head.bias, head.alpha, rho=np.full(4, 0.99), b0=0.01,
                                                   beta=1.8), decision_threshold=0.5)


@pytest.mark.parametrize("network, message", [
    (alif_network(), "ALIF layer's threshold moves with its own spikes"),
    (adaptive_output_network(), "the readout \\(AdaptiveReadoutIR\\)"),
    (lif_network(reset="subtract"), "reset is 'subtract'"),
    (lif_network(reset="zero-step"), "reset is 'zero-step'"),
])
def test_layers_nir_cannot_state_are_refused_with_the_reason(network, message):
    with pytest.raises(ValueError, match=message):
        to_nir(network, dt=1e-3)


def chain(*nodes, n_in=30):
    named = {"in": nir.Input(input_type={"input": np.array([n_in])})}
    named.update({f"n{i}": node for i, node in enumerate(nodes)})
    named["out"] = nir.Output(output_type={"output": np.array([2])})
    keys = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(keys[:-1], keys[1:])), type_check=False)


def lif(n=4, **change):
    values = dict(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                  v_reset=np.zeros(n))
    values.update(change)
    return nir.LIF(**values)


LI = nir.LI(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2))
W_IN, W_OUT = nir.Linear(weight=np.ones((4, 30))), nir.Linear(weight=np.ones((2, 4)))


@pytest.mark.parametrize("graph, message", [
    (chain(W_IN, lif(v_reset=np.full(4, 0.2)), W_OUT, LI), "'n1' \\(LIF\\): v_reset != 0"),
    (chain(W_IN, lif(tau=np.full(4, 1e-4)), W_OUT, LI), "dt / tau reaches 10"),
    (chain(W_IN, nir.CubaLIF(tau_syn=np.full(4, 0.005), tau_mem=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4),
                             v_threshold=np.ones(4)), W_OUT, LI), "synaptic current with memory"),
    (chain(W_IN, nir.Flatten(input_type={"input": np.array([4])}), lif(), W_OUT, LI), "'n1' \\(Flatten\\): not among"),
    (chain(W_IN, lif(), W_OUT, lif(n=2)), "end in a leaky-integrator readout"),
    (chain(W_IN, lif(v_threshold=np.zeros(4)), W_OUT, LI), "thresholds must be > 0"),
    (chain(nir.Linear(weight=np.ones((5, 30))), lif(), W_OUT, LI), "expected v_threshold of 5 values"),
    (chain(W_IN, W_OUT, LI), "at least one spiking layer"),
])
def test_graphs_rc_snn_cannot_run_exactly_are_refused_naming_the_node(graph, message):
    with pytest.raises(ValueError, match=message):
        from_nir(graph, dt=1e-3, decision_threshold=0.5)


def test_branches_and_missing_dt_are_refused():
    graph = chain(W_IN, lif(), W_OUT, LI)
    graph.nodes["extra"] = nir.Linear(weight=np.ones((4, 4)))
    graph.edges.append(("n1", "extra"))
    with pytest.raises(ValueError, match="'n1' \\(LIF\\): leads to 2 nodes"):
        from_nir(graph, dt=1e-3, decision_threshold=0.5)
    with pytest.raises(ValueError, match="expected dt > 0 in seconds"):
        from_nir(chain(W_IN, lif(), W_OUT, LI), decision_threshold=0.5)


# ------------------------------------------------------------------------------------------ CLI

def test_export_of_an_alif_run_to_nir_says_what_nir_lacks(toy_run, tmp_path, capsys):
    assert main(["export", str(toy_run), "--format", "nir", "--out", str(tmp_path / "net.nir")]) == 2
    assert "ALIF layer's threshold moves" in capsys.readouterr().err
    assert not (tmp_path / "net.nir").exists()


@pytest.mark.lava
@pytest.mark.timeout(LAVA_TIMEOUT)
def test_lava_runs_a_nir_graph_on_a_runs_data(toy_run, tmp_path, capsys):
    rng = np.random.default_rng(0)  # the toy run's sizes: 1 input, 8 neurons, 2 classes
    layer = LIFLayerIR(w_in=rng.normal(0, 2, (8, 1)), bias=np.zeros(8), w_rec=rng.normal(0, 0.5, (8, 8)),
                       alpha=np.full(8, 0.8), threshold=np.full(8, 0.5), reset=LIF_RESETS.index("zero"))
    network = NetworkIR(layers=(layer,), readout=ReadoutIR(weight=rng.normal(0, 1, (2, 8)), bias=np.zeros(2),
                                                           alpha=np.full(2, 0.9)), decision_threshold=0.9)
    graph = write_nir(network, tmp_path / "graph.nir", dt=1e-3)
    out = tmp_path / "lava.json"
    assert main(["lava", str(toy_run), "--network", str(graph), "--split", "val", "--samples", "6", "--out", str(out),
                 "--no-progress"]) == 0
    summary = json.loads(out.read_text())
    assert summary["n_samples"] == 6 and summary["weights_id"] is None
    assert main(["compare", str(toy_run), str(out), "--split", "val", "--limit", "6", "--out", str(tmp_path / "report"),
                 "--no-progress"]) == 0
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["models"]
    assert any(row["name"] == summary["name"] for row in rows)
