"""Trials × methods in-process with a fake learner: files, seeds, determinism, resume, validation."""

from __future__ import annotations

import argparse
import csv
import json
import re

import numpy as np
import pytest

from seqgcn.cli.run import add_run_arguments, config_from_args
from seqgcn.experiment.config import load_config_file
from seqgcn.experiment import ExperimentConfig, derive_seed, run_experiment
from seqgcn.experiment.jobs import Job, job_path
from test_loop import FakeLearner, tiny_dataset
from seqgcn.experiment.runners import LocalRunner

IN_PROCESS = LocalRunner(workers=1)  # crash injection counts calls and raises in this process

TINY = ExperimentConfig(dataset="tiny", methods=("Random", "CoreSet"), trials=2, cycles=3, seed_size=10, budget=5,
                        subset=30, epochs=1, seed=3)


def run(config=TINY, out=None, **kw):
    return run_experiment(config, out, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner, **kw)


def metric_and_selection(records):
    return [(r["method"], r["trial"], r["cycle"], r["n_labelled"], r["metric"], r["selected"]) for r in records]


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_files_and_provenance(tmp_path):
    res = run(out=tmp_path / "run")
    d = tmp_path / "run"
    for name in ("config.json", "results.json", "results.csv", "summary.txt", "learning_curve.png"):
        assert (d / name).is_file(), name
    assert len(list((d / "jobs").glob("trial*.json"))) == 2 * 2 and not (d / "checkpoint.json").exists()
    meta = json.loads((d / "results.json").read_text())
    assert meta["config"] == TINY.to_dict()
    for key in ("seqgcn_version", "torch_version", "dataset", "seeds", "records", "summary"):
        assert key in meta
    assert meta["dataset"]["n_train"] == 120 and meta["backend"] == "local"
    assert len(meta["records"]) == 2 * 2 * 3
    rows = read_csv(d / "results.csv")  # plain CSV: the first line is the header
    assert list(rows[0])[:5] == ["method", "trial", "cycle", "n_labelled", "metric"] and len(rows) == 12
    assert "select_seconds" in rows[0] and "learner_seed" in rows[0]
    assert [(r["method"], int(r["trial"]), int(r["cycle"])) for r in rows] == \
           [(m, t, c) for t in range(2) for m in ("Random", "CoreSet") for c in range(3)]
    assert [float(r["metric"]) for r in rows] == [r["metric"] for r in meta["records"]]
    assert [r["selected"] for r in rows] == [" ".join(map(str, r["selected"])) for r in meta["records"]]
    assert "AUBC" in (d / "summary.txt").read_text()
    assert set(res.summary) == {"Random", "CoreSet"}


def test_results_csv_reads_with_pandas_defaults(tmp_path):
    pd = pytest.importorskip("pandas")
    run(out=tmp_path / "run")
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert frame.shape[0] == 12 and list(frame.columns[:3]) == ["method", "trial", "cycle"]
    assert frame.groupby("method")["n_labelled"].max().to_dict() == {"CoreSet": 20, "Random": 20}


def test_same_seed_set_for_all_methods_in_a_trial(tmp_path):
    res = run(out=tmp_path / "r")
    by = {(r["method"], r["trial"], r["cycle"]): r for r in res.records}
    for trial in range(2):
        # cycle 0: same seed set and same learner seed -> the same metric for every method
        assert by[("Random", trial, 0)]["metric"] == by[("CoreSet", trial, 0)]["metric"]
        assert by[("Random", trial, 0)]["learner_seed"] == by[("CoreSet", trial, 0)]["learner_seed"]
    assert by[("Random", 0, 1)]["candidates_seed"] != by[("Random", 1, 1)]["candidates_seed"]
    assert by[("Random", 0, 1)]["sampler_seed"] != by[("CoreSet", 0, 1)]["sampler_seed"]


def test_same_seed_same_results_other_seed_other_results(tmp_path):
    a = run(out=tmp_path / "a")
    b = run(out=tmp_path / "b")
    c = run(ExperimentConfig(**{**TINY.__dict__, "seed": 4}), out=tmp_path / "c")
    assert metric_and_selection(a.records) == metric_and_selection(b.records)
    assert metric_and_selection(a.records) != metric_and_selection(c.records)


def test_derive_seed_is_a_pure_function():
    assert derive_seed(0, "learner", 1, 2) == derive_seed(0, "learner", 1, 2)
    assert len({derive_seed(0, "x", 1), derive_seed(1, "x", 1), derive_seed(0, "y", 1), derive_seed(0, "x", 2)}) == 4


class Interrupt(Exception):
    pass


def crashing_learner(at_call: int):
    """A FakeLearner class whose `at_call`-th evaluation (over all its instances) raises Interrupt."""
    calls = {"n": 0}

    class Crashing(FakeLearner):
        def evaluate(self):
            calls["n"] += 1
            if calls["n"] == at_call:
                raise Interrupt
            return super().evaluate()

    return Crashing, calls


