"""Fuzzing the CLI (issue 11, item 7): argument lists and small input files, in-process through `seqgcn.cli.main`.

Every example ends in one of two ways: exit 0 with a valid result, or exit 2 with
exactly one `seqgcn: error:` line on stderr and no new files. Never a traceback,
never another exit code. Sizes stay tiny so that examples which succeed are fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seqgcn.cli import main
from seqgcn.samplers import available_samplers

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py: hundreds of tiny GCN and learner runs, one thread each

# derandomize: the same examples on every CI run, so its time is predictable and a failure reproduces
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
N_ROWS = 24



junk_text = st.sampled_from(["", "x", "-1", "1e3", "nan", "inf", "0x10", " 3", "3.5", "all", "ÿ", "--", "-", "9" * 25])
small_int_text = st.integers(min_value=-3, max_value=12).map(str)


def feature_file(kind: str, path: Path) -> None:
    rng = np.random.default_rng(0)
    good = rng.random((N_ROWS, 3), dtype=np.float32)
    if kind == "good":
        np.save(path, good)
    elif kind == "scaled":
        np.save(path, good * np.float32(1e30))
    elif kind == "nan":
        bad = good.copy()
        bad[3, 1] = np.nan
        np.save(path, bad)
    elif kind == "1d":
        np.save(path, good[:, 0])
    elif kind == "ints":
        np.save(path, (good * 10).astype(np.int64))
    elif kind == "text":
        path.write_text("1,2,3\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:-7])
    elif kind == "zero_rows":
        np.save(path, np.zeros((0, 3), np.float32))
    elif kind == "constant":
        np.save(path, np.ones((N_ROWS, 3), np.float32))


index_lines = st.lists(st.one_of(st.integers(min_value=-2, max_value=N_ROWS + 2).map(str), junk_text,
                                 st.just("# comment")), max_size=8)


def mostly(valid, odd):
    """`valid` nine times in ten, else `odd`: many examples get far enough to do real work."""
    return st.integers(0, 9).flatmap(lambda k: valid if k else odd)


@st.composite
def select_case(draw):
    argv, files = ["select"], {}
    files["f.npy"] = ("features", draw(mostly(st.just("good"), st.sampled_from(
        ["scaled", "nan", "1d", "ints", "text", "empty", "truncated", "zero_rows", "constant"]))))
    argv += ["--features", draw(mostly(st.just("f.npy"), st.sampled_from(["missing.npy", "l.txt", "."])))]
    files["l.txt"] = ("lines", draw(mostly(st.just(["0", "4", "8", "12"]), index_lines)))
    argv += ["--labelled", draw(mostly(st.just("l.txt"), st.sampled_from(["missing.txt", "f.npy"])))]
    if draw(st.booleans()):
        files["c.txt"] = ("lines", draw(mostly(st.just([str(i) for i in range(13, 24)]), index_lines)))
        argv += ["--candidates", "c.txt"]
    argv += ["--budget", draw(mostly(st.integers(1, 5).map(str), st.one_of(st.integers(-1, 30).map(str), junk_text)))]
    argv += ["--method", draw(mostly(st.sampled_from(available_samplers()), st.sampled_from(["coregcn", "Bogus", ""])))]
    options = {
        "--seed": st.one_of(small_int_text, junk_text, st.just(str(2**70))),
        "--epochs": st.one_of(st.integers(-1, 3).map(str), junk_text),
        "--normalization": st.sampled_from(["column", "row", "sym"]),
        "--margin-rule": st.sampled_from(["closest", "farthest", "x"]),
        "--device": st.sampled_from(["cpu", "auto", "tpu"]),
        "--out": st.sampled_from(["o.txt", "-", "f.npy", "l.txt", "sub/o.txt", ".", "/dev/null"]),
    }
    for option in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3)):
        argv += [option, draw(options[option])]
    if draw(st.booleans()):
        argv.append("--diagnostics")
    if draw(st.integers(0, 19)) == 0:
        argv.append(draw(st.sampled_from(["--bogus", "extra", "--budget"])))
    return argv, files


RUN_FIELDS = ["trials", "cycles", "seed_size", "budget", "subset", "epochs", "batch_size", "lr", "momentum", "weight_decay",
              "milestones", "gamma", "optimizer", "augment", "arch", "methods", "device", "seed", "gcn_epochs",
              "normalization", "margin_rule", "margin", "upper_bound", "dataset", "preset", "trails"]
odd_value = st.one_of(st.integers(-2, 3), st.sampled_from([0.5, -0.1, 1.0, 1e-3, math.inf, math.nan, 2.5]), junk_text,
                      st.booleans(), st.none(), st.lists(st.integers(-1, 4), max_size=3),
                      st.sampled_from(["Random", "CoreSet", "sgd", "adam", "cpu", "cuda", "digits", "small_cnn", "column",
                                       "closest", "none", "all", "cifar10"]))

# a tiny valid run; the fuzzed options and config file come after it and override it
BASE_RUN = ["run", "--methods", "Random", "--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5",
            "--epochs", "1", "--arch", "small_cnn", "--out", "run"]


@st.composite
def run_case(draw):
    argv, files = list(BASE_RUN), {}
    options = {
        "--methods": st.lists(st.sampled_from(["Random", "CoreSet", "CoreGCN", "Bogus"]), min_size=1, max_size=2),
        "--trials": st.sampled_from(["0", "1", "x"]),
        "--cycles": st.sampled_from(["0", "1", "2", "-1", "2.5"]),
        "--seed-size": st.sampled_from(["0", "5", "10", "5000", "x"]),
        "--budget": st.sampled_from(["0", "3", "5", "5000"]),
        "--subset": st.sampled_from(["all", "none", "0", "3", "40", "x"]),
        "--epochs": st.sampled_from(["0", "1", "-2"]),
        "--batch-size": st.sampled_from(["0", "1", "4", "x"]),
        "--lr": st.sampled_from(["0.01", "inf", "nan", "0", "-1", "x", "1e30"]),  # 1e30: training diverges
        "--optimizer": st.sampled_from(["sgd", "adam", "rmsprop"]),
        "--device": st.sampled_from(["cpu", "auto", "tpu"]),
        "--seed": st.sampled_from(["0", "-1", "3", str(2**70), "x"]),
        "--dataset": st.sampled_from(["digits", "mnist", "cifar10", ""]),
        "--arch": st.sampled_from(["small_cnn", "auto", "resnet50"]),
        "--preset": st.sampled_from(["icvl", "cifar10", "nope"]),
        "--pool-dataset": st.sampled_from(["digits", "folder", "x"]),
        "--data-dir": st.sampled_from(["nowhere", "."]),
        "--out": st.sampled_from(["run", "cfg.yaml", "", "."]),
        "--resume": st.sampled_from(["run", "nowhere", "."]),
    }
    for option in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3)):
        value = draw(options[option])
        argv += [option, *(value if isinstance(value, list) else [value])]
    if draw(st.integers(0, 19)) == 0:  # trains on all 1,347 digits: the slowest example
        argv.append("--upper-bound")
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(RUN_FIELDS), unique=True, min_size=1, max_size=3))
        files["cfg.yaml"] = ("yaml", {k: draw(odd_value) for k in keys})
        argv += ["--config", "cfg.yaml"]
    if draw(st.integers(0, 19)) == 0:
        files["cfg.yaml"] = ("raw", draw(st.sampled_from(["[1, 2", "- a\n- b\n", "trials: [\n", "\x00\x01"])))
        argv += ["--config", "cfg.yaml"]
    return argv, files


def materialise(d: Path, files: dict) -> None:
    for name, (kind, value) in files.items():
        path = d / name
        if kind == "features":
            feature_file(value, path)
        elif kind == "lines":
            path.write_text("".join(f"{v}\n" for v in value))
        elif kind == "yaml":
            path.write_text(yaml.safe_dump(value, allow_unicode=True))
        else:
            path.write_text(value)


def call(argv, d: Path):
    """(exit code, stdout, stderr) of `seqgcn ARGV` run in-process with `d` as the working directory."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(d)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as exc:  # argparse's own exits (its errors, --help)
        code = exc.code
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}


