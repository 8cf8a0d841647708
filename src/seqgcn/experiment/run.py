"""Trials × methods × cycles (`seqgcn run`): config → jobs → runner → results.

`run_experiment` checks the config, loads the data, prepares the run directory
(`seqgcn.experiment.rundir`), runs every unfinished (trial, method) job on a
backend (`seqgcn.experiment.runners`) and assembles the results files from the
job files (`seqgcn.experiment.results`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from seqgcn.checks import InputError
from seqgcn.experiment.config import ExperimentConfig, check_config
from seqgcn.experiment.jobs import check_pool, jobs_of, load_workspace, read_job, seed_set
from seqgcn.experiment.results import assemble_records, provenance, write_json, write_results
from seqgcn.experiment.rundir import (CONFIG, FEATURES_DIR, JOBS_DIR, FreshStart, check_resume_config, check_writable,
                                     claim_run_dir, new_run_dir)
from seqgcn.experiment.runners import LocalRunner


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
    training set instead (`seqgcn.experiment.jobs`).

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
        file, and when another run holds the run directory's lock (`seqgcn.experiment.rundir`).
    """
    runner = LocalRunner() if runner is None else runner
    check_config(config)
    if runner.name != "local" and (dataset is not None or learner_factory is not None):
        raise InputError("dataset= and learner_factory= work with the local runner only: "
                         "Ray workers load the dataset the config names")
    if resume:
        if out_dir is None:
            raise InputError("resume needs the run directory to continue")
        check_resume_config(out_dir, config)
    ws = load_workspace(config, dataset=dataset, learner_factory=learner_factory, seed_among=seed_among,
                        pool_among=pool_among)
    if resume and getattr(ws.learner, "encoder", None) is not None:
        _check_resume_encoder(out_dir, ws.learner.encoder)
    if not config.upper_bound:
        check_pool(config, ws)
    run_dir = Path(out_dir) if out_dir is not None else new_run_dir(config.dataset + ("-upper-bound" if config.upper_bound else ""))
    fresh = None if resume else FreshStart(run_dir)
    with claim_run_dir(run_dir, config, resume=resume):
        if resume:  # read-only or full storage: one line now, not after training a cycle
            for folder in (JOBS_DIR, FEATURES_DIR) if config.save_features else (JOBS_DIR,):
                where = run_dir / folder if (run_dir / folder).is_dir() else run_dir
                check_writable(where / "probe")
        try:
            return _run_jobs(config, run_dir, ws, runner, resume=resume, progress=progress)
        except BaseException:
            if fresh is not None:
                fresh.undo()
            raise


def _check_resume_encoder(run_dir, encoder) -> None:
    """The config names the encoder by path; a resumed run also needs the same file (its SHA-256 in config.json)."""
    try:
        stored = json.loads((Path(run_dir) / CONFIG).read_text()).get("encoder", {}).get("sha256")
    except (OSError, ValueError, AttributeError):
        stored = None
    if stored is not None and stored != encoder.sha256:
        raise InputError(f"resume dir {str(run_dir)!r} was run with another encoder file: SHA-256 {stored[:12]}..., "
                         f"{str(encoder.path)!r} is now {encoder.sha256[:12]}...; restore that file or start a new run")


def _run_jobs(config: ExperimentConfig, run_dir: Path, ws, runner, *, resume: bool, progress: bool) -> ExperimentResult:
    """In the claimed run directory: config.json, every unfinished job on `runner`, then the results files."""
    meta = provenance(config, ws.dataset, ws.learner, config.learner_config(ws.dataset.task))
    if not resume:  # a resumed run keeps its config.json (check_resume_config required it)
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
