"""NIR graphs <-> the network file: :func:`from_nir` reads a graph into a :class:`~deploy.ir.NetworkIR`,
:func:`to_nir` writes one as a graph; :func:`read_nir` and :func:`write_nir` do the same with files.

NIR (the Neuromorphic Intermediate Representation, ``nir`` 1.0) states neurons in continuous time.
Every reader integrates them with forward Euler at its own step ``dt`` (seconds): snnTorch 1.0
reads with ``dt = 1e-4``, Norse 1.1 with ``dt = 1e-3``. Here, with ``k = dt / tau``, one step is

    LIF        v[t] = (1 - k) v[t-1] + k (v_leak + r I[t]);  s[t] = H(v[t] - v_threshold);  v[t] = v_reset where s[t]
    IF         v[t] = v[t-1] + r I[t]                        (dt-free, as Norse reads it)
    Threshold  s[t] = H(I[t] - threshold)                    (no state)
    CubaLIF    LIF fed by r w_in S[t]: only with tau_syn = dt (no synaptic memory)
    LI         v[t] = (1 - k) v[t-1] + k (v_leak + r I[t])   (the readout, read by its membrane)

where ``I[t] = W x[t] + b (+ W_rec s[t-1] + b_rec)`` comes from the Affine, Linear and Scale nodes
before the neuron (composed into one matrix) and, for a recurrent layer, from an Affine or Linear
node in a loop from the neuron back to itself (flat, as snnTorch's import expects, or a 4-node
subgraph, as its export writes). ``H(x) = 1`` iff ``x > 0``. The LIF above with ``v_reset = 0`` is
the network file's snnTorch leaky layer (:class:`~deploy.ir.LIFLayerIR`) with ``reset = "zero"``:
``alpha = 1 - k`` (the membrane decay; snnTorch's ``beta``), input gain ``r k`` folded into
``w_in``, ``w_rec`` and ``bias``, and ``k v_leak`` added to the bias; zeroing the membrane at once
(NIR) or at the next step (snnTorch's ``reset_delay=True``) gives the same spikes. LI is the leaky
readout: ``alpha = 1 - k``, ``W' = r W``, ``b' = r b + v_leak``. Imports are exact, not
approximations: anything else is refused naming the node, its type and the reason (a nonzero
``v_reset``, ``dt / tau > 1``, branches, ...).

Export writes the same forms with ``r = 1`` (the gain folded into the weights: Norse 1.1 ignores
``r``, and snnTorch 1.0 compensates ``r dt / tau != 1`` by scaling a layer's one threshold, exact
for a layer with one decay), a leaky layer of ``alpha = 1`` as IF, and the readout as LI, or,
for importers without LI (snnTorch 1.0, Norse 1.1), as a LIF that never fires (``v_threshold =
inf``) whose membrane is the readout. What NIR 1.0 cannot state is refused: ALIF layers (a
threshold that moves with the neuron's own spikes and a reset by subtraction of it; NIR's
neurons reset to a constant ``v_reset``), IR-SNN layers (gated leak, multi-bit outputs), and
snnTorch leaky layers reset by subtraction or with ``RLeaky``'s delayed zeroing of a whole step.
The graph's metadata holds ``dt``, the decision threshold and the weights' identifier, so a file
written here is read back without arguments.

Writers' conventions met in the wild: Norse 1.1's ``to_nir`` writes ``tau`` as ``dt /
tau_mem_inv`` (its ``dt`` times the time constant); read its graphs with ``dt`` = the square of
Norse's ``dt`` (:data:`NORSE_DT_SQUARED` for its default), which gives the steps Norse ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import nir
import numpy as np

from .files import write_atomic
from .ir import AdaptiveReadoutIR, ALIFLayerIR, IRLayerIR, LIFLayerIR, NetworkIR, ReadoutIR
from .ir_layers import LIF_RESETS

__all__ = ["from_nir", "to_nir", "read_nir", "write_nir", "SNNTORCH_DT", "NORSE_DT", "NORSE_DT_SQUARED",
           "READOUTS"]

#: The step snnTorch 1.0's NIR import and export use (seconds).
SNNTORCH_DT = 1e-4
#: The step Norse 1.1's ``from_nir`` uses by default (seconds).
NORSE_DT = 1e-3
#: The ``dt`` that reads a graph written by Norse 1.1's ``to_nir`` at its default step (module docstring).
NORSE_DT_SQUARED = NORSE_DT ** 2
#: How :func:`to_nir` writes the readout: ``"li"`` (NIR's leaky integrator) or ``"lif"`` (a LIF that never fires).
READOUTS = ("li", "lif")

_ZERO_RESET = LIF_RESETS.index("zero")
_SYNAPSES = (nir.Affine, nir.Linear, nir.Scale)
_NEURONS = (nir.LIF, nir.IF, nir.Threshold, nir.CubaLIF)

PathLike = Union[str, "os.PathLike[str]"]


def _refuse(key: str, node, why: str):
    raise ValueError(f"cannot import NIR node {key!r} ({type(node).__name__}): {why}")


def _vector(key: str, node, name: str, n: int) -> np.ndarray:
    """``node.name`` as float64 ``[n]``: a scalar (Norse writes 0-d arrays) is broadcast."""
    value = np.asarray(getattr(node, name), dtype=np.float64)
    if value.size == 1:
        return np.full(n, float(value.reshape(())))
    if value.shape != (n,):
        _refuse(key, node, f"expected {name} of {n} values (the layer's size); got shape {value.shape}")
    return value.copy()


# ----------------------------------------------------------------------------------------- import

class _Synapse:
    """The composition of the Affine, Linear and Scale nodes met so far: ``x -> W x + b`` (None: identity)."""

    def __init__(self) -> None:
        self.weight: Optional[np.ndarray] = None
        self.bias: Optional[np.ndarray] = None

    def then(self, key: str, node) -> None:
        if isinstance(node, nir.Scale):
            scale = np.asarray(node.scale, dtype=np.float64).reshape(-1)
            matrix = np.diag(scale)
            shift = np.zeros(scale.size)
        else:
            matrix = np.asarray(node.weight, dtype=np.float64)
            if matrix.ndim != 2:
                _refuse(key, node, f"expected a 2-D weight [outputs, inputs]; got shape {matrix.shape}")
            shift = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else np.zeros(len(matrix))
            if shift.shape != (len(matrix),):
                _refuse(key, node, f"expected a bias of {len(matrix)} values; got shape {shift.shape}")
        if self.weight is not None and matrix.shape[1] != self.weight.shape[0]:
            _refuse(key, node, f"takes {matrix.shape[1]} inputs but receives {self.weight.shape[0]}")
        self.weight = matrix if self.weight is None else matrix @ self.weight
        self.bias = shift if self.bias is None else matrix @ self.bias + shift

    def take(self, n_inputs: Optional[int], n: int, key: str, node) -> Tuple[np.ndarray, np.ndarray]:
        weight, bias = self.weight, self.bias
        if weight is None:
            if n_inputs not in (None, n):
                _refuse(key, node, f"receives {n_inputs} inputs with no weights before it, for {n} neurons")
            weight, bias = np.eye(n), np.zeros(n)
        if weight.shape[0] != n:
            _refuse(key, node, f"has {n} neurons but receives {weight.shape[0]} inputs")
        self.weight = self.bias = None
        return weight, bias


def _size(node) -> int:
    for name in ("v_threshold", "threshold", "tau", "r"):
        if hasattr(node, name):
            return int(np.asarray(getattr(node, name)).size)
    raise AssertionError(type(node))


def _euler(key: str, node, tau: np.ndarray, dt: float, *, strict: bool) -> np.ndarray:
    """``k = dt / tau``, refused outside (0, 1] (or (0, 1) for a readout, whose decay must stay in (0, 1))."""
    if not np.all(tau > 0):
        _refuse(key, node, f"expected time constants > 0; got a smallest tau of {tau.min():g}")
    k = dt / tau
    if np.any(k > 1) or (strict and np.any(k >= 1)):
        _refuse(key, node, f"dt / tau reaches {k.max():g} at dt = {dt:g} s; forward Euler needs dt / tau "
                           f"{'< 1' if strict else '<= 1'}: pass the dt the graph was written for")
    return k


def _leaky_layer(key: str, node, dt: float, n: int, weight: np.ndarray, bias: np.ndarray,
                 recurrent: Optional[Tuple[np.ndarray, np.ndarray]]) -> LIFLayerIR:
    """A LIF, IF, Threshold or CubaLIF node (module docstring) as a leaky layer reset to zero."""
    if isinstance(node, nir.Threshold):
        alpha, gain, leak, threshold = np.zeros(n), np.ones(n), np.zeros(n), _vector(key, node, "threshold", n)
    else:
        threshold = _vector(key, node, "v_threshold", n)
        if not np.all(_vector(key, node, "v_reset", n) == 0):
            _refuse(key, node, "v_reset != 0: the network file's leaky layer resets to zero")
        if isinstance(node, nir.IF):
            alpha, gain, leak = np.ones(n), _vector(key, node, "r", n), np.zeros(n)
        else:
            tau = _vector(key, node, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau", n)
            k = _euler(key, node, tau, dt, strict=False)
            alpha, gain, leak = 1.0 - k, _vector(key, node, "r", n) * k, _vector(key, node, "v_leak", n) * k
            if isinstance(node, nir.CubaLIF):
                if not np.allclose(dt / _vector(key, node, "tau_syn", n), 1.0, rtol=1e-12, atol=0):
                    _refuse(key, node, "a synaptic current with memory (tau_syn != dt); the deploy path's layers "
                                       "have none")
                if not np.all(leak == 0):
                    _refuse(key, node, "v_leak != 0 (snnTorch and Norse read a CubaLIF's leak differently)")
                gain = gain * _vector(key, node, "w_in", n)
    if not np.all(threshold > 0):
        _refuse(key, node, f"thresholds must be > 0 (a neuron that fires at rest); got {threshold.min():g}")
    w_rec, rec_bias = recurrent if recurrent is not None else (np.zeros((n, n)), np.zeros(n))
    return LIFLayerIR(w_in=gain[:, None] * weight, bias=gain * (bias + rec_bias) + leak,
                      w_rec=gain[:, None] * w_rec, alpha=alpha, threshold=threshold, reset=_ZERO_RESET)


def _readout(key: str, node, dt: float, weight: np.ndarray, bias: np.ndarray) -> ReadoutIR:
    n = len(weight)
    k = _euler(key, node, _vector(key, node, "tau", n), dt, strict=True)
    r = _vector(key, node, "r", n)
    return ReadoutIR(weight=r[:, None] * weight, bias=r * bias + _vector(key, node, "v_leak", n), alpha=1.0 - k)


def _is_readout(node) -> bool:
    """NIR's leaky integrator, or a LIF that never fires (how :func:`to_nir` writes it for importers without LI)."""
    return isinstance(node, nir.LI) or (isinstance(node, nir.LIF) and np.all(np.isposinf(node.v_threshold)))


