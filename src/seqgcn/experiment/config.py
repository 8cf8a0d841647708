"""The experiment's settings: `ExperimentConfig`, its checks, config files and the stored config of a run.

Where a setting comes from, lowest first: the `ExperimentConfig` defaults, the
preset named by ``preset`` (`seqgcn.experiment.presets`), the config file, the command line.
Learner settings left at None (`optimizer`, `lr`) are chosen by the dataset's
task in one place, `ExperimentConfig.learner_config`: SGD for classification,
Adam lr 1e-3 for regression (the paper's DeepPrior setting).

A config decides the results; how the jobs are run (backend, workers) does not
and is not part of it (`seqgcn.experiment.runners`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from seqgcn.checks import InputError, check_choice, check_device, check_int, check_number, check_text
from seqgcn.experiment.presets import preset
from seqgcn.learners.config import OPTIMIZERS, LearnerConfig
from seqgcn.samplers import canonical_name, check_method_options



@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides the results of a run.

    Defaults: the embedded digits run of `seqgcn run` with no options. The learner
    fields default to `LearnerConfig`'s (the one set of learner defaults). A
    preset (`seqgcn.experiment.presets`) is a source of values, not a field:
    `from_dict({"preset": "cifar10", ...})` or `from_preset("cifar10", ...)`
    fill in its fields first, and every other key overrides them.
    """

    # -- protocol (SPEC §1, §6)
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
    device: str = LearnerConfig.device   # "cpu" | "cuda" | "cuda:N" | "auto", for the learner and the sampler
    threads: int = 1                     # torch CPU threads of each job (float sums depend on it, so results do too)
    save_features: bool = False          # keep, per trial/method/cycle, what the sampler saw (features/*.npz; `seqgcn plot tsne`)
    # -- learner (→ LearnerConfig; None: chosen by the dataset's task, `LearnerConfig.for_task`)
    arch: str = LearnerConfig.arch       # learner network ("auto": by dataset)
    epochs: int = LearnerConfig.epochs   # learner epochs per cycle
    batch_size: int = LearnerConfig.batch_size  # images per learner step
    optimizer: str | None = None         # "sgd" | "adam" (None: sgd for classification, adam for regression)
    lr: float | None = None              # initial learning rate (None: by optimizer, 0.05 for sgd, 1e-3 for adam)
    momentum: float = LearnerConfig.momentum          # SGD momentum
    weight_decay: float = LearnerConfig.weight_decay  # L2 penalty
    milestones: tuple | None = None      # epochs after which lr is multiplied by `gamma` (None: at 80 % of `epochs`)
    gamma: float = LearnerConfig.gamma   # lr decay factor
    augment: str = LearnerConfig.augment  # "auto" | "none" | "crop_flip" | "crop"
    # -- samplers (None: each sampler's own default; passed to the methods that take the option)
    gcn_epochs: int | None = None        # GCN full-batch training steps (reference code: 200)
    normalization: str | None = None    # adjacency: "column" (reference code) | "row" (paper eq. 4)
    margin_rule: str | None = None      # UncertainGCN: "closest" (reference code) | "farthest" (paper eq. 7)
    margin: float | None = None          # UncertainGCN s_margin, a score in [0, 1] (reference code: 0.1)
    # -- frozen encoder (None: the CNN learner). With a file, the images are embedded once, the samplers read the
    #    embeddings and each cycle trains a `HeadLearner` on them (seqgcn.learners.encoder, seqgcn.learners.head)
    encoder: str | None = None           # .onnx or .pt2 model file
    encoder_input_size: int | None = None  # side the images are resized to for it, pixels (None: its metadata / input shape)
    encoder_channel_order: str | None = None  # "rgb" | "bgr" (None: its metadata, else rgb)
    encoder_mean: tuple | None = None    # per-channel mean, [0, 1] units (None: its metadata, else ImageNet's)
    encoder_std: tuple | None = None     # per-channel std (None: its metadata, else ImageNet's)
    head_hidden: int = 0                 # the head's hidden units (0: logistic regression)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return fields_as_json(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "config") -> "ExperimentConfig":
        """Build from a dict whose keys use underscores or dashes; unknown keys are an error.

        A ``preset`` key fills in that preset's fields first (`seqgcn.experiment.presets.preset`);
        every other key overrides them, so ``{"preset": "cifar10", "budget": 500}``
        is CIFAR-10's protocol with another budget.
        """
        if not isinstance(values, dict):
            raise InputError(f"{source}: expected a mapping of option: value, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        clean, name = {}, None
        for key, value in values.items():
            field_name = str(key).replace("-", "_")
            if field_name == "preset":
                name = value
                continue
            if field_name not in known:
                raise InputError(f"{source}: unknown key {key!r}; known keys: {', '.join(sorted([*known, 'preset']))}")
            clean[field_name] = _coerce(field_name, value, known[field_name], source)
        if name is not None:
            if not isinstance(name, str):
                raise InputError(f"{source}: preset={name!r} must be a preset name")
            try:
                clean = {**preset(name), **clean}
            except InputError as exc:
                raise InputError(f"{source}: {exc}") from None
        methods = clean.get("methods")
        if isinstance(methods, tuple) and all(isinstance(m, str) for m in methods) and len(methods) <= MAX_METHODS:
            try:
                clean["methods"] = tuple(canonical_name(m) for m in methods)  # one label per variant
            except InputError as exc:
                raise InputError(f"{source}: {exc}") from None
        config = cls(**clean)
        try:
            validate_config(config)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
        return config

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ExperimentConfig":
        """The paper protocol `name` (`seqgcn.experiment.presets`) with `overrides` on top."""
        return cls.from_dict({"preset": name, **overrides}, source=f"preset {name!r}")

    def learner_config(self, task: str) -> LearnerConfig:
        """The LearnerConfig for a dataset of `task`; `optimizer` and `lr` left at None are chosen by the task."""
        return LearnerConfig.for_task(
            task, optimizer=self.optimizer, lr=self.lr, arch=self.arch, epochs=self.epochs, batch_size=self.batch_size,
            momentum=self.momentum, weight_decay=self.weight_decay, milestones=self.milestones, gamma=self.gamma,
            augment=self.augment, device=self.device, progress=False,
        )

    def sampler_options(self) -> dict:
        """The sampler options that are set (not None), under the samplers' parameter names."""
        params = {"epochs": self.gcn_epochs, "normalization": self.normalization, "margin_rule": self.margin_rule,
                  "margin": self.margin}
        return {k: v for k, v in params.items() if v is not None}


def fields_as_json(obj) -> dict:
    """A dataclass's fields as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


def _coerce(name: str, value, spec: dataclasses.Field, source: str):
    """Config-file values as the field expects them: lists → tuples (for the list fields), numbers written as text → float.

    Anything else is left as it is for `validate_config` to judge (so a message shows the value as written).
    """
    if isinstance(value, list) and name in ("methods", "milestones", "encoder_mean", "encoder_std"):
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
            raise InputError(f"{source}: {name}={value!r} must be a number") from None
    return value


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; a huge one is refused before parsing
MAX_METHODS = 1000  # methods compared in one run
MAX_COUNT = 10**7  # trials, cycles, sizes: anything larger is a typo, refused at once instead of running for days
POSITIVE_INTS = ("trials", "cycles", "seed_size", "budget", "epochs", "batch_size", "threads")
OPTIONAL_TEXTS = ("data_dir", "pool_dataset", "pool_data_dir", "encoder")


def validate_config(config: ExperimentConfig) -> None:
    """Every field's type and range, one at a time; a one-line `InputError` at the first wrong one.

    Run where a config enters (file, command line, resume). The learner fields are
    checked by `LearnerConfig.check`, the sampler options by the samplers' own
    checks (`seqgcn.samplers.build_sampler`), so each rule exists once.
    """
    for name in OPTIONAL_TEXTS:
        check_text(getattr(config, name), name=name, optional=True)
    check_text(config.dataset, name="dataset")
    for name in ("upper_bound", "save_features"):
        if not isinstance(getattr(config, name), bool):
            raise InputError(f"{name}={getattr(config, name)!r} must be true or false")
    _check_methods(config.methods)
    for name in POSITIVE_INTS:
        check_int(getattr(config, name), name=name, low=1, high=MAX_COUNT)
    if config.subset is not None:
        check_int(config.subset, name="subset", low=1, extra=" or 'all' for the whole pool")
    check_int(config.seed, name="seed", low=0, high=2**63 - 1)
    check_device(config.device)
    check_choice(config.optimizer, OPTIMIZERS, name="optimizer", optional=True)
    if config.lr is not None:
        check_number(config.lr, name="lr", what="a finite number > 0", ok=lambda v: v > 0)
    config.learner_config("classification").check()
    check_method_options(config.methods, config.sampler_options(), labels={"epochs": "gcn_epochs"})
    check_int(config.head_hidden, name="head_hidden", low=0, high=65_536)
    if config.encoder_input_size is not None:  # how they fit the model file: `seqgcn.learners.encoder.load_encoder`
        check_int(config.encoder_input_size, name="encoder_input_size", low=1, high=4096)
    check_choice(config.encoder_channel_order, ("rgb", "bgr"), name="encoder_channel_order", optional=True)
    for name in ("encoder_mean", "encoder_std"):
        _check_channel_values(getattr(config, name), name=name, positive=name == "encoder_std")


def check_config(config: ExperimentConfig) -> None:
    """`validate_config`, then what needs several fields or the sampler registry.

    The dataset-dependent checks are `seqgcn.experiment.jobs.check_pool`'s.
    """
    validate_config(config)
    if config.subset is not None and config.subset < config.budget:
        raise InputError(f"subset={config.subset!r} must be an integer >= budget={config.budget} (or None for the whole pool)")
    encoder_settings = [name for name in ("encoder_input_size", "encoder_channel_order", "encoder_mean", "encoder_std",
                                          "head_hidden") if getattr(config, name)]
    if config.encoder is None and encoder_settings:
        raise InputError(f"{encoder_settings[0]}={getattr(config, encoder_settings[0])!r} is set but encoder is not; "
                         "add --encoder FILE")
    if config.pool_data_dir is not None and config.pool_dataset is None:
        raise InputError(f"pool_data_dir={config.pool_data_dir!r} is set but pool_dataset is not; add --pool-dataset NAME")


def _check_channel_values(values, *, name: str, positive: bool) -> None:
    """None, or 1 or 3 finite numbers (> 0 with `positive`): a per-channel mean or std of the encoder's input."""
    ok = isinstance(values, tuple) and len(values) in (1, 3) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
        for v in values)
    if values is not None and not ok:
        shown = list(values) if isinstance(values, tuple) else values
        raise InputError(f"{name}={shown!r} must be a list of 1 or 3 finite numbers{' > 0' if positive else ''}, "
                         "one per channel in [0, 1] units")


