"""One (trial, method) job: its seeds, its cycles, its own checkpoint file.

A job is a function of (config, trial, method, its checkpoint): `run_job` runs the
cycles its checkpoint has not recorded yet and returns all of the job's per-cycle
records. Jobs share nothing but the read-only `Workspace` (dataset, learner), so
they run in any order, in parallel, and resume independently.

Seeds (STYLE §5). Every random draw has its own seed, derived from the config's
`seed` by `derive_seed(seed, purpose, *keys)` (a `numpy.random.SeedSequence`
keyed by the purpose and the indices), never from a carried RNG state:

=============  ==========================  =======================================
purpose        keys                        used for
=============  ==========================  =======================================
"seed_set"     trial                       D_0, shared by every method of a trial
"learner"      trial, cycle                learner init + shuffling (shared by the
                                           methods: cycle 0 is the same for all,
                                           later cycles differ only by the data)
"candidates"   trial, cycle                the random candidate subset D_S (shared by the
                                           methods: common random numbers, so method
                                           differences are less noisy)
"sampler"      trial, method, cycle        the sampler's own randomness (GCN init…)
"upper_bound"  trial                       the upper-bound learner (whole training set)
=============  ==========================  =======================================

So a cycle is a pure function of (config, pool state before it): a job resumed
from its checkpoint, on any worker, ends with the same metrics and selections as
an uninterrupted one (given a deterministic learner on the same device).

Checkpoint: ``RUN_DIR/jobs/trial<t>-<slug>-<hash>.json`` (see `job_path`), rewritten
atomically after every cycle::

    {"format": 2, "trial": t, "method": m, "done": bool, "next_cycle": c,
     "records": [...], "state": pool state and oracle answers (None when done),
     "attempts": [{"pid", "host", "first_cycle"}, ...]}

In upper-bound mode a trial is one job, method "UpperBound", of one cycle.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from seqgcn.checks import InputError
from seqgcn.data.combine import combine_pools
from seqgcn.data.registry import load_dataset
from seqgcn.experiment.config import ExperimentConfig, one_line
from seqgcn.experiment.rundir import job_path as _job_file
from seqgcn.experiment.rundir import save_view
from seqgcn.io import write_atomic
from seqgcn.learners import build_learner
from seqgcn.learners.encoder import load_encoder
from seqgcn.learners.head import HeadConfig, HeadLearner
from seqgcn.loop import ActiveLearner, GroundTruthOracle, train_and_evaluate
from seqgcn.pool import PoolState
from seqgcn.samplers import build_sampler, methods_for_task, sampler_class

JOB_FORMAT = 2
UPPER_BOUND = "UpperBound"  # the `method` of upper-bound jobs and records


class Job(NamedTuple):
    trial: int
    method: str  # an opaque sampler name, e.g. "CoreGCN" or "UncertainGCN(layers=3)"


def jobs_of(config: ExperimentConfig) -> list[Job]:
    """Every job of the run, trial-major in the config's method order (the order of the results files)."""
    methods = (UPPER_BOUND,) if config.upper_bound else config.methods
    return [Job(t, m) for t in range(config.trials) for m in methods]


def derive_seed(base: int, purpose: str, *keys) -> int:
    """A 32-bit seed that depends only on (base, purpose, keys); strings are keyed by their CRC-32."""
    words = [zlib.crc32(str(k).encode()) if isinstance(k, str) else int(k) for k in (purpose, *keys)]
    return int(np.random.SeedSequence(int(base), spawn_key=words).generate_state(1, np.uint32)[0])


# --------------------------------------------------------------------------- what jobs share
@dataclass
class Workspace:
    """What every job of a run reads: the dataset, where seeds and candidates may come from, a learner."""

    dataset: object
    seed_among: np.ndarray | None  # global rows the seed set may come from (None: all)
    pool_among: np.ndarray | None  # global rows candidates may come from (None: all)
    learner: object                # re-initialised by every cycle, so one per process is enough


