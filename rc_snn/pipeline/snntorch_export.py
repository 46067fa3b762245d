"""snnTorch networks -> the network file (``deploy.ir``), and their PyTorch runs recorded for counting.

What is exported: an ``nn.Sequential`` of ``nn.Linear`` + neuron pairs, ending in ``nn.Linear`` +
an output ``snn.Leaky(reset_mechanism="none")`` whose membrane is read as class scores (every
neuron ``init_hidden=True``, as an ``nn.Sequential`` needs), where each hidden neuron is

* ``snn.Leaky`` or ``snn.RLeaky`` (all-to-all ``linear_features``, or one-to-one ``V``), reset by
  subtraction or to zero, learnt or fixed ``beta`` and ``threshold`` -> ``deploy.ir.LIFLayerIR`` (its
  membrane decay ``alpha`` is snnTorch's ``beta``),
  with snnTorch's own equations (``deploy.ir``); the recurrent Linear's bias joins the layer's bias;
* rc-snn's :class:`~rc_snn.plugin.ALIF` or :class:`~rc_snn.plugin.RALIF` -> ``deploy.ir.ALIFLayerIR``.

The output neuron ``mem[t] = beta*mem[t-1] + W s[t] + b`` is the network file's leaky readout
``m[t] = alpha*m[t-1] + (1-alpha)*(W' s[t] + b')`` with ``alpha = beta`` and ``W' = W / (1 -
beta)``, ``b' = b / (1 - beta)`` (``0 < beta < 1``). Anything else (convolutions, other neurons,
graded spikes, inhibition, state quantisation, ``reset_delay=False`` with a reset by subtraction, an output that spikes and
resets) is refused with a message naming the module. NIR, snnTorch's own route to Lava, would lose
the reset rule and the recurrent weights' meaning; this file keeps both.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import snntorch as snn
import torch
from snntorch import utils
from torch import Tensor, nn

from deploy.ir import ALIFLayerIR, LIFLayerIR, NetworkIR, ReadoutIR
from deploy.ir_layers import LIF_RESETS

from ..plugin.neurons import ALIF, RALIF


def _array(tensor) -> np.ndarray:
    return torch.as_tensor(tensor).detach().cpu().to(torch.float64).numpy().copy()


def _per_neuron(value, n: int) -> np.ndarray:
    return np.broadcast_to(_array(value), (n,)).copy()


def _refuse(index: int, module: nn.Module, why: str):
    raise ValueError(f"cannot export module {index} ({type(module).__name__}): {why}")


def _check_snntorch_neuron(index: int, neuron: snn.SpikingNeuron) -> None:
    if not getattr(neuron, "init_hidden", False):
        _refuse(index, neuron, "an nn.Sequential needs init_hidden=True neurons")
    if float(torch.as_tensor(neuron.graded_spikes_factor)) != 1.0:
        _refuse(index, neuron, "graded spikes (graded_spikes_factor != 1) are not supported")
    if neuron.inhibition or neuron.state_quant:
        _refuse(index, neuron, "inhibition and state_quant are not supported")
    if not getattr(neuron, "reset_delay", True) and neuron.reset_mechanism != "zero":
        _refuse(index, neuron, "reset_delay=False is supported only with reset_mechanism='zero'")


def _lif_layer(index: int, linear: nn.Linear, neuron: snn.Leaky) -> LIFLayerIR:
    _check_snntorch_neuron(index, neuron)
    n = linear.out_features
    bias = _array(linear.bias) if linear.bias is not None else np.zeros(n)
    w_rec = np.zeros((n, n))
    if isinstance(neuron, snn.RLeaky):
        if neuron.all_to_all and not isinstance(neuron.recurrent, nn.Linear):
            _refuse(index, neuron, "only all-to-all recurrence through linear_features (no convolutions)")
        if neuron.all_to_all:
            w_rec = _array(neuron.recurrent.weight)
            if neuron.recurrent.bias is not None:
                bias = bias + _array(neuron.recurrent.bias)
        else:
            w_rec = np.diag(_per_neuron(neuron.V, n))
    reset = neuron.reset_mechanism
    if reset == "zero" and isinstance(neuron, snn.RLeaky) and neuron.reset_delay:
        reset = "zero-step"  # RLeaky zeroes the whole update of the step after a spike
    if reset not in LIF_RESETS:
        _refuse(index, neuron, f"reset_mechanism {neuron.reset_mechanism!r} in a hidden layer (expected "
                               "'subtract' or 'zero')")
    threshold = _per_neuron(neuron.threshold, n)
    if not np.all(threshold > 0):  # snnTorch then spikes from a membrane at rest, before any input
        _refuse(index, neuron, f"firing thresholds must be > 0 (a neuron with threshold <= 0 fires at rest and "
                               f"snnTorch's reset acts from step 0); got a smallest threshold of {threshold.min():g}")
    return LIFLayerIR(w_in=_array(linear.weight), bias=bias, w_rec=w_rec,
                      alpha=_per_neuron(torch.as_tensor(neuron.beta).clamp(0, 1), n),
                      threshold=threshold, reset=LIF_RESETS.index(reset))


def _alif_layer(linear: nn.Linear, neuron: ALIF) -> ALIFLayerIR:
    alpha, rho = neuron.decays()
    n = neuron.n_neurons
    return ALIFLayerIR(w_in=_array(linear.weight),
                       bias=_array(linear.bias) if linear.bias is not None else np.zeros(n),
                       w_rec=_array(neuron.recurrent.weight) if isinstance(neuron, RALIF) else np.zeros((n, n)),
                       alpha=_array(alpha), rho=_array(rho), b0=neuron.b0, beta=neuron.adaptation)


def _readout(index: int, linear: nn.Linear, neuron: nn.Module) -> ReadoutIR:
    if not isinstance(neuron, snn.Leaky) or isinstance(neuron, (ALIF, snn.RLeaky)) \
            or neuron.reset_mechanism != "none":
        _refuse(index, neuron, "the output must be snn.Leaky(reset_mechanism='none', init_hidden=True), a leaky "
                               "integrator whose membrane is read as class scores")
    _check_snntorch_neuron(index, neuron)
    beta = _per_neuron(torch.as_tensor(neuron.beta).clamp(0, 1), linear.out_features)
    if not (np.all(beta > 0) and np.all(beta < 1)):
        _refuse(index, neuron, f"the output's beta must lie in (0, 1); got [{beta.min()}, {beta.max()}]")
    bias = _array(linear.bias) if linear.bias is not None else np.zeros(linear.out_features)
    return ReadoutIR(weight=_array(linear.weight) / (1 - beta)[:, None], bias=bias / (1 - beta), alpha=beta)


def export_snntorch(net: nn.Sequential, *, decision_threshold: float, dt_ms: Optional[float] = None) -> NetworkIR:
    """The network file of an snnTorch ``nn.Sequential`` (module docstring)."""
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"expected an nn.Sequential of nn.Linear and snnTorch neurons; got {type(net).__name__}")
    modules = list(net)
    for index, module in enumerate(modules):
        expected = nn.Linear if index % 2 == 0 else (snn.Leaky, snn.RLeaky)  # ALIF and RALIF are Leaky's
        if not isinstance(module, expected):
            _refuse(index, module, "expected nn.Linear here (convolutions and other layers are not supported)"
                    if index % 2 == 0 else "expected snn.Leaky, snn.RLeaky, rc_snn.plugin.ALIF or RALIF here")
    if len(modules) < 4 or len(modules) % 2:
        raise ValueError(f"expected (nn.Linear, neuron) pairs: hidden layers then the output; got {len(modules)} "
                         f"modules: {[type(module).__name__ for module in modules]}")
    layers = []
    with torch.no_grad():
        for index in range(0, len(modules), 2):
            linear, neuron = modules[index], modules[index + 1]
            if index + 2 == len(modules):
                readout = _readout(index + 1, linear, neuron)
            elif isinstance(neuron, ALIF):
                layers.append(_alif_layer(linear, neuron))
            else:
                layers.append(_lif_layer(index + 1, linear, neuron))
    return NetworkIR(layers=tuple(layers), readout=readout, decision_threshold=decision_threshold, dt_ms=dt_ms)


@torch.no_grad()
def record_snntorch(net: nn.Sequential, x_seq: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """Step an exportable snnTorch ``nn.Sequential`` over ``x_seq [T, B, F]`` from a reset state; returns
    the output neuron's membrane ``[T, B, C]`` and each hidden layer's spikes ``[T, B, H]``.

    Resets ``net`` first (``snntorch.utils.reset``, as a training loop does) and leaves it in the
    state of the last step. Spikes are read from the hidden neurons' outputs with forward hooks
    (observed, not changed), removed on return.
    """
    neurons = [module for module in list(net)[1:-2:2]]
    spikes: List[List[Tensor]] = [[] for _ in neurons]
    handles = [neuron.register_forward_hook(
        lambda module, args, output, store=store: store.append(output[0] if isinstance(output, tuple) else output))
        for neuron, store in zip(neurons, spikes)]
    utils.reset(net)
    outputs = []
    try:
        for x_t in x_seq:
            net(x_t)
            outputs.append(net[-1].mem.clone())
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(outputs), [torch.stack(layer) for layer in spikes]