def _loop_weight(key: str, node) -> Tuple[np.ndarray, np.ndarray]:
    weight = np.asarray(node.weight, dtype=np.float64)
    bias = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else np.zeros(len(weight))
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1] or bias.shape != (len(weight),):
        _refuse(key, node, f"expected a square recurrent weight and a bias of its size; got {weight.shape}, "
                           f"{bias.shape}")
    return weight, bias


def _recurrent_subgraph(key: str, graph: nir.NIRGraph):
    """The neuron node and loop weight of a 4-node recurrent subgraph (Input -> neuron <-> weight, neuron -> Output)."""
    kinds = {type(node): (name, node) for name, node in graph.nodes.items()}
    neuron = [(name, node) for name, node in graph.nodes.items() if isinstance(node, _NEURONS)]
    weight = [(name, node) for name, node in graph.nodes.items() if isinstance(node, (nir.Affine, nir.Linear))]
    if len(graph.nodes) != 4 or nir.Input not in kinds or nir.Output not in kinds or len(neuron) != 1 \
            or len(weight) != 1 or {(neuron[0][0], weight[0][0]), (weight[0][0], neuron[0][0])} - set(graph.edges):
        _refuse(key, graph, "the only subgraph read is a recurrent layer: Input -> neuron <-> Affine or Linear, "
                            "neuron -> Output")
    return neuron[0][1], _loop_weight(f"{key}.{weight[0][0]}", weight[0][1])


