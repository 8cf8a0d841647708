"""`seqgcn run --upper-bound`: the learner trained once per trial on the whole training set."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest

from seqgcn.cli import main
from seqgcn.experiment import ExperimentConfig, derive_seed, run_experiment
from seqgcn.experiment.jobs import Job, job_path
from test_loop import FakeLearner, tiny_dataset
from seqgcn.experiment.runners import LocalRunner

IN_PROCESS = LocalRunner(workers=1)  # crash injection counts calls and raises in this process


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_upper_bound_on_digits_writes_one_record_per_trial(capsys, tmp_path):
    out = tmp_path / "ub"
    code = main(["run", "--upper-bound", "--trials", "2", "--epochs", "2", "--seed", "5", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "upper bound: accuracy (%) after training on the whole training set (1347 items), " \
           "mean ± std over 2 trial(s); higher is better" in stdout
    assert f"results: {out / 'results.csv'}" in stdout and "AUBC" not in stdout
    for name in ("config.json", "results.json", "results.csv", "summary.txt"):
        assert (out / name).is_file(), name
    assert not (out / "learning_curve.png").exists()

    res = json.loads((out / "results.json").read_text())
    assert res["mode"] == "upper_bound" and res["config"]["upper_bound"] is True
    assert res["seeds"]["upper_bound"] == {str(t): derive_seed(5, "upper_bound", t) for t in range(2)}
    assert "seqgcn_version" in res and "torch_version" in res and res["learner"]["optimizer"] == "sgd"
    records = res["records"]
    assert [r["trial"] for r in records] == [0, 1]
    for r in records:
        assert r["method"] == "UpperBound" and r["n_labelled"] == 1347
        assert math.isfinite(r["metric"]) and 0.0 <= r["metric"] <= 1.0
        assert r["train_seconds"] > 0 and r["learner_epochs"] == 2
    s = res["summary"]
    assert s["per_trial"] == [r["metric"] for r in records] and s["mean"] == pytest.approx(sum(s["per_trial"]) / 2)

    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 and [float(r["metric"]) for r in rows] == s["per_trial"]
    assert {"train_seconds", "eval_seconds", "learner_seed"} <= set(rows[0])
    assert "mean" in (out / "summary.txt").read_text()


def test_upper_bound_of_a_regression_says_lower_is_better(tmp_path):
    config = ExperimentConfig(dataset="rotated_digits", upper_bound=True, trials=1, epochs=1)
    result = run_experiment(config, tmp_path / "reg", progress=False)
    assert result.upper_bound and not result.higher_is_better and result.metric_name == "mean error (deg)"
    assert "upper bound: mean error (deg) after training on the whole training set" in result.table
    assert result.table.splitlines()[0].endswith("lower is better")
    assert math.isfinite(result.records[0]["metric"]) and result.records[0]["metric"] > 0


def test_upper_bound_with_a_synthetic_pool_trains_on_real_plus_pool(tmp_path):
    config = ExperimentConfig(dataset="digits", pool_dataset="digits", upper_bound=True, trials=1, epochs=1)
    result = run_experiment(config, tmp_path / "pool", progress=False)
    # the real training set (1,347) plus the whole pool dataset: its 1,347 training and 450 test images
    assert result.records[0]["n_labelled"] == 1347 + 1347 + 450


class Interrupt(Exception):
    pass


def test_upper_bound_resumes_after_the_last_finished_trial(tmp_path):
    config = ExperimentConfig(dataset="tiny", upper_bound=True, trials=3, seed=2)
    full = run_experiment(config, tmp_path / "full", progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)
    calls = {"n": 0}

    class Crashing(FakeLearner):
        def evaluate(self):
            calls["n"] += 1
            if calls["n"] == 2:
                raise Interrupt
            return super().evaluate()

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "cut", progress=False, dataset=tiny_dataset(), learner_factory=Crashing, runner=IN_PROCESS)
    assert json.loads(job_path(tmp_path / "cut", Job(0, "UpperBound")).read_text())["done"]
    assert not job_path(tmp_path / "cut", Job(1, "UpperBound")).exists()
    resumed = run_experiment(config, tmp_path / "cut", resume=True, progress=False, dataset=tiny_dataset(),
                             learner_factory=FakeLearner, runner=IN_PROCESS)
    assert [(r["trial"], r["metric"], r["learner_seed"]) for r in resumed.records] == \
           [(r["trial"], r["metric"], r["learner_seed"]) for r in full.records]
    other = dataclasses.replace(config, upper_bound=False)
    with pytest.raises(ValueError, match=r"different config \(upper_bound: stored True, requested False\)"):
        run_experiment(other, tmp_path / "cut", resume=True, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)
