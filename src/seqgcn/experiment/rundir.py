"""The run directory: every file name in it, its lock, where a new one goes, and what a failed start leaves (nothing).

Files of a run directory (this module is the only one that knows their names)::

    .seqgcn.lock        flock-ed by the process running in the directory (`RunDirLock`): one run per directory
    config.json         provenance, written first; its "config" is `ExperimentConfig.to_dict()`
    jobs/               one checkpoint per (trial, method) job (`job_path`), rewritten atomically after every cycle
    features/           with ``save_features``: what each sampler saw (`save_view`, `load_views`)
    results.json, results.csv, summary.txt, learning_curve.png     at the end (`seqgcn.experiment.results`)

`claim_run_dir` creates the directory of a fresh run and takes its lock for the
run's lifetime: a second run into it, fresh or resumed, stops with an error
naming the holder. The process that calls `seqgcn.experiment.run_experiment`
holds the lock, also with the parallel backends, whose workers only write their
job files (and saved features).

A directory "holds a run" once it has a job file or ``results.json``; a fresh run
refuses it. A directory with only ``config.json`` (a run stopped before its first
checkpoint) is taken over by a rerun with the same config.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import time
import zipfile
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from seqgcn.checks import InputError
from seqgcn.experiment.config import ExperimentConfig, config_diff, one_line
from seqgcn.io import StorageError, write_atomic

LOCK_FILE = ".seqgcn.lock"
ORPHAN_GRACE = 10.0  # seconds a lock whose recorded holder has died is waited for: its workers are dying with it
CONFIG = "config.json"
JOBS_DIR = "jobs"
FEATURES_DIR = "features"
RESULTS = "results.json"
RESULTS_CSV = "results.csv"
SUMMARY = "summary.txt"
LEARNING_CURVE = "learning_curve.png"
COMBINED_CURVE = "combined_learning_curve.png"  # `seqgcn report` over several runs, next to the first
TSNE = "tsne.png"
RANKS_CSV = "ranks.csv"  # `seqgcn report --ranks`: methods ranked per trial by AUBC
CD_DIAGRAM = "cd_diagram.png"
WIN_RATES = "win_rates.png"
POOLED = "pooled"  # prefix of the ranks pooled over several runs (pooled_ranks.csv, ...), next to the first


def job_path(run_dir, trial: int, method: str) -> Path:
    """``RUN_DIR/jobs/trial<t>-<slug>-<hash>.json``: the slug keeps [A-Za-z0-9_.-] of the method, the hash (8 hex
    digits of its SHA-1) tells apart names that slug alike ("UncertainGCN(layers=3)" → ``trial0-UncertainGCN_layers_3_-1a2b3c4d.json``)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", method)[:60]
    tag = hashlib.sha1(method.encode()).hexdigest()[:8]
    return Path(run_dir) / JOBS_DIR / f"trial{trial}-{slug}-{tag}.json"


def view_path(run_dir, *, trial: int, method: str, cycle: int) -> Path:
    """``RUN_DIR/features/t<trial>-c<cycle>-<method slug>-<hash>.npz`` (the hash keeps variant labels apart)."""
    slug = re.sub(r"[^A-Za-z0-9=.-]+", "_", method).strip("_")
    digest = hashlib.sha1(method.encode()).hexdigest()[:8]
    return Path(run_dir) / FEATURES_DIR / f"t{trial}-c{cycle}-{slug}-{digest}.npz"


def save_view(run_dir, view: dict, *, trial: int, method: str, cycle: int) -> Path:
    """Write one view (`seqgcn.loop.ActiveLearner.last_view`) compressed and atomically; return its path.

    The file holds `method` (a 0-d string array), `trial`, `cycle` and the arrays of
    the view: nodes (N,), features (N, d), labelled, candidates, selected and, in a
    simulation, truth (the true targets of the nodes).
    """
    path = view_path(run_dir, trial=trial, method=method, cycle=cycle)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    data = io.BytesIO()
    np.savez_compressed(data, method=np.array(method), trial=np.array(trial), cycle=np.array(cycle), **view)
    write_atomic(path, data.getvalue())
    return path


