"""Energy per inference from operation counts and per-operation energy presets.

Energy of one inference, in picojoules, from the counts of ``deploy.counting.OpCounts``::

    E = ACs * ac_pj                                  (synaptic accumulates)
      + MACs * mac_pj                                (synaptic multiply-accumulates)
      + neuron-state energy                          (see below)
      + spikes * spike_pj                            (spike routing; 0 where not modelled)

    neuron-state energy = neuron_updates * neuron_update_pj      if the preset has neuron_update_pj
                        = neuron_update_macs * mac_pj            otherwise (CMOS: the update's MACs)

divided by the number of samples, where (ACs, MACs) are the synaptic operations under a counting
convention (``deploy.counting.CONVENTIONS``: ``"neurobench"``, the effective operations, by
default; ``"event-driven"``; ``"dense"``, every weight every step: what a processor that does not
skip zeros would spend).

Not modelled, in any preset: memory access (SRAM/DRAM reads of weights and state, which on
conventional hardware cost more than the arithmetic: Horowitz 2014 gives 10 pJ for a 64-bit
read from an 8 KB SRAM and 1.3-2.6 nJ from DRAM), nonlinear activation functions of the LSTM
(sigmoid, tanh; counted in ``OpCounts.activations``, not charged), control, static/leakage power.
These figures are therefore arithmetic-only estimates for comparing models, not predictions of
measured energy on any chip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from deploy.counting import OpCounts, synaptic_operations

HOROWITZ_2014 = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "Digest of Technical Papers pp. 10-14, energy table for 45 nm CMOS at 0.9 V"
)
DAVIES_2018 = (
    "M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
    "IEEE Micro 38(1):82-99, 2018, table of core energy and latency figures (14 nm chip)"
)


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies in picojoules, each with where it comes from.

    Attributes:
        name: preset key.
        description: one line for tables.
        mac_pj: one multiply-accumulate (synaptic MAC with a graded input, and each MAC inside a
            neuron update when ``neuron_update_pj`` is None).
        ac_pj: one accumulate triggered by a binary event (one synaptic operation).
        neuron_update_pj: one neuron-state update (one neuron, one step), or None to charge the
            update's MACs at ``mac_pj`` instead.
        spike_pj: sending one spike (routing), 0 where not modelled.
        sources: for each constant above, its citation.
        estimates: for each constant that is NOT a published figure, what was assumed. A
            constant absent from ``estimates`` is taken as published in ``sources``.
    """

    name: str
    description: str
    mac_pj: float
    ac_pj: float
    neuron_update_pj: float | None = None
    spike_pj: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict)
    estimates: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("mac_pj", "ac_pj", "spike_pj") + (
            ("neuron_update_pj",) if self.neuron_update_pj is not None else ()
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"expected {name} as a nonnegative number of picojoules; got {value!r}")
        object.__setattr__(self, "sources", dict(self.sources))
        object.__setattr__(self, "estimates", dict(self.estimates))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# 45 nm CMOS, Horowitz (ISSCC 2014): 32-bit float multiply 3.7 pJ, add 0.9 pJ; 32-bit integer
# multiply 3.1 pJ, add 0.1 pJ; 8-bit integer multiply 0.2 pJ, add 0.03 pJ. A MAC is charged as one
# multiply plus one add; an AC as one add. Neuron updates are charged as their MACs (no
# neuron_update_pj), spikes cost nothing extra (no routing figure in the table).
_MAC_AS_MULTIPLY_PLUS_ADD = (
    "the table gives multiply and add separately; a MAC is charged as their sum (no fused figure)"
)
_CMOS45_FP32 = EnergyModel(
    name="cmos45_fp32",
    description="45 nm CMOS, 32-bit float (MAC 4.6 pJ, AC 0.9 pJ)",
    mac_pj=3.7 + 0.9,
    ac_pj=0.9,
    sources={
        "mac_pj": f"{HOROWITZ_2014}: 32-bit float multiply 3.7 pJ + add 0.9 pJ",
        "ac_pj": f"{HOROWITZ_2014}: 32-bit float add 0.9 pJ",
    },
    estimates={"mac_pj": _MAC_AS_MULTIPLY_PLUS_ADD},
)
_CMOS45_INT32 = EnergyModel(
    name="cmos45_int32",
    description="45 nm CMOS, 32-bit integer (MAC 3.2 pJ, AC 0.1 pJ)",
    mac_pj=3.1 + 0.1,
    ac_pj=0.1,
    sources={
        "mac_pj": f"{HOROWITZ_2014}: 32-bit integer multiply 3.1 pJ + add 0.1 pJ",
        "ac_pj": f"{HOROWITZ_2014}: 32-bit integer add 0.1 pJ",
    },
    estimates={"mac_pj": _MAC_AS_MULTIPLY_PLUS_ADD},
)
_CMOS45_INT8 = EnergyModel(
    name="cmos45_int8",
    description="45 nm CMOS, 8-bit integer (MAC 0.23 pJ, AC 0.03 pJ)",
    mac_pj=0.2 + 0.03,
    ac_pj=0.03,
    sources={
        "mac_pj": f"{HOROWITZ_2014}: 8-bit integer multiply 0.2 pJ + add 0.03 pJ",
        "ac_pj": f"{HOROWITZ_2014}: 8-bit integer add 0.03 pJ",
    },
    estimates={
        "mac_pj": _MAC_AS_MULTIPLY_PLUS_ADD + "; neuron updates are charged at this 8-bit figure "
        "too, which is optimistic for membrane state (Loihi keeps 24-bit membrane potentials)",
    },
)
# Loihi (Davies et al. 2018): energy per synaptic spike op 23.6 pJ (the minimum figure given),
# per synaptic update 120 pJ (learning only, unused here), per neuron update 81 pJ active /
# 52 pJ inactive, within-tile spike energy 1.7 pJ, 3.0 / 4.0 pJ per tile hop (E-W / N-S).
_LOIHI = EnergyModel(
    name="loihi",
    description="Loihi 1 (synaptic op 23.6 pJ, neuron update 81 pJ, spike 1.7 pJ)",
    mac_pj=23.6,
    ac_pj=23.6,
    neuron_update_pj=81.0,
    spike_pj=1.7,
    sources={
        "ac_pj": f"{DAVIES_2018}: energy per synaptic spike op (min) 23.6 pJ",
        "neuron_update_pj": f"{DAVIES_2018}: energy per neuron update, active 81 pJ (inactive 52 pJ)",
        "spike_pj": f"{DAVIES_2018}: within-tile spike energy 1.7 pJ",
        "mac_pj": f"{DAVIES_2018}: the synaptic spike op figure, 23.6 pJ, reused for a MAC (an assumption)",
    },
    estimates={
        "mac_pj": (
            "no published per-MAC figure for Loihi: a MAC with a graded input (an LSTM's synapses, "
            "graded SNN inputs) is charged as one synaptic spike op, 23.6 pJ, as if the value were "
            "carried by a graded spike (a Loihi 2 feature; Loihi 1 has only binary spikes). This "
            "is optimistic for the LSTM, which Loihi cannot run natively"
        ),
        "neuron_update_pj": (
            "every neuron of every step is charged the ACTIVE figure (81 pJ), the larger one, "
            "whether or not it received input; an LSTM hidden unit and each readout unit are "
            "charged as one neuron update per step, its gate products included (optimistic for "
            "the LSTM)"
        ),
        "spike_pj": "tile hops between cores (3.0-4.0 pJ each) are not counted: the mapping is unknown",
        "ac_pj": "the paper gives 23.6 pJ as a minimum per synaptic spike op; it is used for every op",
    },
)

