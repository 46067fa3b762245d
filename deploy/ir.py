"""The network file: a trained spiking network as frozen dataclasses of float64 numpy arrays.

Training (``rc_snn.pipeline.export``) writes this file and ``deploy`` reads it; ``deploy`` never
needs the PyTorch model. Two layer kinds: ALIF (:class:`ALIFLayerIR`, the equations of
``rc_snn.neuron.alif``) and IR-SNN (:class:`IRLayerIR`, ``rc_snn.neuron.irsnn``, below). For
an ALIF layer (dt = 1 step; ``deploy.kernels`` implements them in numpy)::

    b[t] = rho*b[t-1] + (1-rho)*s[t-1];   B[t] = b0 + beta*b[t]
    u[t] = alpha*u[t-1] + (1-alpha)*I[t] - B[t]*s[t-1];   s[t] = H(u[t] - B[t])  (H(x) = 1 iff x > 0)
    I[t] = W_in x[t] + W_rec s[t-1] + bias
    m[t] = alpha_o*m[t-1] + (1-alpha_o)*(W_o s_last[t] + b_o)

and the early-exit rule: the decision step is the first ``t`` with ``max softmax(m[t]) >
decision_threshold`` (else ``T-1``), the prediction ``argmax m[t*]``. For an IR-SNN layer of H
neurons, whose outputs are integer levels ``q`` (graded spikes; binary at 1 bit)::

    g[t] = W_in x[t] + W_rec q[t-1] + bias       [2H]: batch norm and the sender's step folded in
    z = sigmoid(g[:H]);  h[t] = (1 - z) * relu(g[H:]) + z * h[t-1];  v = a[t-1] + h[t]
    q[t] = trunc(clip(v, lo, value_range) / delta), 0 where |q| <= dead_zone;  a[t] = v - q[t] * delta

with ``lo = 0`` at 1 bit, else ``-value_range``. A layer or readout fed by an IR-SNN layer holds
that layer's ``delta`` in its weights (``W delta``), so what travels is the level ``q``.

File format (``format_version`` 2; version 1, ALIF only, is read too): one ``.npz`` archive
(``np.savez``, no pickled objects) with the keys ``format``, ``format_version``, ``n_layers``,
``decision_threshold``, ``dt_ms`` (NaN for None), ``layer{l}.kind`` (``"alif"`` or ``"irsnn"``),
the layer's fields ``layer{l}.{field}`` and ``readout.{weight,bias,alpha}``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from .files import write_atomic

FORMAT_NAME = "rc-snn-network"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

PathLike = Union[str, "os.PathLike[str]"]

#: The largest parameter magnitude a network file may hold. Float64 sums over any fan-in and the
#: 24-bit fixed-point conversion stay finite far beyond it; a file past it is damaged or not a
#: trained network (x1e308 weights ran to NaN with only warnings before this check).
MAX_MAGNITUDE = 1e9


def _frozen_array(value, name: str, shape: Optional[tuple] = None, ndim: Optional[int] = None) -> np.ndarray:
    """A read-only float64 copy of ``value``, checked for shape and finiteness."""
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"expected {name} as an array of numbers; got {type(value).__name__}: {error}") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"expected {name} with {ndim} dimension(s); got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"expected {name} of shape {tuple(shape)}; got {array.shape}")
    if array.size and not np.all(np.isfinite(array)):
        raise ValueError(f"expected finite values in {name}; got {int(np.sum(~np.isfinite(array)))} NaN/inf")
    if array.size and np.abs(array).max() > MAX_MAGNITUDE:
        raise ValueError(f"expected magnitudes up to {MAX_MAGNITUDE:g} in {name} (trained parameters are of order 1; "
                         f"larger ones overflow the simulation's sums); got {np.abs(array).max():g}")
    array.flags.writeable = False
    return array


def _decay_vector(value, name: str, size: int) -> np.ndarray:
    array = _frozen_array(value, name, shape=(size,))
    if array.size and not (np.all(array > 0.0) and np.all(array < 1.0)):
        raise ValueError(f"expected decays in (0, 1) in {name}; got range [{array.min()}, {array.max()}]")
    return array


def _finite_float(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected {name} as a number; got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"expected a finite {name}; got {number}")
    return number


@dataclass(frozen=True, eq=False)
class ALIFLayerIR:
    """One recurrent ALIF layer: ``w_in [H, F]``, ``bias [H]``, ``w_rec [H, H]``, per-neuron decays
    ``alpha = exp(-dt/tau_m)`` and ``rho = exp(-dt/tau_adp)`` ``[H]``, scalars ``b0`` and ``beta``."""

    w_in: np.ndarray
    bias: np.ndarray
    w_rec: np.ndarray
    alpha: np.ndarray
    rho: np.ndarray
    b0: float
    beta: float

    def __post_init__(self) -> None:
        w_in = _frozen_array(self.w_in, "w_in", ndim=2)
        n_neurons = w_in.shape[0]
        if n_neurons < 1 or w_in.shape[1] < 1:
            raise ValueError(f"expected a nonempty w_in [neurons, inputs]; got shape {w_in.shape}")
        object.__setattr__(self, "w_in", w_in)
        object.__setattr__(self, "bias", _frozen_array(self.bias, "bias", shape=(n_neurons,)))
        object.__setattr__(self, "w_rec", _frozen_array(self.w_rec, "w_rec", shape=(n_neurons, n_neurons)))
        object.__setattr__(self, "alpha", _decay_vector(self.alpha, "alpha", n_neurons))
        object.__setattr__(self, "rho", _decay_vector(self.rho, "rho", n_neurons))
        object.__setattr__(self, "b0", _finite_float(self.b0, "b0"))
        object.__setattr__(self, "beta", _finite_float(self.beta, "beta"))

    @property
    def n_inputs(self) -> int:
        return self.w_in.shape[1]

    @property
    def n_neurons(self) -> int:
        return self.w_in.shape[0]


def _whole_number(value, name: str, low: int, high: int) -> int:
    number = _finite_float(value, name)
    if number != int(number) or not low <= number <= high:
        raise ValueError(f"expected {name} as an integer in {low}..{high}; got {value!r}")
    return int(number)


@dataclass(frozen=True, eq=False)
class IRLayerIR:
    """One IR-SNN layer (module docstring): ``w_in [2H, F]``, ``bias [2H]``, ``w_rec [2H, H]`` (the
    ``z`` rows first), the quantiser's ``value_range`` and step ``delta`` and its ``bits`` and
    ``dead_zone`` (levels ``|q| <= dead_zone`` are not sent)."""

    w_in: np.ndarray
    bias: np.ndarray
    w_rec: np.ndarray
    value_range: float
    delta: float
    bits: int
    dead_zone: int

    def __post_init__(self) -> None:
        w_in = _frozen_array(self.w_in, "w_in", ndim=2)
        rows = w_in.shape[0]
        if rows < 2 or rows % 2 or w_in.shape[1] < 1:
            raise ValueError(f"expected a nonempty w_in [2 * neurons, inputs] of an IR-SNN layer; got shape {w_in.shape}")
        object.__setattr__(self, "w_in", w_in)
        object.__setattr__(self, "bias", _frozen_array(self.bias, "bias", shape=(rows,)))
        object.__setattr__(self, "w_rec", _frozen_array(self.w_rec, "w_rec", shape=(rows, rows // 2)))
        for name in ("value_range", "delta"):
            value = _finite_float(getattr(self, name), name)
            if value <= 0:
                raise ValueError(f"expected {name} > 0; got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "bits", _whole_number(self.bits, "bits", 1, 24))
        object.__setattr__(self, "dead_zone", _whole_number(self.dead_zone, "dead_zone", 0, 2 ** 23))

    @property
    def n_inputs(self) -> int:
        return self.w_in.shape[1]

    @property
    def n_neurons(self) -> int:
        return self.w_rec.shape[1]

    @property
    def lower(self) -> float:
        """The quantiser's lower clip: 0 at 1 bit (binary spikes), else ``-value_range``."""
        return 0.0 if self.bits == 1 else -self.value_range

    @property
    def graded(self) -> bool:
        """Whether its outputs are graded spikes (levels beyond 0 and 1): more than one bit."""
        return self.bits > 1


