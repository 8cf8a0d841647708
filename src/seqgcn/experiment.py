"""Trials × methods × cycles: seeds, checkpoints, results files (`seqgcn run`).

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
"candidates"   trial, method, cycle        the random candidate subset D_S
"sampler"      trial, method, cycle        the sampler's own randomness (GCN init…)
=============  ==========================  =======================================

So a cycle is a pure function of (config, pool state before it), and a run
resumed from a checkpoint ends with the same metrics and selections as an
uninterrupted one (given a deterministic learner on the same device). The
upper-bound mode (``upper_bound=True``) uses one more purpose, "upper_bound"
(trial), for the learner trained on the whole training set.

Where a setting comes from, lowest first: the `ExperimentConfig` defaults, the
preset named by ``preset`` (`seqgcn.presets`), the config file, the command line.
Learner settings left at None (`optimizer`, `lr`) are chosen by the dataset's
task in one place, `ExperimentConfig.learner_config`: SGD for classification,
Adam lr 1e-3 for regression (the paper's DeepPrior setting).

Synthetic pool (paper §4.3): with ``pool_dataset`` the training set is the real
`dataset` followed by the pool dataset (`seqgcn.data.combine.combine_pools`);
the seed set is drawn from the real rows, candidates only from the pool rows,
and the learner is tested on the real test set. An upper bound with a pool
trains on the whole joined (real + pool) training set.

Run directory: ``.seqgcn.lock`` (locked while a run works in the directory, so
that a second run into it, fresh or resumed, stops with an error naming the
holder), ``config.json`` (written first), ``checkpoint.json`` (rewritten
atomically after every cycle: completed records, the position, the pool state and
oracle answers of the (trial, method) in progress), and at the end
``results.json`` (provenance, the resolved learner settings, the records, the
summary and the seed set of every trial), ``results.csv``, ``summary.txt``,
``learning_curve.png`` (an upper-bound run has no learning curve: one record
per trial).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import platform
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqgcn._config_validation import validate_config
from seqgcn._io import write_atomic
from seqgcn._lock import LOCK_FILE, RunDirLock

CHECKPOINT = "checkpoint.json"
CONFIG = "config.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides the results of a run.

    Defaults: the embedded digits run of `seqgcn run` with no options (64 s on 2 CPU cores).
    `from_dict` fills in the fields of ``preset`` first; the other keys override them.
    """

    # -- protocol (SPEC §1, §6)
    preset: str | None = None            # a name from seqgcn.presets.available_presets(); its values sit under the others
    dataset: str = "digits"              # a name from seqgcn.data.registry.available_datasets()
    data_dir: str | None = None          # folder holding the dataset files (None: embedded / loader default)
    pool_dataset: str | None = None      # synthetic pool (paper §4.3): candidates come only from this dataset (None: from `dataset`)
    pool_data_dir: str | None = None     # folder holding the pool dataset's files
    upper_bound: bool = False            # train once per trial on the whole training set instead (no sampler, no cycles)
    methods: tuple = ("Random", "CoreSet", "UncertainGCN", "CoreGCN")  # sampler names, run in this order
    trials: int = 3                      # independent repetitions (each with its own seed set)
    cycles: int = 8                      # learner trainings per trial; selections per trial = cycles − 1
    seed_size: int = 40                  # items in the random seed set D_0
    budget: int = 40                     # items labelled per cycle
    subset: int | None = 500             # items in the random candidate subset D_S (None: the whole unlabelled pool)
    seed: int = 0                        # base seed; every other seed is derived from it
    device: str = "cpu"                  # "cpu" | "cuda" | "auto", for the learner and the sampler
    save_features: bool = False          # keep, per trial/method/cycle, what the sampler saw (features/*.npz; `seqgcn plot tsne`)
    # -- learner (→ LearnerConfig)
    arch: str = "auto"                   # learner network ("auto": by dataset)
    epochs: int = 30                     # learner epochs per cycle
    batch_size: int = 32                 # images per learner step
    optimizer: str | None = None         # "sgd" | "adam" (None: by task, see `learner_config`)
    lr: float | None = None              # initial learning rate (None: by optimizer, see `learner_config`)
    momentum: float = 0.9                # SGD momentum
    weight_decay: float = 5e-4           # L2 penalty
    milestones: tuple | None = None      # epochs after which lr is multiplied by `gamma` (None: at 80 % of `epochs`, the paper's 160/200)
    gamma: float = 0.1                   # lr decay factor
    augment: str = "auto"                # "auto" | "none" | "crop_flip" | "crop"
    # -- GCN samplers (None: the sampler's own default)
    gcn_epochs: int | None = None        # GCN full-batch training steps (reference code: 200)
    normalization: str | None = None    # adjacency: "column" (reference code) | "row" (paper eq. 4)
    margin_rule: str | None = None      # UncertainGCN: "closest" (reference code) | "farthest" (paper eq. 7)
    margin: float | None = None          # UncertainGCN s_margin, a score in (0, 1) (reference code: 0.1)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return _fields_as_json(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "config") -> "ExperimentConfig":
        """Build from a dict whose keys use underscores or dashes; unknown keys are an error.

        A ``preset`` key fills in that preset's fields first (`seqgcn.presets.preset`);
        every other key overrides them, so ``{"preset": "cifar10", "budget": 500}``
        is CIFAR-10's protocol with another budget.
        """
        from seqgcn.presets import preset

        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a mapping of option: value, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        clean = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ValueError(f"{source}: unknown key {key!r}; known keys: {', '.join(sorted(known))}")
            clean[name] = _coerce(name, value, known[name], source)
        name = clean.get("preset")
        if name is not None:
            if not isinstance(name, str):
                raise ValueError(f"{source}: preset={name!r} must be a preset name")
            clean = {**preset(name), **clean}  # unknown name -> ValueError listing the known presets
        config = cls(**clean)
        try:
            validate_config(config)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        return config

    def learner_config(self, task: str):
        """The LearnerConfig for a dataset of `task`; settings left at None are chosen here, and only here.

        ``optimizer=None``: "sgd" for classification, "adam" for regression (the
        paper's DeepPrior). ``lr=None``: 0.05 with SGD (the digits demo's; the
        paper's CIFAR schedule is 0.1, see the presets), 1e-3 with Adam (the paper's
        DeepPrior).
        """
        from seqgcn.learners.config import LearnerConfig

        optimizer = self.optimizer if self.optimizer is not None else OPTIMIZER_BY_TASK.get(task, "sgd")
        lr = self.lr if self.lr is not None else LR_BY_OPTIMIZER.get(optimizer, LR_BY_OPTIMIZER["sgd"])
        return LearnerConfig(
            arch=self.arch, epochs=self.epochs, batch_size=self.batch_size, optimizer=optimizer, lr=lr,
            momentum=self.momentum, weight_decay=self.weight_decay, milestones=self.resolved_milestones(),
            gamma=self.gamma, augment=self.augment, device=self.device, progress=False,
        )

    def resolved_milestones(self) -> tuple:
        """`milestones`, or (0.8 × epochs,) when None: the paper decays lr ÷10 after epoch 160 of 200."""
        return tuple(self.milestones) if self.milestones is not None else (max(1, round(0.8 * self.epochs)),)

    def sampler_params(self) -> dict:
        """The GCN options that are set (not None), under the samplers' parameter names."""
        params = {"epochs": self.gcn_epochs, "normalization": self.normalization, "margin_rule": self.margin_rule,
                  "margin": self.margin}
        return {k: v for k, v in params.items() if v is not None}


