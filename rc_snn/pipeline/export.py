"""Trained ``ALIFRSNN`` or ``IRSNN`` -> ``deploy.ir.NetworkIR`` (the plain-data network file ``deploy`` reads),
with its leaky readout or Yin et al.'s adaptive output layer (``deploy.ir.AdaptiveReadoutIR``).

Export is pure: it reads parameters from a float64 deep copy of the model and never mutates the
model. Decays come from the modules' own ``decays()``/``decay()`` (``rc_snn.neuron.alif.decay``),
evaluated in float64, so a float64 PyTorch run (``model.double()``) and ``deploy.reference`` on
the exported file compute the same numbers.

An IR-SNN layer is exported as deployed (``deploy.ir.IRLayerIR``): its batch norm (evaluation
statistics) folded into ``W_in`` and a bias, ``W_in' = diag(g) W_in`` and ``bias = beta - g mean``
with ``g = gamma / sqrt(var + eps)``; and since it sends levels ``q`` where PyTorch sends
``s = q delta``, every matrix that receives its output (its own ``W_rec``, the next layer's
``W_in``, the readout's weight) is multiplied by its ``delta``. The sums are then associated
differently from PyTorch's, so the two agree to rounding (about 1e-15), not bit for bit.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import torch

from deploy.ir import AdaptiveReadoutIR, ALIFLayerIR, IRLayerIR, NetworkIR, ReadoutIR, save_network

from ..models import ALIFRSNN, IRSNN
from ..neuron.layers import AdaptiveReadout, IRLayer
from ..training.run import weights_id


def _array(tensor: torch.Tensor):
    return tensor.detach().cpu().to(torch.float64).numpy().copy()


def _ir_layer(layer: IRLayer, input_delta: float) -> IRLayerIR:
    """An IR-SNN layer as deployed (module docstring); ``input_delta`` is its sender's step (1: frames)."""
    norm, quantiser = layer.norm, layer.quantiser
    gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    delta = quantiser.delta()
    return IRLayerIR(
        w_in=_array(layer.w_in.weight * gain[:, None] * input_delta),
        bias=_array(norm.bias - gain * norm.running_mean),
        w_rec=_array(layer.w_rec.weight * delta),
        value_range=float(quantiser.value_range),
        delta=float(delta),
        bits=quantiser.bits,
        dead_zone=quantiser.dead_zone,
    )


def export_model(model, *, decision_threshold: float, dt_ms: Optional[float] = None) -> NetworkIR:
    """The network file of ``model`` (an ``ALIFRSNN`` or ``IRSNN``, any dtype or device); ``dt_ms`` is the input
    bin width. The file records the :func:`~rc_snn.training.run.weights_id` of ``model``'s weights."""
    if not isinstance(model, (ALIFRSNN, IRSNN)):
        raise ValueError(f"expected an ALIFRSNN or IRSNN to export; got {type(model).__name__}")
    model64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    with torch.no_grad():
        layers, delta = [], 1.0  # delta: the step of what the layer receives (frames: 1)
        for layer in model64.layers:
            if isinstance(layer, IRLayer):
                layers.append(_ir_layer(layer, delta))
                delta = layers[-1].delta
                continue
            weights = layer.weights()  # the network file's fields carry the same names
            layers.append(ALIFLayerIR(**{name: _array(value) for name, value in weights._asdict().items()},
                                      b0=layer.b0, beta=layer.beta))
        head = model64.readout
        weight, bias = _array(head.linear.weight * delta), _array(head.linear.bias)
        if isinstance(head, AdaptiveReadout):
            alpha, rho = head.decay()
            readout = AdaptiveReadoutIR(weight=weight, bias=bias, alpha=_array(alpha), rho=_array(rho), b0=head.b0,
                                        beta=head.beta)
        else:
            readout = ReadoutIR(weight=weight, bias=bias, alpha=_array(head.decay()))
        return NetworkIR(
            layers=tuple(layers),
            readout=readout,
            decision_threshold=decision_threshold,
            dt_ms=dt_ms,
            weights_id=weights_id(model.state_dict()),
        )


def export_to_file(model, path, *, decision_threshold: float, dt_ms: Optional[float] = None) -> Path:
    """``export_model`` then ``deploy.ir.save_network`` (atomic write); returns the path written."""
    return save_network(export_model(model, decision_threshold=decision_threshold, dt_ms=dt_ms), path)