@contextlib.contextmanager
def example(argv, files, *, prepare=None):
    """Run `seqgcn ARGV` in a fresh directory holding `files`; yield (dir, exit code, stdout) for the test's checks.

    A failure must be exit 2, one `seqgcn: error:` line, no new files; a success must leave the inputs untouched.
    """
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        materialise(d, files)
        if prepare is not None:
            prepare(d)
        before, inputs = snapshot(d), {p: p.read_bytes() for p in d.iterdir() if p.is_file()}
        code, out, err = call(argv, d)
        event(f"exit {code}")  # pytest --hypothesis-show-statistics: how many examples got through
        if code != 0:
            assert code == 2, f"exit {code}: {err}"
            assert err.count("\n") == 1 and err.startswith("seqgcn: error: "), err
            assert snapshot(d) == before, "a failed command left files behind"
        else:
            assert all(p.read_bytes() == data for p, data in inputs.items()), "an input file was overwritten"
        yield d, code, out


@settings(FUZZ, max_examples=100)
@given(select_case())
def test_fuzz_select(case):
    argv, files = case
    with example(argv, files) as (d, code, out):
        if code != 0:
            return
        budget = int(last_value(argv, "--budget"))
        target = last_value(argv, "--out") if "--out" in argv else "-"
        if target != "/dev/null":
            picks = [int(x) for x in (out if target == "-" else (d / target).read_text()).split()]
            assert len(picks) == budget == len(set(picks)) and all(0 <= i < N_ROWS for i in picks), picks


RECORDED = [("--trials", "trials", int), ("--cycles", "cycles", int), ("--seed-size", "seed_size", int),
            ("--budget", "budget", int), ("--subset", "subset", lambda v: None if v in ("all", "none") else int(v)),
            ("--epochs", "epochs", int), ("--batch-size", "batch_size", int), ("--lr", "lr", float),
            ("--optimizer", "optimizer", str), ("--device", "device", str), ("--seed", "seed", int),
            ("--arch", "arch", str), ("--dataset", "dataset", str)]


def something_to_resume(d: Path) -> None:
    assert call(BASE_RUN, d)[0] == 0


@settings(FUZZ, max_examples=40)
@given(run_case())
def test_fuzz_run(case):
    argv, files = case
    resumes = "--resume" in argv and argv[argv.index("--resume") + 1] == "run"
    with example(argv, files, prepare=something_to_resume if resumes else None) as (d, code, out):
        if code != 0:
            return
        out_dir = d / last_value(argv, "--resume" if "--resume" in argv else "--out")
        results = json.loads((out_dir / "results.json").read_text())
        assert results["records"] and "results:" in out
        for option, name, parse in RECORDED:  # what the command line said is what was run
            if option in argv:
                given = last_value(argv, option)
                assert results["config"][name] == parse(given), (option, given, results["config"][name])


def last_value(argv: list, option: str) -> str:
    """The word after the last `option` in `argv`: argparse keeps the last of a repeated option."""
    return argv[len(argv) - argv[::-1].index(option)]