def load_views(run_dir, *, trial: int = 0) -> dict[tuple[str, int], dict]:
    """The saved views of `trial`: {(method, cycle): arrays}. InputError when there are none."""
    folder = Path(run_dir) / FEATURES_DIR
    views = {}
    for path in sorted(folder.glob(f"t{int(trial)}-c*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            views[(str(arrays.pop("method")), int(arrays.pop("cycle")))] = arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # a truncated or damaged file
            raise InputError(f"cannot read saved features {str(path)!r}: {one_line(exc)}") from None
    if not views:
        raise InputError(f"no saved features for trial {trial} in {str(folder)!r}; run with --save-features first")
    return views


def run_methods(run_dir) -> list:
    """The methods of the run in `run_dir`, in its config's order ([] when its config.json cannot be read)."""
    try:
        stored = json.loads((Path(run_dir) / CONFIG).read_text())
        return list(stored.get("config", stored).get("methods", []))
    except (OSError, ValueError, AttributeError):
        return []


def check_writable(path: Path) -> None:
    """A one-line StorageError now, before any work, when a file cannot be written at `path` (full or read-only)."""
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    write_atomic(probe, b"")
    probe.unlink(missing_ok=True)


def read_run_config(run_dir) -> ExperimentConfig:
    """The config stored in a run directory's config.json (for `--resume` and `seqgcn report`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise InputError(f"resume dir {str(run_dir)!r} holds no {CONFIG}; is it a seqgcn run directory?")
    try:
        stored = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {one_line(exc)}") from None
    return ExperimentConfig.from_dict(stored, source=str(path))


def check_resume_config(run_dir, config: ExperimentConfig) -> None:
    """A resumed run must ask for exactly the config it was started with."""
    stored = read_run_config(run_dir)
    if stored != config:
        raise InputError(f"resume dir {str(run_dir)!r} was run with a different config "
                         f"({config_diff(stored.to_dict(), config.to_dict())})")


def new_run_dir(name: str) -> Path:
    """A path ``runs/<timestamp>-<name>`` that does not exist yet (created by `claim_run_dir`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{name}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def has_checkpoint(path: Path) -> bool:
    """True once a job of the run has checkpointed a cycle."""
    jobs = path / JOBS_DIR
    return jobs.is_dir() and any(jobs.glob("*.json"))


def claim_run_dir(path: Path, config: ExperimentConfig, *, resume: bool) -> RunDirLock:
    """Create the run directory (fresh run) and take its lock; the caller releases it (a context manager).

    The checks for an earlier run happen under the lock, so two runs started together
    into one directory cannot both pass them.
    """
    if not resume:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
    try:
        lock = RunDirLock(path).acquire()  # busy -> RunDirBusy, a ValueError naming the holder
    except OSError as exc:
        raise InputError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
    if not resume:
        try:
            check_no_earlier_run(path, config)
        except ValueError:
            lock.release()
            raise
    return lock


def check_no_earlier_run(path: Path, config: ExperimentConfig) -> None:
    """A fresh run may not write into another run's directory, except one holding only a config.json of `config`."""
    if has_checkpoint(path) or (path / RESULTS).exists():
        raise InputError(f"output dir {str(path)!r} already holds a run; continue it with --resume {path} or choose another --out")
    if not (path / CONFIG).exists():
        return
    try:
        stored = read_run_config(path)
    except ValueError:
        stored = None
    if stored != config:
        diff = (f"with another config ({config_diff(stored.to_dict(), config.to_dict())})" if stored is not None
                else "with an unreadable config")
        raise InputError(f"output dir {str(path)!r} holds {CONFIG} of a run that stopped before its first cycle, {diff}; "
                         f"rerun with that config, delete {str(path / CONFIG)!r}, or choose another --out")


class FreshStart:
    """What a fresh run finds in its directory before it writes, so that `undo` removes only what the run made."""

    def __init__(self, path: Path):
        self.path = path
        self.created = not path.exists()
        self.had = {name for name in (LOCK_FILE, JOBS_DIR, FEATURES_DIR) if (path / name).exists()}

    def undo(self) -> None:
        """A fresh run that failed before its first checkpoint leaves nothing: its config.json, its empty jobs/,
        the features it saved, its lock file and its directory go. An existing directory or lock file stays.

        (A run killed outright cannot clean up; `check_no_earlier_run` lets a rerun take such a directory over.)
        """
        if has_checkpoint(self.path):
            return
        try:
            (self.path / CONFIG).unlink(missing_ok=True)
            if JOBS_DIR not in self.had and (self.path / JOBS_DIR).is_dir():
                (self.path / JOBS_DIR).rmdir()  # no job file in it (has_checkpoint); a stray temp file keeps it
            if FEATURES_DIR not in self.had:
                shutil.rmtree(self.path / FEATURES_DIR, ignore_errors=True)
            if LOCK_FILE not in self.had:
                (self.path / LOCK_FILE).unlink(missing_ok=True)
            if self.created:
                self.path.rmdir()  # only if empty
        except OSError:
            pass


# --------------------------------------------------------------------------- the lock

class RunDirBusy(InputError):
    """Another process holds the run directory's lock (a user error: one line, exit 2)."""


class RunDirLock:
    """Exclusive lock on `run_dir` (which must exist); use as a context manager or `acquire` / `release`.

    `acquire` raises `RunDirBusy` naming the holder when another process (or another
    `RunDirLock` in this one) holds it, and OSError when the lock file cannot be opened.

    A run's worker processes inherit its lock and die with it (``PR_SET_PDEATHSIG``), a
    moment after it on a busy machine. So when the recorded holder is a process of this
    host that no longer exists, `acquire` waits up to `ORPHAN_GRACE` seconds for the lock
    before it gives up: a run killed and resumed at once is not refused.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd = None

    def acquire(self) -> "RunDirLock":
        if fcntl is None:  # pragma: no cover
            return self
        fd = self._open()
        deadline = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                holder = _read_holder(fd)
                gone = _holder_is_gone(holder)
                deadline = deadline or time.monotonic() + ORPHAN_GRACE
                if not gone or time.monotonic() > deadline:
                    os.close(fd)
                    left = "; it has ended, but processes it started still hold the lock" if gone else ""
                    raise RunDirBusy(f"run dir {str(self.path.parent)!r} is in use by another seqgcn run ({holder}"
                                     f"{left}); wait for it to end or choose another --out") from None
                time.sleep(0.05)
        self._fd = fd
        _write_holder(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM) and self.path.exists():
                return os.open(self.path, os.O_RDONLY)  # a read-only run dir: flock works on it, no holder written
            raise


def _write_holder(fd: int) -> None:
    text = f"pid {os.getpid()} on host {socket.gethostname()}, started {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:  # read-only descriptor or full disk: the lock holds all the same
        pass


def _holder_is_gone(holder: str) -> bool:
    """Whether `holder` (as `_write_holder` wrote it) names a process of this host that no longer exists."""
    found = re.match(r"pid (\d+) on host (.*), started ", holder)
    if found is None or found.group(2) != socket.gethostname():
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process, say)
        return False
    return False


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder not recorded yet"
