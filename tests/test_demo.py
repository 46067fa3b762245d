"""The main job end to end at a tiny size: every stage of `rc-snn demo` runs and its outputs agree."""

import json

import pytest

from deploy.report import load_report, parse_markdown_tables
from rc_snn.cli import main


@pytest.mark.lava
@pytest.mark.timeout(600)
def test_demo_pipeline_end_to_end_at_tiny_size(tmp_path, capsys, no_network):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "1", "--hidden", "16", "--limit-train", "64",
            "--limit-test", "32", "--lava-samples", "6", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report_md = out / "report" / "report.md"
    assert f"report: {report_md}" in printed
    for name in ("alif-rank", "lstm-rank"):
        assert json.loads((out / name / "metrics.json").read_text())[0]["epoch"] == 1
    assert (out / "alif-rank" / "network.npz").is_file()

    lava = json.loads((out / "lava.json").read_text())
    assert lava["floating point"]["n_samples"] == 6
    assert lava["floating point"]["agreement_with_pytorch"] == 1.0  # float Lava reproduces PyTorch
    assert lava["floating point"]["same_decision_step_as_pytorch"] == 1.0
    assert 0.0 <= lava["fixed point"]["agreement_with_pytorch"] <= 1.0

    report = load_report(out / "report" / "report.json")
    names = [entry["name"] for entry in report["models"]]
    assert names[:2] == ["ALIF rank coding", "LSTM rank coding"] and len(names) == 4
    for plot in report["plots"].values():
        assert (out / "report" / plot).stat().st_size > 1000
    assert parse_markdown_tables(report_md.read_text())

    # A second run reuses every finished stage: training is not repeated.
    before = (out / "alif-rank" / "checkpoint.pt").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "alif-rank" / "checkpoint.pt").stat().st_mtime_ns == before