def _fields_as_json(obj) -> dict:
    """A dataclass's fields as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


# Learner settings by task, for the fields left at None (resolved in ExperimentConfig.learner_config only).
OPTIMIZER_BY_TASK = {"classification": "sgd", "regression": "adam"}  # regression: DeepPrior, paper §4.2
LR_BY_OPTIMIZER = {"sgd": 0.05, "adam": 1e-3}  # sgd: the digits demo's; adam: the paper's DeepPrior


def _coerce(name: str, value, spec: dataclasses.Field, source: str):
    """Config-file values as the field expects them: lists → tuples (for the list fields), numbers written as text → float.

    Anything else is left as it is for `validate_config` to judge (so a message shows the value as written).
    """
    if isinstance(value, list) and name in ("methods", "milestones"):
        return tuple(value)
    if name == "methods" and isinstance(value, str):
        return (value,)
    if name == "subset" and isinstance(value, str) and value.lower() in ("all", "none"):
        return None
    is_float = "float" in str(spec.type)  # the annotation, e.g. "float | None" (postponed annotations are text)
    if is_float and value is not None and not isinstance(value, bool) and isinstance(value, (int, str)):
        try:
            return float(value)  # YAML 1.1 reads `1e-3` as a string
        except ValueError:
            raise ValueError(f"{source}: {name}={value!r} must be a number") from None
    return value


@dataclass
class ExperimentResult:
    """What `run_experiment` returns: the records and where the files are."""

    run_dir: Path
    records: list
    summary: dict
    table: str
    metric_name: str = "metric"
    higher_is_better: bool = True
    paths: dict = field(default_factory=dict)
    upper_bound: bool = False  # records are one per trial on the whole training set; `summary` has no AUBC


# --------------------------------------------------------------------------- seeds
def derive_seed(base: int, purpose: str, *keys) -> int:
    """A 32-bit seed that depends only on (base, purpose, keys); strings are keyed by their CRC-32."""
    words = [zlib.crc32(str(k).encode()) if isinstance(k, str) else int(k) for k in (purpose, *keys)]
    return int(np.random.SeedSequence(int(base), spawn_key=words).generate_state(1, np.uint32)[0])


# --------------------------------------------------------------------------- validation
def _check_config(config: ExperimentConfig) -> None:
    """Every field's type and range (`validate_config`), then what needs several fields or the sampler registry."""
    from seqgcn.samplers import get_sampler

    validate_config(config)
    if config.subset is not None and config.subset < config.budget:
        raise ValueError(f"subset={config.subset!r} must be an integer >= budget={config.budget} (or None for the whole pool)")
    for method in config.methods:
        get_sampler(method)  # unknown name -> ValueError listing the known ones
    if config.pool_data_dir is not None and config.pool_dataset is None:
        raise ValueError(f"pool_data_dir={config.pool_data_dir!r} is set but pool_dataset is not; add --pool-dataset NAME")


