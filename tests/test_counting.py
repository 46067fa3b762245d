"""Operation counts on hand-built networks and spike trains equal hand-computed numbers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from deploy.activity import Activity, activities_from_batch
from deploy.baselines import UNITS, count_recurrent, count_recurrent_from_activity
from deploy.counting import (
    ALIF_UPDATE_MACS,
    READOUT_UPDATE_MACS,
    OpCounts,
    count_snn,
    fan_out,
    sum_counts,
    synaptic_operations,
)
from deploy.footprint import recurrent_footprint_bytes, snn_footprint_bytes


@dataclass(frozen=True)
class StandInLayer:
    w_in: np.ndarray
    w_rec: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray
    b0: float = 0.1


@dataclass(frozen=True)
class StandInReadout:
    weight: np.ndarray
    bias: np.ndarray
    alpha: np.ndarray


@dataclass(frozen=True)
class StandInNetwork:
    layers: tuple
    readout: StandInReadout


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def two_layer_network() -> StandInNetwork:
    """2 inputs -> 3 ALIF -> 2 ALIF -> 2 readout, with hand-placed zero weights."""
    w_in_0 = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 2.0]])  # input fan-out: [2, 1]
    w_rec_0 = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # rec fan-out: [0, 2, 1]
    w_in_1 = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # into layer 1: [1, 2, 1]
    w_rec_1 = np.array([[1.0, 1.0], [1.0, 0.0]])  # rec fan-out: [2, 1]
    w_out = np.array([[1.0, 0.0], [1.0, 3.0]])  # readout fan-out: [2, 1]
    layers = (
        StandInLayer(w_in_0, w_rec_0, np.zeros(3), np.full(3, 0.9)),
        StandInLayer(w_in_1, w_rec_1, np.zeros(2), np.full(2, 0.9)),
    )
    return StandInNetwork(layers, StandInReadout(w_out, np.zeros(2), np.full(2, 0.8)))


def test_fan_out_counts_nonzero_weights_per_source_column():
    fan = fan_out(two_layer_network())
    np.testing.assert_array_equal(fan.inputs, [2, 1])
    np.testing.assert_array_equal(fan.recurrent[0], [0, 2, 1])
    np.testing.assert_array_equal(fan.forward[0], [1, 2, 1])
    np.testing.assert_array_equal(fan.recurrent[1], [2, 1])
    np.testing.assert_array_equal(fan.forward[1], [2, 1])
    assert fan.layer_sizes == (3, 2)
    assert fan.n_outputs == 2
    assert fan.dense_ops_per_step == 6 + 9 + 6 + 4 + 4


def test_hand_built_spike_train_gives_hand_computed_counts():
    network = two_layer_network()
    inputs = np.array([[1, 0], [1, 1], [0, 1], [1, 1]])
    spikes_0 = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]])
    spikes_1 = np.array([[0, 0], [1, 0], [1, 1], [1, 1]])
    activity = Activity.from_recording(inputs, [spikes_0, spikes_1], n_steps=3)
    np.testing.assert_array_equal(activity.input_counts, [2, 2])
    np.testing.assert_array_equal(activity.spike_counts[0], [1, 2, 1])
    np.testing.assert_array_equal(activity.spike_counts[1], [2, 1])
    counts = count_snn(network, activity)
    # inputs: 2 events on channel 0 (fan 2) + 2 on channel 1 (fan 1) = 6
    # layer 0: neuron 0: 1 spike * (rec 0 + fwd 1) = 1; neuron 1: 2 * (2 + 2) = 8; neuron 2: 1 * (1 + 1) = 2
    # layer 1: neuron 0: 2 * (2 + 2) = 8; neuron 1: 1 * (1 + 1) = 2
    assert counts.effective_acs == 6 + 1 + 8 + 2 + 8 + 2
    assert counts.effective_macs == 0
    assert counts.dense_synaptic_ops == 29 * 3
    assert counts.neuron_updates == (3 + 2 + 2) * 3
    assert counts.neuron_update_macs == ((3 + 2) * 6 + 2 * 2) * 3
    assert counts.spikes_per_layer == (4, 3)
    assert counts.input_events == 4
    assert counts.activations_total == 5 * 3
    assert counts.activation_sparsity == pytest.approx(1 - 7 / 15)


def elementwise_products(step, batch: int, units: int) -> int:
    """Multiplications per unit that one call of the torch ``step`` performs: ``aten.mul`` calls
    whose result is ``[batch, units]`` (weight products go through matmuls and are not counted)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountProducts(TorchDispatchMode):
        products = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket is torch.ops.aten.mul and tuple(out.shape) == (batch, units):
                CountProducts.products += 1
            return out

    with torch.no_grad(), CountProducts():
        step()
    return CountProducts.products