def load_workspace(config: ExperimentConfig, *, dataset=None, learner_factory=None, seed_among=None,
                   pool_among=None) -> Workspace:
    """Load `config.dataset` (joined with `config.pool_dataset` when set) unless `dataset` is given; build the learner."""
    if dataset is None:
        if config.pool_dataset is not None and (seed_among is not None or pool_among is not None):
            raise InputError("give either config.pool_dataset or seed_among/pool_among, not both")
        dataset = load_dataset(config.dataset, data_dir=config.data_dir)  # unknown name -> ValueError listing the known ones
        if config.pool_dataset is not None:
            pool = load_dataset(config.pool_dataset, data_dir=config.pool_data_dir)
            combined = combine_pools(dataset, pool)  # mismatch -> ValueError
            dataset, seed_among, pool_among = combined.dataset, combined.seed_among, combined.pool_among
    if learner_factory is None:
        learner_factory = build_learner if config.encoder is None else _head_factory(config)
    learner = learner_factory(dataset, config.learner_config(dataset.task))  # checks the learner settings
    return Workspace(dataset, seed_among, pool_among, learner)


def _head_factory(config: ExperimentConfig):
    """With ``config.encoder``: load it (one line on a bad file), embed the dataset once, a head on the embeddings."""
    encoder = load_encoder(config.encoder, input_size=config.encoder_input_size, mean=config.encoder_mean,
                           channel_order=config.encoder_channel_order, std=config.encoder_std, threads=config.threads)
    head = HeadConfig(hidden=config.head_hidden, device=config.device)

    def factory(dataset, learner_config):
        previous = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            return HeadLearner.from_dataset(dataset, encoder, head, progress=sys.stderr.isatty())  # once per process
        finally:
            torch.set_num_threads(previous)

    return factory


def check_pool(config: ExperimentConfig, ws: Workspace) -> None:
    """Every method can pick for the dataset's task; enough items for the seed set and for every selection
    (a synthetic pool counts only its own items)."""
    for method in config.methods:
        kind = sampler_class(method) if method != UPPER_BOUND else None
        if kind is not None and ws.dataset.task not in kind.tasks:
            raise InputError(f"{kind.name} needs class probabilities, so it cannot pick for {config.dataset} "
                             f"({ws.dataset.task}); methods for it: {', '.join(methods_for_task(ws.dataset.task))}")
    n_train, seed_among, pool_among = ws.dataset.n_train, ws.seed_among, ws.pool_among
    seed_pool = n_train if seed_among is None else len(np.unique(seed_among))
    if config.seed_size > seed_pool:
        where = f"{config.dataset} pool" if config.pool_dataset is None else f"real {config.dataset} training set"
        raise InputError(f"seed_size={config.seed_size} exceeds the {seed_pool} items of the {where}; lower --seed-size")
    to_pick = config.budget * (config.cycles - 1)
    if seed_among is None and pool_among is None:
        needed, have = config.seed_size + to_pick, n_train
        what = f"seed_size + budget × (cycles − 1) = {config.seed_size} + {config.budget} × {config.cycles - 1} = {needed}"
    else:
        pool = np.arange(n_train) if pool_among is None else np.unique(pool_among)
        seeds = np.arange(n_train) if seed_among is None else np.unique(seed_among)
        overlap = np.intersect1d(pool, seeds).size
        needed, have = to_pick, pool.size - min(overlap, config.seed_size)
        what = f"budget × (cycles − 1) = {config.budget} × {config.cycles - 1} = {needed}"
    if needed > have:
        pool_name = config.pool_dataset or config.dataset
        raise InputError(f"{what} exceeds the {have} items of the {pool_name} pool; lower --budget or --cycles")


def seed_set(config: ExperimentConfig, ws: Workspace, trial: int) -> np.ndarray:
    """The seed set D_0 of `trial`: on a fresh pool the draw depends only on (seed, trial)."""
    rng = np.random.default_rng(derive_seed(config.seed, "seed_set", trial))
    return PoolState(ws.dataset.n_train).draw_seed(config.seed_size, rng, among=ws.seed_among)