def _chain(graph: nir.NIRGraph) -> List[Tuple[str, object, Optional[Tuple[np.ndarray, np.ndarray]]]]:
    """The nodes from the Input to the Output, in order, each with its recurrent loop weight (or None)."""
    edges = sorted(set(map(tuple, graph.edges)))
    successors: Dict[str, List[str]] = {name: [] for name in graph.nodes}
    for source, target in edges:
        if source not in graph.nodes or target not in graph.nodes:
            raise ValueError(f"NIR edge {(source, target)} names a node the graph does not have")
        successors[source].append(target)
    loops = {a: b for a, b in edges if (b, a) in edges and isinstance(graph.nodes[a], _NEURONS)
             and isinstance(graph.nodes[b], (nir.Affine, nir.Linear))}
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"expected one NIR Input node; got {len(inputs)}: {inputs}")
    chain, name, seen = [], inputs[0], {inputs[0]}
    while True:
        nexts = [target for target in successors[name] if target != loops.get(name)]
        if len(nexts) != 1:
            _refuse(name, graph.nodes[name], f"leads to {len(nexts)} nodes {nexts}; rc-snn reads a chain of layers "
                                             "from one Input to one Output (no branches or skips)")
        name = nexts[0]
        node = graph.nodes[name]
        if name in seen:
            _refuse(name, node, "the graph loops back here; only a neuron's own recurrent weight may form a loop")
        seen.add(name)
        if isinstance(node, nir.Output):
            break
        recurrent = _loop_weight(loops[name], graph.nodes[loops[name]]) if name in loops else None
        if name in loops:
            seen.add(loops[name])
        chain.append((name, node, recurrent))
    unused = sorted(set(graph.nodes) - seen)
    if unused:
        raise ValueError(f"NIR nodes {unused} lie off the path from the Input to the Output; rc-snn reads a chain")
    return chain


