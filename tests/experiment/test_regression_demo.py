"""`seqgcn run --dataset rotated_digits`: regression end to end through the CLI, in a subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

# one thread: on a small shared machine, torch's thread pool fights the other processes
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_regression_demo_reports_an_error_metric_where_lower_is_better(tmp_path):
    out = tmp_path / "rotated"
    cmd = [sys.executable, "-m", "seqgcn.cli", "run", "--dataset", "rotated_digits", "--trials", "1", "--cycles", "2",
           "--epochs", "2", "--methods", "Random", "CoreGCN", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr

    assert "mean error (deg), mean ± std over 1 trial(s); lower is better" in proc.stdout
    assert "Random" in proc.stdout and "CoreGCN" in proc.stdout
    assert "AUBC: area under the learning curve" in proc.stdout and "lower is better" in proc.stdout
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
