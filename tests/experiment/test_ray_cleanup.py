"""A local Ray instance ends with the run that started it: the watcher at once, else the next run (`ray_cleanup`).

The child processes load `ray_cleanup.py` by its path, as the watcher does, so
that they start in a second (importing seqgcn imports torch).
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

if importlib.util.find_spec("ray") is None:  # found, not imported: a worker that runs no test here never loads Ray
    pytest.skip("the ray extra is not installed (pip install 'seqgcn[ray]')", allow_module_level=True)

from seqgcn.experiment import ray_cleanup  # noqa: E402
from seqgcn.experiment.ray_cleanup import Proc  # noqa: E402
from seqgcn.experiment.runners import _connect  # noqa: E402

pytestmark = pytest.mark.skipif(not ray_cleanup.supported(), reason="processes are named through Linux's /proc")

LOAD = f"""
import importlib.util, os, subprocess, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("ray_cleanup", {ray_cleanup.__file__!r})
rc = sys.modules["ray_cleanup"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rc)
records = Path(sys.argv[1])
"""

# a driver as RayRunner starts one: a small local instance, guarded
RAY_DRIVER = LOAD + """
import ray
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
before = rc.descendants({os.getpid()})
ray.init(num_cpus=1, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False,
         logging_level="ERROR")
