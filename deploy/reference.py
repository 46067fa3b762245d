"""Numpy simulation of a network file in PyTorch's step order: the parity oracle for Lava.

Every layer kind of ``deploy.ir`` (ALIF, IR-SNN, snnTorch's leaky) runs in floating point; fixed
point runs every kind too (``deploy.quantize``).

For every step ``t`` and layer ``l`` (layer ``l > 0`` reads layer ``l-1``'s spikes of the same step,
as ``rc_snn.models.ALIFRSNN`` does), then the readout (leaky, or Yin's adaptive output layer),
using the step functions of ``deploy.kernels`` (equations there and in ``deploy.ir``). A
``FixedNetwork`` runs as the integer network of ``deploy.quantize.to_device`` it is, with the same
integer arithmetic as the ``fixed_pt`` ProcessModels, so a fixed-point Lava run must equal it
exactly too.

Frames are ``[N, T, F]``: N samples, T steps, F input channels (event counts per bin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from . import kernels
from .activity import Activity, activity_from_counts, check_frames
from .ir import AdaptiveReadoutIR, ALIFLayerIR, IRLayerIR, NetworkIR
from .fixed import (STATE_MAX, STATE_MIN, FixedAdaptiveReadout, FixedALIFLayer, FixedIRLayer, FixedNetwork,
                    FixedReadout, check_network)


@dataclass(frozen=True, eq=False)
class ReferenceRun:
    """What the reference computed.

    Attributes:
        spikes: per layer ``[N, T, H_l]`` what the layer sent: spikes (0/1, ALIF) or levels ``q`` (IR-SNN).
        outputs: ``[N, T, C]`` readout ``m[t]`` in float units (fixed point: ``m_int / scale``).
        decision_steps, predictions: ``[N]`` from the decision rule (``deploy.kernels.decide``).
        saturated: state values that hit the 24-bit limits (fixed point only; 0 for float).
    """

    spikes: Tuple[np.ndarray, ...]
    outputs: np.ndarray
    decision_steps: np.ndarray
    predictions: np.ndarray
    saturated: int = 0

    def spike_counts(self, sample: int) -> Tuple[np.ndarray, ...]:
        """Per-layer spikes (nonzero outputs) per neuron of ``sample`` over steps ``0..decision_step``."""
        last = int(self.decision_steps[sample])
        return tuple(np.count_nonzero(layer[sample, : last + 1], axis=0).astype(np.int64) for layer in self.spikes)

    def activities(self, frames: np.ndarray) -> List[Activity]:
        """One ``Activity`` per sample, cut at its decision step."""
        return [
            activity_from_counts(frames[n], self.spike_counts(n), int(self.decision_steps[n]))
            for n in range(frames.shape[0])
        ]


def simulate(network: NetworkIR | FixedNetwork, frames) -> ReferenceRun:
    """Run ``frames [N, T, F]`` through ``network`` for all T steps (outputs at every step; decisions
    after): in floating point for a ``NetworkIR``, in device integers for a ``FixedNetwork``
    (:func:`deploy.quantize.to_device`)."""
    fixed_point = check_network(network)
    frames = check_frames(frames, network.n_inputs, fixed_point=fixed_point)
    if fixed_point:
        return _simulate_fixed(network, frames)
    ir = network
    n_samples, n_time, _ = frames.shape
    layers = ir.layers
    params = [(layer.w_in.T.copy(), layer.w_rec.T.copy(), float_step(layer)) for layer in layers]
    readout_t, readout = ir.readout.weight.T.copy(), readout_step(ir.readout)
    states = [rest_state(layer, n_samples) for layer in layers]
    spikes = [np.zeros((n_samples, n_time, layer.n_neurons)) for layer in layers]
    outputs = np.zeros((n_samples, n_time, ir.n_outputs))
    head = kernels.alif_rest(n_samples, ir.n_outputs)
    for t in range(n_time):
        x = frames[:, t]
        for index, (w_in_t, w_rec_t, step) in enumerate(params):
            ff = kernels.synaptic_input(w_in_t, x)
            rec = kernels.synaptic_input(w_rec_t, states[index].s)
            states[index] = step(ff, rec, states[index])
            x = states[index].s
            spikes[index][:, t] = x
        head = readout(kernels.synaptic_input(readout_t, x), head)
        outputs[:, t] = head.u
    steps, predictions = kernels.decide(outputs, ir.decision_threshold)
    return ReferenceRun(tuple(spikes), outputs, steps, predictions)


def rest_state(layer, batch: int):
    """The layer kind's resting state in ``deploy.kernels``, ``[batch, neurons]`` per variable."""
    if isinstance(layer, ALIFLayerIR):
        return kernels.alif_rest(batch, layer.n_neurons)
    return (kernels.ir_rest if isinstance(layer, IRLayerIR) else kernels.lif_rest)(batch, layer.n_neurons)


