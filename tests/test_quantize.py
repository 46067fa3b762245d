"""deploy.quantize: Loihi-style bit widths, scaling that keeps precision, and the float <-> device pair."""

from __future__ import annotations

import numpy as np
import pytest

from deploy import kernels, quantize, reference
from deploy.fixed import STATE_MAX, WEIGHT_EXP_MAX, WEIGHT_EXP_MIN
from deploy.ir import ALIFLayerIR, NetworkIR, ReadoutIR
from deploy.quantize import from_device, quantize_bias, quantize_decay, quantize_rows, to_device


def network(seed=0, n_in=20, n=12, n_out=4, w_scale=0.3):
    rng = np.random.default_rng(seed)
    layer = ALIFLayerIR(
        w_in=rng.normal(0, w_scale, (n, n_in)) * np.exp(rng.normal(0, 1.0, (n, 1))),  # rows of very different size
        bias=rng.normal(0, 0.05, n), w_rec=rng.normal(0, 0.1, (n, n)),
        alpha=rng.uniform(0.9, 0.97, n), rho=rng.uniform(0.99, 0.997, n), b0=0.01, beta=1.8,
    )
    readout = ReadoutIR(rng.normal(0, 0.5, (n_out, n)), rng.normal(0, 0.1, n_out), rng.uniform(0.9, 0.97, n_out))
    return NetworkIR((layer,), readout, decision_threshold=0.6)


def test_rows_use_the_whole_mantissa():
    rng = np.random.default_rng(1)
    weights = rng.normal(0, 1, (30, 50)) * np.exp2(rng.integers(-6, 4, (30, 1)))
    mant, exps = quantize_rows(weights)
    assert mant.min() >= -128 and mant.max() <= 127
    free = exps > WEIGHT_EXP_MIN  # rows not held at the smallest exponent
    assert free.sum() > 10
    assert np.all(np.abs(mant[free]).max(axis=1) >= 64), "each row's largest weight keeps 7 significant bits"
    error = np.abs(mant * np.exp2(exps)[:, None] - weights)
    assert np.all(error <= np.exp2(exps)[:, None] / 2 + 1e-15)


def test_zero_rows_and_exponent_limits():
    mant, exps = quantize_rows(np.array([[0.0, 0.0], [1e-9, -1e-9], [1e9, 1.0]]))
    assert exps.tolist()[0] == WEIGHT_EXP_MIN and mant[0].tolist() == [0, 0]
    assert exps[1] == WEIGHT_EXP_MIN and mant[1].tolist() == [0, 0]  # below the smallest step: zero
    assert exps[2] == WEIGHT_EXP_MAX and mant[2, 0] == 127  # clipped at the largest


def test_decays_and_bias():
    assert quantize_decay(np.array([0.0, 0.5, 0.99999, 1.0])).tolist() == [1, 2048, 4095, 4095]
    values = np.array([0.0, 3.0, -4096.0, 1e5, -5e5, 1e7])
    out = quantize_bias(values)
    assert out[0] == 0 and out[1] == 3 and out[2] == -4096
    assert abs(out[3] - 1e5) <= 2**4 and abs(out[4] + 5e5) <= 2**6
    assert out[5] == 4095 * 2**7  # clipped at the largest 13-bit mantissa and exponent 7


def test_to_device_then_from_device_is_close():
    net = network()
    fixed = to_device(net)
    back = from_device(fixed)
    layer, layer_back = net.layers[0], back.layers[0]
    assert np.all(np.abs(layer_back.alpha - layer.alpha) <= 0.5 / 4096)
    assert np.all(np.abs(layer_back.rho - layer.rho) <= 0.5 / 4096)
    for original, restored in ((layer.w_in, layer_back.w_in), (layer.w_rec, layer_back.w_rec), (net.readout.weight, back.readout.weight)):
        row_max = np.abs(original).max(axis=1, keepdims=True)
        assert np.all(np.abs(restored - original) <= row_max / 127), "at most about half a mantissa step per weight"
    assert abs(layer_back.b0 - layer.b0) <= 1 / fixed.layers[0].scale
    assert abs(layer_back.beta - layer.beta) <= 1 / fixed.layers[0].scale
    # the readout scale keeps |m| inside 24 bits for any spike pattern
    bound = np.abs(fixed.readout.weight_mant * np.exp2(fixed.readout.weight_exp + 6)[:, None]).sum(axis=1) + np.abs(fixed.readout.bias)
    assert np.all(bound <= STATE_MAX * 1.01)