# --------------------------------------------------------------------------- the checkpoint file
def job_path(run_dir, job: Job) -> Path:
    """The checkpoint file of `job` (named by `seqgcn.experiment.rundir.job_path`)."""
    return _job_file(run_dir, job.trial, job.method)


def read_job(run_dir, job: Job, config: ExperimentConfig) -> dict | None:
    """The checkpoint of `job`, or None when it has not finished a cycle yet.

    A file that is not JSON, of another format or of the wrong shape (`check_job`)
    is a one-line ValueError naming it, before any of it is used.
    """
    path = job_path(run_dir, job)
    if not path.exists():
        return None
    try:
        ckpt = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read job checkpoint {str(path)!r}: {one_line(exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != JOB_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"job checkpoint {str(path)!r} has format {found!r}; this seqgcn reads format {JOB_FORMAT}")
    problem = check_job(ckpt, job, config)
    if problem:
        raise damaged(path, problem)
    return ckpt


def check_job(ckpt: dict, job: Job, config: ExperimentConfig) -> str | None:
    """What is wrong with the shape of a job checkpoint (None: nothing).

    records: one dict per finished cycle of this (trial, method), with the summary's
    keys; next_cycle: how many there are; done: whether that is every cycle; state:
    the pool state to go on from (a dict) while not done; attempts: a list.
    """
    if (ckpt.get("trial"), ckpt.get("method")) != tuple(job):
        return f"it belongs to trial {ckpt.get('trial')!r} {ckpt.get('method')!r}, not trial {job.trial} {job.method!r}"
    records, next_cycle, done = ckpt.get("records"), ckpt.get("next_cycle"), ckpt.get("done")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "'records' is not a list of records"
    numbers_ok = all(_is_int(r.get(k)) for r in records for k in ("trial", "cycle", "n_labelled"))
    if not numbers_ok or not all(isinstance(r.get("metric"), (int, float)) and (r["trial"], r.get("method")) == tuple(job)
                                 for r in records):
        return "a record lacks its method, trial, cycle, n_labelled or metric"
    n_cycles = 1 if config.upper_bound else config.cycles
    if not _is_int(next_cycle) or not 1 <= next_cycle <= n_cycles or not isinstance(done, bool):
        return f"'next_cycle' is {next_cycle!r} (done: {done!r}), not a cycle in [1, {n_cycles}]"
    if len(records) != next_cycle or [r["cycle"] for r in records] != list(range(next_cycle)):
        return f"it holds {len(records)} records where 'next_cycle' says {next_cycle} cycles are done"
    if done != (next_cycle == n_cycles):
        return f"'done' is {done} after {next_cycle} of {n_cycles} cycles"
    if not done and not isinstance(ckpt.get("state"), dict):
        return "'state' is not the pool state of the job in progress"
    if not isinstance(ckpt.get("attempts"), list):
        return "'attempts' is not a list"
    return None


def damaged(path: Path, problem: str) -> InputError:
    return InputError(f"job checkpoint {str(path)!r} is damaged: {problem}; delete it to rerun that job")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def write_job(run_dir, job: Job, ckpt: dict) -> None:
    path = job_path(run_dir, job)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, json.dumps({"format": JOB_FORMAT, "trial": job.trial, "method": job.method, **ckpt},
                                  indent=1, default=json_default) + "\n")


def json_default(obj):
    """numpy scalars and arrays, and paths, for json.dumps."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):  # tuples never get here: json writes them as lists
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a results file")


# --------------------------------------------------------------------------- one job
def run_job(config: ExperimentConfig, job: Job, run_dir, ws: Workspace, *, on_cycle=None) -> list[dict]:
    """Run the cycles of `job` that its checkpoint has not recorded; return all of its records.

    `on_cycle(job)` is called after each checkpointed cycle (progress). A job
    found done returns its stored records without any work. torch uses
    ``config.threads`` CPU threads meanwhile, whatever process or backend runs the
    job: float sums depend on the thread count, so it is part of the config.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_job(config, job, run_dir, ws, on_cycle=on_cycle)
    finally:
        torch.set_num_threads(previous)


