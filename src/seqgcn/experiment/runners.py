"""Backends that run a list of jobs: `LocalRunner` (worker processes on this machine) and `RayRunner` (Ray tasks).

Both run the same `seqgcn.experiment.jobs.run_job`, which gives torch
``config.threads`` threads, and leave the same job files: the results do not
depend on the backend, the number of workers, the machine's load or an
interruption; only the timing columns differ. A runner returns one `JobOutcome`
per job, in job order.

Local: ``workers`` processes (default: as many as the CPU cores hold jobs of
``config.threads`` threads, at most one per job), each running one job at a
time. One worker (and any run on a GPU: use Ray for several GPUs) runs the
jobs in this process. Worker processes are forked
from this one, so they share the loaded dataset and start at once; they end
with it, even when it is killed (SIGKILL included, on Linux).

Ray (``pip install 'seqgcn[ray]'``): each job is a task with ``cpus_per_job``
CPUs (default ``config.threads``) and ``gpus_per_job`` GPUs (fractions share a
GPU). A worker process loads the dataset once and keeps it for the next jobs
of the same config (`_worker_workspace`); the tasks carry only the config. The
data directories and the run directory must be readable, resp. writable, under
the same path on every node (a shared file system): the workers read the data
and write their job checkpoints there. A task whose worker dies is retried
(``max_retries``) and continues from its job's last checkpointed cycle. A
local instance ends with the run, also when the run is SIGKILLed; what a
killed run left is stopped by the next one (`seqgcn.experiment.ray_cleanup`).
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from tqdm.auto import tqdm

from seqgcn.checks import InputError
from seqgcn.experiment import ray_cleanup
from seqgcn.experiment.config import ExperimentConfig
from seqgcn.experiment.jobs import Job, Workspace, job_path, load_workspace, run_job

_log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    """A finished job: its records and when it ran (time.time() seconds; `job_seconds` inside `run_job`)."""

    job: Job
    records: list
    job_seconds: float   # the job's own time (no scheduling, no dataset loading)
    started_at: float    # when its (last) task started in the worker
    finished_at: float   # when the driver saw it finish


class JobFailed(RuntimeError):
    """A job could not finish (its worker kept dying); the finished cycles stay in the job files."""


@dataclass(frozen=True)
class LocalRunner:
    """The jobs on this machine: `workers` processes, one job each at a time (1: in this process, in job order)."""

    workers: int | None = None  # None: os.cpu_count() // config.threads, at least 1, at most one per job

    name = "local"

    def __post_init__(self):
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise InputError(f"workers={self.workers!r} must be a positive integer (or left out: one per free core)")

    def workers_for(self, config: ExperimentConfig, n_jobs: int) -> int:
        """How many processes run `n_jobs` jobs of `config`."""
        wanted = self.workers if self.workers is not None else max(1, (os.cpu_count() or 1) // config.threads)
        return max(1, min(wanted, n_jobs))

    def run(self, config: ExperimentConfig, jobs: list[Job], run_dir, ws: Workspace, *, progress: bool,
            cycles_done: int = 0) -> list[JobOutcome]:
        """Run `jobs` (the unfinished ones); `cycles_done` counts the finished jobs' cycles for the progress bar."""
        workers = self.workers_for(config, len(jobs))
        on_gpu = str(getattr(ws.learner, "device", "cpu")).startswith("cuda")  # CUDA does not survive a fork
        if workers == 1 or on_gpu or "fork" not in multiprocessing.get_all_start_methods():
            return self._in_process(config, jobs, run_dir, ws, progress=progress, cycles_done=cycles_done)
        context = multiprocessing.get_context("fork")  # the workers share the loaded dataset and learner
        outcomes = {}
        with _progress_bar(config, jobs, run_dir, cycles_done, enabled=progress) as bar, \
                ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(ws,)) as pool:
            counter = _CycleCounter(run_dir, jobs)
            pending = {pool.submit(_worker_job, config, job, str(run_dir)): job for job in jobs}
            try:
                while pending:
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = pending.pop(future)
                        records, job_seconds, started = _worker_result(future, job)
                        outcomes[job] = JobOutcome(job, records, job_seconds, started, time.time())
                    bar.update(cycles_done + counter.count() - bar.n)
            finally:
                for future in pending:  # an error or Ctrl-C: the job files keep what finished
                    future.cancel()
        return [outcomes[job] for job in jobs]

    def _in_process(self, config: ExperimentConfig, jobs: list[Job], run_dir, ws: Workspace, *, progress: bool,
                    cycles_done: int) -> list[JobOutcome]:
        outcomes = []
        with _progress_bar(config, jobs, run_dir, cycles_done, enabled=progress) as bar:
            for job in jobs:
                bar.set_postfix_str(f"{job.method} trial {job.trial}")
                started, t0 = time.time(), time.perf_counter()
                records = run_job(config, job, run_dir, ws, on_cycle=lambda _: bar.update(1))
                outcomes.append(JobOutcome(job, records, time.perf_counter() - t0, started, time.time()))
        return outcomes