LAYER_KINDS = {"alif": ALIFLayerIR, "irsnn": IRLayerIR}


def layer_kind(layer) -> str:
    """``"alif"`` or ``"irsnn"``: the key of a layer's class in :data:`LAYER_KINDS`."""
    for kind, cls in LAYER_KINDS.items():
        if isinstance(layer, cls):
            return kind
    raise ValueError(f"expected a layer among {[cls.__name__ for cls in LAYER_KINDS.values()]}; "
                     f"got {type(layer).__name__}")


@dataclass(frozen=True, eq=False)
class ReadoutIR:
    """Leaky readout: ``weight [C, H]``, ``bias [C]``, per-output decay ``alpha = exp(-dt/tau_o)`` ``[C]``."""

    weight: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray

    def __post_init__(self) -> None:
        weight = _frozen_array(self.weight, "readout weight", ndim=2)
        if weight.shape[0] < 2 or weight.shape[1] < 1:
            raise ValueError(f"expected a readout weight [classes >= 2, neurons >= 1]; got shape {weight.shape}")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", _frozen_array(self.bias, "readout bias", shape=(weight.shape[0],)))
        object.__setattr__(self, "alpha", _decay_vector(self.alpha, "readout alpha", weight.shape[0]))

    @property
    def n_inputs(self) -> int:
        return self.weight.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class NetworkIR:
    """Layers (ALIF or IR-SNN), readout and the early-exit threshold; ``dt_ms`` is the bin width (None: unknown)."""

    layers: Tuple[ALIFLayerIR, ...]
    readout: ReadoutIR
    decision_threshold: float
    dt_ms: Optional[float] = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers or not all(isinstance(layer, tuple(LAYER_KINDS.values())) for layer in layers):
            raise ValueError(f"expected at least one layer among {[cls.__name__ for cls in LAYER_KINDS.values()]}; "
                             f"got {[type(layer).__name__ for layer in layers]}")
        for index in range(1, len(layers)):
            if layers[index].n_inputs != layers[index - 1].n_neurons:
                raise ValueError(
                    f"expected layer {index} to take {layers[index - 1].n_neurons} inputs (layer {index - 1}'s size); "
                    f"got {layers[index].n_inputs}"
                )
        if not isinstance(self.readout, ReadoutIR):
            raise ValueError(f"expected a ReadoutIR; got {type(self.readout).__name__}")
        if self.readout.n_inputs != layers[-1].n_neurons:
            raise ValueError(
                f"expected the readout to take {layers[-1].n_neurons} inputs (last layer's size); got {self.readout.n_inputs}"
            )
        threshold = _finite_float(self.decision_threshold, "decision_threshold")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"expected decision_threshold in (0, 1]; got {threshold}")
        dt_ms = None
        if self.dt_ms is not None:
            dt_ms = _finite_float(self.dt_ms, "dt_ms")
            if dt_ms <= 0:
                raise ValueError(f"expected dt_ms > 0 or None; got {dt_ms}")
        if int(self.format_version) not in READABLE_VERSIONS:
            raise ValueError(f"expected format_version among {READABLE_VERSIONS}; got {self.format_version}")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "decision_threshold", threshold)
        object.__setattr__(self, "dt_ms", dt_ms)
        object.__setattr__(self, "format_version", FORMAT_VERSION)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.readout.n_outputs

    @property
    def layer_sizes(self) -> Tuple[int, ...]:
        return tuple(layer.n_neurons for layer in self.layers)