def _check_pool(config: ExperimentConfig, n_train: int, seed_among, pool_among) -> None:
    """Enough items for the seed set and for every selection; a synthetic pool counts only its own items."""
    seed_pool = n_train if seed_among is None else len(np.unique(seed_among))
    if config.seed_size > seed_pool:
        where = f"{config.dataset} pool" if config.pool_dataset is None else f"real {config.dataset} training set"
        raise ValueError(f"seed_size={config.seed_size} exceeds the {seed_pool} items of the {where}; lower --seed-size")
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
        raise ValueError(f"{what} exceeds the {have} items of the {pool_name} pool; lower --budget or --cycles")


# --------------------------------------------------------------------------- files
def _write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):  # tuples never get here: json writes them as lists
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a results file")


def read_run_config(run_dir) -> ExperimentConfig:
    """The config stored in a run directory (for `--resume`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ValueError(f"resume dir {str(run_dir)!r} holds no {CONFIG}; is it a seqgcn run directory?")
    try:
        stored = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {_one_line(exc)}") from None
    return ExperimentConfig.from_dict(stored, source=str(path))


def _config_diff(stored: ExperimentConfig, requested: ExperimentConfig) -> str:
    a, b = stored.to_dict(), requested.to_dict()
    return ", ".join(f"{k}: stored {a[k]!r}, requested {b[k]!r}" for k in a if a[k] != b[k])


def _new_run_dir(dataset: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{dataset}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _claim_run_dir(path: Path, config: ExperimentConfig, *, resume: bool) -> RunDirLock:
    """Create the run directory (fresh run) and take its lock (`seqgcn._lock`): one run per directory.

    The checks for an earlier run in the directory happen under the lock, so two runs
    started together into one directory cannot both pass them.
    """
    if not resume:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
    try:
        lock = RunDirLock(path).acquire()
    except OSError as exc:
        raise ValueError(f"output dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
    if not resume:
        try:
            _check_no_earlier_run(path, config)
        except ValueError:
            lock.release()
            raise
    return lock


def _check_no_earlier_run(path: Path, config: ExperimentConfig) -> None:
    """A fresh run may not write into another run's directory.

    One exception: a directory with only ``config.json`` (a run that stopped before
    its first cycle: disk full, interrupted) is taken over by a rerun with the same
    config; with another config the error says how to go on.
    """
    if (path / CHECKPOINT).exists() or (path / "results.json").exists():
        raise ValueError(f"output dir {str(path)!r} already holds a run; continue it with --resume {path} or choose another --out")
    if not (path / CONFIG).exists():
        return
    try:
        stored = read_run_config(path)
    except ValueError:
        stored = None
    if stored != config:
        diff = f"with another config ({_config_diff(stored, config)})" if stored is not None else "with an unreadable config"
        raise ValueError(f"output dir {str(path)!r} holds {CONFIG} of a run that stopped before its first cycle, {diff}; "
                         f"rerun with that config, delete {str(path / CONFIG)!r}, or choose another --out")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- the experiment
def run_experiment(config: ExperimentConfig, out_dir=None, *, resume: bool = False, progress: bool = True,
                   dataset=None, learner_factory=None, seed_among=None, pool_among=None) -> ExperimentResult:
    """Run every method on every trial for `config.cycles` cycles; write the results files.

    With ``config.upper_bound``: train the learner once per trial on the whole
    training set instead (see `_run_upper_bound`).

    Parameters
    ----------
    config : ExperimentConfig
    out_dir : path, optional
        Run directory; default a new ``runs/<timestamp>-<dataset>``. With `resume`, the
        directory of an interrupted run (its stored config must equal `config`).
    resume : bool
        Continue from ``out_dir/checkpoint.json`` (from scratch if there is none yet).
    progress : bool
        Show a tqdm bar over all cycles (only on a TTY).
    dataset : Dataset, optional
        Use this dataset instead of loading ``config.dataset`` (and ``config.pool_dataset``)
        (notebooks, tests); `seed_among` and `pool_among` then say where the seed set
        and the candidates come from.
    learner_factory : callable(dataset, LearnerConfig) -> Learner, optional
        Default: `seqgcn.learners.build_learner`.
    seed_among, pool_among : array of int, optional
        Global indices the seed set, resp. the candidates, may come from (e.g. a
        real seed set and a synthetic pool). Default: the whole training set, or
        the real and pool rows when ``config.pool_dataset`` is set.

    Raises
    ------
    ValueError
        On a bad config or input (before anything is written), and when another run
        holds the run directory's lock (`seqgcn._lock.RunDirLock`: one run per directory).
    """
    _check_config(config)
    if resume:
        if out_dir is None:
            raise ValueError("resume needs the run directory to continue")
        stored = read_run_config(out_dir)
        if stored != config:
            raise ValueError(f"resume dir {str(out_dir)!r} was run with a different config ({_config_diff(stored, config)})")
    if dataset is None:
        if config.pool_dataset is not None and (seed_among is not None or pool_among is not None):
            raise ValueError("give either config.pool_dataset or seed_among/pool_among, not both")
        dataset, seed_among, pool_among = _load_data(config, seed_among, pool_among)
    if not config.upper_bound:
        _check_pool(config, dataset.n_train, seed_among, pool_among)
    if learner_factory is None:
        from seqgcn.learners import build_learner as learner_factory
    learner_config = config.learner_config(dataset.task)
    learner = learner_factory(dataset, learner_config)  # checks the learner settings
    run_dir = Path(out_dir) if out_dir is not None else _new_run_dir(config.dataset + ("-upper-bound" if config.upper_bound else ""))
    created, had_lock = not run_dir.exists(), (run_dir / LOCK_FILE).exists()
    with _claim_run_dir(run_dir, config, resume=resume):
        try:
            meta = _provenance(config, dataset, learner, learner_config)
            if not resume:  # a resumed run keeps its config.json (read_run_config required it)
                _write_json(run_dir / CONFIG, meta)
            if config.upper_bound:
                return _run_upper_bound(config, run_dir, meta, dataset, learner, resume=resume, progress=progress)
            return _run_active_learning(config, run_dir, meta, dataset, learner, seed_among, pool_among,
                                        resume=resume, progress=progress)
        except BaseException:
            if not resume:
                _undo_fresh_start(run_dir, created=created, had_lock=had_lock)
            raise


def _undo_fresh_start(run_dir: Path, *, created: bool, had_lock: bool) -> None:
    """A fresh run that fails before its first checkpoint leaves nothing: its config.json, lock file and directory go.

    Only what it made goes: an existing directory and an existing lock file stay.

    (A run killed outright cannot clean up; `_check_no_earlier_run` lets a rerun take such a directory over.)
    """
    if (run_dir / CHECKPOINT).exists():
        return
    try:
        (run_dir / CONFIG).unlink(missing_ok=True)
        if not had_lock:
            (run_dir / LOCK_FILE).unlink(missing_ok=True)
        if created:
            run_dir.rmdir()  # only if empty
    except OSError:
        pass


def _run_active_learning(config: ExperimentConfig, run_dir: Path, meta: dict, dataset, learner, seed_among, pool_among,
                         *, resume: bool, progress: bool) -> ExperimentResult:
    """Every (trial, method) for `config.cycles` cycles, a checkpoint after each cycle; then the results files."""
    from seqgcn.loop import ActiveLearner, GroundTruthOracle
    from seqgcn.plots import save_view
    from seqgcn.pool import PoolState
    from seqgcn.report import summarize, summary_table
    from seqgcn.samplers import get_sampler

    ckpt = _read_checkpoint(run_dir, config) if resume else None
    records = ckpt["records"] if ckpt else []
    next_job = ckpt["next_job"] if ckpt else 0
    active = ckpt["active"] if ckpt else None
    jobs = [(t, m) for t in range(config.trials) for m in config.methods]
    bar = _progress_bar(len(jobs) * config.cycles, len(records), enabled=progress)
    oracle = GroundTruthOracle(dataset)
    sampler_params = {m: _applicable(m, config) for m in config.methods}  # GCN options each sampler has
    try:
        for j in range(next_job, len(jobs)):
            trial, method = jobs[j]
            al = ActiveLearner(learner, None, oracle, PoolState(dataset.n_train), budget=config.budget,
                               subset=config.subset, pool_among=pool_among, keep_view=config.save_features)
            if active is not None and active["job"] == j:
                try:
                    al.load_state_dict(active["state"])
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    raise ValueError(f"checkpoint {str(run_dir / CHECKPOINT)!r} is damaged: its pool state cannot be "
                                     f"restored ({_one_line(exc)}); rerun into a new --out") from None
                first = active["next_cycle"]
            else:
                al.label_seed(config.seed_size, _seed_set_rng(config, trial), seed_among=seed_among)
                first = 0
            for cycle in range(first, config.cycles):
                seeds = {"learner_seed": derive_seed(config.seed, "learner", trial, cycle),
                         "candidates_seed": derive_seed(config.seed, "candidates", trial, method, cycle),
                         "sampler_seed": derive_seed(config.seed, "sampler", trial, method, cycle)}
                al.sampler = get_sampler(method, seed=seeds["sampler_seed"], device=config.device, **sampler_params[method])
                bar.set_postfix_str(f"{method} trial {trial} cycle {cycle}")
                rec = al.step(cycle, learner_seed=seeds["learner_seed"], rng=np.random.default_rng(seeds["candidates_seed"]),
                              select=cycle < config.cycles - 1)
                records.append({"method": method, "trial": trial, **rec, **seeds})
                if al.last_view is not None and rec["selected"]:  # --save-features
                    save_view(run_dir, al.last_view, trial=trial, method=method, cycle=cycle)
                last = cycle == config.cycles - 1
                _write_json(run_dir / CHECKPOINT, {
                    "format": FORMAT_VERSION, "records": records, "next_job": j + 1 if last else j,
                    "active": None if last else {"job": j, "trial": trial, "method": method, "next_cycle": cycle + 1, "state": al.state_dict()},
                })
                bar.update(1)
            active = None
    finally:
        bar.close()

    summary = summarize(records)
    scale, label = _display(learner.metric_name)
    table = summary_table(records, metric_name=label, higher_is_better=learner.higher_is_better, scale=scale)
    seed_sets = {str(t): _seed_set(config, dataset.n_train, t, seed_among).tolist() for t in range(config.trials)}
    paths = _write_results(run_dir, meta, records, summary, table, scale=scale, label=label, seed_sets=seed_sets)
    return ExperimentResult(run_dir=run_dir, records=records, summary=summary, table=table, paths=paths,
                            metric_name=learner.metric_name, higher_is_better=bool(learner.higher_is_better))


def _seed_set_rng(config: ExperimentConfig, trial: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(config.seed, "seed_set", trial))


def _seed_set(config: ExperimentConfig, n_train: int, trial: int, seed_among) -> np.ndarray:
    """The seed set D_0 of `trial`, replayed for the results: on a fresh pool the draw depends only on (seed, trial)."""
    from seqgcn.pool import PoolState

    return PoolState(n_train).draw_seed(config.seed_size, _seed_set_rng(config, trial), among=seed_among)


UPPER_BOUND = "UpperBound"  # the `method` of upper-bound records


def _run_upper_bound(config: ExperimentConfig, run_dir: Path, meta: dict, dataset, learner, *, resume: bool,
                     progress: bool) -> ExperimentResult:
    """Train the learner once per trial on every training row (real + pool rows with a synthetic pool); evaluate.

    The learner settings are the config's; the sampler, seed set, budget and cycles
    are not used. Trial `t` draws its weights from ``derive_seed(seed, "upper_bound", t)``.
    A checkpoint after every trial lets `resume` skip the finished ones.
    """
    from seqgcn.loop import GroundTruthOracle, train_and_evaluate
    from seqgcn.report import summarize_upper_bound, upper_bound_table

    ckpt = _read_checkpoint(run_dir, config) if resume else None
    records = ckpt["records"] if ckpt else []
    everything = np.arange(dataset.n_train)  # (n_train,) global rows
    targets = GroundTruthOracle(dataset).label(everything)
    bar = _progress_bar(config.trials, len(records), enabled=progress)
    try:
        for trial in range(len(records), config.trials):
            learner_seed = derive_seed(config.seed, "upper_bound", trial)
            bar.set_postfix_str(f"upper bound trial {trial}")
            trained = train_and_evaluate(learner, everything, targets, seed=learner_seed)
            records.append({"method": UPPER_BOUND, "trial": trial, "cycle": 0, **trained,
                            "learner_seed": learner_seed, "selected": []})
            _write_json(run_dir / CHECKPOINT, {"format": FORMAT_VERSION, "records": records, "next_job": trial + 1, "active": None})
            bar.update(1)
    finally:
        bar.close()

    summary = summarize_upper_bound(records)
    scale, label = _display(learner.metric_name)
    table = upper_bound_table(records, metric_name=label, higher_is_better=learner.higher_is_better, scale=scale)
    paths = _write_results(run_dir, meta, records, summary, table, scale=scale, label=label, upper_bound=True)
    return ExperimentResult(run_dir=run_dir, records=records, summary=summary, table=table, paths=paths,
                            metric_name=learner.metric_name, higher_is_better=bool(learner.higher_is_better),
                            upper_bound=True)


def _applicable(method: str, config: ExperimentConfig) -> dict:
    """The GCN options of `config` that the sampler `method` has."""
    from seqgcn.samplers import get_sampler

    probe = get_sampler(method)
    return {k: v for k, v in config.sampler_params().items() if hasattr(probe, k)}


def _load_data(config: ExperimentConfig, seed_among, pool_among):
    """(dataset, seed_among, pool_among): `config.dataset`, joined with `config.pool_dataset` when it is set."""
    from seqgcn.data.combine import combine_pools
    from seqgcn.data.registry import load_dataset

    real = load_dataset(config.dataset, data_dir=config.data_dir)  # unknown name -> ValueError listing the known ones
    if config.pool_dataset is None:
        return real, seed_among, pool_among
    combined = combine_pools(real, load_dataset(config.pool_dataset, data_dir=config.pool_data_dir))  # mismatch -> ValueError
    return combined.dataset, combined.seed_among, combined.pool_among


def _read_checkpoint(run_dir: Path, config: ExperimentConfig) -> dict | None:
    """The checkpoint of `run_dir` (None if there is none), checked against `config` (`_check_checkpoint`)."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        ckpt = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {_one_line(exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"checkpoint {str(path)!r} has format {found!r}; this seqgcn reads format {FORMAT_VERSION}")
    problem = _check_checkpoint(ckpt, config)
    if problem:
        raise ValueError(f"checkpoint {str(path)!r} is damaged: {problem}; rerun into a new --out")
    return ckpt