def test_stated_update_costs_are_the_products_the_implementation_computes():
    import torch

    from rc_snn.models import LSTMBaseline
    from rc_snn.neuron import alif
    from rc_snn.neuron.surrogate import multi_gaussian

    batch, units = 3, 5
    state = alif.ALIFState(torch.rand(batch, units), torch.rand(batch, units), (torch.rand(batch, units) > 0.5).float())
    decay = torch.rand(units)
    alif_products = elementwise_products(
        lambda: alif.alif_step(torch.rand(batch, units), state, decay, decay, 0.01, 1.8, multi_gaussian()), batch, units)
    assert alif_products == sum(ALIF_UPDATE_MACS.values())
    readout_products = elementwise_products(
        lambda: alif.readout_step(torch.rand(batch, units), torch.rand(batch, units), decay), batch, units)
    assert readout_products == sum(READOUT_UPDATE_MACS.values())
    lstm = LSTMBaseline(4, units, 2)
    lstm_state = lstm.initial_state(batch)
    lstm_products = elementwise_products(lambda: lstm.step(torch.rand(batch, 4), lstm_state), batch, units)
    assert lstm_products == sum(UNITS["lstm"].update_macs.values())


def test_yins_adaptive_output_neurons_cost_an_alif_update_and_their_spikes_nothing():
    from deploy.ir import AdaptiveReadoutIR, ALIFLayerIR, NetworkIR, ReadoutIR

    rng = np.random.default_rng(0)
    layer = ALIFLayerIR(w_in=rng.normal(size=(3, 2)), bias=np.zeros(3), w_rec=rng.normal(size=(3, 3)),
                        alpha=np.full(3, 0.9), rho=np.full(3, 0.9), b0=0.01, beta=1.8)
    weight = rng.normal(size=(2, 3))
    leaky = NetworkIR((layer,), ReadoutIR(weight, np.zeros(2), np.full(2, 0.8)), decision_threshold=0.9)
    adaptive = NetworkIR((layer,), AdaptiveReadoutIR(weight, np.zeros(2), np.full(2, 0.8), rho=np.full(2, 0.99),
                                                     b0=0.01, beta=1.8), decision_threshold=0.9)
    activity = Activity.from_recording(rng.integers(0, 2, (6, 2)), [rng.integers(0, 2, (6, 3))], n_steps=6)
    ours, theirs = count_snn(adaptive, activity), count_snn(leaky, activity)
    extra = 2 * 6 * (sum(ALIF_UPDATE_MACS.values()) - sum(READOUT_UPDATE_MACS.values()))  # 2 outputs, 6 steps
    assert ours.neuron_update_macs == theirs.neuron_update_macs + extra
    assert ours == dataclasses.replace(theirs, neuron_update_macs=ours.neuron_update_macs)  # synapses alike


def test_zero_input_and_no_spikes_give_zero_synaptic_ops_but_dense_neuron_updates():
    network = two_layer_network()
    activity = Activity.from_recording(np.zeros((5, 2)), [np.zeros((5, 3)), np.zeros((5, 2))], n_steps=5)
    counts = count_snn(network, activity)
    assert counts.effective_acs == 0
    assert counts.effective_macs == 0
    assert counts.spikes == 0
    assert counts.neuron_updates == 7 * 5
    assert counts.dense_synaptic_ops == 29 * 5


def test_early_exit_at_step_k_counts_exactly_k_steps(rng):
    network = two_layer_network()
    n_time = 12
    inputs = (rng.random((n_time, 2)) < 0.5).astype(np.float32)
    spikes_0 = rng.random((n_time, 3)) < 0.4
    spikes_1 = rng.random((n_time, 2)) < 0.4
    fan = fan_out(network)
    for k in (1, 4, n_time):
        counts = count_snn(network, Activity.from_recording(inputs, [spikes_0, spikes_1], n_steps=k))
        expected_acs = (
            inputs[:k].sum(axis=0) @ fan.inputs
            + spikes_0[:k].sum(axis=0) @ (fan.recurrent[0] + fan.forward[0])
            + spikes_1[:k].sum(axis=0) @ (fan.recurrent[1] + fan.forward[1])
        )
        assert counts.sample_steps == k
        assert counts.effective_acs == expected_acs
        assert counts.neuron_updates == 7 * k
        assert counts.dense_synaptic_ops == fan.dense_ops_per_step * k
        # activity after the decision step never counts
    changed = spikes_0.copy()
    changed[4:] = True
    assert count_snn(network, Activity.from_recording(inputs, [changed, spikes_1], 4)) == count_snn(
        network, Activity.from_recording(inputs, [spikes_0, spikes_1], 4)
    )