ENERGY_PRESETS: dict[str, EnergyModel] = {
    model.name: model for model in (_CMOS45_FP32, _CMOS45_INT32, _CMOS45_INT8, _LOIHI)
}


def custom_energy_model(
    name: str,
    mac_pj: float,
    ac_pj: float,
    neuron_update_pj: float | None = None,
    spike_pj: float = 0.0,
    source: str = "user-supplied constants",
) -> EnergyModel:
    """A user's own per-operation energies, all attributed to ``source``."""
    constants = {"mac_pj": mac_pj, "ac_pj": ac_pj, "spike_pj": spike_pj}
    if neuron_update_pj is not None:
        constants["neuron_update_pj"] = neuron_update_pj
    return EnergyModel(
        name=name,
        description=f"{name} (user constants)",
        mac_pj=float(mac_pj),
        ac_pj=float(ac_pj),
        neuron_update_pj=None if neuron_update_pj is None else float(neuron_update_pj),
        spike_pj=float(spike_pj),
        sources={key: source for key in constants},
    )


def resolve_preset(preset: str | EnergyModel) -> EnergyModel:
    if isinstance(preset, EnergyModel):
        return preset
    if preset not in ENERGY_PRESETS:
        raise ValueError(f"expected an energy preset among {sorted(ENERGY_PRESETS)}; got {preset!r}")
    return ENERGY_PRESETS[preset]


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy per inference in picojoules, by component (see the module docstring)."""

    preset: str
    synaptic_ac_pj: float
    synaptic_mac_pj: float
    neuron_pj: float
    spike_pj: float

    @property
    def total_pj(self) -> float:
        return self.synaptic_ac_pj + self.synaptic_mac_pj + self.neuron_pj + self.spike_pj

    def to_dict(self) -> dict[str, float | str]:
        data: dict[str, float | str] = dataclasses.asdict(self)
        data["total_pj"] = self.total_pj
        return data


def energy_per_inference(
    counts: OpCounts, preset: str | EnergyModel, convention: str = "neurobench"
) -> EnergyBreakdown:
    """Mean energy of one inference over the samples in ``counts`` (picojoules, by component),
    counting synaptic operations by ``convention`` (module docstring)."""
    model = resolve_preset(preset)
    if counts.n_samples <= 0:
        raise ValueError(f"expected counts over at least one sample; got n_samples={counts.n_samples}")
    samples = float(counts.n_samples)
    if model.neuron_update_pj is None:
        neuron_energy = counts.neuron_update_macs * model.mac_pj
    else:
        neuron_energy = counts.neuron_updates * model.neuron_update_pj
    acs, macs = synaptic_operations(counts, convention)
    ac_energy, mac_energy = acs * model.ac_pj, macs * model.mac_pj
    return EnergyBreakdown(
        preset=model.name,
        synaptic_ac_pj=ac_energy / samples,
        synaptic_mac_pj=mac_energy / samples,
        neuron_pj=neuron_energy / samples,
        spike_pj=counts.spikes * model.spike_pj / samples,
    )


def energy_ratio(baseline: OpCounts, model: OpCounts, preset: str | EnergyModel,
                 convention: str = "neurobench") -> float:
    """How many times less energy ``model`` uses than ``baseline`` per inference (> 1: cheaper)."""
    model_energy = energy_per_inference(model, preset, convention).total_pj
    baseline_energy = energy_per_inference(baseline, preset, convention).total_pj
    if model_energy == 0:
        return float("inf") if baseline_energy > 0 else 1.0
    return baseline_energy / model_energy
