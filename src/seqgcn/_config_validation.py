"""Type and range checks of every `ExperimentConfig` field, run where a config enters (file, command line, resume).

`validate_config` looks at one field at a time; the checks that need several
fields or the data (subset >= budget, enough items in the pool, method names
in the registry) run in `run_experiment`. Every message names the field, the
value received and what was expected: ``lr=inf must be a finite number > 0``.
"""

from __future__ import annotations

import math
import numbers

POSITIVE_INTS = ("trials", "cycles", "seed_size", "budget", "epochs", "batch_size")
OPTIONAL_TEXTS = ("preset", "data_dir", "pool_dataset", "pool_data_dir")


def validate_config(config) -> None:
    """Raise a one-line ValueError at the first field whose type or range is wrong."""
    from seqgcn.graph import NORMALIZATIONS
    from seqgcn.learners.nets import ARCHS
    from seqgcn.learners.torch_learner import AUGMENTS, OPTIMIZERS
    from seqgcn.samplers.gcn import MARGIN_RULES

    for name in OPTIONAL_TEXTS:
        _check_text(name, getattr(config, name), optional=True)
    _check_text("dataset", config.dataset)
    for name in ("upper_bound", "save_features"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name}={getattr(config, name)!r} must be true or false")
    _check_methods(config.methods)
    for name in POSITIVE_INTS:
        _check_int(name, getattr(config, name), low=1)
    if config.subset is not None:
        _check_int("subset", config.subset, low=1, extra=" or 'all' for the whole pool")
    _check_int("seed", config.seed, low=0)
    _check_choice("device", config.device, ("cpu", "cuda", "auto"))
    _check_choice("arch", config.arch, ("auto", *ARCHS))
    _check_choice("optimizer", config.optimizer, OPTIMIZERS, optional=True)
    if config.lr is not None:
        _check_float("lr", config.lr, "a finite number > 0", lambda v: v > 0)
    _check_float("momentum", config.momentum, "a number in [0, 1)", lambda v: 0 <= v < 1)
    _check_float("weight_decay", config.weight_decay, "a finite number >= 0", lambda v: v >= 0)
    _check_milestones(config.milestones)
    _check_float("gamma", config.gamma, "a number in (0, 1] (the lr is multiplied by it at each milestone)",
                 lambda v: 0 < v <= 1)
    _check_choice("augment", config.augment, AUGMENTS)
    if config.gcn_epochs is not None:
        _check_int("gcn_epochs", config.gcn_epochs, low=1)
    _check_choice("normalization", config.normalization, NORMALIZATIONS, optional=True)
    _check_choice("margin_rule", config.margin_rule, MARGIN_RULES, optional=True)
    if config.margin is not None:
        _check_float("margin", config.margin, "a number in (0, 1) (a GCN score)", lambda v: 0 < v < 1)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name: str, value, *, low: int, extra: str = "") -> None:
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    if not _is_int(value) or value < low:
        raise ValueError(f"{name}={value!r} must be {what}{extra}")


def _check_float(name: str, value, what: str, in_range) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and in_range(value)
    if not ok:
        raise ValueError(f"{name}={value!r} must be {what}")


def _check_text(name: str, value, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}={value!r} must be a non-empty name" + (" (or left out)" if optional else ""))


def _check_choice(name: str, value, choices, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} must be one of {known}" + (" (or left out for the default)" if optional else ""))


def _check_methods(methods) -> None:
    if not isinstance(methods, tuple) or not methods or not all(isinstance(m, str) for m in methods):
        shown = list(methods) if isinstance(methods, tuple) else methods
        raise ValueError(f"methods={shown!r} must be a non-empty list of method names")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods={list(methods)!r} names a method twice")


def _check_milestones(milestones) -> None:
    """None, or epochs (positive integers, increasing); one at or past `epochs` never fires, as in MultiStepLR."""
    if milestones is None:
        return
    want = "a list of increasing positive integers (epochs after which the lr is multiplied by gamma), e.g. [160]"
    if not isinstance(milestones, tuple) or not all(_is_int(m) and m >= 1 for m in milestones):
        shown = list(milestones) if isinstance(milestones, tuple) else milestones
        raise ValueError(f"milestones={shown!r} must be {want}")
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise ValueError(f"milestones={list(milestones)!r} must be {want}")