guard = rc.guard(before, records_dir=records)
print(guard.watcher.pid, flush=True)
time.sleep(120)
"""

# an "instance" of one process that would outlive its driver (its own session, as Ray's agents outlive it)
SLEEP_DRIVER = LOAD + """
before = rc.descendants({os.getpid()})
instance = subprocess.Popen(["sleep", "120"], start_new_session=True)
guard = rc.guard(before, records_dir=records)
print(instance.pid, guard.watcher.pid, flush=True)
time.sleep(120)
"""


def start(script: str, records) -> tuple[subprocess.Popen, list[int]]:
    """Run `script` in a child; (the child, the pids it prints once its instance is up)."""
    child = subprocess.Popen([sys.executable, "-c", script, str(records)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([child.stdout], [], [], 90)
    line = child.stdout.readline() if ready else ""
    if not line:
        child.kill()
        ray_cleanup.stop_stale(records_dir=records)
        pytest.fail(f"the child did not start its instance: {child.communicate()[1][-2000:]}")
    return child, [int(pid) for pid in line.split()]


def gone(procs, timeout: float = 3.0) -> bool:
    """Whether every one of `procs` has ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def command(pid: int) -> bytes:
    try:
        return (ray_cleanup.PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return b""


def sleeper() -> tuple[subprocess.Popen, Proc]:
    proc = subprocess.Popen(["sleep", "120"])
    return proc, ray_cleanup.process(proc.pid)


def write_record(records, name: str, driver: Proc, procs, boot_id: str | None = None):
    records.mkdir(exist_ok=True)
    path = records / f"{name}.json"
    path.write_text(json.dumps({"boot_id": boot_id or ray_cleanup._boot_id(), "driver": [driver.pid, driver.start],
                                "processes": [[p.pid, p.start] for p in procs]}))
    return path


def test_the_next_run_stops_what_a_killed_ray_driver_and_its_watcher_left(tmp_path):
    records = tmp_path / "records"
    child, (watcher,) = start(RAY_DRIVER, records)
    try:
        record = records / f"{child.pid}.json"
        procs = [Proc(*p) for p in json.loads(record.read_text())["processes"]]
        names = {command(p.pid) for p in procs}
        assert any(b"gcs_server" in n for n in names) and any(b"raylet" in n for n in names)
        assert ray_cleanup.process(watcher) not in procs  # the watcher is not part of the instance

        os.kill(watcher, signal.SIGKILL)  # a whole process group killed: no watcher to end the instance
        child.kill()
        child.wait()
        time.sleep(1.0)  # gcs_server, raylet... die at once (Ray's PDEATHSIG), the workers within a second
        left = {p for p in procs if p.alive()}
        assert left, "Ray's agents wait 60 s for the dead GCS (README, Ray): something should be left to stop"

        killed = ray_cleanup.stop_stale(records_dir=records)
        assert set(killed) <= left and gone(procs)
        assert not record.exists()
    finally:  # nothing outlives a failed test
        child.kill()
        child.communicate()
        if ray_cleanup.process(watcher) is not None:
            os.kill(watcher, signal.SIGKILL)
        ray_cleanup.stop_stale(records_dir=records)


def test_the_watcher_ends_the_instance_when_its_driver_is_killed(tmp_path):
    records = tmp_path / "records"
    child, (instance, watcher) = start(SLEEP_DRIVER, records)
    proc, watcher_proc = ray_cleanup.process(instance), ray_cleanup.process(watcher)
    try:
        assert json.loads((records / f"{child.pid}.json").read_text())["processes"] == [[proc.pid, proc.start]]
        child.kill()
        child.wait()
        assert gone([proc, watcher_proc], timeout=3.0)
        assert not list(records.iterdir())
    finally:
        child.kill()
        child.communicate()
        ray_cleanup.kill([proc, watcher_proc])


def test_after_a_normal_close_the_watcher_kills_nothing(tmp_path):
    before = ray_cleanup.descendants({os.getpid()})
    instance, proc = sleeper()
    try:
        guard = ray_cleanup.guard(before, records_dir=tmp_path)
        assert json.loads(guard.record.read_text())["processes"] == [[proc.pid, proc.start]]
        guard.close()
        assert guard.watcher.returncode == 0 and not guard.record.exists()
        assert proc.alive()  # ending a normally shut-down instance is Ray's own work
    finally:
        instance.kill()
        instance.wait()


def test_nothing_but_the_recorded_processes_is_ever_killed(tmp_path):
    (a, proc_a), (b, proc_b) = sleeper(), sleeper()
    try:
        reused = Proc(proc_b.pid, proc_b.start - 1)  # b's pid, once another process's
        dead_driver = Proc(proc_a.pid, proc_a.start + 1)
        stale = write_record(tmp_path, "1", dead_driver, [reused])
        live = write_record(tmp_path, "2", proc_a, [proc_b])  # a run still going: left alone
        other_boot = write_record(tmp_path, "3", dead_driver, [proc_b], boot_id="another boot")
        broken = tmp_path / "4.json"
        broken.write_text("{")

        assert ray_cleanup.stop_stale(records_dir=tmp_path) == []
        assert proc_a.alive() and proc_b.alive()
        assert live.exists() and not stale.exists() and not other_boot.exists() and not broken.exists()
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_records_in_a_folder_others_can_write_are_not_trusted(tmp_path):
    instance, proc = sleeper()
    try:
        write_record(tmp_path, "1", Proc(proc.pid, proc.start + 1), [proc])
        tmp_path.chmod(0o777)
        assert ray_cleanup.stop_stale(records_dir=tmp_path) == [] and proc.alive()
        tmp_path.chmod(0o700)
        assert ray_cleanup.stop_stale(records_dir=tmp_path) == [proc] and gone([proc])
    finally:
        instance.kill()
        instance.wait()


def test_guard_records_nothing_when_ray_init_started_nothing(tmp_path):
    before = ray_cleanup.descendants({os.getpid()})
    assert ray_cleanup.guard(before, records_dir=tmp_path) is None  # joined a cluster it did not start
    assert not list(tmp_path.iterdir())


class FakeRay:
    """`ray` as `_connect` uses it: a local `init` starts one process, as the real one starts a dozen."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def is_initialized(self):
        return False

    def init(self, address=None, **options):
        if address is None:
            self.started.append(subprocess.Popen(["sleep", "120"]))


def test_the_runner_stops_stale_instances_then_guards_the_one_it_starts(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ray_cleanup, "RECORDS_DIR", tmp_path)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # _connect sets it for a local instance
    left, proc = sleeper()
    fake = FakeRay()
    try:
        write_record(tmp_path, "1", Proc(proc.pid, proc.start + 1), [proc])  # its driver is gone
        started_here, guard = _connect(fake, None)
        assert started_here and not proc.alive() and "stopped 1 process(es)" in caplog.text
        assert json.loads(guard.record.read_text())["processes"] == [[fake.started[0].pid,
                                                                      ray_cleanup.process(fake.started[0].pid).start]]
        guard.close()
        assert not list(tmp_path.iterdir())

        assert _connect(fake, "10.0.0.1:6379") == (True, None)  # a cluster joined by address is never recorded
        assert len(fake.started) == 1 and not list(tmp_path.iterdir())
    finally:
        for p in [left, *fake.started]:
            p.kill()
            p.wait()
