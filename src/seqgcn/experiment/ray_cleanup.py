"""A local Ray instance that a run started ends with it, also when the run is SIGKILLed (Linux; elsewhere nothing).

What a SIGKILLed driver leaves behind (measured with Ray 2.60, README "Many jobs
at once: Ray"): the processes ``ray.init()`` starts itself (gcs_server, raylet,
the dashboard head, the autoscaler monitor, the log monitor) carry Ray's
PR_SET_PDEATHSIG and die at once; the task workers see their raylet die and
exit within a second or two; the raylet's two agents (DashboardAgent and
RuntimeEnvAgent, about 170 MB together) see it too, but then try for 60 s to
report it to the GCS, which is gone, before they exit (the 60 s are fixed in
Ray's code: a shorter ``RAY_gcs_rpc_server_reconnect_timeout_s`` changes nothing).

Two guards end them sooner:

- `guard` starts a watcher process next to the instance. It holds the read end
  of a pipe whose write end only the driver has, so the pipe closes when the
  driver ends, however it ends; the watcher then kills the instance's processes
  that are still there (within a second).
- `guard` also writes a record of the instance, ``RECORDS_DIR/<driver pid>.json``.
  If the watcher was killed too (it has a session of its own, so a signal to the
  driver's process group misses it; a kill by hand does not), `stop_stale`, called
  by the next Ray run, stops the processes of every record whose driver is gone.

Only what is safe is ever killed. A process is named by its pid *and* its start
time (clock ticks after boot, ``/proc/PID/stat``) on this boot, so a pid that
another process has reused since is never hit. Only the processes that the
``ray.init()`` call itself made (new descendants of the driver) are recorded, so a
cluster the user started (``ray start``, an address, ``RAY_ADDRESS``) is never in
a record.

This file imports only the standard library: the watcher runs it as a script,
without loading seqgcn (or torch).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RECORDS_DIR = Path(tempfile.gettempdir()) / f"seqgcn-ray-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """One process, by pid and start time: the pair no later process can have on this boot."""

    pid: int
    start: int  # clock ticks after boot (field 22 of /proc/PID/stat)

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie does not count: it holds no memory)."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.start and stat[0] != "Z"


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of `pid` from /proc, or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text.rpartition(")")[2].split()  # the command name, in parentheses, may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def supported() -> bool:
    """Whether processes can be named safely here (Linux's /proc)."""
    return sys.platform.startswith("linux") and _stat(os.getpid()) is not None


def process(pid: int) -> Proc | None:
    """The process that has `pid` now, or None."""
    stat = _stat(pid)
    return None if stat is None else Proc(pid, stat[2])


def descendants(roots: set[int]) -> set[Proc]:
    """Every live process below the pids `roots` (children, their children, ...), roots excluded."""
    children: dict[int, list[Proc]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                children.setdefault(stat[1], []).append(Proc(int(entry.name), stat[2]))
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child.pid)
    return found


def kill(procs) -> list[Proc]:
    """SIGKILL those of `procs` that still run (checked just before each kill); the ones killed."""
    killed = []
    for proc in procs:
        if proc.alive():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except OSError:  # ended meanwhile, or not ours
                continue
            killed.append(proc)
    return killed


class Guard:
    """The record and the watcher of a local Ray instance this process started; `close` after `ray.shutdown()`."""

    def __init__(self, record: Path, watcher: subprocess.Popen | None):
        self.record = record
        self.watcher = watcher

    def close(self) -> None:
        """The instance ended normally: drop the record, then let the watcher go (it kills nothing without it)."""
        self.record.unlink(missing_ok=True)
        if self.watcher is not None:
            self.watcher.stdin.close()
            try:
                self.watcher.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.watcher.kill()
                self.watcher.wait()


def guard(before: set[Proc], *, records_dir: Path | None = None) -> Guard | None:
    """Record the processes that appeared below this one since `before` (a `descendants` snapshot) and watch them.

    Call it right after ``ray.init()`` started a local instance. None when
    nothing appeared (``ray.init()`` joined an instance it did not start) or
    off Linux. `records_dir`: where the record goes (None: `RECORDS_DIR`).
    """
    if not supported():
        return None
    records_dir = RECORDS_DIR if records_dir is None else records_dir
    made = descendants({os.getpid()}) - before
    if not made:
        return None
    record, driver = records_dir / f"{os.getpid()}.json", process(os.getpid())
    try:
        records_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(records_dir):
            return None
        _write_json(record, {"boot_id": _boot_id(), "driver": [driver.pid, driver.start],
                             "processes": sorted([p.pid, p.start] for p in made)})
    except OSError:
        return None  # no place for a record: the run goes on unguarded, as Ray alone leaves it
    try:
        watcher = subprocess.Popen([sys.executable, "-I", __file__, str(record)], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        watcher = None  # the record alone: the next run stops what a killed driver left
    return Guard(record, watcher)


def stop_stale(*, records_dir: Path | None = None) -> list[Proc]:
    """Stop the processes of every record whose driver has ended; the processes killed.

    A record of a driver that still runs (a concurrent run) is left alone, and
    so is every process whose pid now belongs to a different process.
    `records_dir`: where the records are (None: `RECORDS_DIR`).
    """
    records_dir = RECORDS_DIR if records_dir is None else records_dir
    if not supported() or not _private(records_dir):
        return []  # no records, or records that someone else could have written: nothing to kill
    killed, boot = [], _boot_id()
    for record in sorted(records_dir.glob("*.json")):
        try:
            data = json.loads(record.read_text())
            driver, procs = Proc(*data["driver"]), [Proc(*p) for p in data["processes"]]
            same_boot = data["boot_id"] == boot
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)  # written atomically: unreadable means not ours to trust
            continue
        if same_boot and driver.alive():
            continue
        if same_boot:
            killed += kill(procs)
        record.unlink(missing_ok=True)
    return killed


def _private(folder: Path) -> bool:
    """Whether only this user can write in `folder` (it is theirs, and neither group- nor world-writable)."""
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _write_json(path: Path, data) -> None:
    """Write `path` whole or not at all (a reader never sees half a record)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _watch(record: Path, poll_s: float = 1.0) -> None:
    """The watcher: until stdin closes, follow the recorded processes and their children; then kill them.

    Workers the raylet starts later are children of recorded processes, so
    they are followed too. Without the record (the driver closed it after a
    normal shutdown) nothing is killed.
    """
    try:
        procs = {Proc(*p) for p in json.loads(record.read_text())["processes"]}
    except OSError:
        return  # closed already: the instance was shut down before the watcher read the record
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], poll_s)
        if readable and not os.read(sys.stdin.fileno(), 1):
            break  # the driver ended
        procs |= descendants({p.pid for p in procs if p.alive()})
    if record.exists():
        kill(procs)
        record.unlink(missing_ok=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch(Path(sys.argv[1]))
