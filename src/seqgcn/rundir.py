"""The run directory: where it goes, one run at a time in it, and what a failed fresh start leaves (nothing).

`claim_run_dir` creates the directory of a fresh run and takes its lock
(`seqgcn._lock.RunDirLock`, ``.seqgcn.lock``) for the run's lifetime: a second
run into it, fresh or resumed, stops with an error naming the holder. The
process that calls `seqgcn.experiment.run_experiment` holds the lock, also with
the Ray backend, whose workers only write their job files (and saved features).

A directory "holds a run" once it has a job file, an old ``checkpoint.json`` or
``results.json``; a fresh run refuses it. A directory with only ``config.json``
(a run stopped before its first checkpoint) is taken over by a rerun with the
same config. A directory of seqgcn 0.1 (one ``checkpoint.json``) is turned into
job files when resumed (`migrate_old_checkpoint`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from seqgcn._lock import LOCK_FILE, RunDirLock
from seqgcn.config import CONFIG, ExperimentConfig, config_diff, one_line, read_run_config
from seqgcn.jobs import JOBS_DIR, Job, write_job
from seqgcn.plots import FEATURES_DIR
from seqgcn.results import RESULTS

OLD_CHECKPOINT = "checkpoint.json"  # format 1: one checkpoint for the whole run (seqgcn 0.1), see `migrate_old_checkpoint`


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
    """True once a job of the run has checkpointed a cycle (or an old run left its single checkpoint)."""
    jobs = path / JOBS_DIR
    return (path / OLD_CHECKPOINT).exists() or (jobs.is_dir() and any(jobs.glob("*.json")))


def claim_run_dir(path: Path, config: ExperimentConfig, *, resume: bool) -> RunDirLock:
    """Create the run directory (fresh run) and take its lock; the caller releases it (a context manager).

    The checks for an earlier run happen under the lock, so two runs started together
    into one directory cannot both pass them.
    """
    if not resume:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
    try:
        lock = RunDirLock(path).acquire()  # busy -> RunDirBusy, a ValueError naming the holder
    except OSError as exc:
        raise ValueError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
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
        raise ValueError(f"output dir {str(path)!r} already holds a run; continue it with --resume {path} or choose another --out")
    if not (path / CONFIG).exists():
        return
    try:
        stored = read_run_config(path)
    except ValueError:
        stored = None
    if stored != config:
        diff = (f"with another config ({config_diff(stored.to_dict(), config.to_dict())})" if stored is not None
                else "with an unreadable config")
        raise ValueError(f"output dir {str(path)!r} holds {CONFIG} of a run that stopped before its first cycle, {diff}; "
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


# --------------------------------------------------------------------------- format 1
def migrate_old_checkpoint(run_dir, config: ExperimentConfig) -> None:
    """Turn a format-1 ``checkpoint.json`` into job files (finished jobs and the one in progress), then remove it."""
    path = Path(run_dir) / OLD_CHECKPOINT
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
        records, active = old["records"], old.get("active")
        if old.get("format") != 1 or not isinstance(records, list):
            raise ValueError(f"format {old.get('format')!r}")
        by_job: dict[Job, list] = {}
        for r in records:
            by_job.setdefault(Job(int(r["trial"]), str(r["method"])), []).append(r)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot resume from the old checkpoint {str(path)!r} ({one_line(exc)}); "
                         "start the run again in a new directory") from None
    n_cycles = 1 if config.upper_bound else config.cycles
    for job, recs in by_job.items():
        in_progress = active is not None and (active.get("trial"), active.get("method")) == tuple(job)
        state = active["state"] if in_progress else None
        if len(recs) < n_cycles and state is None:
            continue  # nothing to resume it from: the job starts again
        write_job(run_dir, job, {"done": state is None, "next_cycle": len(recs), "records": recs, "state": state,
                                 "attempts": []})
    path.unlink()