def _init_worker(ws: Workspace) -> None:
    """In a local worker process: die with the parent (Linux), keep the workspace for the jobs."""
    _die_with_parent()
    _WORKER["ws"] = ws


_WORKER: dict = {}  # in a local worker process only: the workspace it was forked with


def _worker_job(config: ExperimentConfig, job: Job, run_dir: str):
    """(records, job seconds, start time) of one job, in a local worker process."""
    started, t0 = time.time(), time.perf_counter()
    records = run_job(config, job, run_dir, _WORKER["ws"])
    return records, time.perf_counter() - t0, started


def _worker_result(future, job: Job):
    """The job's result; a worker that died is a JobFailed (its finished cycles are checkpointed)."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise JobFailed(f"job trial {job.trial} {job.method!r}: its worker process died; the finished cycles are "
                        "checkpointed, continue with --resume RUN_DIR") from None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent ends (prctl PR_SET_PDEATHSIG); elsewhere nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent ended before the request took effect
        os._exit(1)


@dataclass(frozen=True)
class RayRunner:
    """Each job a Ray task; without `address` a local Ray instance is started and stopped around the run.

    If Ray is already initialised in this process (a notebook, a test), that
    instance is used and left running.
    """

    address: str | None = None        # "HOST:PORT" or "auto" of an existing cluster (None: start a local instance)
    cpus_per_job: float | None = None  # CPUs reserved per task (None: config.threads, the threads torch uses)
    gpus_per_job: float | None = None  # GPUs per task, fractions allowed (None: 1 with device "cuda", else 0)
    max_retries: int = 3              # task restarts after its worker dies

    name = "ray"

    def __post_init__(self):
        if self.cpus_per_job is not None and not (isinstance(self.cpus_per_job, (int, float)) and self.cpus_per_job > 0):
            raise InputError(f"cpus_per_job={self.cpus_per_job!r} must be a positive number")
        if self.gpus_per_job is not None and not (isinstance(self.gpus_per_job, (int, float)) and self.gpus_per_job >= 0):
            raise InputError(f"gpus_per_job={self.gpus_per_job!r} must be a number >= 0 (fractions share a GPU)")

    def run(self, config: ExperimentConfig, jobs: list[Job], run_dir, ws: Workspace, *, progress: bool,
            cycles_done: int = 0) -> list[JobOutcome]:
        """Run `jobs` as tasks; `ws` is not shipped (each worker loads its own, see `_worker_workspace`)."""
        ray = import_ray()
        gpus = self.gpus_per_job if self.gpus_per_job is not None else (1 if config.device == "cuda" else 0)
        cpus = self.cpus_per_job if self.cpus_per_job is not None else config.threads
        started_here, guard = _connect(ray, self.address)
        try:
            task = ray.remote(_ray_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=self.max_retries)
            pending = {task.remote(config, job, str(run_dir)): job for job in jobs}
            done_by_job = {}
            with _progress_bar(config, jobs, run_dir, cycles_done, enabled=progress) as bar:
                counter = _CycleCounter(run_dir, jobs)
                try:
                    while pending:
                        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                        for ref in ready:
                            job = pending.pop(ref)
                            records, job_seconds, started = _result(ray, ref, job)
                            done_by_job[job] = JobOutcome(job, records, job_seconds, started, time.time())
                        bar.update(cycles_done + counter.count() - bar.n)
                finally:
                    for ref in pending:  # an error or Ctrl-C: the job files keep what finished
                        ray.cancel(ref, force=True)
            return [done_by_job[job] for job in jobs]
        finally:
            if started_here:
                ray.shutdown()
            if guard is not None:
                guard.close()


def import_ray():
    """The ray module, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise InputError("--backend ray needs Ray, which is not installed: pip install 'seqgcn[ray]'") from None
    return ray


