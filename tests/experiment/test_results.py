"""Results files any tool reads, and `seqgcn report` over finished runs (fake learner, tiny data)."""

from __future__ import annotations

import dataclasses

import pytest

from seqgcn.cli import main
from seqgcn.experiment import ExperimentConfig, run_experiment
from seqgcn.cli.report import report
from test_loop import FakeLearner, tiny_dataset
from seqgcn.experiment.runners import LocalRunner

IN_PROCESS = LocalRunner(workers=1)  # crash injection counts calls and raises in this process

TINY = ExperimentConfig(dataset="tiny", methods=("Random", "CoreSet"), trials=2, cycles=3, seed_size=10, budget=5,
                        subset=30, epochs=1, seed=3)


def run(out, **change):
    config = dataclasses.replace(TINY, **change)
    return run_experiment(config, out, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)


def test_two_runs_with_different_methods_report_as_one_run_with_both(tmp_path):
    both = run(tmp_path / "both")
    run(tmp_path / "random", methods=("Random",))
    run(tmp_path / "coreset", methods=("CoreSet",))
    text, plot = report([tmp_path / "random", tmp_path / "coreset"])
    assert text == both.table  # seeds depend on (trial, method) only: the same table, the same AUBC
    assert "Random" in text and "CoreSet" in text and text.count("AUBC") == 2
    assert plot == tmp_path / "combined_learning_curve.png" and plot.stat().st_size > 0


def test_report_of_one_run_redraws_its_plot(tmp_path, capsys):
    res = run(tmp_path / "r")
    (tmp_path / "r" / "learning_curve.png").unlink()
    assert main(["report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(res.table) and f"plot: {tmp_path / 'r' / 'learning_curve.png'}" in out
    assert (tmp_path / "r" / "learning_curve.png").is_file()


def test_report_refuses_runs_of_different_protocols_and_repeated_methods(tmp_path):
    run(tmp_path / "a", methods=("Random",))
    run(tmp_path / "b", methods=("CoreSet",), budget=6, seed=4)
    with pytest.raises(ValueError, match=r"cannot combine '.*a' and '.*b': their protocols differ "
                                         r"\(budget: first run 5, this run 6, seed: first run 3, this run 4\)$"):
        report([tmp_path / "a", tmp_path / "b"])
    run(tmp_path / "c")
    with pytest.raises(ValueError, match=r"method 'Random' is in both '.*a' and '.*c'; report each run on its own"):
        report([tmp_path / "a", tmp_path / "c"])


def test_report_of_an_unfinished_or_foreign_dir_is_a_one_line_error(tmp_path, capsys):
    class Interrupt(Exception):
        pass

    class Crashing(FakeLearner):  # stops the run after its first checkpointed cycle (before it, nothing would be left)
        calls = 0

        def evaluate(self):
            Crashing.calls += 1
            if Crashing.calls == 2:
                raise Interrupt
            return super().evaluate()

    with pytest.raises(Interrupt):
        run_experiment(TINY, tmp_path / "cut", progress=False, dataset=tiny_dataset(), learner_factory=Crashing, runner=IN_PROCESS)
    assert main(["report", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err
    assert err == (f"seqgcn: error: run dir '{tmp_path / 'cut'}' holds no results.json (not finished); "
                   f"continue it with seqgcn run --resume {tmp_path / 'cut'}\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text('{"records": []}')
    with pytest.raises(ValueError, match=r"is not a seqgcn results file \(missing: config, metric_name, "):
        report([tmp_path / "other"])


def test_report_of_an_upper_bound_run_prints_its_table(tmp_path):
    res = run(tmp_path / "ub", upper_bound=True)
    text, plot = report([tmp_path / "ub"])
    assert text == res.table and text.startswith("upper bound: accuracy (%)") and plot is None