def _check_checkpoint(ckpt: dict, config: ExperimentConfig) -> str | None:
    """What is wrong with the shape of a checkpoint (None: nothing), before any of it is used.

    records: one dict per finished cycle (per trial in upper-bound mode) with the
    summary's keys; next_job: the (trial, method) pair to run next; active: None, or
    the pair in progress with its next cycle and its pool state (a dict).
    """
    records, next_job, active = ckpt.get("records"), ckpt.get("next_job"), ckpt.get("active", "missing")
    n_jobs = config.trials if config.upper_bound else config.trials * len(config.methods)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "'records' is not a list of records"
    numbers_ok = all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool) for r in records for k in ("trial", "cycle", "n_labelled"))
    if not numbers_ok or not all(isinstance(r.get("metric"), (int, float)) and r.get("method") in (*config.methods, UPPER_BOUND)
                                 for r in records):
        return "a record lacks its method, trial, cycle, n_labelled or metric"
    if not isinstance(next_job, int) or isinstance(next_job, bool) or not 0 <= next_job <= n_jobs:
        return f"'next_job' is {next_job!r}, not a job number in [0, {n_jobs}]"
    if active is None:
        done = next_job * (1 if config.upper_bound else config.cycles)
    elif (isinstance(active, dict) and active.get("job") == next_job and isinstance(active.get("state"), dict)
          and isinstance(active.get("next_cycle"), int) and 1 <= active["next_cycle"] < config.cycles):
        done = next_job * config.cycles + active["next_cycle"]
    else:
        return f"'active' is {_one_line(repr(active))[:80]}, not the job in progress"
    if len(records) != done:
        return f"it holds {len(records)} records where its position says {done} cycles are done"
    return None