def _run_job(config: ExperimentConfig, job: Job, run_dir, ws: Workspace, *, on_cycle=None) -> list[dict]:
    ckpt = read_job(run_dir, job, config) or {"done": False, "next_cycle": 0, "records": [], "state": None,
                                                      "attempts": []}
    if ckpt["done"]:
        return ckpt["records"]
    attempts = ckpt["attempts"] + [{"pid": os.getpid(), "host": socket.gethostname(), "first_cycle": ckpt["next_cycle"]}]
    records = list(ckpt["records"])
    if job.method == UPPER_BOUND:
        cycles = [_upper_bound_cycle(config, job, ws)]
    else:
        cycles = _active_learning_cycles(config, job, run_dir, ws, ckpt)
    for record, state in cycles:
        records.append(record)
        done = state is None
        write_job(run_dir, job, {"done": done, "next_cycle": record["cycle"] + 1, "records": records, "state": state,
                                 "attempts": attempts})
        if on_cycle is not None:
            on_cycle(job)
    return records


def _active_learning_cycles(config: ExperimentConfig, job: Job, run_dir, ws: Workspace, ckpt: dict):
    """Yield (record, state to resume from; None after the last cycle) for each cycle left of `job`.

    With ``config.save_features`` each selecting cycle also saves what the sampler saw
    (`seqgcn.report.tsne.save_view`, under the run directory) before its record is yielded.
    """
    trial, method = job
    al = ActiveLearner(ws.learner, None, GroundTruthOracle(ws.dataset), PoolState(ws.dataset.n_train),
                       budget=config.budget, subset=config.subset, pool_among=ws.pool_among, keep_view=config.save_features)
    if ckpt["state"] is not None:
        try:
            al.load_state_dict(ckpt["state"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise damaged(job_path(run_dir, job), f"its pool state cannot be restored ({one_line(exc)})") from None
    else:
        rng = np.random.default_rng(derive_seed(config.seed, "seed_set", trial))
        al.label_seed(config.seed_size, rng, seed_among=ws.seed_among)
    for cycle in range(ckpt["next_cycle"], config.cycles):
        seeds = {"learner_seed": derive_seed(config.seed, "learner", trial, cycle),
                 "candidates_seed": derive_seed(config.seed, "candidates", trial, cycle),
                 "sampler_seed": derive_seed(config.seed, "sampler", trial, method, cycle)}
        al.sampler = build_sampler(method, seed=seeds["sampler_seed"], device=config.device,
                                   options=config.sampler_options(), among=config.methods)
        last = cycle == config.cycles - 1
        rec = al.step(cycle, learner_seed=seeds["learner_seed"], rng=np.random.default_rng(seeds["candidates_seed"]),
                      select=not last)
        if al.last_view is not None and rec["selected"]:  # --save-features
            save_view(run_dir, al.last_view, trial=trial, method=method, cycle=cycle)
        yield {"method": method, "trial": trial, **rec, **seeds}, None if last else al.state_dict()


def _upper_bound_cycle(config: ExperimentConfig, job: Job, ws: Workspace):
    """(record, None): the learner trained on every training row (real + pool rows with a synthetic pool)."""
    everything = np.arange(ws.dataset.n_train)  # (n_train,) global rows
    learner_seed = derive_seed(config.seed, "upper_bound", job.trial)
    trained = train_and_evaluate(ws.learner, everything, GroundTruthOracle(ws.dataset).label(everything), seed=learner_seed)
    return {"method": UPPER_BOUND, "trial": job.trial, "cycle": 0, **trained, "learner_seed": learner_seed, "selected": []}, None