def _connect(ray, address: str | None) -> tuple[bool, ray_cleanup.Guard | None]:
    """Join `address` or start a small local instance: (whether this call did it, the guard of a local instance).

    The run shuts down what this call started, and closes the guard that ends a
    local instance with this process if it is killed. First, the processes a
    killed run's local instance left are stopped.
    """
    if ray.is_initialized():
        return False, None
    stopped = ray_cleanup.stop_stale()
    if stopped:
        _log.warning("stopped %d process(es) left by the local Ray instance of a killed run (pids %s)",
                     len(stopped), " ".join(str(p.pid) for p in stopped))
    quiet = {"log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
    if address is not None:
        ray.init(address=address, **quiet)
        return True, None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local instance sends nothing anywhere
    before = ray_cleanup.descendants({os.getpid()}) if ray_cleanup.supported() else set()
    # jobs return only records: a small object store is enough and starts fast
    ray.init(include_dashboard=False, object_store_memory=256 * 2**20, **quiet)
    return True, ray_cleanup.guard(before)  # None when ray.init joined a cluster (RAY_ADDRESS, `ray start`)


def _result(ray, ref, job: Job):
    """The task's return value; its error re-raised as the job's own (a ValueError stays a one-line user error)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, Exception) else JobFailed(f"job trial {job.trial} {job.method!r} failed: {exc}")) from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise JobFailed(f"job trial {job.trial} {job.method!r}: its worker died after every retry ({type(exc).__name__}); "
                        "the finished cycles are checkpointed, continue with --resume RUN_DIR") from None


def _ray_job(config: ExperimentConfig, job: Job, run_dir: str):
    """The Ray task: (records, job seconds, start time) of one job, on this worker's cached dataset.

    `run_job` gives torch ``config.threads`` threads, as in the local runner, whatever CPUs Ray reserved.
    """
    started = time.time()
    ws = _worker_workspace(config)
    t0 = time.perf_counter()
    records = run_job(config, job, run_dir, ws)
    return records, time.perf_counter() - t0, started


@functools.lru_cache(maxsize=1)
def _worker_workspace(config: ExperimentConfig) -> Workspace:
    """The dataset and learner of `config`, loaded once per worker process (the jobs of a run share its config)."""
    return load_workspace(config)


class _CycleCounter:
    """Cycles checkpointed so far over the job files, re-reading a file only when it changed (progress on Ray)."""

    def __init__(self, run_dir, jobs: list[Job]):
        self.paths = [job_path(run_dir, job) for job in jobs]
        self.seen: dict = {}  # path -> (mtime_ns, n_records)

    def count(self) -> int:
        total = 0
        for path in self.paths:
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                continue  # no cycle finished yet
            last = self.seen.get(path)
            if last is None or last[0] != mtime:
                try:
                    last = (mtime, len(json.loads(path.read_text())["records"]))
                except (OSError, ValueError, KeyError, TypeError):
                    last = last or (mtime, 0)
                self.seen[path] = last
            total += last[1]
        return total


def _progress_bar(config: ExperimentConfig, jobs: list[Job], run_dir, cycles_done: int, *, enabled: bool):
    """One tqdm bar over every cycle of the run, starting at the cycles already checkpointed (TTY only)."""
    per_job = 1 if config.upper_bound else config.cycles
    initial = cycles_done + _CycleCounter(run_dir, jobs).count()
    # disable=None: tqdm shows the bar on a TTY only; a log file gets no carriage returns
    return tqdm(total=cycles_done + len(jobs) * per_job, initial=initial, desc="cycles", unit="cycle",
                disable=None if enabled else True, dynamic_ncols=True)