def test_per_step_counts_of_a_random_run_equal_an_explicit_step_loop(rng):
    """Counting by summed spikes x fan-out equals counting nonzero weight uses step by step."""
    network = StandInNetwork(
        (
            StandInLayer(rng.normal(size=(6, 4)) * (rng.random((6, 4)) < 0.6), rng.normal(size=(6, 6)) * (rng.random((6, 6)) < 0.5), np.zeros(6), np.ones(6)),
        ),
        StandInReadout(rng.normal(size=(3, 6)) * (rng.random((3, 6)) < 0.7), np.zeros(3), np.ones(3)),
    )
    inputs = rng.random((9, 4)) < 0.3
    spikes = rng.random((9, 6)) < 0.3
    layer = network.layers[0]
    explicit = 0
    for step in range(7):
        explicit += np.count_nonzero(layer.w_in[:, inputs[step]])
        explicit += np.count_nonzero(layer.w_rec[:, spikes[step]])
        explicit += np.count_nonzero(network.readout.weight[:, spikes[step]])
    counts = count_snn(network, Activity.from_recording(inputs, [spikes], n_steps=7))
    assert counts.effective_acs == explicit


def test_graded_inputs_are_counted_as_effective_macs_not_acs():
    network = two_layer_network()
    inputs = np.array([[2.0, 0.0], [0.5, 1.0]])
    activity = Activity.from_recording(inputs, [np.zeros((2, 3)), np.zeros((2, 2))], n_steps=2)
    assert not activity.input_is_binary
    counts = count_snn(network, activity)
    assert counts.effective_macs == 2 * 2 + 1 * 1
    assert counts.effective_acs == 0


def test_event_driven_convention_charges_each_event_of_a_bin_as_acs():
    network = two_layer_network()
    inputs = np.array([[3, 0], [1, 2], [0, 1]])  # channel 0: 4 events in 2 bins; channel 1: 3 in 2
    spikes_0 = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]])
    activity = Activity.from_recording(inputs, [spikes_0, np.zeros((3, 2))], n_steps=3)
    np.testing.assert_array_equal(activity.input_event_counts, [4, 3])
    counts = count_snn(network, activity)
    spike_ops = 1 * (2 + 2) + 1 * (1 + 1)  # neuron 1 and neuron 2 of layer 0, one spike each
    assert counts.event_driven_acs == 4 * 2 + 3 * 1 + spike_ops and counts.event_driven_macs == 0
    assert (counts.effective_acs, counts.effective_macs) == (spike_ops, 2 * 2 + 2 * 1)  # NeuroBench: graded
    assert synaptic_operations(counts, "event-driven") == (counts.event_driven_acs, 0)
    assert synaptic_operations(counts, "neurobench") == (spike_ops, 6)
    assert synaptic_operations(counts, "dense") == (0, 29 * 3)
    binary = Activity.from_recording(np.minimum(inputs, 1), [spikes_0, np.zeros((3, 2))], n_steps=3)
    assert count_snn(network, binary).event_driven_acs == count_snn(network, binary).effective_acs


def test_event_driven_lstm_multiplies_every_weight_every_step():
    counts = count_recurrent(5, 4, 2, 3, 7, input_nonzeros=10)
    assert (counts.event_driven_acs, counts.event_driven_macs) == (0, counts.dense_synaptic_ops)
    assert counts.event_driven_macs > counts.effective_macs


def test_batch_activities_cut_each_sample_at_its_own_decision_step(rng):
    network = two_layer_network()
    inputs = (rng.random((6, 3, 2)) < 0.5).astype(np.int8)
    spikes_0 = rng.random((6, 3, 3)) < 0.5
    spikes_1 = rng.random((6, 3, 2)) < 0.5
    decision_steps = np.array([0, 5, 2])
    activities = activities_from_batch(inputs, [spikes_0, spikes_1], decision_steps)
    assert [activity.n_steps for activity in activities] == [1, 6, 3]
    total = count_snn(network, activities)
    one_by_one = sum_counts(
        count_snn(
            network,
            Activity.from_recording(inputs[:, b], [spikes_0[:, b], spikes_1[:, b]], int(decision_steps[b]) + 1),
        )
        for b in range(3)
    )
    assert total == one_by_one
    assert total.n_samples == 3
    assert total.sample_steps == 10
    assert total.per_inference()["sample_steps"] == pytest.approx(10 / 3)


