"""Energy presets carry their sources, and energy per inference follows the documented formula."""

from __future__ import annotations

import pytest

from deploy.baselines import count_recurrent
from deploy.counting import OpCounts
from deploy.energy import (
    ENERGY_PRESETS,
    EnergyModel,
    custom_energy_model,
    energy_per_inference,
    energy_ratio,
)


def snn_counts(n_samples: int = 2) -> OpCounts:
    return OpCounts(
        n_samples=n_samples,
        sample_steps=10 * n_samples,
        effective_acs=1000 * n_samples,
        effective_macs=20 * n_samples,
        dense_synaptic_ops=50000 * n_samples,
        event_driven_acs=1300 * n_samples,
        event_driven_macs=0,
        neuron_updates=300 * n_samples,
        neuron_update_macs=1700 * n_samples,
        activations=0,
        input_events=40 * n_samples,
        spikes_per_layer=(60 * n_samples, 40 * n_samples),
        activations_total=250 * n_samples,
        nonzero_activations=100 * n_samples,
    )


def test_horowitz_constants_are_the_published_45nm_figures():
    fp32 = ENERGY_PRESETS["cmos45_fp32"]
    assert fp32.mac_pj == pytest.approx(4.6)
    assert fp32.ac_pj == pytest.approx(0.9)
    assert ENERGY_PRESETS["cmos45_int32"].mac_pj == pytest.approx(3.2)
    assert ENERGY_PRESETS["cmos45_int32"].ac_pj == pytest.approx(0.1)
    assert ENERGY_PRESETS["cmos45_int8"].mac_pj == pytest.approx(0.23)
    assert ENERGY_PRESETS["cmos45_int8"].ac_pj == pytest.approx(0.03)


def test_loihi_preset_uses_davies_2018_and_marks_the_mac_figure_as_an_estimate():
    loihi = ENERGY_PRESETS["loihi"]
    assert loihi.ac_pj == pytest.approx(23.6)
    assert loihi.neuron_update_pj == pytest.approx(81.0)
    assert loihi.spike_pj == pytest.approx(1.7)
    assert "Davies" in loihi.sources["ac_pj"]
    assert "no published per-MAC figure" in loihi.estimates["mac_pj"]


def test_every_used_constant_of_every_preset_has_a_source():
    for preset in ENERGY_PRESETS.values():
        used = ["mac_pj", "ac_pj"] + (["neuron_update_pj"] if preset.neuron_update_pj is not None else [])
        used += ["spike_pj"] if preset.spike_pj else []
        for name in used:
            assert preset.sources.get(name), f"{preset.name}.{name} has no source"


def test_cmos_energy_charges_acs_macs_and_neuron_update_macs_per_sample():
    breakdown = energy_per_inference(snn_counts(n_samples=2), "cmos45_fp32")
    assert breakdown.synaptic_ac_pj == pytest.approx(1000 * 0.9)
    assert breakdown.synaptic_mac_pj == pytest.approx(20 * 4.6)
    assert breakdown.neuron_pj == pytest.approx(1700 * 4.6)
    assert breakdown.spike_pj == 0.0
    assert breakdown.total_pj == pytest.approx(900 + 92 + 7820)


def test_loihi_energy_charges_neuron_updates_and_spikes():
    breakdown = energy_per_inference(snn_counts(n_samples=3), "loihi")
    assert breakdown.synaptic_ac_pj == pytest.approx(1000 * 23.6)
    assert breakdown.neuron_pj == pytest.approx(300 * 81.0)
    assert breakdown.spike_pj == pytest.approx(100 * 1.7)


def test_dense_energy_charges_every_weight_as_a_mac():
    breakdown = energy_per_inference(snn_counts(), "cmos45_fp32", "dense")
    assert breakdown.synaptic_ac_pj == 0.0
    assert breakdown.synaptic_mac_pj == pytest.approx(50000 * 4.6)


def test_each_convention_charges_its_own_synaptic_counts():
    counts = snn_counts(n_samples=2)
    event = energy_per_inference(counts, "cmos45_fp32", "event-driven")
    effective = energy_per_inference(counts, "cmos45_fp32", "neurobench")
    assert (event.synaptic_ac_pj, event.synaptic_mac_pj) == pytest.approx((1300 * 0.9, 0.0))
    assert (effective.synaptic_ac_pj, effective.synaptic_mac_pj) == pytest.approx((1000 * 0.9, 20 * 4.6))
    assert event.neuron_pj == effective.neuron_pj
    with pytest.raises(ValueError, match="counting convention among"):
        energy_per_inference(counts, "cmos45_fp32", "loihi-style")


def test_user_constants_and_ratio():
    mine = custom_energy_model("mine", mac_pj=2.0, ac_pj=1.0, source="my measurements")
    assert isinstance(mine, EnergyModel)
    assert mine.sources["mac_pj"] == "my measurements"
    lstm = count_recurrent(4, 3, 1, 2, sample_steps=10, input_nonzeros=0, n_samples=1)
    snn = snn_counts(n_samples=1)
    expected = energy_per_inference(lstm, mine).total_pj / energy_per_inference(snn, mine).total_pj
    assert energy_ratio(lstm, snn, mine) == pytest.approx(expected)
    # LSTM: (4*3*3 + 2*3)*10 = 420 MACs + 3*3*10 = 90 update MACs, at 2 pJ
    assert energy_per_inference(lstm, mine).total_pj == pytest.approx((420 + 90) * 2.0)


def test_bad_presets_and_constants_raise():
    with pytest.raises(ValueError, match="expected an energy preset"):
        energy_per_inference(snn_counts(), "tpu")
    with pytest.raises(ValueError, match="nonnegative"):
        custom_energy_model("bad", mac_pj=-1.0, ac_pj=1.0)
