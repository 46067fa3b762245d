"""ProcessModels of the source, the Dense and the layers: ``floating_pt`` (reproduces PyTorch) and
``fixed_pt`` (Loihi-style integers); the readout's are in ``readout_models.py``.

Float and fixed models share one template per Process (the abstract classes, which carry the timing
and counting) and differ only in port/Var types and in the step function from ``deploy.kernels``,
the same functions ``deploy.reference`` runs. Lava cannot subclass a model that already has
``@implements``, hence the abstract bases.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from deploy import kernels

# Absolute import: Lava loads this file by path as a top-level module when searching for models.
from deploy.lava_procs.process import FLOAT, INT, PORT_INT, ALIF, BatchDense, FrameSource, IRNeuron, LeakyNeuron



# ---------------------------------------------------------------- source
class AbstractFrameSourceModel(PyLoihiProcessModel):
    start_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    indptr: np.ndarray = LavaPyType(np.ndarray, INT)
    indices: np.ndarray = LavaPyType(np.ndarray, INT)
    n_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    slot_sample: np.ndarray = LavaPyType(np.ndarray, INT)
    slot_start: np.ndarray = LavaPyType(np.ndarray, INT)
    frame_dtype = FLOAT

    def run_spk(self) -> None:
        batch, n_channels = self.s_out.shape
        n_steps = int(self.n_steps[0])
        frame = np.zeros((batch, n_channels), dtype=self.frame_dtype)
        t = self.time_step - self.slot_start  # each slot's step of its sample
        playing = np.flatnonzero((self.slot_sample >= 0) & (t >= 0) & (t < n_steps))
        rows = self.slot_sample[playing] * n_steps + t[playing]  # CSR rows: sample * T + t
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        entries = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
        frame[np.repeat(playing, lengths), self.indices[entries]] = self.values[entries]
        self.s_out.send(frame)
        started = self.start_in.recv().astype(INT)  # the readout's word of this step: who starts next step
        self.slot_sample = np.where(started >= 0, started, self.slot_sample)
        self.slot_start = np.where(started >= 0, self.time_step + 1, self.slot_start)


@implements(proc=FrameSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyFrameSourceFloat(AbstractFrameSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    values: np.ndarray = LavaPyType(np.ndarray, FLOAT)


@implements(proc=FrameSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFrameSourceFixed(AbstractFrameSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, PORT_INT, precision=24)
    values: np.ndarray = LavaPyType(np.ndarray, INT)
    frame_dtype = PORT_INT


# ---------------------------------------------------------------- dense
class AbstractBatchDenseModel(PyLoihiProcessModel):
    exponents: np.ndarray = LavaPyType(np.ndarray, INT)

    def synapse(self, spikes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_spk(self) -> None:
        # Send what arrived one step earlier before receiving: one step of delay, which also makes
        # recurrent loops legal.
        self.a_out.send(self.a_buff)
        self.a_buff = self.synapse(self.s_in.recv())


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBatchDenseFloat(AbstractBatchDenseModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    weights_t: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    a_buff: np.ndarray = LavaPyType(np.ndarray, FLOAT)

    def synapse(self, spikes: np.ndarray) -> np.ndarray:
        return kernels.synaptic_input(self.weights_t, spikes)


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBatchDenseFixed(AbstractBatchDenseModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, PORT_INT, precision=24)
    weights_t: np.ndarray = LavaPyType(np.ndarray, INT, precision=8)
    a_buff: np.ndarray = LavaPyType(np.ndarray, INT)

    def synapse(self, spikes: np.ndarray) -> np.ndarray:
        return kernels.synaptic_input_fixed(self.weights_t, self.exponents, spikes.astype(INT))


# ---------------------------------------------------------------- neuron layers
class AbstractLayerModel(PyLoihiProcessModel):
    """A layer's timing, resets and spike counting; subclasses give :meth:`advance`, one step of its
    neurons, and ``states``, the names of their state Vars."""

    count_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    start_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    depth: np.ndarray = LavaPyType(np.ndarray, INT)
    count_lag: np.ndarray = LavaPyType(np.ndarray, INT)
    reset_at: np.ndarray = LavaPyType(np.ndarray, INT)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, INT)
    n_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    packed_counts: np.ndarray = LavaPyType(np.ndarray, INT)
    states: tuple = ()

    def advance(self, ff: np.ndarray, rec: np.ndarray) -> None:
        raise NotImplementedError

    def run_spk(self) -> None:
        ff = self.a_in.recv()
        rec = self.r_in.recv()
        depth = int(self.depth[0])
        t = self.time_step - 1 - depth  # steps since the first samples reached this depth
        if t >= 0:  # before its first input arrives the layer stays at rest (bias not integrated)
            resetting = self.reset_at == self.time_step  # a new sample's first step reaches this slot
            if resetting.any():
                for name in self.states:
                    getattr(self, name)[resetting] = 0
                rec = np.where(resetting[:, None], 0, rec)  # the recurrent Dense still holds the old spikes
            self.advance(ff, rec)
        self.s_out.send(self.s)
        # Receive the readout's words for step t - count_lag only after sending: the readout's step
        # depends on this step's Dense outputs, never on this layer's spikes of this step.
        slots = int(self.count_lag[0]) + 1
        if t >= 0:
            self.history[t % slots] = self.s
        counted = self.count_in.recv().astype(INT) - 1  # the sample each slot's step counts for, -1: none
        started = self.start_in.recv().astype(INT)
        counted_step = t - int(self.count_lag[0])
        if counted_step >= 0:
            rows = np.flatnonzero(counted >= 0)
            samples = counted[rows]
            self.spike_counts[samples] += (self.history[counted_step % slots][rows] != 0).astype(INT)
            self.packed_counts[samples] = kernels.pack_counts(self.spike_counts[samples], int(self.n_steps[0]))
        self.reset_at = np.where(started >= 0, self.time_step + 1 + depth, self.reset_at)


class AbstractALIFModel(AbstractLayerModel):
    step_function = None
    states = ("u", "b", "s")

    def advance(self, ff: np.ndarray, rec: np.ndarray) -> None:
        state = type(self).step_function(
            ff, rec, kernels.ALIFLayerState(self.u, self.b, self.s),
            self.bias, self.alpha, self.rho, self.b0, self.beta,
        )
        self.u, self.b, self.s = (np.asarray(v, dtype=self.u.dtype) for v in state)


@implements(proc=ALIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyALIFFloat(AbstractALIFModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    u: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    b: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    s: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    alpha: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    rho: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    b0: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    beta: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    history: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step_function = kernels.alif_step


@implements(proc=ALIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyALIFFixed(AbstractALIFModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, PORT_INT, precision=1)
    u: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    b: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    s: np.ndarray = LavaPyType(np.ndarray, INT, precision=1)
    bias: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    alpha: np.ndarray = LavaPyType(np.ndarray, INT, precision=12)
    rho: np.ndarray = LavaPyType(np.ndarray, INT, precision=12)
    b0: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    beta: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    history: np.ndarray = LavaPyType(np.ndarray, INT)
    step_function = kernels.alif_step_fixed


class AbstractIRNeuronModel(AbstractLayerModel):
    step_function = None
    states = ("h", "a", "s")

    def advance(self, ff: np.ndarray, rec: np.ndarray) -> None:
        state = type(self).step_function(
            ff, rec, kernels.IRLayerState(self.h, self.a, self.s), self.bias, self.value_range[0], self.lower[0],
            self.delta[0], self.dead_zone[0],
        )
        self.h, self.a, self.s = (np.asarray(v, dtype=self.h.dtype) for v in state)


@implements(proc=IRNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIRNeuronFloat(AbstractIRNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    h: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    a: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    s: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    value_range: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    lower: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    delta: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    dead_zone: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    history: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step_function = kernels.ir_step


@implements(proc=IRNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIRNeuronFixed(AbstractIRNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, PORT_INT, precision=24)  # graded: the level q
    h: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    a: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    s: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    value_range: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    lower: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    delta: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    dead_zone: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    history: np.ndarray = LavaPyType(np.ndarray, INT)
    step_function = kernels.ir_step_fixed


class AbstractLeakyNeuronModel(AbstractLayerModel):
    step_function = None
    states = ("mem", "s")

    def advance(self, ff: np.ndarray, rec: np.ndarray) -> None:
        state = type(self).step_function(ff, rec, kernels.LIFLayerState(self.mem, self.s), self.bias, self.alpha,
                                         self.threshold, int(self.reset[0]))
        self.mem, self.s = (np.asarray(v, dtype=self.mem.dtype) for v in state)


@implements(proc=LeakyNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyNeuronFloat(AbstractLeakyNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    mem: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    s: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    alpha: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    threshold: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    reset: np.ndarray = LavaPyType(np.ndarray, INT)
    history: np.ndarray = LavaPyType(np.ndarray, FLOAT)

    step_function = kernels.lif_step


@implements(proc=LeakyNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyNeuronFixed(AbstractLeakyNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, PORT_INT, precision=1)
    mem: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    s: np.ndarray = LavaPyType(np.ndarray, INT, precision=1)
    bias: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    alpha: np.ndarray = LavaPyType(np.ndarray, INT, precision=13)
    threshold: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    reset: np.ndarray = LavaPyType(np.ndarray, INT)
    history: np.ndarray = LavaPyType(np.ndarray, INT)
    step_function = kernels.lif_step_fixed