def _metadata(graph) -> dict:
    return graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}


def from_nir(graph: Union[nir.NIRGraph, PathLike], *, dt: Optional[float] = None,
             decision_threshold: Optional[float] = None) -> NetworkIR:
    """The network file of a NIR graph (or a ``.nir`` file), integrated at ``dt`` seconds (module docstring).

    ``dt`` and ``decision_threshold`` default to those in the graph's metadata (written by
    :func:`to_nir`); a graph from another tool needs them from the caller.
    """
    if not isinstance(graph, nir.NIRGraph):
        path = Path(graph)
        if not path.is_file():
            raise ValueError(f"expected a NIR file at {path}; found none")
        try:
            graph = nir.read(path)
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"expected a NIR file (HDF5 written by nir.write) at {path}; could not read it: "
                             f"{error}") from None
    meta = _metadata(graph)
    dt = dt if dt is not None else meta.get("dt")
    decision_threshold = decision_threshold if decision_threshold is not None else meta.get("decision_threshold")
    if dt is None or not float(dt) > 0:
        raise ValueError(f"expected dt > 0 in seconds (NIR's neurons are continuous; the step they are integrated "
                         f"at: snnTorch uses {SNNTORCH_DT}, Norse {NORSE_DT}); got {dt}")
    if decision_threshold is None:
        raise ValueError("expected a decision_threshold (the softmax probability that ends a sample); the graph "
                         "holds none")
    dt = float(dt)
    chain = _chain(graph)
    if not chain or not _is_readout(chain[-1][1]):
        last = f"{type(chain[-1][1]).__name__} {chain[-1][0]!r}" if chain else "its Input"
        raise ValueError(f"expected the graph to end in a leaky-integrator readout (nir.LI, or a LIF with "
                         f"v_threshold = inf) before its Output; it ends in {last}")
    synapse, layers, n_inputs = _Synapse(), [], None
    for key, node, recurrent in chain[:-1]:
        if isinstance(node, _SYNAPSES):
            synapse.then(key, node)
            continue
        if isinstance(node, nir.NIRGraph):
            node, recurrent = _recurrent_subgraph(key, node)
        if not isinstance(node, _NEURONS):
            _refuse(key, node, "not among the nodes rc-snn runs exactly: Input, Output, Affine, Linear, Scale, LIF, "
                               "CubaLIF (tau_syn = dt), IF, Threshold, LI (the readout) and recurrent LIF subgraphs")
        n = len(synapse.weight) if synapse.weight is not None else _size(node)  # Norse writes scalar parameters
        weight, bias = synapse.take(n_inputs, n, key, node)
        layers.append(_leaky_layer(key, node, dt, n, weight, bias, recurrent))
        n_inputs = n
    key, node, recurrent = chain[-1]
    if recurrent is not None:
        _refuse(key, node, "a readout with a recurrent loop")
    if synapse.weight is None:
        _refuse(key, node, "the readout needs an Affine or Linear node before it")
    weight, bias = synapse.take(n_inputs, len(synapse.weight), key, node)
    if not layers:
        raise ValueError("expected at least one spiking layer (LIF, IF, Threshold, CubaLIF) before the readout")
    weights_id = meta.get("weights_id") or None
    return NetworkIR(layers=tuple(layers), readout=_readout(key, node, dt, weight, bias),
                     decision_threshold=float(decision_threshold), dt_ms=1000.0 * dt,
                     weights_id=str(weights_id) if weights_id else None)


def read_nir(path: PathLike, *, dt: Optional[float] = None, decision_threshold: Optional[float] = None) -> NetworkIR:
    """:func:`from_nir` of a ``.nir`` file."""
    return from_nir(Path(path), dt=dt, decision_threshold=decision_threshold)


# ----------------------------------------------------------------------------------------- export

