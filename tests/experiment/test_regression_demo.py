"""`seqgcn run --dataset rotated_digits`: regression end to end through the CLI."""

from __future__ import annotations

import json
import math

from seqgcn.cli import main


def test_regression_demo_reports_an_error_metric_where_lower_is_better(tmp_path, capsys):
    out = tmp_path / "rotated"
    code = main(["run", "--dataset", "rotated_digits", "--trials", "1", "--cycles", "2", "--epochs", "2",
                 "--methods", "Random", "CoreGCN", "--gcn-epochs", "50", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr

    assert "mean error (deg), mean ± std over 1 trial(s); lower is better" in stdout
    assert "Random" in stdout and "CoreGCN" in stdout
    assert "AUBC: area under the learning curve" in stdout and "lower is better" in stdout
    for name in ("config.json", "results.json", "results.csv", "summary.txt", "learning_curve.png"):
        assert (out / name).is_file(), name
    assert "mean ± std over trials; lower is better" in (out / "summary.txt").read_text()

    res = json.loads((out / "results.json").read_text())
    assert res["metric_name"] == "mean error (deg)" and res["higher_is_better"] is False
    assert res["dataset"]["task"] == "regression"
    # optimizer and lr were not given: stored as "by task" and resolved to the paper's DeepPrior setting
    assert res["config"]["optimizer"] is None and res["config"]["lr"] is None
    assert res["learner"]["optimizer"] == "adam" and res["learner"]["lr"] == 1e-3
    records = res["records"]
    assert [(r["method"], r["n_labelled"]) for r in records] == [("Random", 40), ("Random", 80), ("CoreGCN", 40), ("CoreGCN", 80)]
    assert all(math.isfinite(r["metric"]) and 0 < r["metric"] < 90 for r in records)  # degrees, angles in ±60
    assert len(records[0]["selected"]) == 40 and records[1]["selected"] == []
