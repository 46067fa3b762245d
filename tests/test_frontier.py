"""Pareto fronts and the energy ratio at matched accuracy, on hand-made points."""

import numpy as np
import pytest

from deploy.frontier import cheapest_at_least, frontier, pareto_front


def point(family, accuracy, energy, model="m", setting="evaluated"):
    return {"family": family, "model": model, "setting": setting, "accuracy": accuracy, "energy_pj": energy}


def test_the_front_keeps_exactly_the_undominated_points():
    points = [point("snn", 0.90, 10.0), point("snn", 0.92, 12.0), point("snn", 0.91, 13.0),  # dominated by 0.92/12
              point("snn", 0.92, 15.0), point("snn", 0.80, 10.0), point("snn", 0.95, 30.0)]
    front = pareto_front(points)
    assert [(p["accuracy"], p["energy_pj"]) for p in front] == [(0.90, 10.0), (0.92, 12.0), (0.95, 30.0)]
    rng = np.random.default_rng(0)  # against a brute-force definition of dominance
    many = [point("snn", float(a), float(e)) for a, e in zip(rng.random(60).round(2), rng.random(60).round(2))]
    dominated = lambda p: any(q["accuracy"] >= p["accuracy"] and q["energy_pj"] <= p["energy_pj"]  # noqa: E731
                              and (q["accuracy"], q["energy_pj"]) != (p["accuracy"], p["energy_pj"]) for q in many)
    assert {(p["accuracy"], p["energy_pj"]) for p in pareto_front(many)} == {
        (p["accuracy"], p["energy_pj"]) for p in many if not dominated(p)}


def test_matched_ratio_takes_the_cheapest_point_at_least_as_accurate():
    points = [point("snn", 0.90, 10.0), point("snn", 0.93, 20.0), point("snn", 0.96, 50.0),
              point("rnn", 0.92, 1000.0), point("rnn", 0.94, 3000.0)]
    result = frontier(points)
    at_lstm = result["matched"]["rnn_best_accuracy"]
    assert at_lstm["target_accuracy"] == 0.94
    assert (at_lstm["snn"]["accuracy"], at_lstm["rnn"]["accuracy"]) == (0.96, 0.94)
    assert at_lstm["ratio"] == pytest.approx(3000.0 / 50.0)
    at_snn = result["matched"]["snn_best_accuracy"]  # the LSTM never reaches 96 %
    assert at_snn["rnn"] is None and at_snn["ratio"] is None
    assert cheapest_at_least(result["fronts"]["snn"], 0.91)["energy_pj"] == 20.0


def test_one_family_alone_has_fronts_but_no_ratio():
    result = frontier([point("snn", 0.9, 1.0)])
    assert result["matched"] == {} and len(result["fronts"]["snn"]) == 1 and result["fronts"]["rnn"] == []
