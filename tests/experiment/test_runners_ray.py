"""`seqgcn run --backend ray`: the same results as the local backend, and a SIGKILLed worker costs one cycle.

One local Ray instance (2 CPUs) is shared by the tests of this module; the runner
uses it and leaves it running, the fixture shuts it down.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import signal
import threading
import time

import pytest

if importlib.util.find_spec("ray") is None:  # found, not imported: a worker that runs no test here never loads Ray
    pytest.skip("the ray extra is not installed (pip install 'seqgcn[ray]')", allow_module_level=True)

from seqgcn.experiment.rundir import RunDirBusy, RunDirLock  # noqa: E402
from seqgcn.cli import main  # noqa: E402
from seqgcn.experiment import ExperimentConfig, RayRunner, run_experiment  # noqa: E402
from seqgcn.experiment.jobs import Job, job_path  # noqa: E402
from seqgcn.experiment.rundir import load_views  # noqa: E402

# every job gives torch the config's `threads` (1 by default) on either backend: float sums depend on it
GRID = ["--trials", "2", "--cycles", "2", "--epochs", "2", "--budget", "10", "--seed-size", "20", "--subset", "100",
        "--methods", "Random", "CoreGCN", "--gcn-epochs", "20", "--seed", "1"]
# one job long enough to be killed between its cycles
LONG_JOB = ExperimentConfig(methods=("CoreSet",), trials=1, cycles=4, epochs=3, budget=10, seed_size=20, subset=100, seed=2)


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=256 * 2**20)
    yield
    ray.shutdown()


def same_results(run_dir):
    """Every column of results.csv but the timings."""
    with open(run_dir / "results.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in csv.DictReader(fh)]


def test_ray_backend_gives_the_local_results_with_default_settings(tmp_path, capsys):
    assert main(["run", *GRID, "--out", str(tmp_path / "local")]) == 0
    assert main(["run", *GRID, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    out = capsys.readouterr().out
    assert "Random" in out and "CoreGCN" in out and "AUBC" in out
    local, on_ray = same_results(tmp_path / "local"), same_results(tmp_path / "ray")
    assert len(local) == 2 * 2 * 2 and on_ray == local
    assert json.loads((tmp_path / "ray" / "results.json").read_text())["backend"] == "ray"
    pids = {json.loads(job_path(tmp_path / "ray", Job(t, m)).read_text())["attempts"][0]["pid"]
            for t in range(2) for m in ("Random", "CoreGCN")}
    assert os.getpid() not in pids  # the jobs ran in Ray's worker processes


def test_a_killed_worker_is_retried_from_its_last_cycle(tmp_path, one_torch_thread):
    reference = run_experiment(LONG_JOB, tmp_path / "local", progress=False)
    out, job = tmp_path / "killed", Job(0, "CoreSet")
    errors = []

    def background():
        try:
            run_experiment(LONG_JOB, out, progress=False, runner=RayRunner(max_retries=2))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=background)
    thread.start()
    path, killed, deadline = job_path(out, job), None, time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        ckpt = json.loads(path.read_text()) if path.exists() else None
        if ckpt and ckpt["records"] and not ckpt["done"]:
            killed = ckpt["attempts"][-1]["pid"]
            os.kill(killed, signal.SIGKILL)  # the worker dies in the middle of cycle 1 or later
        time.sleep(0.02)
    thread.join(timeout=240)
    assert killed is not None, "the job ended before its worker could be killed"
    assert not errors, errors

    ckpt = json.loads(path.read_text())
    first, second = ckpt["attempts"]
    assert first["pid"] == killed and second["pid"] != killed
    assert first["first_cycle"] == 0 and 1 <= second["first_cycle"] < LONG_JOB.cycles  # only the running cycle is redone
    key = ("cycle", "n_labelled", "metric", "selected", "learner_seed", "candidates_seed", "sampler_seed")
    assert [[r[k] for k in key] for r in ckpt["records"]] == [[r[k] for k in key] for r in reference.records]


def test_workers_save_features_run_every_kind_of_sampler_and_the_driver_holds_the_lock(tmp_path, one_torch_thread):
    # a variant label with a comma, VAAL (reads the images) and Learning Loss (trains with the learner) on the workers
    methods = ("UncertainGCN(epochs=3, hidden=8)", "VAAL(iterations=2)", "LearningLoss")
    config = ExperimentConfig(methods=methods, trials=1, cycles=3, epochs=1, budget=5, seed_size=10, subset=50, seed=3,
                              save_features=True)
    out, errors, busy = tmp_path / "run", [], []

    def background():
        try:
            run_experiment(config, out, progress=False, runner=RayRunner())
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=background)
    thread.start()
    deadline = time.monotonic() + 120
    while not busy and thread.is_alive() and time.monotonic() < deadline:
        if (out / "jobs").is_dir() and any((out / "jobs").iterdir()):  # the workers are at it
            with pytest.raises(RunDirBusy, match=rf"pid {os.getpid()} on host"):  # the driver holds the lock
                RunDirLock(out).acquire()
            busy.append(True)
        time.sleep(0.02)
    thread.join(timeout=240)
    assert busy and not errors, errors
    views = load_views(out)
    assert sorted(views) == sorted((m, c) for m in methods for c in (0, 1))  # every selecting cycle, none for the last
    for (method, cycle), view in views.items():
        picked = json.loads(job_path(out, Job(0, method)).read_text())["records"][cycle]["selected"]
        assert view["selected"].tolist() == picked
    with open(out / "results.csv", newline="") as fh:
        assert [row["method"] for row in csv.DictReader(fh)] == [m for m in methods for _ in range(3)]


@pytest.mark.parametrize("option, value, message", [
    ("--gpus-per-job", "-1", r"gpus_per_job=-1.0 must be a number >= 0 \(fractions share a GPU\)"),
    ("--cpus-per-job", "0", r"cpus_per_job=0.0 must be a positive number"),
])
def test_bad_resources_per_job_are_one_line_errors(capsys, tmp_path, option, value, message):
    assert main(["run", "--backend", "ray", option, value, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(f"seqgcn: error: {message}\n", err) and not (tmp_path / "x").exists()
