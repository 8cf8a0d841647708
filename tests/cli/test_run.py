"""`seqgcn run` end to end on the embedded digits: the files, SIGKILL + resume (the one real process), errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqgcn.cli import main
from seqgcn.cli.run import add_run_arguments, config_from_args
from seqgcn.experiment import ExperimentConfig
from seqgcn.experiment.jobs import Job, job_path

# 2 methods × 1 trial × 5 cycles, a few epochs: seconds, but long enough to be killed mid-run
TINY = ["--trials", "1", "--cycles", "5", "--seed-size", "20", "--budget", "10", "--subset", "60",
        "--epochs", "2", "--gcn-epochs", "40", "--methods", "Random", "CoreGCN", "--seed", "7"]


def seqgcn_run(*args) -> str:
    """`seqgcn run ARGS` in this process; its stdout (it must succeed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", *map(str, args)])
    assert code == 0
    return out.getvalue()


def read_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def metric_and_selection(run_dir: Path):
    return [(r["method"], r["trial"], r["cycle"], r["n_labelled"], r["metric"], r["selected"]) for r in read_csv(run_dir)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cli") / "reference"
    return out, seqgcn_run(*TINY, "--out", out)


def test_end_to_end_writes_every_file_and_prints_the_table(reference):
    out, stdout = reference
    for name in ("config.json", "results.json", "results.csv", "summary.txt", "learning_curve.png"):
        assert (out / name).is_file(), name
    assert "accuracy (%), mean ± std over 1 trial(s); higher is better" in stdout
    assert stdout.count("AUBC") == 2  # the table's row and the one line explaining it
    assert f"results: {out / 'results.csv'}" in stdout and f"plot:    {out / 'learning_curve.png'}" in stdout
    rows = read_csv(out)
    assert [int(r["n_labelled"]) for r in rows if r["method"] == "CoreGCN"] == [20, 30, 40, 50, 60]
    meta = json.loads((out / "results.json").read_text())
    assert meta["config"]["methods"] == ["Random", "CoreGCN"] and meta["dataset"]["name"] == "digits"


def test_labelled_set_grows_by_the_budget_without_duplicates(reference):
    out, _ = reference
    rows = read_csv(out)
    for method in ("Random", "CoreGCN"):
        picked = [int(i) for r in rows if r["method"] == method for i in r["selected"].split()]
        assert len(picked) == 4 * 10 and len(set(picked)) == len(picked)
    for method in ("Random", "CoreGCN"):
        job = json.loads(job_path(out, Job(0, method)).read_text())
        assert job["done"] and job["next_cycle"] == 5 and job["state"] is None


def test_resume_after_sigkill_matches_an_uninterrupted_run(reference, tmp_path):
    out, _ = reference
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "seqgcn.cli", "run", *TINY, "--out", str(cut)]  # two worker processes under it
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = job_path(cut, Job(0, "Random")), time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.exists() and len(json.loads(ckpt.read_text())["records"]) >= 1:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    state = json.loads(ckpt.read_text())
    assert 1 <= len(state["records"]) <= 5 and not (cut / "results.csv").exists()
    resumed = seqgcn_run("--resume", cut)  # the workers died with their parent: the lock is free again
    assert "CoreGCN" in resumed and "AUBC" in resumed
    assert metric_and_selection(cut) == metric_and_selection(out)


def test_error_is_one_line_on_stderr_with_exit_code_2(capsys, tmp_path):
    err = cli_error(capsys, "--methods", "Random", "Bogus", "--out", tmp_path / "x")
    assert err.startswith("seqgcn: error: command line: unknown method 'Bogus'; known methods: ")
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- error cases, in-process
def cli_error(capsys, *argv) -> str:
    code = main(["run", *map(str, argv)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err  # exactly one line
    return err.strip()


def test_unknown_dataset(capsys, tmp_path):
    err = cli_error(capsys, "--dataset", "mnist", "--out", tmp_path / "x")
    assert err.startswith("seqgcn: error: unknown dataset 'mnist'; known datasets: digits, ")


def test_seed_size_larger_than_the_pool(capsys, tmp_path):
    err = cli_error(capsys, "--seed-size", "2000", "--out", tmp_path / "x")
    assert err == "seqgcn: error: seed_size=2000 exceeds the 1347 items of the digits pool; lower --seed-size"


def test_budget_times_cycles_larger_than_the_pool(capsys, tmp_path):
    err = cli_error(capsys, "--seed-size", "100", "--budget", "200", "--subset", "all", "--cycles", "8", "--out", tmp_path / "x")
    assert err == ("seqgcn: error: seed_size + budget × (cycles − 1) = 100 + 200 × 7 = 1500 exceeds the 1347 items "
                   "of the digits pool; lower --budget or --cycles")
    assert not (tmp_path / "x").exists()


def test_output_dir_not_writable(capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    err = cli_error(capsys, *TINY, "--out", blocker / "run")
    assert err.startswith(f"seqgcn: error: output dir '{blocker / 'run'}' is not writable: ")


def test_resume_dir_from_a_different_config(capsys, reference):
    out, _ = reference
    err = cli_error(capsys, "--resume", out, "--budget", "11")
    assert err == f"seqgcn: error: resume dir '{out}' was run with a different config (budget: stored 10, requested 11)"
    err = cli_error(capsys, "--resume", out.parent / "missing")
    assert err.endswith("holds no config.json; is it a seqgcn run directory?")


def test_malformed_and_unknown_config_files(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trials: [1\n")
    assert cli_error(capsys, "--config", bad).startswith(f"seqgcn: error: malformed config file '{bad}': ")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("trails = 2\n")
    err = cli_error(capsys, "--config", unknown)
    assert err.startswith(f"seqgcn: error: config file '{unknown}': unknown key 'trails'; known keys: ")


def test_no_arguments_means_the_embedded_default():
    import argparse

    p = argparse.ArgumentParser()
    add_run_arguments(p)
    config, out = config_from_args(p.parse_args([]))
    assert config == ExperimentConfig() and out is None
    assert config.dataset == "digits" and config.methods == ("Random", "CoreSet", "UncertainGCN", "CoreGCN")
    assert config.trials == 3 and 40 <= config.seed_size <= 50 and 40 <= config.budget <= 50


def test_ray_backend_without_ray_names_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    err = cli_error(capsys, "--backend", "ray", "--out", tmp_path / "x")
    assert err == "seqgcn: error: --backend ray needs Ray, which is not installed: pip install 'seqgcn[ray]'"
    assert not (tmp_path / "x").exists()


def test_ray_options_need_the_ray_backend(capsys, tmp_path):
    err = cli_error(capsys, "--cpus-per-job", "2", "--ray-address", "auto", "--out", tmp_path / "x")
    assert err == "seqgcn: error: --cpus-per-job, --ray-address apply only to --backend ray"