def float_step(layer):
    """``(ff, rec, state) -> state``: the float step function of ``deploy.kernels`` for the layer's kind."""
    if isinstance(layer, ALIFLayerIR):
        return lambda ff, rec, state: kernels.alif_step(ff, rec, state, layer.bias, layer.alpha, layer.rho,
                                                        layer.b0, layer.beta)
    if isinstance(layer, IRLayerIR):
        return lambda ff, rec, state: kernels.ir_step(ff, rec, state, layer.bias, layer.value_range, layer.lower,
                                                      layer.delta, layer.dead_zone)
    return lambda ff, rec, state: kernels.lif_step(ff, rec, state, layer.bias, layer.alpha, layer.threshold,
                                                   layer.reset)


def readout_step(readout):
    """``(ff, state) -> state``: the readout's step, its state an ``ALIFLayerState`` whose ``u`` is
    ``m`` (in device integers for a ``FixedReadout``): the leaky readout (``b`` and ``s`` stay at
    rest) or Yin's adaptive output layer, an ALIF step without recurrence."""
    fixed_point = isinstance(readout, FixedReadout)
    if isinstance(readout, (AdaptiveReadoutIR, FixedAdaptiveReadout)):
        alif = kernels.alif_step_fixed if fixed_point else kernels.alif_step
        return lambda ff, state: alif(ff, 0, state, readout.bias, readout.alpha, readout.rho, readout.b0,
                                      readout.beta)
    leaky = kernels.readout_step_fixed if fixed_point else kernels.readout_step
    return lambda ff, state: state._replace(u=leaky(ff, state.u, readout.bias, readout.alpha))


def fixed_step(layer):
    """``(ff, rec, state) -> state``: the fixed-point step function for a layer of ``deploy.quantize``."""
    if isinstance(layer, FixedALIFLayer):
        return lambda ff, rec, state: kernels.alif_step_fixed(ff, rec, state, layer.bias, layer.alpha, layer.rho,
                                                              layer.b0, layer.beta)
    if isinstance(layer, FixedIRLayer):
        return lambda ff, rec, state: kernels.ir_step_fixed(ff, rec, state, layer.bias, layer.value_range,
                                                            layer.lower, layer.delta, layer.dead_zone)
    return lambda ff, rec, state: kernels.lif_step_fixed(ff, rec, state, layer.bias, layer.alpha, layer.threshold,
                                                         layer.reset)


def _simulate_fixed(fixed: FixedNetwork, frames: np.ndarray) -> ReferenceRun:
    n_samples, n_time, _ = frames.shape
    counts = frames.astype(np.int64)
    params = [(layer.w_in_mant.T.copy(), layer.w_in_exp, layer.w_rec_mant.T.copy(), layer.w_rec_exp,
               fixed_step(layer)) for layer in fixed.layers]
    readout, step_readout = fixed.readout, readout_step(fixed.readout)
    readout_t = readout.weight_mant.T.copy()
    n_outputs = readout_t.shape[1]
    rests = {FixedALIFLayer: kernels.alif_rest, FixedIRLayer: kernels.ir_rest}
    states = [rests.get(type(layer), kernels.lif_rest)(n_samples, layer.n_neurons, fixed_point=True)
              for layer in fixed.layers]
    spikes = [np.zeros((n_samples, n_time, layer.n_neurons)) for layer in fixed.layers]
    outputs = np.zeros((n_samples, n_time, n_outputs))
    head = kernels.alif_rest(n_samples, n_outputs, fixed_point=True)
    saturated = 0
    for t in range(n_time):
        x = counts[:, t]
        for index, (w_in_t, w_in_exp, w_rec_t, w_rec_exp, step) in enumerate(params):
            ff = kernels.synaptic_input_fixed(w_in_t, w_in_exp, x)
            rec = kernels.synaptic_input_fixed(w_rec_t, w_rec_exp, states[index].s)
            states[index] = step(ff, rec, states[index])
            potential = states[index][1 if isinstance(fixed.layers[index], FixedIRLayer) else 0]  # u, mem or a
            saturated += int(np.count_nonzero((potential == STATE_MAX) | (potential == STATE_MIN)))
            x = states[index].s
            spikes[index][:, t] = x
        ff = kernels.synaptic_input_fixed(readout_t, readout.weight_exp, x)
        head = step_readout(ff, head)
        saturated += int(np.count_nonzero((head.u == STATE_MAX) | (head.u == STATE_MIN)))
        outputs[:, t] = head.u / readout.scale
    steps, predictions = kernels.decide(outputs, fixed.decision_threshold)
    return ReferenceRun(tuple(spikes), outputs, steps, predictions, saturated)
