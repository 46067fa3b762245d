"""rc_snn.pipeline.export: the network file carries the model's parameters and export never mutates the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deploy.ir import load_network, networks_equal
from rc_snn.pipeline.export import export_model, export_to_file
from rc_snn.models import ALIFRSNN, LSTMBaseline


def make_model():
    return ALIFRSNN(10, [7, 5], 3)


def test_export_carries_parameters():
    model = make_model()
    net = export_model(model, decision_threshold=0.8, dt_ms=5.0)
    assert net.layer_sizes == (7, 5) and net.n_inputs == 10 and net.n_outputs == 3
    assert net.decision_threshold == 0.8 and net.dt_ms == 5.0
    for layer, exported in zip(model.layers, net.layers):
        np.testing.assert_array_equal(exported.w_in, layer.w_in.weight.detach().double().numpy())
        np.testing.assert_array_equal(exported.bias, layer.w_in.bias.detach().double().numpy())
        np.testing.assert_array_equal(exported.w_rec, layer.w_rec.weight.detach().double().numpy())
        alpha, rho = copy.deepcopy(layer).double().decays()
        np.testing.assert_array_equal(exported.alpha, alpha.detach().numpy())
        np.testing.assert_array_equal(exported.rho, rho.detach().numpy())
        assert (exported.b0, exported.beta) == (layer.b0, layer.beta)
    np.testing.assert_array_equal(net.readout.weight, model.readout.linear.weight.detach().double().numpy())
    np.testing.assert_array_equal(net.readout.alpha, copy.deepcopy(model.readout).double().decay().detach().numpy())


def test_yins_adaptive_output_layer_is_exported_with_its_adaptation():
    from deploy.ir import AdaptiveReadoutIR

    from helpers import YIN_OUTPUT

    model = ALIFRSNN(10, [7], 3, output_layer="adaptive", output_params=YIN_OUTPUT)
    readout = export_model(model, decision_threshold=0.8).readout
    assert isinstance(readout, AdaptiveReadoutIR) and (readout.b0, readout.beta) == (YIN_OUTPUT.b0, YIN_OUTPUT.beta)
    alpha, rho = copy.deepcopy(model.readout).double().decay()
    np.testing.assert_array_equal(readout.alpha, alpha.detach().numpy())
    np.testing.assert_array_equal(readout.rho, rho.detach().numpy())
    np.testing.assert_array_equal(readout.weight, model.readout.linear.weight.detach().double().numpy())


def test_export_is_pure():
    model = make_model()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    export_model(model, decision_threshold=0.5)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        assert after[name].dtype == before[name].dtype
        assert torch.equal(after[name], before[name]), name
    assert all(p.requires_grad for p in model.parameters())


def test_float32_and_float64_models_export_the_same_file():
    model = make_model()
    assert networks_equal(export_model(model, decision_threshold=0.5),
                          export_model(copy.deepcopy(model).double(), decision_threshold=0.5))


def test_export_to_file_round_trips(tmp_path):
    model = make_model()
    path = export_to_file(model, tmp_path / "out" / "net.npz", decision_threshold=0.9, dt_ms=1.0)
    assert networks_equal(load_network(path), export_model(model, decision_threshold=0.9, dt_ms=1.0))


def test_refuses_other_models_and_bad_threshold():
    with pytest.raises(ValueError, match="ALIFRSNN"):
        export_model(LSTMBaseline(4, 3, 2), decision_threshold=0.5)
    with pytest.raises(ValueError, match="decision_threshold"):
        export_model(make_model(), decision_threshold=0.0)
