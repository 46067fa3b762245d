"""Interfaces (ports and Vars) of the Lava Processes that run a network file, B slots side by side.

Every port carries ``[batch, n]`` arrays: B independent copies of the network run in lockstep (as B
copies placed on different cores would). Float and fixed-point ProcessModels use the same Vars in
different units (float parameters, or device integers from ``deploy.quantize``), as Lava's LIF does.

Streaming: the run works through N samples, B at a time. Slot b starts with sample b; when the
readout decides a slot's sample, it sends on ``start_out`` the index of the next sample waiting
(-1 for none), and the source starts playing it in that slot at the next step; each layer resets
the slot (state to rest, the recurrent input that still carries the previous sample's spikes
masked) when the new sample's first step reaches its depth. With N = B this is the batch mode:
every slot holds one sample and the run ends when the last one has decided.

Timing (Lava steps ``tau = 1, 2, ...``): the source sends a sample's frame ``t`` at ``tau = start + t``
(``start`` = 1 for the first B samples); every Dense sends at ``tau`` what it received at ``tau - 1``;
so a process at ``depth`` d (Dense hops from the source) computes the sample's PyTorch step
``t = tau - start - d`` and holds at rest while ``t < 0``. ALIF layer l
(1-based) has depth l, the readout depth ``n_layers + 1``. The recurrent Dense's one-step delay is
exactly the ``W_rec s[t-1]`` of the equations. A layer (ALIF or IR-SNN) is its neuron Process
between two BatchDense (feed-forward in, recurrent around); an IR-SNN layer's graded spikes (its
levels ``q``) travel as the payload of its messages, as Loihi 2's graded spikes carry up to 24 bits.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from deploy import kernels

#: The value types of the ports and Vars in the ProcessModels: float, and Loihi-style integers.
FLOAT = float
INT = np.int64
PORT_INT = np.int32  # 24-bit values on the wire
#: The ``start_out`` word of a slot that keeps its sample (when none is waiting, the decided one
#: plays on, uncounted, as in the batch mode).
NO_CHANGE = -1


def _vector(value) -> np.ndarray:
    return np.atleast_1d(np.asarray(value))


def _first_samples(batch: int, n_samples: int) -> np.ndarray:
    """The sample each slot starts with: ``0 .. B-1``, -1 for slots beyond the samples."""
    return np.where(np.arange(batch) < n_samples, np.arange(batch), -1)


class FrameSource(AbstractProcess):
    """Plays each slot's current sample, frame ``t`` at Lava step ``start + t``, zeros after ``T``.

    The frames of all N samples are stored sparse, row ``n * T + t`` of a CSR matrix (``indptr``,
    ``indices``, ``values``), so thousands of N-MNIST samples fit in a few MB. ``start_in [batch]``
    (from the readout) names the sample a slot starts at the next step (-1: none).
    """

    def __init__(self, *, indptr, indices, values, n_steps: int, batch: int, n_samples: int, n_channels: int,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        indptr, indices, values = _vector(indptr), _vector(indices), _vector(values)
        if indices.size == 0:  # Lava Vars cannot be empty; indptr never points at this pad
            indices, values = np.zeros(1, dtype=np.int64), np.zeros(1)
        self.s_out = OutPort(shape=(batch, n_channels))
        self.start_in = InPort(shape=(batch,))
        self.indptr = Var(shape=indptr.shape, init=indptr)
        self.indices = Var(shape=indices.shape, init=indices)
        self.values = Var(shape=values.shape, init=values)
        self.n_steps = Var(shape=(1,), init=np.array([n_steps]))
        self.slot_sample = Var(shape=(batch,), init=_first_samples(batch, n_samples))
        self.slot_start = Var(shape=(batch,), init=np.ones(batch, dtype=np.int64))


class BatchDense(AbstractProcess):
    """Dense synapses ``a_out[tau] = W s_in[tau - 1]`` per sample (float), or per-row
    ``shift(W_mant s_in, exp)`` (fixed). ``weights_t`` is ``W`` transposed, ``[n_in, n_out]``."""

    def __init__(self, *, weights_t, exponents=None, batch: int, **kwargs) -> None:
        super().__init__(**kwargs)
        weights_t = np.asarray(weights_t)
        n_in, n_out = weights_t.shape
        exponents = np.zeros(n_out, dtype=np.int64) if exponents is None else _vector(exponents)
        self.s_in = InPort(shape=(batch, n_in))
        self.a_out = OutPort(shape=(batch, n_out))
        self.weights_t = Var(shape=weights_t.shape, init=weights_t)
        self.exponents = Var(shape=(n_out,), init=exponents)
        self.a_buff = Var(shape=(batch, n_out), init=np.zeros((batch, n_out)))


class ALIF(AbstractProcess):
    """Adaptive LIF neurons (Yin et al. 2021; equations in ``deploy.kernels``), B samples side by side.

    Ports: ``a_in`` feedforward current ``W_in x``, ``r_in`` recurrent current ``W_rec s``,
    ``count_in [batch]`` from the readout (n + 1: count the spikes of ``count_lag`` steps ago for
    sample n; 0: that step came after the slot's decision), ``start_in [batch]`` from the readout
    (a sample starts in the slot: reset it when its first step reaches this depth), ``s_out``
    spikes. ``spike_counts [N, H]`` counts each sample's spikes up to and including its decision
    step: spikes wait ``count_lag`` steps in ``history`` until the readout says whether their step
    is still before the decision.
    """

    def __init__(self, *, batch: int, n_samples: int, n_steps: int, bias, alpha, rho, b0, beta, depth: int,
                 count_lag: int, **kwargs) -> None:
        super().__init__(**kwargs)
        bias = _vector(bias)
        n_neurons = bias.shape[0]
        _layer_interface(self, batch, n_samples, n_steps, n_neurons, n_neurons, ("u", "b", "s"), depth, count_lag)
        for name, value in (("bias", bias), ("alpha", alpha), ("rho", rho), ("b0", b0), ("beta", beta)):
            value = np.broadcast_to(np.asarray(value), (n_neurons,)).copy()
            setattr(self, name, Var(shape=(n_neurons,), init=value))


def _layer_interface(process: AbstractProcess, batch: int, n_samples: int, n_steps: int, n_neurons: int,
                     input_rows: int, states: tuple, depth: int, count_lag: int) -> None:
    """A layer's ports (``a_in``, ``r_in`` of ``input_rows``; ``count_in``, ``start_in``; ``s_out``),
    its state Vars at rest, when each slot resets next, and the Vars with which it counts its spikes
    up to each decision (see ``ALIF``)."""
    shape = (batch, n_neurons)
    process.a_in = InPort(shape=(batch, input_rows))
    process.r_in = InPort(shape=(batch, input_rows))
    process.count_in = InPort(shape=(batch,))
    process.start_in = InPort(shape=(batch,))
    process.s_out = OutPort(shape=shape)
    process.reset_at = Var(shape=(batch,), init=np.full(batch, -1, dtype=np.int64))
    for name in states:
        setattr(process, name, Var(shape=shape, init=np.zeros(shape)))
    process.depth = Var(shape=(1,), init=np.array([depth]))
    process.count_lag = Var(shape=(1,), init=np.array([count_lag]))
    process.history = Var(shape=(count_lag + 1,) + shape, init=np.zeros((count_lag + 1,) + shape))
    process.spike_counts = Var(shape=(n_samples, n_neurons), init=np.zeros((n_samples, n_neurons), dtype=np.int64))
    # The same counts packed (deploy.kernels.pack_counts), for the host to read in few messages.
    n_words = -(-n_neurons // kernels.count_packing(n_steps)[1])
    process.n_steps = Var(shape=(1,), init=np.array([n_steps]))
    process.packed_counts = Var(shape=(n_samples, n_words), init=np.zeros((n_samples, n_words), dtype=np.int64))


class IRNeuron(AbstractProcess):
    """IR-SNN neurons (Ponghiran and Roy 2022; equations in ``deploy.kernels``), B samples side by side.

    Ports as :class:`ALIF`'s, except that ``a_in`` and ``r_in`` carry the ``2H`` gate inputs
    (``W_in x`` and ``W_rec q``) and ``s_out`` sends the levels ``q`` (graded spikes).
    ``spike_counts`` counts nonzero levels sent, up to each sample's decision step.
    """

    def __init__(self, *, batch: int, n_samples: int, n_steps: int, bias, value_range: float, lower: float,
                 delta: float, dead_zone: int, depth: int, count_lag: int, **kwargs) -> None:
        super().__init__(**kwargs)
        bias = _vector(bias)
        n_neurons = bias.shape[0] // 2
        _layer_interface(self, batch, n_samples, n_steps, n_neurons, 2 * n_neurons, ("h", "a", "s"), depth,
                         count_lag)
        self.bias = Var(shape=bias.shape, init=bias)
        for name, value in (("value_range", value_range), ("lower", lower), ("delta", delta),
                            ("dead_zone", dead_zone)):
            setattr(self, name, Var(shape=(1,), init=np.array([value], dtype=float)))


class DecisionReadout(AbstractProcess):
    """Leaky readout (or, with ``rho`` given, Yin et al.'s adaptive output layer: ``m`` spikes and
    resets against ``b0 + beta b``, its spikes ``z`` going nowhere) with the early-exit decision
    detector, B slots side by side.

    At a slot's PyTorch step ``t`` (``0 <= t < n_steps``; ``m`` at rest before ``t = 0``) it
    updates ``m``, and a slot's undecided sample whose ``max softmax(m / scale) > decision_threshold`` (or
    ``t == n_steps - 1``) records ``decision_step = t`` and ``prediction = argmax m``, and the slot
    takes the next sample waiting (``start_out``, to the source and the layers). ``count_out`` tells
    the layers which sample still counts step ``t`` in each slot. When every sample has decided it
    ends the run after this step (:func:`deploy.private_api.request_pause`), unless the step ends a ``run_chunk`` (the
    host's ``run`` calls) anyway. ``lava_steps`` is the last Lava step it executed and
    ``n_decided`` the samples decided so far. With ``record_steps`` it also keeps each sample's
    ``argmax m`` at every step up to its decision, packed into ``step_predictions`` (a per-step task's
    predictions, read in a few messages where a Monitor of ``m`` would take one per value).
    """

    def __init__(self, *, batch: int, n_samples: int, bias, alpha, scale, decision_threshold: float, depth: int,
                 n_steps: int, max_lava_steps: int, run_chunk: int, rho=None, b0=0, beta=0, record_steps: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        bias = _vector(bias)
        n_outputs = bias.shape[0]
        shape = (batch, n_outputs)
        self.a_in = InPort(shape=shape)
        self.count_out = OutPort(shape=(batch,))
        self.start_out = OutPort(shape=(batch,))
        self.slot_sample = Var(shape=(batch,), init=_first_samples(batch, n_samples))
        self.slot_start = Var(shape=(batch,), init=np.ones(batch, dtype=np.int64))
        self.next_sample = Var(shape=(1,), init=np.array([min(batch, n_samples)]))
        self.m = Var(shape=shape, init=np.zeros(shape))
        self.bias = Var(shape=(n_outputs,), init=bias)
        self.alpha = Var(shape=(n_outputs,), init=_vector(alpha))
        self.adaptive = Var(shape=(1,), init=np.array([int(rho is not None)]))
        self.b = Var(shape=shape, init=np.zeros(shape))
        self.z = Var(shape=shape, init=np.zeros(shape))
        for name, value in (("rho", 0 if rho is None else rho), ("b0", b0), ("beta", beta)):
            setattr(self, name, Var(shape=(n_outputs,), init=np.broadcast_to(np.asarray(value), (n_outputs,)).copy()))
        self.scale = Var(shape=(n_outputs,), init=np.broadcast_to(np.asarray(scale, dtype=float), (n_outputs,)).copy())
        self.decision_threshold = Var(shape=(1,), init=np.array([decision_threshold], dtype=float))
        self.depth = Var(shape=(1,), init=np.array([depth]))
        self.n_steps = Var(shape=(1,), init=np.array([n_steps]))
        self.max_lava_steps = Var(shape=(1,), init=np.array([max_lava_steps]))
        self.run_chunk = Var(shape=(1,), init=np.array([run_chunk]))
        self.n_decided = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))
        self.decision_step = Var(shape=(n_samples,), init=np.full(n_samples, -1, dtype=np.int64))
        self.prediction = Var(shape=(n_samples,), init=np.full(n_samples, -1, dtype=np.int64))
        self.lava_steps = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))
        # record_steps: each sample's argmax m at every step up to its decision, packed (kernels.pack_counts)
        self.record_steps = Var(shape=(1,), init=np.array([int(record_steps)]))
        words = -(-n_steps // kernels.count_packing(n_outputs - 1)[1]) if record_steps else 1
        self.step_predictions = Var(shape=(n_samples, words), init=np.zeros((n_samples, words), dtype=np.int64))


class LeakyNeuron(AbstractProcess):
    """snnTorch's leaky neurons (``Leaky``, ``RLeaky``; equations in ``deploy.kernels``), B samples side by side.

    Ports and spike counting as :class:`ALIF`'s; ``reset`` indexes ``deploy.ir_layers.LIF_RESETS``.
    """

    def __init__(self, *, batch: int, n_samples: int, n_steps: int, bias, alpha, threshold, reset: int, depth: int,
                 count_lag: int, **kwargs) -> None:
        super().__init__(**kwargs)
        bias = _vector(bias)
        n_neurons = bias.shape[0]
        _layer_interface(self, batch, n_samples, n_steps, n_neurons, n_neurons, ("mem", "s"), depth, count_lag)
        self.bias = Var(shape=(n_neurons,), init=bias)
        self.alpha = Var(shape=(n_neurons,), init=_vector(alpha))
        self.threshold = Var(shape=(n_neurons,), init=_vector(threshold))
        self.reset = Var(shape=(1,), init=np.array([reset]))