def networks_equal(first: NetworkIR, second: NetworkIR) -> bool:
    """True when every array and scalar of the two networks is identical (bitwise for floats)."""

    def same(a, b) -> bool:
        if isinstance(a, np.ndarray):
            return a.shape == b.shape and np.array_equal(a, b)
        return a == b

    if len(first.layers) != len(second.layers) or any(
            type(a) is not type(b) for a, b in zip(first.layers, second.layers)):
        return False
    parts = list(zip(first.layers, second.layers)) + [(first.readout, second.readout)]
    for a, b in parts:
        if not all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a)):
            return False
    return (first.decision_threshold, first.dt_ms) == (second.decision_threshold, second.dt_ms)


def _to_arrays(ir: NetworkIR) -> dict:
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(ir.format_version, dtype=np.int64),
        "n_layers": np.array(len(ir.layers), dtype=np.int64),
        "decision_threshold": np.array(ir.decision_threshold, dtype=np.float64),
        "dt_ms": np.array(np.nan if ir.dt_ms is None else ir.dt_ms, dtype=np.float64),
    }
    for index, layer in enumerate(ir.layers):
        arrays[f"layer{index}.kind"] = np.array(layer_kind(layer))
        for f in fields(layer):
            arrays[f"layer{index}.{f.name}"] = np.asarray(getattr(layer, f.name), dtype=np.float64)
    for f in fields(ReadoutIR):
        arrays[f"readout.{f.name}"] = np.asarray(getattr(ir.readout, f.name), dtype=np.float64)
    return arrays