def test_lstm_counts_follow_the_gate_formula():
    n_in, hidden, layers, outputs, steps = 5, 4, 2, 3, 7
    counts = count_recurrent(n_in, hidden, layers, outputs, steps, input_nonzeros=10)
    dense_per_step = 4 * (n_in + hidden) * hidden + 4 * (hidden + hidden) * hidden + outputs * hidden
    assert counts.dense_synaptic_ops == dense_per_step * steps
    # input MACs skip zero inputs; hidden products stay dense
    hidden_products = (4 * hidden * hidden) * 2 + 4 * hidden * hidden + outputs * hidden
    assert counts.effective_macs == 10 * 4 * hidden + hidden_products * steps
    assert counts.neuron_update_macs == hidden * layers * 3 * steps
    assert counts.activations == hidden * layers * 5 * steps
    assert counts.effective_acs == 0
    assert counts.activation_sparsity == 0.0
    full_input = count_recurrent(n_in, hidden, layers, outputs, steps, input_nonzeros=n_in * steps)
    assert full_input.effective_macs == full_input.dense_synaptic_ops


def test_lstm_zero_input_still_costs_its_hidden_products():
    counts = count_recurrent(3, 2, 1, 2, 4, input_nonzeros=0)
    assert counts.effective_macs == (4 * 2 * 2 + 2 * 2) * 4


def test_lstm_from_activity_equals_count_recurrent():
    activity = Activity(n_steps=5, input_counts=np.array([2, 0, 5]), spike_counts=())
    assert count_recurrent_from_activity(4, 1, 2, activity) == count_recurrent(3, 4, 1, 2, 5, 7)


def test_counts_round_trip_through_dict_and_add():
    counts = count_recurrent(3, 2, 1, 2, 4, input_nonzeros=3)
    assert OpCounts.from_dict(counts.to_dict()) == counts
    doubled = counts + counts
    assert doubled.effective_macs == 2 * counts.effective_macs
    assert doubled.per_inference() == counts.per_inference()


def test_invalid_recordings_raise_value_errors_that_say_what_came():
    network = two_layer_network()
    with pytest.raises(ValueError, match="n_steps"):
        Activity.from_recording(np.zeros((3, 2)), [np.zeros((3, 3))], n_steps=4)
    with pytest.raises(ValueError, match="only 0 and 1"):
        Activity.from_recording(np.zeros((3, 2)), [np.full((3, 3), 2.0)], n_steps=3)
    with pytest.raises(ValueError, match="2 layers"):
        count_snn(network, Activity.from_recording(np.zeros((3, 2)), [np.zeros((3, 3))], n_steps=3))
    with pytest.raises(ValueError, match="at most one event"):
        Activity(n_steps=1, input_counts=np.array([3, 0]), spike_counts=(np.zeros(3), np.zeros(2)))
    with pytest.raises(ValueError, match="input_nonzeros"):
        count_recurrent(2, 2, 1, 2, 3, input_nonzeros=7)


def test_footprints_count_every_parameter():
    network = two_layer_network()
    values = (6 + 9 + 3 + 3 + 1) + (6 + 4 + 2 + 2 + 1) + (4 + 2 + 2)  # + 1: the scalar b0
    assert snn_footprint_bytes(network) == values * 4
    # torch.nn.LSTM(5, 4, 2) has 4*4*(5+4) + 2*16 + 4*4*(4+4) + 2*16 parameters; Linear(4, 3) 15
    assert recurrent_footprint_bytes(5, 4, 2, 3) == (144 + 32 + 128 + 32 + 15) * 4


def test_gru_counts_follow_the_gate_formula():
    """Three gate rows per unit (r, z, n); r*h_n, (1-z)*n and z*h_prev per unit and step; 3 activations."""
    n_in, hidden, layers, outputs, steps = 5, 4, 2, 3, 7
    counts = count_recurrent(n_in, hidden, layers, outputs, steps, input_nonzeros=10, unit="gru")
    dense_per_step = 3 * (n_in + hidden) * hidden + 3 * (hidden + hidden) * hidden + outputs * hidden
    assert counts.dense_synaptic_ops == counts.event_driven_macs == dense_per_step * steps
    hidden_products = (3 * hidden * hidden) * 2 + 3 * hidden * hidden + outputs * hidden
    assert counts.effective_macs == 10 * 3 * hidden + hidden_products * steps
    assert counts.neuron_update_macs == 3 * hidden * layers * steps
    assert counts.activations == 3 * hidden * layers * steps
    lstm = count_recurrent(n_in, hidden, layers, outputs, steps, input_nonzeros=10)
    assert counts.dense_synaptic_ops < lstm.dense_synaptic_ops and lstm.activations == 5 * hidden * layers * steps
    with pytest.raises(ValueError, match="recurrent unit"):
        count_recurrent(n_in, hidden, layers, outputs, steps, input_nonzeros=10, unit="rnn")
    assert recurrent_footprint_bytes(5, 4, 2, 3, unit="gru") == (108 + 24 + 96 + 24 + 15) * 4
