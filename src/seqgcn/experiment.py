"""Trials × methods × cycles (`seqgcn run`): config → jobs → runner → results.

`run_experiment` checks the config, loads the data, prepares the run directory,
runs every unfinished (trial, method) job on a backend and assembles the results
files from the job files:

- `seqgcn.config`: the settings (`ExperimentConfig`) and their checks;
- `seqgcn.jobs`: one job, its seeds and its checkpoint file;
- `seqgcn.runner`: the backends (`LocalRunner`, `RayRunner`);
- `seqgcn.results`: the files of a finished run and `seqgcn report`;
- `seqgcn.rundir`: the run directory, its lock and what counts as an earlier run.

Run directory: ``.seqgcn.lock`` (locked by this process while the run works in
the directory: one run per directory), ``config.json`` (written first),
``jobs/`` (one checkpoint per job, rewritten atomically after every cycle),
``features/`` (with ``save_features``), and at the end ``results.json``,
``results.csv``, ``summary.txt`` and ``learning_curve.png`` (see `seqgcn.results`).
A directory of seqgcn 0.1 (one ``checkpoint.json``) is converted to job files
when resumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from seqgcn.config import CONFIG, ExperimentConfig, check_config, check_resume_config
from seqgcn.jobs import UPPER_BOUND, check_pool, derive_seed, jobs_of, load_workspace, read_job, seed_set
from seqgcn.runner import LocalRunner, RayRunner
from seqgcn.results import assemble_records, provenance, write_json, write_results
from seqgcn.rundir import FreshStart, claim_run_dir, migrate_old_checkpoint, new_run_dir

__all__ = ["ExperimentConfig", "ExperimentResult", "LocalRunner", "RayRunner", "UPPER_BOUND", "derive_seed",
           "run_experiment"]


@dataclass
class ExperimentResult:
    """What `run_experiment` returns: the records, the summary text and where the files are."""

    run_dir: Path
    records: list
    summary: dict
    table: str                  # summary.txt: the mean ± std table and AUBC lines (upper bound: its own table)
    metric_name: str = "metric"
    higher_is_better: bool = True
    paths: dict = field(default_factory=dict)
    upper_bound: bool = False   # records are one per trial on the whole training set; `summary` has no AUBC
    outcomes: list = field(default_factory=list)  # runner.JobOutcome of each job run now (timings)


def run_experiment(config: ExperimentConfig, out_dir=None, *, resume: bool = False, progress: bool = True,
                   dataset=None, learner_factory=None, seed_among=None, pool_among=None, runner=None) -> ExperimentResult:
    """Run every (trial, method) job for `config.cycles` cycles; write the results files.

    With ``config.upper_bound``: one job per trial trains the learner on the whole
    training set instead (`seqgcn.jobs`).

    Parameters
    ----------
    config : ExperimentConfig
    out_dir : path, optional
        Run directory; default a new ``runs/<timestamp>-<dataset>``. With `resume`, the
        directory of an interrupted run (its stored config must equal `config`).
    resume : bool
        Continue the unfinished jobs from their checkpoints (finished jobs are not rerun).
    progress : bool
        Show a tqdm bar over all cycles of all jobs (only on a TTY).
    dataset : Dataset, optional
        Use this dataset instead of loading ``config.dataset`` (and ``config.pool_dataset``)
        (notebooks, tests); `seed_among` and `pool_among` then say where the seed set
        and the candidates come from. Local runner only.
    learner_factory : callable(dataset, LearnerConfig) -> Learner, optional
        Default: `seqgcn.learners.build_learner`. Local runner only.
    seed_among, pool_among : array of int, optional
        Global indices the seed set, resp. the candidates, may come from (e.g. a
        real seed set and a synthetic pool). Default: the whole training set, or
        the real and pool rows when ``config.pool_dataset`` is set.
    runner : LocalRunner or RayRunner, optional
        The backend (default `LocalRunner()`: in this process, job after job).

    Raises
    ------
    ValueError
        On a bad config or input (before anything is written), on a damaged job
        file, and when another run holds the run directory's lock (`seqgcn.rundir`).
    """
    runner = LocalRunner() if runner is None else runner
    check_config(config)
    if runner.name != "local" and (dataset is not None or learner_factory is not None):
        raise ValueError("dataset= and learner_factory= work with the local runner only: "
                         "Ray workers load the dataset the config names")
    if resume:
        if out_dir is None:
            raise ValueError("resume needs the run directory to continue")
        check_resume_config(out_dir, config)
    ws = load_workspace(config, dataset=dataset, learner_factory=learner_factory, seed_among=seed_among,
                        pool_among=pool_among)
    if not config.upper_bound:
        check_pool(config, ws)
    run_dir = Path(out_dir) if out_dir is not None else new_run_dir(config.dataset + ("-upper-bound" if config.upper_bound else ""))
    fresh = None if resume else FreshStart(run_dir)
    with claim_run_dir(run_dir, config, resume=resume):
        try:
            return _run_jobs(config, run_dir, ws, runner, resume=resume, progress=progress)
        except BaseException:
            if fresh is not None:
                fresh.undo()
            raise


def _run_jobs(config: ExperimentConfig, run_dir: Path, ws, runner, *, resume: bool, progress: bool) -> ExperimentResult:
    """In the claimed run directory: config.json, every unfinished job on `runner`, then the results files."""
    meta = provenance(config, ws.dataset, ws.learner, config.learner_config(ws.dataset.task))
    if resume:  # a resumed run keeps its config.json (check_resume_config required it)
        migrate_old_checkpoint(run_dir, config)
    else:
        write_json(run_dir / CONFIG, meta)

    jobs = jobs_of(config)
    stored = {job: read_job(run_dir, job, config) for job in jobs}  # a damaged file fails here, before any work
    todo = [job for job in jobs if not (stored[job] and stored[job]["done"])]
    cycles_done = sum(len(stored[job]["records"]) for job in jobs if job not in todo)
    start = time.perf_counter()
    outcomes = runner.run(config, todo, run_dir, ws, progress=progress, cycles_done=cycles_done)
    wall = time.perf_counter() - start

    records = assemble_records(run_dir, jobs, config)
    seed_sets = None if config.upper_bound else {str(t): seed_set(config, ws, t).tolist() for t in range(config.trials)}
    summary, text, paths = write_results(run_dir, {**meta, "backend": runner.name, "wall_seconds": wall}, records,
                                         seed_sets=seed_sets)
    return ExperimentResult(run_dir=run_dir, records=records, summary=summary, table=text, paths=paths,
                            metric_name=ws.learner.metric_name, higher_is_better=bool(ws.learner.higher_is_better),
                            upper_bound=config.upper_bound, outcomes=outcomes)