def _export_refusal(layer) -> Optional[str]:
    if isinstance(layer, ALIFLayerIR):
        return ("an ALIF layer's threshold moves with its own spikes and its reset subtracts that threshold; "
                "NIR 1.0's neurons have a constant threshold and reset to a constant v_reset")
    if isinstance(layer, IRLayerIR):
        return "an IR-SNN layer (gated leak, multi-bit outputs) has no NIR 1.0 node"
    if layer.reset != _ZERO_RESET:
        return (f"its reset is {LIF_RESETS[layer.reset]!r}; NIR 1.0's LIF resets to v_reset at once, which only "
                "snnTorch's reset_mechanism='zero' (Leaky, or RLeaky with reset_delay=False) matches")
    if not (np.all(layer.alpha == 1) or np.all(layer.alpha < 1)):
        return "it mixes alpha = 1 (IF) and alpha < 1 (LIF) neurons in one layer"
    return None


def to_nir(network: NetworkIR, *, dt: float, readout: str = "li") -> nir.NIRGraph:
    """The NIR graph of ``network`` for readers integrating at ``dt`` seconds (module docstring).

    ``readout="lif"`` writes the readout as a LIF that never fires, for importers without LI.
    Refuses layers NIR 1.0 cannot state, naming the layer and what NIR lacks.
    """
    if not isinstance(network, NetworkIR):
        raise ValueError(f"expected a NetworkIR; got {type(network).__name__}")
    if not float(dt) > 0:
        raise ValueError(f"expected dt > 0 in seconds; got {dt}")
    if readout not in READOUTS:
        raise ValueError(f"expected readout among {READOUTS}; got {readout!r}")
    dt = float(dt)
    for index, layer in enumerate(network.layers):
        why = _export_refusal(layer)
        if why:
            raise ValueError(f"cannot write layer {index} ({type(layer).__name__}) as NIR: {why}")
    if isinstance(network.readout, AdaptiveReadoutIR):
        raise ValueError("cannot write the readout (AdaptiveReadoutIR) as NIR: Yin's adaptive output neurons spike "
                         "and reset against a moving threshold; NIR 1.0's LI readout does neither")
    nodes = {"input": nir.Input(input_type={"input": np.array([network.n_inputs])})}
    edges, previous = [], "input"

    def add(name: str, node) -> None:
        nonlocal previous
        nodes[name] = node
        edges.append((previous, name))
        previous = name

    for index, layer in enumerate(network.layers):
        n = layer.n_neurons
        integrate = bool(np.all(layer.alpha == 1))
        scale = np.ones(n) if integrate else 1.0 / (1.0 - layer.alpha)  # the gain k = 1 - alpha, with r = 1
        add(f"layer{index}.w_in", nir.Affine(weight=scale[:, None] * layer.w_in, bias=scale * layer.bias))
        if integrate:
            neuron = nir.IF(r=np.ones(n), v_threshold=layer.threshold.copy(), v_reset=np.zeros(n))
        else:
            neuron = nir.LIF(tau=dt / (1.0 - layer.alpha), r=np.ones(n), v_leak=np.zeros(n),
                             v_threshold=layer.threshold.copy(), v_reset=np.zeros(n))
        name = f"layer{index}.{'if' if integrate else 'lif'}"
        add(name, neuron)
        if np.any(layer.w_rec != 0):  # a loop in the graph (NIR's recurrence); keys "layerN.*" as snnTorch names them
            nodes[f"layer{index}.w_rec"] = nir.Linear(weight=scale[:, None] * layer.w_rec)
            edges += [(name, f"layer{index}.w_rec"), (f"layer{index}.w_rec", name)]
    head = network.readout
    c = head.n_outputs
    add("readout.w", nir.Affine(weight=head.weight.copy(), bias=head.bias.copy()))
    tau = dt / (1.0 - head.alpha)
    add("readout.li" if readout == "li" else "readout.lif",
        nir.LI(tau=tau, r=np.ones(c), v_leak=np.zeros(c)) if readout == "li" else
        nir.LIF(tau=tau, r=np.ones(c), v_leak=np.zeros(c), v_threshold=np.full(c, np.inf), v_reset=np.zeros(c)))
    add("output", nir.Output(output_type={"output": np.array([c])}))
    metadata = {"writer": "rc-snn", "dt": dt, "decision_threshold": network.decision_threshold}
    if network.weights_id:
        metadata["weights_id"] = network.weights_id
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(network: NetworkIR, path: PathLike, *, dt: float, readout: str = "li") -> Path:
    """Write :func:`to_nir` of ``network`` to ``path`` atomically (``nir.write``, HDF5)."""
    graph = to_nir(network, dt=dt, readout=readout)
    return write_atomic(path, lambda temp: nir.write(temp, graph))
