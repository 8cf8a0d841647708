"""One run per directory (issue 11, item 3): a second `seqgcn run` into a busy run dir stops with one line, exit 2."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from seqgcn.experiment.rundir import LOCK_FILE, RunDirLock
from seqgcn.cli import main

QUICK = ["--methods", "Random", "--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5", "--epochs", "1"]


def hold_lock_in_a_child(run_dir) -> int:
    """Fork a process that holds the run dir's lock as a run does, without a run's cost, until it is killed; its pid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the lock, say so, wait
        try:
            os.close(read)
            RunDirLock(run_dir).acquire()
            os.write(write, b"held")
            signal.pause()
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 4) == b"held"
    os.close(read)
    return pid


def test_another_process_holding_the_lock_refuses_the_run_and_sigkill_leaves_no_stale_lock(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = hold_lock_in_a_child(out)
    try:
        assert main(["run", *QUICK, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"seqgcn: error: run dir '{out}' is in use by another seqgcn run "
                              f"(pid {holder} on host {socket.gethostname()}, started ")
        assert err.endswith("); wait for it to end or choose another --out\n")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the refused run wrote nothing
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)
    assert main(["run", *QUICK, "--out", str(out)]) == 0, capsys.readouterr().err  # the OS dropped the lock with the process
    assert (out / "results.json").is_file()


def test_a_lock_left_to_the_workers_of_a_dead_run_is_waited_for_then_refused(tmp_path, monkeypatch):
    """A killed run's workers die a moment after it: a resume at once waits for them (a short grace), no longer."""
    import subprocess
    import threading

    from seqgcn.experiment import rundir
    from seqgcn.experiment.rundir import RunDirBusy

    out = tmp_path / "run"
    out.mkdir()
    ended = subprocess.Popen(["true"])
    ended.wait()  # a pid that no longer exists: the run that took the lock, as its record says
    record = f"pid {ended.pid} on host {socket.gethostname()}, started 2026-12-02T00:00:00\n"

    worker = hold_lock_in_a_child(out)  # a worker still holding the dead run's lock
    (out / LOCK_FILE).write_text(record)
    monkeypatch.setattr(rundir, "ORPHAN_GRACE", 0.3)
    try:
        with pytest.raises(RunDirBusy, match=f"pid {ended.pid} on host .*; it has ended, but processes it started "
                                              "still hold the lock\\); wait for it to end"):
            RunDirLock(out).acquire()
        monkeypatch.setattr(rundir, "ORPHAN_GRACE", 30.0)
        threading.Timer(0.5, os.kill, (worker, signal.SIGKILL)).start()  # the worker dies a moment later
        with RunDirLock(out):
            pass
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(worker, 0)

    holder = hold_lock_in_a_child(out)  # a live holder: refused at once, not waited for
    try:
        start = time.monotonic()
        with pytest.raises(RunDirBusy, match=f"pid {holder} on host"):
            RunDirLock(out).acquire()
        assert time.monotonic() - start < 5.0
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)


def test_a_lock_held_in_this_process_blocks_run_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *QUICK, "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with RunDirLock(out):
        for argv in (["run", *QUICK, "--out", out], ["run", "--resume", out]):
            assert main([str(a) for a in argv]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1
            assert f"run dir '{out}' is in use by another seqgcn run (pid {os.getpid()} on host" in err
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != LOCK_FILE} == \
            {k: v for k, v in before.items() if k != LOCK_FILE}  # the refused runs touched nothing
    assert main(["run", "--resume", str(out)]) == 0  # released: the resume goes ahead (and finds all done)
    with RunDirLock(out):  # ... and released its lock when it ended
        pass


def test_lock_is_exclusive_and_reentrant_after_release(tmp_path):
    a, b = RunDirLock(tmp_path), RunDirLock(tmp_path)
    a.acquire()
    with pytest.raises(ValueError, match=r"is in use by another seqgcn run \(pid \d+ on host .*, started \d{4}-"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()
