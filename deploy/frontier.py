"""Energy against accuracy: each family's Pareto front and the energy ratio at matched accuracy.

An energy ratio between models of different accuracy is not a result. A report holds several
operating points per model family (spiking networks; conventional RNNs: LSTM, GRU): every run, and each run read at
other decision thresholds (``deploy.report.OperatingPoint``, with the counts of that reading). Per
counting convention and energy preset:

* a point is ``(accuracy, energy per inference)``; a family's **Pareto front** is its points that
  no other point of the family beats on both (at least as accurate and at most as costly, better
  in one);
* the **ratio at matched accuracy** takes a target accuracy ``a`` and, on each front, the
  cheapest point at least as accurate as ``a`` (no interpolation: a point that was measured,
  never one between two); the ratio is the RNN's energy there over the SNN's. Two targets are
  reported: the RNN's best accuracy (can the SNN match the RNN, and at what cost?) and the
  SNN's best accuracy (what does the RNN spend to be as accurate as the SNN's best?). A target
  that a family never reaches gives no ratio (None), and the report says so.

Plain data in, plain data out (numpy only), so it reads Lava results and PyTorch runs alike.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

FAMILIES = ("snn", "rnn")  # a result's ``family``: spiking network, or conventional RNN (LSTM, GRU)
TARGETS = {"rnn_best_accuracy": "RNN best", "snn_best_accuracy": "SNN best"}  # the matched targets, as shown


def pareto_front(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points (dicts with ``accuracy`` and ``energy_pj``) that no other point dominates,
    sorted by energy (so also by accuracy, both rising)."""
    ordered = sorted(points, key=lambda point: (point["energy_pj"], -point["accuracy"]))
    front, best = [], float("-inf")
    for point in ordered:
        if point["accuracy"] > best:
            front.append(dict(point))
            best = point["accuracy"]
    return front


def cheapest_at_least(front: Sequence[Mapping[str, Any]], accuracy: float) -> dict[str, Any] | None:
    """The cheapest point of ``front`` at least as accurate as ``accuracy``, or None."""
    reaching = [point for point in front if point["accuracy"] >= accuracy]
    return dict(min(reaching, key=lambda point: point["energy_pj"])) if reaching else None


def matched_ratio(snn_front: Sequence[Mapping[str, Any]], rnn_front: Sequence[Mapping[str, Any]],
                  accuracy: float) -> dict[str, Any]:
    """Both families' cheapest points at least as accurate as ``accuracy`` and the RNN/SNN
    energy ratio between them (None where a family does not reach it)."""
    snn, rnn = cheapest_at_least(snn_front, accuracy), cheapest_at_least(rnn_front, accuracy)
    ratio = rnn["energy_pj"] / snn["energy_pj"] if snn and rnn and snn["energy_pj"] > 0 else None
    return {"target_accuracy": accuracy, "snn": snn, "rnn": rnn, "ratio": ratio}


def frontier(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fronts and matched-accuracy ratios of operating points (dicts with ``family``,
    ``accuracy``, ``energy_pj`` and any labels) under one convention and preset."""
    by_family = {family: [point for point in points if point["family"] == family] for family in FAMILIES}
    fronts = {family: pareto_front(members) for family, members in by_family.items()}
    result: dict[str, Any] = {"fronts": fronts, "matched": {}}
    if fronts["snn"] and fronts["rnn"]:
        for target, family in zip(TARGETS, ("rnn", "snn")):
            result["matched"][target] = matched_ratio(fronts["snn"], fronts["rnn"], fronts[family][-1]["accuracy"])
    return result
