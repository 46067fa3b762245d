"""The network file's parts: one frozen dataclass of float64 numpy arrays per layer kind, and the readout.

``deploy.ir`` holds the network (:class:`deploy.ir.NetworkIR`), the file format and its
equations; this module the parts and their validation. Three layer kinds (:data:`LAYER_KINDS`):
ALIF (:class:`ALIFLayerIR`), IR-SNN (:class:`IRLayerIR`) and snnTorch's leaky neuron
(:class:`LIFLayerIR`). Two readout kinds (:data:`READOUT_KINDS`): the leaky readout
(:class:`ReadoutIR`) and Yin et al.'s adaptive spiking output layer (:class:`AdaptiveReadoutIR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

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


def _synapses(layer, rows_per_neuron: int = 1) -> int:
    """Check and freeze ``layer``'s ``w_in [R, F]``, ``bias [R]`` and ``w_rec [R, H]`` (``R =
    rows_per_neuron * H``: one row per neuron, two for the IR-SNN's gates); returns ``H``."""
    w_in = _frozen_array(layer.w_in, "w_in", ndim=2)
    rows = w_in.shape[0]
    if rows < rows_per_neuron or rows % rows_per_neuron or w_in.shape[1] < 1:
        raise ValueError(f"expected a nonempty w_in [{rows_per_neuron} x neurons, inputs] for a "
                         f"{type(layer).__name__}; got shape {w_in.shape}")
    n_neurons = rows // rows_per_neuron
    object.__setattr__(layer, "w_in", w_in)
    object.__setattr__(layer, "bias", _frozen_array(layer.bias, "bias", shape=(rows,)))
    object.__setattr__(layer, "w_rec", _frozen_array(layer.w_rec, "w_rec", shape=(rows, n_neurons)))
    return n_neurons


class _Layer:
    """What every layer kind has: ``w_in [rows, inputs]`` and ``w_rec [rows, neurons]``."""

    @property
    def n_inputs(self) -> int:
        return self.w_in.shape[1]

    @property
    def n_neurons(self) -> int:
        return self.w_rec.shape[1]


@dataclass(frozen=True, eq=False)
class ALIFLayerIR(_Layer):
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
        n_neurons = _synapses(self)
        object.__setattr__(self, "alpha", _decay_vector(self.alpha, "alpha", n_neurons))
        object.__setattr__(self, "rho", _decay_vector(self.rho, "rho", n_neurons))
        object.__setattr__(self, "b0", _finite_float(self.b0, "b0"))
        object.__setattr__(self, "beta", _finite_float(self.beta, "beta"))


def _whole_number(value, name: str, low: int, high: int) -> int:
    number = _finite_float(value, name)
    if number != int(number) or not low <= number <= high:
        raise ValueError(f"expected {name} as an integer in {low}..{high}; got {value!r}")
    return int(number)


def max_level(bits: int) -> int:
    """``L``, the largest level ``|q|`` an IR-SNN layer of ``bits`` bits sends (1 bit: a binary spike)."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


@dataclass(frozen=True, eq=False)
class IRLayerIR(_Layer):
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
        _synapses(self, rows_per_neuron=2)
        for name in ("value_range", "delta"):
            value = _finite_float(getattr(self, name), name)
            if value <= 0:
                raise ValueError(f"expected {name} > 0; got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "bits", _whole_number(self.bits, "bits", 1, 24))
        object.__setattr__(self, "dead_zone", _whole_number(self.dead_zone, "dead_zone", 0, 2 ** 23))

    @property
    def lower(self) -> float:
        """The quantiser's lower clip: 0 at 1 bit (binary spikes), else ``-value_range``."""
        return 0.0 if self.bits == 1 else -self.value_range

    @property
    def graded(self) -> bool:
        """Whether its outputs are graded spikes (levels beyond 0 and 1): more than one bit."""
        return self.bits > 1


#: snnTorch's reset mechanisms a :class:`LIFLayerIR` can hold, by the number stored in the file:
#: ``subtract``; ``zero`` as ``snn.Leaky`` does it (the old membrane is zeroed before the update);
#: ``zero-step`` as ``snn.RLeaky`` does it (the whole update of the step after a spike is zeroed).
LIF_RESETS = ("subtract", "zero", "zero-step")


@dataclass(frozen=True, eq=False)
class LIFLayerIR(_Layer):
    """One layer of snnTorch's leaky neurons (``snn.Leaky``, or ``snn.RLeaky`` with its all-to-all
    ``recurrent``), snnTorch's equations: ``w_in [H, F]``, ``bias [H]`` (the input Linear's bias plus
    the recurrent Linear's), ``w_rec [H, H]`` (zeros for ``Leaky``), per-neuron membrane decay
    ``alpha`` in [0, 1] (snnTorch's ``beta``) and ``threshold`` ``[H]``, and ``reset`` (an index of
    :data:`LIF_RESETS`); see ``deploy.ir``."""

    w_in: np.ndarray
    bias: np.ndarray
    w_rec: np.ndarray
    alpha: np.ndarray
    threshold: np.ndarray
    reset: int

    def __post_init__(self) -> None:
        n_neurons = _synapses(self)
        alpha = _frozen_array(self.alpha, "alpha", shape=(n_neurons,))
        if alpha.size and not (alpha.min() >= 0.0 and alpha.max() <= 1.0):
            raise ValueError(f"expected alpha (snnTorch's beta) in [0, 1], where snnTorch clamps it; got "
                             f"[{alpha.min()}, {alpha.max()}]")
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "threshold", _frozen_array(self.threshold, "threshold", shape=(n_neurons,)))
        object.__setattr__(self, "reset", _whole_number(self.reset, "reset", 0, len(LIF_RESETS) - 1))


LAYER_KINDS = {"alif": ALIFLayerIR, "irsnn": IRLayerIR, "lif": LIFLayerIR}


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
class AdaptiveReadoutIR(ReadoutIR):
    """Yin et al.'s output layer (``rc_snn.neuron.layers.AdaptiveReadout``): the leaky readout's
    membrane ``m`` with ALIF spikes and an adaptive threshold, per-output ``rho [C]`` and scalars
    ``b0`` and ``beta`` (equations in ``deploy.ir``). Its spikes go nowhere; ``m`` is read."""

    rho: np.ndarray
    b0: float
    beta: float

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "rho", _decay_vector(self.rho, "readout rho", self.n_outputs))
        object.__setattr__(self, "b0", _finite_float(self.b0, "readout b0"))
        object.__setattr__(self, "beta", _finite_float(self.beta, "readout beta"))


#: The readouts a network file may hold, by the name stored in it (``readout.kind``).
READOUT_KINDS = {"leaky": ReadoutIR, "adaptive": AdaptiveReadoutIR}


def readout_kind(readout) -> str:
    """``"leaky"`` or ``"adaptive"``: the key of a readout's class in :data:`READOUT_KINDS`."""
    return "adaptive" if isinstance(readout, AdaptiveReadoutIR) else "leaky"
