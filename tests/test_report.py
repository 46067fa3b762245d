"""The comparison report renders, and report.md's tables carry the numbers of report.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from deploy.activity import activities_from_batch
from deploy.baselines import count_recurrent
from deploy.counting import count_snn
from deploy.energy import ENERGY_PRESETS, energy_per_inference
from deploy.footprint import recurrent_footprint_bytes, snn_footprint_bytes
from deploy.counting import REPORT_CONVENTIONS
from deploy.markdown import OPERATION_COLUMNS
from deploy.report import ModelResult, write_report
from report_tables import parse_markdown_tables

N_INPUTS, N_HIDDEN, N_OUTPUTS, N_TIME, N_SAMPLES = 12, 8, 3, 20, 6


@dataclass(frozen=True)
class Layer:
    w_in: np.ndarray
    w_rec: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Readout:
    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Network:
    layers: tuple
    readout: Readout


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def make_results(rng) -> list[ModelResult]:
    network = Network(
        (Layer(rng.normal(size=(N_HIDDEN, N_INPUTS)), rng.normal(size=(N_HIDDEN, N_HIDDEN)), np.zeros(N_HIDDEN)),),
        Readout(rng.normal(size=(N_OUTPUTS, N_HIDDEN)), np.zeros(N_OUTPUTS)),
    )
    inputs = (rng.random((N_TIME, N_SAMPLES, N_INPUTS)) < 0.2).astype(np.float32)
    spikes = rng.random((N_TIME, N_SAMPLES, N_HIDDEN)) < 0.1
    results = []
    for name, steps in (
        ("ALIF rank coding", rng.integers(3, 12, size=N_SAMPLES)),
        ("ALIF full sequence", np.full(N_SAMPLES, N_TIME - 1)),
    ):
        counts = count_snn(network, activities_from_batch(inputs, [spikes], steps))
        results.append(
            ModelResult(
                name=name, family="snn", accuracy=0.9, decision_steps=steps, counts=counts, dt_ms=10.0,
                accuracy_at_last_step=0.92,
                tradeoff=[(0.5, 0.8, 4.0), (1.0, 0.88, 7.5), (2.0, 0.91, 11.0)] if "rank" in name else [],
                raster=(spikes[:, 0], int(steps[0])), footprint_bytes=snn_footprint_bytes(network),
                source="test",
            )
        )
    for name, steps in (
        ("LSTM rank coding", rng.integers(2, 10, size=N_SAMPLES)),
        ("LSTM full sequence", np.full(N_SAMPLES, N_TIME - 1)),
    ):
        nonzeros = sum(int(np.count_nonzero(inputs[: step + 1, sample])) for sample, step in enumerate(steps))
        counts = count_recurrent(N_INPUTS, N_HIDDEN, 1, N_OUTPUTS, int((steps + 1).sum()), nonzeros, n_samples=N_SAMPLES)
        results.append(
            ModelResult(
                name=name, family="rnn", accuracy=0.95, decision_steps=steps, counts=counts, dt_ms=10.0,
                accuracy_at_last_step=None, tradeoff=[(0.5, 0.9, 3.0), (1.0, 0.95, 6.0)] if "rank" in name else [],
                footprint_bytes=recurrent_footprint_bytes(N_INPUTS, N_HIDDEN, 1, N_OUTPUTS),
            )
        )
    return results


@pytest.fixture(scope="module")
def written_report(tmp_path_factory):
    """One report written per module: plotting is the slow part."""
    results = make_results(np.random.default_rng(7))
    return results, write_report(results, tmp_path_factory.mktemp("report") / "out")


def as_number(cell: str) -> float | None:
    return None if cell == "-" else float(cell)


def assert_close(cell: str, value: float | None, where: str) -> None:
    shown = as_number(cell)
    if value is None:
        assert shown is None, f"{where}: report.md shows {cell}, report.json has null"
        return
    assert shown == pytest.approx(value, rel=1e-3, abs=1e-9), f"{where}: report.md {cell} vs report.json {value}"


def test_report_md_tables_match_report_json(written_report):
    _, paths = written_report
    data = json.loads(paths["json"].read_text())
    tables = parse_markdown_tables(paths["markdown"].read_text())
    by_name = {entry["name"]: entry for entry in data["models"]}
    presets = list(ENERGY_PRESETS)

    operations = tables["Operations"]
    assert [row["model"] for row in operations] == list(by_name)
    for row in operations:
        entry = by_name[row["model"]]
        assert row["family"] == entry["family"]
        for column, get in OPERATION_COLUMNS:
            assert_close(row[column], get(entry), f"{row['model']} / {column}")
    # independent of the shared column getters: a few columns read straight from the JSON
    first = operations[0]
    assert_close(first["ACs / inference"], by_name[first["model"]]["per_inference"]["effective_acs"], "ACs")
    assert_close(first["mean decision step"], by_name[first["model"]]["mean_decision_step"], "step")

    columns = [(convention, preset) for convention in REPORT_CONVENTIONS for preset in presets]
    for row in tables["Energy per inference (nJ)"]:
        for convention, preset in columns:
            assert_close(row[f"{preset}, {convention}"],
                         by_name[row["model"]]["energy_per_inference"][convention][preset]["total_pj"] / 1000,
                         f"{row['model']} / energy {preset} {convention}")
    for lstm in ("LSTM rank coding", "LSTM full sequence"):
        ratios = tables[f"Times less energy than {lstm}"]
        assert len(ratios) == 4
        for row in ratios:
            for convention, preset in columns:
                assert_close(row[f"{preset}, {convention}"], by_name[row["model"]]["energy_ratio_vs"][lstm][convention][preset],
                             f"{row['model']} / ratio vs {lstm} / {preset} {convention}")
        assert all(as_number(row[f"{preset}, {convention}"]) == pytest.approx(1.0) for row in ratios
                   if row["model"] == lstm for convention, preset in columns)
    matched = tables["Energy at matched accuracy"]
    assert len(matched) == len(columns) * 2
    for row in matched:
        pair = data["frontier"][row["convention"]][row["preset"]]["matched"]
        target = "rnn_best_accuracy" if "RNN best" in row["matched at"] else "snn_best_accuracy"
        assert_close(row["times less energy"], pair[target]["ratio"], f"matched {row}")


def test_report_json_numbers_come_from_the_counts(written_report):
    results, paths = written_report
    data = json.loads(paths["json"].read_text())
    for result, entry in zip(results, data["models"]):
        assert entry["mean_decision_step"] == pytest.approx(np.mean(result.decision_steps))
        assert entry["per_inference"]["effective_acs"] == pytest.approx(result.counts.effective_acs / N_SAMPLES)
        for preset in ENERGY_PRESETS:
            for convention in ("event-driven", "neurobench", "dense"):
                assert entry["energy_per_inference"][convention][preset]["total_pj"] == pytest.approx(
                    energy_per_inference(result.counts, preset, convention).total_pj
                )
    snn_rank, lstm_full = data["models"][0], data["models"][3]
    for convention in ("event-driven", "neurobench"):
        energy = lambda entry: entry["energy_per_inference"][convention]["loihi"]["total_pj"]  # noqa: E731
        assert snn_rank["energy_ratio_vs"]["LSTM full sequence"][convention]["loihi"] == pytest.approx(
            energy(lstm_full) / energy(snn_rank))
    assert "Horowitz" in data["presets"]["cmos45_fp32"]["sources"]["mac_pj"]


def test_report_writes_valid_pngs_and_nothing_left_over(written_report):
    _, paths = written_report
    out_dir = paths["json"].parent
    expected = {"json", "markdown", "tradeoff", "energy", "frontier", "decision_steps",
                "raster_alif_rank_coding", "raster_alif_full_sequence"}
    assert set(paths) == expected
    for key, path in paths.items():
        assert path.exists() and path.stat().st_size > 0, key
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
            assert f"]({path.name})" in paths["markdown"].read_text()
    assert [name.name for name in out_dir.iterdir() if name.name.startswith(".")] == [".rc-snn"]  # the marker alone
    assert sorted(name.name for name in out_dir.parent.iterdir()) == ["out"]  # no lock or half-built folder left
    assert "ASSUMED" in paths["markdown"].read_text()


def test_inconsistent_results_are_refused(rng, tmp_path):
    results = make_results(rng)
    bad = results[0]
    bad.decision_steps = bad.decision_steps[:-1]
    with pytest.raises(ValueError, match="same samples"):
        write_report(results, tmp_path)
    results = make_results(rng)
    results[1].name = results[0].name
    with pytest.raises(ValueError, match="unique model names"):
        write_report(results, tmp_path)
    results = make_results(rng)
    results[2].family = "ann"
    with pytest.raises(ValueError, match="family"):
        write_report(results, tmp_path)
