"""Trained ``ALIFRSNN`` -> ``deploy.ir.NetworkIR`` (the plain-data network file ``deploy`` reads).

Export is pure: it reads parameters from a float64 deep copy of the model and never mutates the
model. Decays come from the modules' own ``decays()``/``decay()`` (``rc_snn.neuron.alif.decay``),
evaluated in float64, so a float64 PyTorch run (``model.double()``) and ``deploy.reference`` on
the exported file compute the same numbers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import torch

from deploy.ir import ALIFLayerIR, NetworkIR, ReadoutIR, save_network

from ..models import ALIFRSNN


def _array(tensor: torch.Tensor):
    return tensor.detach().cpu().to(torch.float64).numpy().copy()


def export_model(model: ALIFRSNN, *, decision_threshold: float, dt_ms: Optional[float] = None) -> NetworkIR:
    """The network file of ``model`` (any dtype or device); ``dt_ms`` is the input bin width."""
    if not isinstance(model, ALIFRSNN):
        raise ValueError(f"expected an ALIFRSNN to export; got {type(model).__name__}")
    model64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    with torch.no_grad():
        layers = []
        for layer in model64.layers:
            alpha, rho = layer.decays()
            layers.append(
                ALIFLayerIR(
                    w_in=_array(layer.w_in.weight),
                    bias=_array(layer.w_in.bias),
                    w_rec=_array(layer.w_rec.weight),
                    alpha=_array(alpha),
                    rho=_array(rho),
                    b0=layer.b0,
                    beta=layer.beta,
                )
            )
        readout = model64.readout
        return NetworkIR(
            layers=tuple(layers),
            readout=ReadoutIR(
                weight=_array(readout.linear.weight),
                bias=_array(readout.linear.bias),
                alpha=_array(readout.decay()),
            ),
            decision_threshold=decision_threshold,
            dt_ms=dt_ms,
        )


def export_to_file(model: ALIFRSNN, path, *, decision_threshold: float, dt_ms: Optional[float] = None) -> Path:
    """``export_model`` then ``deploy.ir.save_network`` (atomic write); returns the path written."""
    return save_network(export_model(model, decision_threshold=decision_threshold, dt_ms=dt_ms), path)
