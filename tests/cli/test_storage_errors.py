"""Storage errors (disk full, read-only, no permission) at any write are one line, exit 2 (issue 11, item 5).

The failures are injected where every file of seqgcn is committed (`os.replace`, the
last step of an atomic write), in-process through `seqgcn.cli.main`; a real
read-only directory is tried too, except as root (root writes there anyway).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from seqgcn.cli import main
from seqgcn.experiment.jobs import Job, job_path

QUICK = ["--methods", "Random", "--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5", "--epochs", "1"]
ERRORS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied"}
JOB_FILE = str(job_path("", Job(0, "Random")))  # jobs/trial0-Random-<hash>.json: the run's only job, checkpointed per cycle
RUN_FILES = ["config.json", JOB_FILE, "results.json", "results.csv", "summary.txt", "learning_curve.png"]


@pytest.fixture
def fail_writing(monkeypatch):
    """fail_writing(name, code): committing a file called `name` (its last part) fails with OSError(code)."""
    real = os.replace

    def arm(name: str, code: int):
        def replace(src, dst, **kw):
            if Path(dst).name == Path(name).name:
                raise OSError(code, os.strerror(code), str(src))
            return real(src, dst, **kw)

        monkeypatch.setattr(os, "replace", replace)

    yield arm
    monkeypatch.setattr(os, "replace", real)


def one_line_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if not ln.startswith("(")]  # not the "(1.2 s)" timing of a finished run
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*.tmp")) if d.exists() else []


@pytest.mark.parametrize("name, code", [(n, c) for n, c in zip(RUN_FILES, list(ERRORS) * 2)])
def test_run_each_file(fail_writing, capsys, tmp_path, name, code):
    out = tmp_path / "run"
    fail_writing(name, code)
    err = one_line_error(capsys, ["run", *QUICK, "--out", out])
    assert err == f"seqgcn: error: cannot write '{out / name}': {ERRORS[code]}"
    assert leftovers(out) == [] and not (out / name).exists()


@pytest.mark.parametrize("code", list(ERRORS))
def test_select_out(fail_writing, capsys, tmp_path, code):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).random((20, 3), dtype=np.float32))
    (tmp_path / "l.txt").write_text("0\n1\n")
    fail_writing("picked.txt", code)
    err = one_line_error(capsys, ["select", "--features", tmp_path / "f.npy", "--labelled", tmp_path / "l.txt",
                                  "--budget", "2", "--method", "Random", "--out", tmp_path / "picked.txt"])
    assert err == f"seqgcn: error: cannot write '{tmp_path / 'picked.txt'}': {ERRORS[code]}"
    assert leftovers(tmp_path) == [] and not (tmp_path / "picked.txt").exists()


def test_a_run_that_failed_before_its_first_cycle_leaves_nothing(fail_writing, capsys, tmp_path):
    fail_writing(JOB_FILE, errno.ENOSPC)
    one_line_error(capsys, ["run", *QUICK, "--out", tmp_path / "run"])
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    one_line_error(capsys, ["run", *QUICK, "--out", tmp_path / "mine"])  # a directory it did not make stays
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_run_killed_before_its_first_cycle_can_be_rerun(capsys, tmp_path):
    out, done = tmp_path / "run", tmp_path / "done"
    assert main(["run", *QUICK, "--out", str(done)]) == 0
    out.mkdir()
    (out / "config.json").write_bytes((done / "config.json").read_bytes())  # what a SIGKILL before cycle 0 leaves
    capsys.readouterr()
    err = one_line_error(capsys, ["run", *QUICK, "--seed", "5", "--out", out])  # another config: told how to go on
    assert err == (f"seqgcn: error: output dir '{out}' holds config.json of a run that stopped before its first cycle, "
                   f"with another config (seed: stored 0, requested 5); rerun with that config, "
                   f"delete '{out / 'config.json'}', or choose another --out")
    assert main(["run", *QUICK, "--out", str(out)]) == 0, capsys.readouterr().err  # the same config takes it over
    assert json.loads((out / "results.json").read_text())["config"]["seed"] == 0


def test_a_run_that_failed_at_its_results_finishes_on_resume(fail_writing, capsys, tmp_path):
    out = tmp_path / "run"
    fail_writing("results.csv", errno.ENOSPC)
    one_line_error(capsys, ["run", *QUICK, "--out", out])
    err = one_line_error(capsys, ["run", *QUICK, "--out", out])
    assert err == f"seqgcn: error: output dir '{out}' already holds a run; continue it with --resume {out} or choose another --out"
    fail_writing("none", 0)
    assert main(["run", "--resume", str(out)]) == 0, capsys.readouterr().err
    assert (out / "results.csv").is_file() and (out / "learning_curve.png").stat().st_size > 1000


def writes_blocked_by_mode(d: Path) -> bool:
    """True when a read-only mode really stops this process from writing in `d` (not as root)."""
    probe = d / ".probe"
    try:
        probe.write_text("")
    except OSError:
        return True
    probe.unlink()
    return False


@pytest.fixture
def read_only(tmp_path):
    """make(d): chmod `d` read-only for the test (restored after); skips where the mode does not bind (root)."""
    made = []

    def make(d: Path) -> Path:
        d.chmod(0o555)
        made.append(d)
        if not writes_blocked_by_mode(d):
            pytest.skip("running as root: a read-only mode does not stop writes (the injected variants still run)")
        return d

    yield make
    for d in made:
        d.chmod(0o755)


def test_real_read_only_directory(read_only, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *QUICK, "--out", str(out)]) == 0
    (out / "results.json").unlink()  # as if the run had stopped before its results
    read_only(out)
    err = one_line_error(capsys, ["run", "--resume", out])
    assert err == f"seqgcn: error: cannot write '{out / 'results.json'}': Permission denied"
    np.save(tmp_path / "f.npy", np.ones((5, 2), np.float32))
    (tmp_path / "l.txt").write_text("0\n")
    err = one_line_error(capsys, ["select", "--features", tmp_path / "f.npy", "--labelled", tmp_path / "l.txt",
                                  "--budget", "1", "--method", "Random", "--out", out / "picked.txt"])
    assert err == f"seqgcn: error: cannot write '{out / 'picked.txt'}': Permission denied"