def test_resume_after_interruption_reruns_only_the_unfinished_jobs(tmp_path):
    full = run(out=tmp_path / "full")
    crashing, _ = crashing_learner(5)  # in trial 0, method CoreSet, cycle 1
    with pytest.raises(Interrupt):
        run_experiment(TINY, tmp_path / "cut", progress=False, dataset=tiny_dataset(), learner_factory=crashing, runner=IN_PROCESS)
    random0 = json.loads(job_path(tmp_path / "cut", Job(0, "Random")).read_text())
    coreset0 = json.loads(job_path(tmp_path / "cut", Job(0, "CoreSet")).read_text())
    assert random0["done"] and len(random0["records"]) == 3
    assert not coreset0["done"] and coreset0["next_cycle"] == 1 and len(coreset0["records"]) == 1
    assert not job_path(tmp_path / "cut", Job(1, "Random")).exists()
    counting, calls = crashing_learner(0)
    resumed = run_experiment(TINY, tmp_path / "cut", resume=True, progress=False, dataset=tiny_dataset(),
                             learner_factory=counting, runner=IN_PROCESS)
    assert calls["n"] == 12 - 4  # the 3 cycles of the finished job and the first of CoreSet are not run again
    assert metric_and_selection(resumed.records) == metric_and_selection(full.records)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": 2, "trial": 0', r"cannot read job checkpoint '.*trial0-CoreSet-\w{8}.json': Expecting"),
        ('[1, 2]', r"job checkpoint '.*' has format 'list'; this seqgcn reads format 2"),
        ('{"format": 2, "trial": 0, "method": "CoreSet", "done": false, "next_cycle": 1, "records": {}, "attempts": []}',
         r"job checkpoint '.*' is damaged: 'records' is not a list of records; delete it to rerun that job"),
        ('{"format": 2, "trial": 1, "method": "CoreSet", "done": true, "next_cycle": 3, "records": [], "attempts": []}',
         r"belongs to trial 1 'CoreSet', not trial 0 'CoreSet'"),
    ],
)
def test_a_damaged_job_checkpoint_is_a_one_line_error(tmp_path, text, message):
    crashing, _ = crashing_learner(5)
    with pytest.raises(Interrupt):
        run_experiment(TINY, tmp_path / "cut", progress=False, dataset=tiny_dataset(), learner_factory=crashing, runner=IN_PROCESS)
    job_path(tmp_path / "cut", Job(0, "CoreSet")).write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        run(out=tmp_path / "cut", resume=True)
    assert "\n" not in str(info.value)


def test_job_file_names_are_safe_and_distinct_for_any_method_name(tmp_path):
    names = ["CoreGCN", "UncertainGCN(layers=3)", "UncertainGCN(layers=3,margin=0.2)", "UncertainGCN[layers=3]",
             "a/b c", "x" * 200]
    paths = [job_path(tmp_path, Job(0, m)) for m in names]
    assert len(set(paths)) == len(names)
    for p in paths:
        assert p.parent == tmp_path / "jobs" and re.fullmatch(r"trial0-[A-Za-z0-9_.-]{1,60}-[0-9a-f]{8}\.json", p.name)
    assert paths[1].name.startswith("trial0-UncertainGCN_layers_3_-")


def test_resume_with_other_config_is_refused(tmp_path):
    run(out=tmp_path / "r")
    other = ExperimentConfig(**{**TINY.__dict__, "budget": 6})
    with pytest.raises(ValueError, match=r"resume dir .* was run with a different config \(budget: stored 5, requested 6\)"):
        run(other, out=tmp_path / "r", resume=True)


def test_fresh_run_into_an_existing_run_dir_is_refused(tmp_path):
    run(out=tmp_path / "r")
    with pytest.raises(ValueError, match=r"already holds a run; continue it with --resume"):
        run(out=tmp_path / "r")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed_size": 121}, r"seed_size=121 exceeds the 120 items of the tiny pool; lower --seed-size"),
        ({"budget": 60, "subset": None}, r"seed_size \+ budget × \(cycles − 1\) = 10 \+ 60 × 2 = 130 exceeds the 120 items"),
        ({"methods": ("Random", "Nope")}, r"unknown method 'Nope'; known methods: .*CoreGCN"),
        ({"subset": 3}, r"subset=3 must be an integer >= budget=5"),
        ({"trials": 0}, r"trials=0 must be a positive integer"),
        ({"device": "tpu"}, r"device='tpu' is not supported"),
    ],
)
def test_bad_config_is_a_one_line_value_error(tmp_path, change, message):
    config = ExperimentConfig(**{**TINY.__dict__, **change})
    with pytest.raises(ValueError, match=message) as info:
        run(config, out=tmp_path / "bad")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()  # nothing written on bad input