def test_yins_adaptive_output_layer_goes_to_the_device_and_back():
    from deploy.fixed import FixedAdaptiveReadout
    from deploy.ir import AdaptiveReadoutIR

    net = network()
    head = net.readout
    net = NetworkIR(net.layers, AdaptiveReadoutIR(head.weight, head.bias, head.alpha, rho=np.full(head.n_outputs, 0.99),
                                                  b0=0.01, beta=1.8), decision_threshold=0.9)
    fixed = to_device(net)
    assert isinstance(fixed.readout, FixedAdaptiveReadout)
    back = from_device(fixed).readout
    assert isinstance(back, AdaptiveReadoutIR) and np.all(np.abs(back.rho - 0.99) <= 0.5 / 4096)
    assert abs(back.b0 - 0.01) <= 1 / fixed.readout.scale[0] and abs(back.beta - 1.8) <= 1 / fixed.readout.scale[0]
    # the scale leaves room for a reset's subtraction of the largest threshold, b0 + beta
    reach = np.abs(fixed.readout.weight_mant * np.exp2(fixed.readout.weight_exp + 6)[:, None]).sum(axis=1)
    assert np.all(reach + np.abs(fixed.readout.bias) + fixed.readout.b0 + fixed.readout.beta <= STATE_MAX * 1.01)


def test_fixed_membrane_follows_float_without_spikes():
    """With no spikes, the integer u divided by its scale tracks the float u of the quantised network closely."""
    net = network(seed=3)
    fixed = to_device(net)
    back = from_device(fixed).layers[0]
    layer = fixed.layers[0]
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3, (40, 1, 20)) * (rng.random((40, 1, 20)) < 0.3)
    u_f = np.zeros((1, 12))
    u_i = np.zeros((1, 12), dtype=np.int64)
    for x in counts:
        ff = kernels.synaptic_input(back.w_in.T.copy(), x.astype(float))
        u_f = back.alpha * u_f + (1 - back.alpha) * (ff + back.bias)
        ff_i = kernels.synaptic_input_fixed(layer.w_in_mant.T.copy(), layer.w_in_exp, x)
        u_i = kernels.decay_fixed(u_i, layer.alpha) + np.left_shift(ff_i, 6) + layer.bias
        assert np.all(np.abs(u_i / layer.scale - u_f) < 1e-4)
    assert np.abs(u_f).max() > 0.05


def test_fixed_reference_agrees_with_float_reference():
    """Not exact (quantisation), but the integer network must follow the float one closely."""
    net = network(seed=4, n_in=40, n=24, w_scale=1.0)
    frames = (np.random.default_rng(0).random((16, 40, 40)) < 0.1).astype(float)
    float_run = reference.simulate(net, frames)
    fixed_run = reference.simulate(quantize.to_device(net), frames)
    spike_agreement = np.mean(float_run.spikes[0] == fixed_run.spikes[0])
    assert float_run.spikes[0].mean() > 0.02
    assert spike_agreement > 0.97, spike_agreement
    assert fixed_run.saturated == 0
    assert np.mean(float_run.predictions == fixed_run.predictions) >= 0.8


def test_bad_arguments():
    with pytest.raises(ValueError, match="NetworkIR"):
        to_device("net")
    with pytest.raises(ValueError, match="u_headroom"):
        to_device(network(), u_headroom=0)


