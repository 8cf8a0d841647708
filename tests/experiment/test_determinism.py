"""Results are a function of the config: the same under any load, with any number of workers, and resumed.

A small real run (the embedded digits, the small CNN, CoreGCN's GCN): float sums
depend on torch's thread count, so the thread count is a config value
(`ExperimentConfig.threads`) that every job sets, and nothing chooses it by timing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys

import pytest

from seqgcn.experiment import ExperimentConfig, run_experiment
from seqgcn.experiment.runners import LocalRunner

SMALL = ExperimentConfig(methods=("Random", "CoreGCN"), trials=1, cycles=2, seed_size=20, budget=10, subset=100,
                         epochs=2, gcn_epochs=20, seed=7)


def results(run_dir) -> list[dict]:
    """Every column of results.csv but the timings: what must not change."""
    with open(run_dir / "results.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in csv.DictReader(fh)]


@pytest.fixture
def two_busy_cores():
    """Two processes spinning on the CPU for as long as the test runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_idle_in_process_and_beside_two_busy_processes_with_two_workers_give_the_same_results(tmp_path, request):
    idle = run_experiment(SMALL, tmp_path / "idle", progress=False, runner=LocalRunner(workers=1))
    request.getfixturevalue("two_busy_cores")
    busy = run_experiment(SMALL, tmp_path / "busy", progress=False, runner=LocalRunner(workers=2))
    assert results(tmp_path / "idle") == results(tmp_path / "busy")
    assert [r["selected"] for r in idle.records] == [r["selected"] for r in busy.records]
    stored = json.loads((tmp_path / "busy" / "results.json").read_text())
    assert stored["config"]["threads"] == 1  # what decided the float sums is on record


def test_two_threads_are_as_deterministic_under_load(tmp_path, request):
    config = dataclasses.replace(SMALL, methods=("CoreGCN",), threads=2)
    run_experiment(config, tmp_path / "idle", progress=False)
    request.getfixturevalue("two_busy_cores")
    run_experiment(config, tmp_path / "busy", progress=False)
    assert results(tmp_path / "idle") == results(tmp_path / "busy")