def save_network(ir: NetworkIR, path: PathLike) -> Path:
    """Write ``ir`` to ``path`` (an ``.npz`` archive) atomically (``deploy.files.write_atomic``)."""
    if not isinstance(ir, NetworkIR):
        raise ValueError(f"expected a NetworkIR; got {type(ir).__name__}")
    arrays = _to_arrays(ir)

    def write(temp: Path) -> None:
        with temp.open("wb") as stream:  # a file object: given a name, np.savez would append ".npz"
            np.savez(stream, **arrays)

    return write_atomic(path, write)


def load_network(path: PathLike) -> NetworkIR:
    """Read and validate a network file; raises ValueError naming what was expected and what came."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"expected a network file at {path}; found none")
    if not zipfile.is_zipfile(path):  # before np.load, whose error would talk of pickled data
        raise ValueError(f"expected an .npz network file at {path} (a zip archive written by `rc-snn export`); "
                         "it is not one")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"expected an .npz network file at {path}; could not read it: {error}") from None
    except ValueError as error:  # object arrays need pickle: refused
        raise ValueError(f"expected an .npz network file of plain numeric arrays at {path}; {error}") from None

    def take(key: str) -> np.ndarray:
        if key not in arrays:
            raise ValueError(f"expected array {key!r} in network file {path}; found keys {sorted(arrays)}")
        return arrays[key]

    def scalar(key: str, kind=float):
        value = take(key)
        if value.shape != ():
            raise ValueError(f"expected {key!r} as a scalar in {path}; got shape {value.shape}")
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {key!r} as {kind.__name__} in {path}; got {value!r}") from None

    if scalar("format", str) != FORMAT_NAME:
        raise ValueError(f"expected format {FORMAT_NAME!r} in {path}; got {scalar('format', str)!r}")
    version = scalar("format_version", int)
    if version not in READABLE_VERSIONS:
        raise ValueError(f"expected format_version among {READABLE_VERSIONS} in {path}; got {version} (a file "
                         "written by a newer rc-snn?)")
    n_layers = scalar("n_layers", int)
    if n_layers < 1:
        raise ValueError(f"expected n_layers >= 1 in {path}; got {n_layers}")
    dt_ms = scalar("dt_ms")
    try:
        layers = []
        for index in range(n_layers):
            kind = scalar(f"layer{index}.kind", str) if version >= 2 else "alif"
            if kind not in LAYER_KINDS:
                raise ValueError(f"expected layer{index}.kind among {sorted(LAYER_KINDS)}; got {kind!r}")
            cls = LAYER_KINDS[kind]
            layers.append(cls(**{f.name: take(f"layer{index}.{f.name}") for f in fields(cls)}))
        readout = ReadoutIR(**{f.name: take(f"readout.{f.name}") for f in fields(ReadoutIR)})
        return NetworkIR(
            layers=tuple(layers),
            readout=readout,
            decision_threshold=scalar("decision_threshold"),
            dt_ms=None if np.isnan(dt_ms) else dt_ms,
        )
    except ValueError as error:
        raise ValueError(f"invalid network file {path}: {error}") from None