def _progress_bar(total: int, initial: int, *, enabled: bool):
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar on a TTY only; a log file gets no carriage returns
    return tqdm(total=total, initial=initial, desc="cycles", unit="cycle", disable=None if enabled else True, dynamic_ncols=True)


def _display(metric_name: str) -> tuple[float, str]:
    """Accuracy is shown in percent; other metrics in their own unit."""
    return (100.0, f"{metric_name} (%)") if "accuracy" in metric_name.lower() else (1.0, metric_name)


def _provenance(config: ExperimentConfig, dataset, learner, learner_config) -> dict:
    import torch

    from seqgcn import __version__

    if config.upper_bound:
        seeds = {"base": config.seed,
                 "upper_bound": {str(t): derive_seed(config.seed, "upper_bound", t) for t in range(config.trials)},
                 "derivation": "derive_seed(base, purpose, *keys): SeedSequence(base, spawn_key=[crc32(purpose), keys...]); "
                               "purpose: upper_bound(trial), the learner's weights and shuffling"}
    else:
        seeds = {"base": config.seed,
                 "seed_set": {str(t): derive_seed(config.seed, "seed_set", t) for t in range(config.trials)},
                 "derivation": "derive_seed(base, purpose, *keys): SeedSequence(base, spawn_key=[crc32(purpose), keys...]); "
                               "purposes: seed_set(trial), learner(trial, cycle), candidates(trial, method, cycle), "
                               "sampler(trial, method, cycle); per-cycle seeds are in each record"}
    return {
        "config": config.to_dict(),
        "mode": "upper_bound" if config.upper_bound else "active_learning",
        "learner": _fields_as_json(learner_config),
        "seqgcn_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "dataset": {"name": dataset.name, "task": dataset.task, "n_train": dataset.n_train, "n_test": dataset.n_test,
                    "n_classes": dataset.n_classes, "info": dataset.info},
        "metric_name": learner.metric_name,
        "higher_is_better": bool(learner.higher_is_better),
        "seeds": seeds,
    }


