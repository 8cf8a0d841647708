"""The experiment's settings: `ExperimentConfig`, its checks, config files and the stored config of a run.

Where a setting comes from, lowest first: the `ExperimentConfig` defaults, the
preset named by ``preset`` (`seqgcn.presets`), the config file, the command line.
Learner settings left at None (`optimizer`, `lr`) are chosen by the dataset's
task in one place, `ExperimentConfig.learner_config`: SGD for classification,
Adam lr 1e-3 for regression (the paper's DeepPrior setting).

A config decides the results; how the jobs are run (backend, workers) does not
and is not part of it (`seqgcn.runner`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from seqgcn._config_validation import validate_config

CONFIG = "config.json"  # in a run directory: the provenance block, whose "config" is `ExperimentConfig.to_dict()`


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
        return fields_as_json(self)

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


# Learner settings by task, for the fields left at None (resolved in ExperimentConfig.learner_config only).
OPTIMIZER_BY_TASK = {"classification": "sgd", "regression": "adam"}  # regression: DeepPrior, paper §4.2
LR_BY_OPTIMIZER = {"sgd": 0.05, "adam": 1e-3}  # sgd: the digits demo's; adam: the paper's DeepPrior


def fields_as_json(obj) -> dict:
    """A dataclass's fields as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


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


def check_config(config: ExperimentConfig) -> None:
    """Every field's type and range (`validate_config`), then what needs several fields or the sampler registry.

    The dataset-dependent checks are `seqgcn.jobs.check_pool`'s.
    """
    from seqgcn.samplers import get_sampler

    validate_config(config)
    if config.subset is not None and config.subset < config.budget:
        raise ValueError(f"subset={config.subset!r} must be an integer >= budget={config.budget} (or None for the whole pool)")
    for method in config.methods:
        get_sampler(method)  # unknown name or option -> ValueError listing the known ones
    if config.pool_data_dir is not None and config.pool_dataset is None:
        raise ValueError(f"pool_data_dir={config.pool_data_dir!r} is set but pool_dataset is not; add --pool-dataset NAME")


# --------------------------------------------------------------------------- files
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
        raise ValueError(f"malformed config file {str(path)!r}: {one_line(exc)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"malformed config file {str(path)!r}: expected a mapping of option: value, got {type(values).__name__}")
    return values


def read_run_config(run_dir) -> ExperimentConfig:
    """The config stored in a run directory's config.json (for `--resume` and `seqgcn report`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ValueError(f"resume dir {str(run_dir)!r} holds no {CONFIG}; is it a seqgcn run directory?")
    try:
        stored = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {one_line(exc)}") from None
    return ExperimentConfig.from_dict(stored, source=str(path))


def config_diff(a: dict, b: dict, *, labels=("stored", "requested")) -> str:
    """The keys whose values differ, as "key: stored A, requested B" (for one-line errors)."""
    keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {labels[0]} {a.get(k)!r}, {labels[1]} {b.get(k)!r}" for k in keys)


def check_resume_config(run_dir, config: ExperimentConfig) -> None:
    """A resumed run must ask for exactly the config it was started with."""
    stored = read_run_config(run_dir)
    if stored != config:
        raise ValueError(f"resume dir {str(run_dir)!r} was run with a different config "
                         f"({config_diff(stored.to_dict(), config.to_dict())})")


def merge_options(file_values: dict, given: dict, *, config_file: str | None, resume: str | None, out: str | None):
    """default < stored config (resume) < config file < command line; return the config and the output dir.

    `file_values` is the config file's mapping (its ``out`` key is the output dir),
    `given` the command-line options that were set.
    """
    file_values = dict(file_values)
    file_out = file_values.pop("out", None)
    if config_file:  # the file's own values first, so that an error names the file only when the file is wrong
        ExperimentConfig.from_dict(file_values, source=f"config file {config_file!r}")
    given = {**{str(k).replace("-", "_"): v for k, v in file_values.items()}, **given}
    source = "command line"
    if resume is None:
        return ExperimentConfig.from_dict(given, source=source), out if out is not None else file_out
    if out is not None:
        raise ValueError("give either --resume RUN_DIR or --out DIR, not both: a resumed run writes into RUN_DIR")
    config = ExperimentConfig.from_dict({**read_run_config(resume).to_dict(), **given}, source=source)
    check_resume_config(resume, config)
    return config, resume


def one_line(exc: BaseException) -> str:
    """An exception's text on one line."""
    return " ".join(str(exc).split())