def test_fixed_point_step_equals_hand_computed_integers():
    """deploy.kernels' fixed-point equations worked out by hand on three neurons (units: quantize.py)."""
    # neuron 0: spiked last step, adapts; 1: negative membrane decays toward zero; 2: saturates at 24 bits
    state = kernels.ALIFLayerState(u=np.array([[1000, -1001, 2**23 - 1]]), b=np.array([[2**19, 0, 0]]),
                                   s=np.array([[1, 0, 0]]))
    alpha, rho = np.array([3072, 3072, 4095]), np.array([2048, 2048, 2048])
    new = kernels.alif_step_fixed(ff=np.array([[10, 100, 1000]]), rec=np.array([[-3, 0, 0]]), state=state,
                                  bias=np.array([5, 0, 0]), alpha=alpha, rho=rho, b0=100, beta=4096)
    # b = (2**19 * 2048 >> 12) + (4096 - 2048) << 8 = 262144 + 524288; B = 100 + (4096 * b) >> 20
    np.testing.assert_array_equal(new.b, [[786432, 0, 0]])
    # u0 = (1000 * 3072 >> 12) + (7 << 6) + 5 - B * 1 = 750 + 448 + 5 - 3172
    # u1 = -(1001 * 3072 >> 12) + (100 << 6) = -750 + 6400 (truncation toward zero, not floor: -751)
    # u2 = min(8388607 * 4095 >> 12 + (1000 << 6), 2**23 - 1)
    np.testing.assert_array_equal(new.u, [[-1969, 5650, 2**23 - 1]])
    np.testing.assert_array_equal(new.s, [[0, 1, 1]])  # u > B with B = 3172, 100, 100

    # m = sat24(decay(m, alpha_o) + (ff << 6) + bias_o) = -(4097 * 2048 >> 12) + 192 - 7
    m = kernels.readout_step_fixed(np.array([[3]]), np.array([[-4097]]), np.array([-7]), np.array([2048]))
    np.testing.assert_array_equal(m, [[-1863]])

    # sum_i w_mant[j, i] x_i shifted per row: 7 << 1 and floor(-19 / 4)
    weights_t = np.array([[3, -5], [2, -7]])
    synaptic = kernels.synaptic_input_fixed(weights_t, np.array([1, -2]), np.array([[1, 2]]))
    np.testing.assert_array_equal(synaptic, [[14, -5]])


def test_calibration_keeps_the_default_scale_where_it_fits_and_coarsens_it_where_the_state_saturates():
    """An N-MNIST-like network (adaptive threshold 1.81) keeps U_HEADROOM; the ECG recipe's kind (no
    adaptation, b0 = 0.01, currents hundreds of thresholds strong) saturates at it, and calibration
    takes the headroom whose outputs agree best with float, without saturation, so its spikes follow
    the float network's more closely."""
    frames = np.random.default_rng(5).poisson(0.3, (40, 30, 20)).astype(float)
    assert quantize.calibrate_headroom(network(), frames) == quantize.U_HEADROOM
    base = network(w_scale=3.0)
    strong = NetworkIR((ALIFLayerIR(**{**vars(base.layers[0]), "beta": 0.0}),), base.readout, decision_threshold=1.0)
    chosen = quantize.calibrate_headroom(strong, frames)
    float_run = reference.simulate(strong, frames)
    runs = {h: reference.simulate(to_device(strong, u_headroom=h), frames) for h in quantize.HEADROOMS}

    def outputs_agree(run):
        return float((run.outputs.argmax(-1) == float_run.outputs.argmax(-1)).mean())

    default, best = runs[quantize.U_HEADROOM], runs[chosen]
    assert chosen > quantize.U_HEADROOM and default.saturated > 0 and best.saturated == 0
    assert outputs_agree(best) == max(outputs_agree(run) for run in runs.values())
    spikes_agree = [float((run.spikes[0] == float_run.spikes[0]).mean()) for run in (default, best)]
    assert spikes_agree[1] > spikes_agree[0] + 0.01, spikes_agree