CSV_COLUMNS = ["method", "trial", "cycle", "n_labelled", "metric", "train_seconds", "eval_seconds", "features_seconds",
               "select_seconds", "learner_seed", "candidates_seed", "sampler_seed"]
UPPER_BOUND_CSV_COLUMNS = ["method", "trial", "n_labelled", "metric", "train_seconds", "eval_seconds", "learner_seed"]


def _write_results(run_dir: Path, meta: dict, records: list, summary: dict, table: str, *, scale: float, label: str,
                   upper_bound: bool = False, seed_sets: dict | None = None) -> dict:
    """results.json (provenance, records, summary, and the seed set of every trial), results.csv, summary.txt, plot."""
    from seqgcn.report import direction_text, plot_learning_curves

    names = ("results.json", "results.csv", "summary.txt") + (() if upper_bound else ("learning_curve.png",))
    paths = {name: run_dir / name for name in names}
    _write_json(paths["results.json"], {**meta, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "records": records,
                                        "summary": summary, **({"seed_sets": seed_sets} if seed_sets is not None else {})})

    if upper_bound:
        base = UPPER_BOUND_CSV_COLUMNS
        extra = sorted({k for r in records for k in r} - set(base) - {"selected", "cycle"})
        columns = base + extra
    else:
        extra = sorted({k for r in records for k in r} - set(CSV_COLUMNS) - {"selected"})
        columns = CSV_COLUMNS + extra + ["selected"]
    lines = [f"# seqgcn {meta['seqgcn_version']}, torch {meta['torch_version']}, metric: {meta['metric_name']}",
             f"# config: {json.dumps(meta['config'])}",
             f"# learner (resolved): {json.dumps(meta['learner'])}",
             f"# dataset: {json.dumps(meta['dataset'], default=_json_default)}",
             f"# seeds: {json.dumps(meta['seeds'])}",
             ",".join(columns)]
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")  # quotes cells such as "UncertainGCN(adjacency=eye, layers=3)"
    for r in records:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(" ".join(map(str, v)) if c == "selected" else (repr(v) if isinstance(v, float) else str(v)))
        writer.writerow(cells)
    write_atomic(paths["results.csv"], "\n".join(lines) + "\n" + rows.getvalue())

    if upper_bound:
        write_atomic(paths["summary.txt"], f"{table}\n")
        return paths
    direction = direction_text(meta["higher_is_better"])
    aubc = "\n".join(f"AUBC {m}: {s['aubc_mean'] * scale:.3f} ± {s['aubc_std'] * scale:.3f} (trials: "
                     + ", ".join(f"{a * scale:.3f}" for a in s["aubc_per_trial"]) + ")" for m, s in summary.items())
    note = ("AUBC = trapezoid area under the mean-height learning curve over labelled items, divided by the x-range; "
            f"in the metric's unit, {direction}")
    write_atomic(paths["summary.txt"], f"{table}\n\n{aubc}\n{note}\n")
    png = io.BytesIO()  # drawn in memory, then written like every other file (atomic; storage errors in one place)
    plot_learning_curves(records, png, scale=scale, metric_name=f"{label}, {direction}",
                         title=f"{meta['dataset']['name']}: {label} vs labelled items")
    write_atomic(paths["learning_curve.png"], png.getvalue())
    return paths