def _check_methods(methods) -> None:
    if not isinstance(methods, tuple) or not methods or not all(isinstance(m, str) for m in methods):
        shown = list(methods) if isinstance(methods, tuple) else methods
        raise InputError(f"methods={shown!r} must be a non-empty list of method names")
    if len(methods) > MAX_METHODS:
        raise InputError(f"methods lists {len(methods):,} methods; at most {MAX_METHODS} can be compared in one run")
    labels = [canonical_name(m) for m in methods]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InputError(f"methods={list(methods)!r} names a method twice ({', '.join(twice)})")


# --------------------------------------------------------------------------- files
def load_config_file(path) -> dict:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a flat dict of options."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise InputError(f"config file {str(path)!r} holds {size:,} bytes; a config file is at most "
                             f"{MAX_CONFIG_BYTES:,} (is it the right file?)")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"config file {str(path)!r} is not UTF-8 text (a YAML or TOML file is)") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib
            values = tomllib.loads(text)
        else:
            values = yaml.load(text, Loader=_UniqueKeyLoader)  # safe_load, refusing a key given twice
    except Exception as exc:  # the parsers raise their own error types
        raise InputError(f"malformed config file {str(path)!r}: {one_line(exc)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"malformed config file {str(path)!r}: expected a mapping of option: value, got {type(values).__name__}")
    return values


def config_diff(a: dict, b: dict, *, labels=("stored", "requested")) -> str:
    """The keys whose values differ, as "key: stored A, requested B" (for one-line errors)."""
    keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {labels[0]} {a.get(k)!r}, {labels[1]} {b.get(k)!r}" for k in keys)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives a key twice (TOML refuses it too; YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def merge_options(file_values: dict, given: dict, *, config_file: str | None, stored: "ExperimentConfig | None",
                  out: str | None):
    """default < stored config (resume) < config file < command line; return the config and the output dir.

    `file_values` is the config file's mapping (its ``out`` key is the output dir),
    `given` the command-line options that were set, `stored` the config of the run
    being resumed (None for a fresh run; `seqgcn.experiment.rundir.check_resume_config` then checks that
    the merged config is exactly the stored one).
    """
    file_values = dict(file_values)
    file_out = file_values.pop("out", None)
    if config_file:  # the file's own values first, so that an error names the file only when the file is wrong
        ExperimentConfig.from_dict(file_values, source=f"config file {config_file!r}")
    given = {**{str(k).replace("-", "_"): v for k, v in file_values.items()}, **given}
    source = "command line"
    if stored is None:
        return ExperimentConfig.from_dict(given, source=source), out if out is not None else file_out
    return ExperimentConfig.from_dict({**stored.to_dict(), **given}, source=source), None


def one_line(exc: BaseException) -> str:
    """An exception's text on one line."""
    return " ".join(str(exc).split())
