"""The experiment phase (`seqgcn run`): trials × methods × cycles, one run directory.

    config.py     ExperimentConfig: the settings that decide the results, their checks, config files
    presets.py    the paper's protocols
    jobs.py       one (trial, method) job: its seeds, its cycles, its checkpoint
    runners.py    backends: local (worker processes) and Ray (one task per job)
    results.py    the run's files assembled from its jobs; finished runs read back
    rundir.py     the run directory: every file name, the lock, a failed start undone
    run.py        run_experiment: config → jobs → runner → results
"""

from seqgcn.experiment.config import ExperimentConfig
from seqgcn.experiment.jobs import UPPER_BOUND, derive_seed
from seqgcn.experiment.run import ExperimentResult, run_experiment
from seqgcn.experiment.runners import LocalRunner, RayRunner

__all__ = ["ExperimentConfig", "ExperimentResult", "LocalRunner", "RayRunner", "UPPER_BOUND", "derive_seed",
           "run_experiment"]