# --------------------------------------------------------------------------- CLI
_CLI_FIELDS = ("preset", "dataset", "data_dir", "pool_dataset", "pool_data_dir", "upper_bound", "methods", "trials", "cycles",
               "seed_size", "budget", "subset", "arch", "epochs", "batch_size", "optimizer", "lr", "device", "seed",
               "save_features")


def _subset_arg(text: str):
    """An integer, or "all" (kept as text: None would read as "not given" in `config_from_args`; `from_dict` maps it)."""
    if text.lower() in ("all", "none"):
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `seqgcn run`; None = not given (the preset, the config file or the default decides)."""
    from seqgcn.presets import available_presets

    d = ExperimentConfig()
    sgd, adam = LR_BY_OPTIMIZER["sgd"], LR_BY_OPTIMIZER["adam"]
    proto = parser.add_argument_group("protocol (each default below can be changed by --preset or --config)")
    proto.add_argument("--preset", metavar="NAME", help=f"start from a paper protocol: {', '.join(available_presets())} "
                       "(settings of SPEC §6); --config and the other options override its values")
    proto.add_argument("--dataset", metavar="NAME", help=f"dataset name: digits, rotated_digits (regression), cifar10, cifar100, "
                       f"fashionmnist, svhn, icvl, folder (default {d.dataset}: embedded, no files needed)")
    proto.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files")
    proto.add_argument("--methods", nargs="+", metavar="M", help=f"samplers to compare; a name may carry options, e.g. "
                       f"\"UncertainGCN(adjacency=eye)\" (default: {' '.join(d.methods)})")
    proto.add_argument("--trials", type=int, metavar="N", help=f"independent trials, each with its own seed set (default {d.trials})")
    proto.add_argument("--cycles", type=int, metavar="N", help=f"learner trainings per trial; the last one only evaluates (default {d.cycles})")
    proto.add_argument("--seed-size", type=int, metavar="N", help=f"items in the random seed set (default {d.seed_size})")
    proto.add_argument("--budget", type=int, metavar="N", help=f"items labelled per cycle (default {d.budget})")
    proto.add_argument("--subset", type=_subset_arg, metavar="N", help=f"size of the random candidate subset D_S, or 'all' (default {d.subset})")
    proto.add_argument("--device", choices=["cpu", "cuda", "auto"], help=f"where the learner and the sampler run (default {d.device})")
    proto.add_argument("--seed", type=int, metavar="N", help=f"base random seed (default {d.seed}); same seed, same results")

    learner = parser.add_argument_group("learner")
    learner.add_argument("--arch", metavar="NAME", help=f"learner network: small_cnn, resnet18, vgg11, deepprior "
                         f"(default {d.arch}: small_cnn for images up to 16 px, deepprior for depth crops, else resnet18)")
    learner.add_argument("--epochs", type=int, metavar="N", help=f"learner epochs per cycle (default {d.epochs})")
    learner.add_argument("--batch-size", type=int, metavar="N", help=f"images per learner step (default {d.batch_size})")
    learner.add_argument("--optimizer", choices=["sgd", "adam"], help="learner optimiser (default: by task, "
                         "sgd for classification, adam for regression as the paper's DeepPrior)")
    learner.add_argument("--lr", type=float, metavar="X", help=f"initial learning rate (default: by optimiser, {sgd:g} for sgd, "
                         f"{adam:g} for adam)")

    pool = parser.add_argument_group("synthetic pool (paper §4.3)")
    pool.add_argument("--pool-dataset", metavar="NAME", help="draw the candidates only from this dataset (e.g. folder: "
                      "synthetic images); the seed set comes from --dataset and the test set is --dataset's")
    pool.add_argument("--pool-data-dir", metavar="DIR", help="folder holding the pool dataset's files")

    mode = parser.add_argument_group("mode and files")
    mode.add_argument("--upper-bound", action="store_true", default=None, help="instead of active learning, train the "
                      "learner once per trial on the whole training set (real + pool with --pool-dataset) and report "
                      "the test metric, mean ± std over trials")
    mode.add_argument("--out", metavar="DIR", help="run directory (default: a new runs/<timestamp>-<dataset>)")
    mode.add_argument("--save-features", action="store_true", default=None, help="save, per trial, method and cycle, the "
                      "features the sampler saw and the labelled / candidate / selected items (RUN_DIR/features/*.npz, "
                      "compressed) for `seqgcn plot tsne RUN_DIR`")
    mode.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    mode.add_argument("--config", metavar="FILE", help="YAML or TOML file with the same options (dashes or underscores); "
                      "command-line options override it; it may also set the other ExperimentConfig fields "
                      "(momentum, weight_decay, milestones, ...) and `preset`")


def load_config_file(path) -> dict:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a flat dict of options."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib
            values = tomllib.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as exc:  # the parsers raise their own error types
        raise ValueError(f"malformed config file {str(path)!r}: {_one_line(exc)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"malformed config file {str(path)!r}: expected a mapping of option: value, got {type(values).__name__}")
    return values


def config_from_args(args) -> tuple[ExperimentConfig, str | None]:
    """Merge default < stored config (resume) < config file < command line; return the config and the output dir."""
    file_values = load_config_file(args.config) if args.config else {}
    out = file_values.pop("out", None)
    given = {**{str(k).replace("-", "_"): v for k, v in file_values.items()},
             **{k: getattr(args, k) for k in _CLI_FIELDS if getattr(args, k, None) is not None}}
    if args.config:  # the file's own values first, so that an error names the file only when the file is wrong
        ExperimentConfig.from_dict(file_values, source=f"config file {args.config!r}")
    source = "command line"
    if args.resume is None:
        return ExperimentConfig.from_dict(given, source=source), args.out if args.out is not None else out
    if args.out is not None:
        raise ValueError("give either --resume RUN_DIR or --out DIR, not both: a resumed run writes into RUN_DIR")
    stored = read_run_config(args.resume)
    config = ExperimentConfig.from_dict({**stored.to_dict(), **given}, source=source)
    if config != stored:
        raise ValueError(f"resume dir {args.resume!r} was run with a different config ({_config_diff(stored, config)})")
    return config, args.resume


def cmd_run(args) -> int:
    """`seqgcn run`: run (or resume) an experiment, print the table and where the files are."""
    from seqgcn.report import direction_text

    config, out = config_from_args(args)
    start = time.perf_counter()
    result = run_experiment(config, out, resume=args.resume is not None, progress=True)
    print(result.table)
    if not result.upper_bound:
        print()
        scale, _ = _display(result.metric_name)
        for method, s in result.summary.items():
            print(f"AUBC {method}: {s['aubc_mean'] * scale:.2f} ± {s['aubc_std'] * scale:.2f}")
        print(f"(AUBC: mean height of the learning curve; {direction_text(result.higher_is_better)})")
    print(f"\nresults: {result.paths['results.csv']}")
    if "learning_curve.png" in result.paths:  # an upper-bound run has no learning curve
        print(f"plot:    {result.paths['learning_curve.png']}")
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0