def test_pool_among_limits_capacity(tmp_path):
    with pytest.raises(ValueError, match=r"budget × \(cycles − 1\) = 5 × 2 = 10 exceeds the 8 items of the tiny pool"):
        run(out=tmp_path / "x", seed_among=np.arange(20), pool_among=np.arange(112, 120))


# --------------------------------------------------------------------------- config files
def parse(argv):
    p = argparse.ArgumentParser()
    add_run_arguments(p)
    return p.parse_args(argv)


def test_yaml_and_toml_config_with_cli_override(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("dataset: tiny\nmethods: [Random, CoreGCN]\ntrials: 2\nseed-size: 7\nbudget: 4\nlr: 0.01\nout: somewhere\n")
    t = tmp_path / "c.toml"
    t.write_text('dataset = "tiny"\nmethods = ["Random", "CoreGCN"]\ntrials = 2\nseed_size = 7\nbudget = 4\nlr = 0.01\nout = "somewhere"\n')
    for path in (y, t):
        config, out = config_from_args(parse(["--config", str(path), "--trials", "5"]))
        assert config.methods == ("Random", "CoreGCN") and config.seed_size == 7 and config.budget == 4
        assert config.lr == 0.01 and config.trials == 5 and out == "somewhere"
        config, out = config_from_args(parse(["--config", str(path), "--out", "here"]))
        assert config.trials == 2 and out == "here"


def test_unknown_key_and_malformed_config_files(tmp_path):
    bad_key = tmp_path / "k.yaml"
    bad_key.write_text("trails: 3\n")
    with pytest.raises(ValueError, match=r"config file .*k.yaml': unknown key 'trails'; known keys: .*trials"):
        config_from_args(parse(["--config", str(bad_key)]))
    broken = tmp_path / "b.toml"
    broken.write_text("trials = = 3\n")
    with pytest.raises(ValueError, match=r"malformed config file .*b.toml"):
        load_config_file(broken)
    not_a_map = tmp_path / "l.yaml"
    not_a_map.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"expected a mapping of option: value, got list"):
        load_config_file(not_a_map)
    yaml_broken = tmp_path / "y.yaml"
    yaml_broken.write_text("trials: [1, 2\nbudget: 3\n")
    with pytest.raises(ValueError, match=r"malformed config file") as info:
        load_config_file(yaml_broken)
    assert "\n" not in str(info.value)


def test_resume_takes_the_stored_config(tmp_path):
    run(out=tmp_path / "r")
    config, out = config_from_args(parse(["--resume", str(tmp_path / "r")]))
    assert config == TINY and out == str(tmp_path / "r")
    with pytest.raises(ValueError, match=r"different config \(trials: stored 2, requested 4\)"):
        config_from_args(parse(["--resume", str(tmp_path / "r"), "--trials", "4"]))
    with pytest.raises(ValueError, match=r"give either --resume RUN_DIR or --out DIR"):
        config_from_args(parse(["--resume", str(tmp_path / "r"), "--out", "x"]))


def test_config_file_values_are_coerced(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("lr: 1e-3\nsubset: all\nmethods: CoreGCN\nmilestones: [10, 20]\n")
    config, _ = config_from_args(parse(["--config", str(y)]))
    assert config.lr == 0.001 and config.subset is None and config.methods == ("CoreGCN",) and config.milestones == (10, 20)
    y.write_text("lr: fast\n")
    with pytest.raises(ValueError, match=r"config file .*c.yaml': lr='fast' must be a number"):
        config_from_args(parse(["--config", str(y)]))


def test_bad_learner_setting_writes_nothing(tmp_path):
    from seqgcn.learners import build_learner

    config = ExperimentConfig(**{**TINY.__dict__, "optimizer": "rmsprop"})
    with pytest.raises(ValueError, match=r"optimizer='rmsprop' is not one of 'sgd', 'adam'"):
        run_experiment(config, tmp_path / "x", progress=False, dataset=tiny_dataset(), learner_factory=build_learner)
    assert not (tmp_path / "x").exists()


def test_results_hold_the_seed_set_each_trial_started_from(tmp_path):
    learners = []

    def factory(dataset, config):
        learners.append(FakeLearner(dataset, config))
        return learners[-1]

    run_experiment(TINY, tmp_path / "r", progress=False, dataset=tiny_dataset(), learner_factory=factory, runner=IN_PROCESS)
    seed_sets = json.loads((tmp_path / "r" / "results.json").read_text())["seed_sets"]
    first_fits = learners[0].fit_calls[:: TINY.cycles]  # cycle 0 of each (trial, method), trial-major
    assert [list(idx) for idx, _ in first_fits] == [seed_sets[str(t)] for t in range(TINY.trials) for _ in TINY.methods]
    assert all(len(s) == TINY.seed_size for s in seed_sets.values())
