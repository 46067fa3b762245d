"""The main job end to end at a tiny size: every stage of `rc-snn demo` runs and its outputs agree."""

import json

import numpy as np
import pytest

from deploy.plots import format_number
from deploy.report import load_report
from rc_snn.pipeline.cli import main
from report_tables import parse_markdown_tables


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

    lava = {kind: json.loads((out / "alif-rank" / f"lava-{kind}-test.json").read_text()) for kind in ("float", "fixed")}
    assert lava["float"]["n_samples"] == 6
    assert lava["float"]["agreement_with_pytorch"] == 1.0  # float Lava reproduces PyTorch
    assert lava["float"]["same_decision_step_as_pytorch"] == 1.0
    # ... so fixed point's agreement with PyTorch is its agreement with float Lava, sample by sample.
    same = np.mean(np.equal(lava["fixed"]["predictions"], lava["float"]["predictions"]))
    assert lava["fixed"]["agreement_with_pytorch"] == pytest.approx(same)

    report = load_report(out / "report" / "report.json")
    names = [entry["name"] for entry in report["models"]]
    assert names == ["ALIF rank coding", "LSTM rank coding", "ALIF rank coding, Lava floating point",
                     "ALIF rank coding, Lava fixed point"]
    lava_rows = {entry["name"]: entry for entry in report["models"][2:]}
    assert lava_rows["ALIF rank coding, Lava fixed point"]["accuracy"] == lava["fixed"]["accuracy"]
    assert lava_rows["ALIF rank coding, Lava floating point"]["counts_total"] == lava["float"]["counts"]
    for plot in report["plots"].values():
        assert (out / "report" / plot).stat().st_size > 1000
    operations = parse_markdown_tables(report_md.read_text())["Operations"]
    assert [row["model"] for row in operations] == names
    for row, entry in zip(operations, report["models"]):
        assert row["accuracy (%)"] == format_number(100 * entry["accuracy"])
        assert entry["name"] in printed  # the terminal summary names every model

    # A second run reuses every finished stage: training is not repeated.
    before = (out / "alif-rank" / "checkpoint.pt").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "alif-rank" / "checkpoint.pt").stat().st_mtime_ns == before
