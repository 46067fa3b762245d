"""The network file: a trained spiking network as frozen dataclasses of float64 numpy arrays.

Training (``rc_snn.pipeline.export``, ``rc_snn.pipeline.snntorch_export``) writes this file and
``deploy`` reads it; ``deploy`` never needs the PyTorch model. Three layer kinds
(``deploy.ir_layers``): ALIF (:class:`ALIFLayerIR`, the equations of ``rc_snn.neuron.alif``),
IR-SNN (:class:`IRLayerIR`, ``rc_snn.neuron.irsnn``) and snnTorch's leaky neuron
(:class:`LIFLayerIR`), below. For an ALIF layer (dt = 1 step; ``deploy.kernels`` implements them
in numpy)::

    b[t] = rho*b[t-1] + (1-rho)*s[t-1];   B[t] = b0 + beta*b[t]
    u[t] = alpha*u[t-1] + (1-alpha)*I[t] - B[t]*s[t-1];   s[t] = H(u[t] - B[t])  (H(x) = 1 iff x > 0)
    I[t] = W_in x[t] + W_rec s[t-1] + bias
    m[t] = alpha_o*m[t-1] + (1-alpha_o)*(W_o s_last[t] + b_o)

or, with Yin et al.'s adaptive output layer (:class:`AdaptiveReadoutIR`) instead of the leaky
readout, output neurons that spike and reset as ALIF neurons without recurrence (their spikes z go
nowhere; m is read)::

    b_o[t] = rho_o*b_o[t-1] + (1-rho_o)*z[t-1];   B_o[t] = b0_o + beta_o*b_o[t]
    m[t] = alpha_o*m[t-1] + (1-alpha_o)*(W_o s_last[t] + b_o) - B_o[t]*z[t-1];   z[t] = H(m[t] - B_o[t])

and the early-exit rule: the decision step is the first ``t`` with ``max softmax(m[t]) >
decision_threshold`` (else ``T-1``), the prediction ``argmax m[t*]``. For an IR-SNN layer of H
neurons, whose outputs are integer levels ``q`` (graded spikes; binary at 1 bit)::

    g[t] = W_in x[t] + W_rec q[t-1] + bias       [2H]: batch norm and the sender's step folded in
    z = sigmoid(g[:H]);  h[t] = (1 - z) * relu(g[H:]) + z * h[t-1];  v = a[t-1] + h[t]
    q[t] = trunc(clip(v, lo, value_range) / delta), 0 where |q| <= dead_zone;  a[t] = v - q[t] * delta

with ``lo = 0`` at 1 bit, else ``-value_range``. A layer or readout fed by an IR-SNN layer holds
that layer's ``delta`` in its weights (``W delta``), so what travels is the level ``q``. For a
layer of snnTorch's ``Leaky`` / ``RLeaky`` neurons (snnTorch 1.0's equations, ``reset_delay=True``)::

    I[t] = W_in x[t] + W_rec s[t-1] + bias
    subtract:  mem[t] = alpha*mem[t-1] + I[t] - threshold*s[t-1]
    zero:      mem[t] = alpha*(1 - s[t-1])*mem[t-1] + I[t]        (snn.Leaky)
    zero-step: mem[t] = (1 - s[t-1])*(alpha*mem[t-1] + I[t])      (snn.RLeaky)
    s[t] = H(mem[t] - threshold)

``alpha`` is snnTorch's ``beta`` (the membrane decay), named as the ALIF layer's membrane decay: in
rc-snn ``beta`` is only ever the ALIF's adaptation strength.

File format (``format_version`` 4; files of earlier versions are refused: export them again): one
``.npz`` archive (``np.savez``, no pickled objects) with the keys ``format``, ``format_version``,
``n_layers``, ``decision_threshold``, ``dt_ms`` (NaN for None), ``weights_id`` (the identifier of
the trained weights it was exported from, ``""`` for none), ``layer{l}.kind`` (``"alif"``,
``"irsnn"`` or ``"lif"``), the layer's fields ``layer{l}.{field}``, ``readout.kind`` (``"leaky"`` or
``"adaptive"``) and the readout's fields ``readout.{field}`` (``weight``, ``bias``, ``alpha``;
adaptive: also ``rho``, ``b0``, ``beta``); any other key is refused.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from .files import write_atomic
from .ir_layers import (LAYER_KINDS, READOUT_KINDS, ALIFLayerIR, AdaptiveReadoutIR, IRLayerIR, LIFLayerIR, ReadoutIR,
                        _finite_float, layer_kind, max_level, readout_kind)

__all__ = ["NetworkIR", "ALIFLayerIR", "IRLayerIR", "LIFLayerIR", "ReadoutIR", "AdaptiveReadoutIR", "LAYER_KINDS",
           "READOUT_KINDS", "layer_kind", "readout_kind", "max_level", "save_network", "load_network", "networks_equal",
           "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "rc-snn-network"
FORMAT_VERSION = 4
READABLE_VERSIONS = (4,)

PathLike = Union[str, "os.PathLike[str]"]

@dataclass(frozen=True, eq=False)
class NetworkIR:
    """Layers (any of ``LAYER_KINDS``), readout (any of ``READOUT_KINDS``) and the early-exit threshold;
    ``dt_ms`` is the bin width (None: unknown);
    ``weights_id`` identifies the trained weights the network was exported from (None: not from an rc-snn run)."""

    layers: Tuple[ALIFLayerIR, ...]
    readout: ReadoutIR | AdaptiveReadoutIR
    decision_threshold: float
    dt_ms: Optional[float] = None
    format_version: int = FORMAT_VERSION
    weights_id: Optional[str] = None

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
            raise ValueError(f"expected a readout among {[cls.__name__ for cls in READOUT_KINDS.values()]}; got "
                             f"{type(self.readout).__name__}")
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
        if self.weights_id is not None and not (isinstance(self.weights_id, str) and self.weights_id):
            raise ValueError(f"expected weights_id as a nonempty string or None; got {self.weights_id!r}")
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
            type(a) is not type(b) for a, b in zip(first.layers + (first.readout,), second.layers + (second.readout,))):
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
        "weights_id": np.array(ir.weights_id or ""),
    }
    for index, layer in enumerate(ir.layers):
        arrays[f"layer{index}.kind"] = np.array(layer_kind(layer))
        for f in fields(layer):
            arrays[f"layer{index}.{f.name}"] = np.asarray(getattr(layer, f.name), dtype=np.float64)
    arrays["readout.kind"] = np.array(readout_kind(ir.readout))
    for f in fields(ir.readout):
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
    raw_version = take("format_version")
    if raw_version.shape != () or raw_version.dtype.kind not in "iu":
        raise ValueError(f"expected format_version as an integer in {path}; got {raw_version!r}")
    version = int(raw_version)
    if version not in READABLE_VERSIONS:
        raise ValueError(f"expected format_version among {READABLE_VERSIONS} in {path}; got {version} (a file "
                         "written by a newer rc-snn?)")
    n_layers = scalar("n_layers", int)
    if n_layers < 1:
        raise ValueError(f"expected n_layers >= 1 in {path}; got {n_layers}")
    dt_ms = scalar("dt_ms")
    weights = scalar("weights_id", str)
    expected = {"format", "format_version", "n_layers", "decision_threshold", "dt_ms"}
    expected |= {"weights_id", "readout.kind"}
    try:
        layers = []
        for index in range(n_layers):
            kind = scalar(f"layer{index}.kind", str)
            if kind not in LAYER_KINDS:
                raise ValueError(f"expected layer{index}.kind among {sorted(LAYER_KINDS)}; got {kind!r}")
            cls = LAYER_KINDS[kind]
            layers.append(cls(**{f.name: take(f"layer{index}.{f.name}") for f in fields(cls)}))
            expected |= {f"layer{index}.{f.name}" for f in fields(cls)} | {f"layer{index}.kind"}
        kind = scalar("readout.kind", str)
        if kind not in READOUT_KINDS:
            raise ValueError(f"expected readout.kind among {sorted(READOUT_KINDS)}; got {kind!r}")
        readout_cls = READOUT_KINDS[kind]
        expected |= {f"readout.{f.name}" for f in fields(readout_cls)}
        unknown = sorted(set(arrays) - expected)
        if unknown:
            raise ValueError(f"unexpected keys {unknown[:5]} (a file from another tool or a newer rc-snn?)")
        readout = readout_cls(**{f.name: take(f"readout.{f.name}") for f in fields(readout_cls)})
        return NetworkIR(
            layers=tuple(layers),
            readout=readout,
            decision_threshold=scalar("decision_threshold"),
            dt_ms=None if np.isnan(dt_ms) else dt_ms,
            weights_id=weights or None,
        )
    except ValueError as error:
        raise ValueError(f"invalid network file {path}: {error}") from None
