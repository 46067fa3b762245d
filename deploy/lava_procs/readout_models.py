"""ProcessModels of the readout with the early-exit decision (``process.DecisionReadout``), float and
fixed point: one template, as in ``models.py``, whose conventions it follows."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from deploy import kernels, private_api

# Absolute import: Lava loads this file by path as a top-level module when searching for models.
from deploy.lava_procs.process import FLOAT, INT, NO_CHANGE, PORT_INT, DecisionReadout


class AbstractDecisionReadoutModel(PyLoihiProcessModel):
    count_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    start_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, FLOAT)
    scale: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    decision_threshold: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    depth: np.ndarray = LavaPyType(np.ndarray, INT)
    n_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    max_lava_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    run_chunk: np.ndarray = LavaPyType(np.ndarray, INT)
    n_decided: np.ndarray = LavaPyType(np.ndarray, INT)
    slot_sample: np.ndarray = LavaPyType(np.ndarray, INT)
    slot_start: np.ndarray = LavaPyType(np.ndarray, INT)
    next_sample: np.ndarray = LavaPyType(np.ndarray, INT)
    decision_step: np.ndarray = LavaPyType(np.ndarray, INT)
    prediction: np.ndarray = LavaPyType(np.ndarray, INT)
    lava_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    record_steps: np.ndarray = LavaPyType(np.ndarray, INT)
    step_predictions: np.ndarray = LavaPyType(np.ndarray, INT)
    adaptive: np.ndarray = LavaPyType(np.ndarray, INT)
    step_function = adaptive_step_function = None

    def run_spk(self) -> None:
        ff = self.a_in.recv()
        n_steps, sample = int(self.n_steps[0]), self.slot_sample
        t = self.time_step - self.slot_start - int(self.depth[0])  # each slot's step of its sample
        playing = (sample >= 0) & (t >= 0) & (t < n_steps)  # (a decided sample plays on if none waits)
        running = playing.copy()  # and still undecided: its steps count
        running[playing] = self.decision_step[sample[playing]] < 0
        starting = (playing & (t == 0))[:, None]  # a new sample starts at rest
        before = kernels.ALIFLayerState(*(np.where(starting, 0, value) for value in (self.m, self.b, self.z)))
        if self.adaptive[0]:  # Yin's output layer: an ALIF step without recurrence
            after = type(self).adaptive_step_function(ff, 0, before, self.bias, self.alpha, self.rho, self.b0,
                                                      self.beta)
        else:
            after = before._replace(u=type(self).step_function(ff, before.u, self.bias, self.alpha))
        self.m, self.b, self.z = (np.where(playing[:, None], np.asarray(new, dtype=old.dtype), old)
                                  for new, old in zip(after, (self.m, self.b, self.z)))
        logits = self.m / self.scale
        newly = running & (kernels.crossed(logits, float(self.decision_threshold[0])) | (t == n_steps - 1))
        self.decision_step[sample[newly]] = t[newly]
        self.prediction[sample[newly]] = logits.argmax(axis=-1)[newly]
        if self.record_steps[0]:
            self._record_steps(sample, t, running, newly, logits.argmax(axis=-1))
        counted = np.where(running, sample + 1, 0).astype(FLOAT)  # which sample counts this step, 0: none
        started = np.full(sample.shape[0], NO_CHANGE, dtype=FLOAT)
        for slot in np.flatnonzero(newly):  # a decided slot takes the next sample waiting, at the next step
            following = int(self.next_sample[0])
            if following < self.decision_step.shape[0]:
                started[slot], self.slot_sample[slot], self.slot_start[slot] = following, following, self.time_step + 1
                self.next_sample[0] = following + 1
        self.lava_steps[0] = self.time_step
        self.n_decided[0] += int(newly.sum())
        self.count_out.send(counted)
        self.start_out.send(started)
        last_of_a_run = self.time_step % int(self.run_chunk[0]) == 0 or self.time_step >= int(self.max_lava_steps[0])
        if not last_of_a_run and int(self.n_decided[0]) == self.decision_step.shape[0]:
            # Every sample decided: end the run after this step. Not on a run's last step, where
            # the run ends anyway and a pause request races the runtime's end-of-run message.
            private_api.request_pause(self)

    def _record_steps(self, sample, t, running, newly, argmax) -> None:
        """Keep each running sample's prediction of this step; pack a sample's row when it decides."""
        if not hasattr(self, "_steps"):  # the model's own memory: Lava builds models without arguments
            self._steps = np.zeros((self.decision_step.shape[0], int(self.n_steps[0])), dtype=np.int64)
        self._steps[sample[running], t[running]] = argmax[running]
        for n in sample[newly]:
            self.step_predictions[n] = kernels.pack_counts(self._steps[n], self.m.shape[1] - 1)


@implements(proc=DecisionReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDecisionReadoutFloat(AbstractDecisionReadoutModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, FLOAT)
    m: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    bias: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    alpha: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    b: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    z: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    rho: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    b0: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    beta: np.ndarray = LavaPyType(np.ndarray, FLOAT)
    step_function = kernels.readout_step
    adaptive_step_function = kernels.alif_step


@implements(proc=DecisionReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDecisionReadoutFixed(AbstractDecisionReadoutModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, PORT_INT, precision=24)
    m: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    alpha: np.ndarray = LavaPyType(np.ndarray, INT, precision=12)
    b: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    z: np.ndarray = LavaPyType(np.ndarray, INT, precision=1)
    rho: np.ndarray = LavaPyType(np.ndarray, INT, precision=12)
    b0: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    beta: np.ndarray = LavaPyType(np.ndarray, INT, precision=24)
    step_function = kernels.readout_step_fixed
    adaptive_step_function = kernels.alif_step_fixed
