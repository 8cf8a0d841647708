"""Samplers, one file each, and the name registry the CLI uses.

    >>> from seqgcn.samplers import get_sampler
    >>> sampler = get_sampler("UncertainGCN", seed=0)
    >>> picked = sampler.select(features, labelled, budget=100)  # doctest: +SKIP

A name may carry constructor options, so ablations run side by side under one
protocol: ``"UncertainGCN(adjacency=eye, layers=3)"``. Values are read as int,
float, bool (true/false) or a bare string; the whole string is the method's
label in tables, CSV files and plots.

What a sampler reads is its type (`seqgcn.samplers.base`): a `FeatureSampler`
(a pure function of the learner's features: Random, CoreSet, FeatProp, the GCN
samplers), an `ImageSampler` (`VAAL`, trained on the raw images) or a
`LearnerSampler` (`LearningLoss`, trained alongside the learner through its
companion hook) or an `OutputSampler` (reads the trained learner's `LearnerOutputs`:
class probabilities for LeastConfidence, Margin, Entropy; probabilities and features
for BADGE; Monte-Carlo dropout passes for BALD). TypiClust and ProbCover read features.

`build_sampler` is the one way the commands build a sampler from their options:
an option (e.g. the GCN's ``epochs``) goes to each method that takes it, and an
option that none of the run's methods takes is an error (`check_method_options`).
"""

from __future__ import annotations

import inspect
import re

from seqgcn.checks import InputError
from seqgcn.samplers.badge import BADGE
from seqgcn.samplers.base import FeatureSampler, ImageSampler, LearnerOutputs, LearnerSampler, OutputSampler, Problem, Sampler
from seqgcn.samplers.coreset import CoreSet
from seqgcn.samplers.featprop import FeatProp
from seqgcn.samplers.gcn import CoreGCN, UncertainDiscriminator, UncertainGCN
from seqgcn.samplers.learning_loss import LearningLoss
from seqgcn.samplers.probcover import ProbCover
from seqgcn.samplers.random import Random
from seqgcn.samplers.typiclust import TypiClust
from seqgcn.samplers.uncertainty import BALD, Entropy, LeastConfidence, Margin
from seqgcn.samplers.vaal import VAAL

_REGISTRY: dict[str, type[Sampler]] = {
    cls.name: cls for cls in (Random, CoreSet, UncertainGCN, CoreGCN, UncertainDiscriminator, FeatProp, VAAL, LearningLoss,
                              LeastConfidence, Margin, Entropy, BALD, BADGE, TypiClust, ProbCover)
}
_VARIANT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_NOT_OPTIONS = {"seed", "device", "progress", "workers"}  # set by the run, not by a method label (workers: speed only)


def available_samplers() -> list[str]:
    """Names accepted by `get_sampler` (each may carry options: ``Name(key=value, ...)``)."""
    return sorted(_REGISTRY)


def feature_samplers() -> list[str]:
    """Names of the samplers that read only features (those `seqgcn select` and `seqgcn query` can run)."""
    return [name for name in available_samplers() if issubclass(_REGISTRY[name], FeatureSampler)]


def output_samplers() -> list[str]:
    """Names of the samplers that read the learner's outputs (class probabilities, dropout passes)."""
    return [name for name in available_samplers() if issubclass(_REGISTRY[name], OutputSampler)]


def query_samplers() -> list[str]:
    """Names of the samplers a round with a trained learner can run (`seqgcn query`): feature and output samplers."""
    return [name for name in available_samplers() if issubclass(_REGISTRY[name], (FeatureSampler, OutputSampler))]


def methods_for_task(task: str) -> list[str]:
    """Names of the samplers that can pick for a learner of `task` ("classification" or "regression")."""
    return [name for name in available_samplers() if task in _REGISTRY[name].tasks]


def sampler_class(name: str) -> type[Sampler]:
    """The class of the sampler called `name` (options in the name allowed); its kind is its base class."""
    return _lookup(parse_method(name)[0])


def build_sampler(method: str, *, seed: int = 0, device: str = "cpu", progress: bool = False, options: dict | None = None,
                  among=None) -> Sampler:
    """The sampler `method` as a command runs it: the run's settings and the `options` it takes, checked.

    seed, device, progress : set by the run; passed when the sampler has them.
    options : sampler options set for the whole run, e.g. ``{"epochs": 5}`` (the GCN's steps); each goes to
        the methods that take it. `check_method_options(among or [method], options)` must hold: an option
        that no method of the run takes is an error, not silently dropped.
    Options written in the method's name (``"UncertainGCN(epochs=5)"``) win over `options`.
    """
    options = dict(options or {})
    check_method_options([method] if among is None else among, options)
    accepted = _options_of(sampler_class(method))
    run = {"seed": seed, "device": device, "progress": progress}
    params = {k: v for k, v in {**run, **options}.items() if k in accepted}
    sampler = get_sampler(method, **params)
    try:
        sampler._check_params()  # bad values fail here, before any work
    except (TypeError, ValueError) as exc:
        raise InputError(f"method {method!r}: {exc}") from None
    return sampler


def check_method_options(methods, options: dict, *, labels: dict | None = None) -> None:
    """Every method name is known, and every option in `options` is taken by at least one of `methods`.

    labels : how to name an option in the message (e.g. ``{"epochs": "gcn_epochs"}``); default its own name.
    """
    labels = labels or {}
    takes = {m: _options_of(sampler_class(m)) - _NOT_OPTIONS for m in methods}  # unknown name -> InputError
    for key in options:
        if not any(key in accepted for accepted in takes.values()):
            raise InputError(f"option {labels.get(key, key)}={options[key]!r} applies to none of the methods "
                             f"({', '.join(methods)}); remove it or add a method that takes it")
    for method, accepted in takes.items():  # the values, by the rule of each method that takes them
        mine = {k: v for k, v in options.items() if k in accepted}
        try:
            get_sampler(method, **mine)._check_params()
        except (TypeError, ValueError) as exc:
            message = str(exc)
            for key in mine:
                message = message.replace(f"{key}=", f"{labels.get(key, key)}=")
            raise InputError(message) from None


def parse_method(name: str) -> tuple[str, dict]:
    """Split ``"UncertainGCN(adjacency=eye, layers=3)"`` into ``("UncertainGCN", {"adjacency": "eye", "layers": 3})``.

    Raises ValueError for text that is not ``Name`` or ``Name(key=value, ...)``.
    """
    match = _VARIANT.match(str(name))
    if match is None:
        raise InputError(f"method {name!r} is not NAME or NAME(key=value, ...)")
    base, inner = match.group(1), match.group(2)
    options: dict = {}
    for item in filter(None, (part.strip() for part in (inner or "").split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key.isidentifier() or not value:
            raise InputError(f"method {name!r}: option {item!r} is not key=value")
        if key in options:
            raise InputError(f"method {name!r}: option {key!r} is given twice")
        options[key] = _parse_value(value)
    return base, options


def canonical_name(name: str) -> str:
    """The one label of a variant: the registry's spelling, options sorted, those at their default left out.

    ``"uncertaingcn( layers = 3 )"`` → ``"UncertainGCN(layers=3)"``; ``"UncertainGCN(layers=2)"`` → ``"UncertainGCN"``.
    """
    base, options = parse_method(name)
    cls = _lookup(base)
    get_sampler(name)  # unknown options and bad values fail here
    default = cls()

    def at_default(key, value) -> bool:  # True == 1 and 1 == 1.0 in Python, but not as option values
        ours = getattr(default, key)
        return type(ours) is type(value) and ours == value

    kept = {k: v for k, v in sorted(options.items()) if not at_default(k, v)}
    if not kept:
        return cls.name
    return f"{cls.name}({', '.join(f'{k}={_format_value(v)}' for k, v in kept.items())})"


def _format_value(value) -> str:
    """An option value as `_parse_value` reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def get_sampler(name: str, **params) -> Sampler:
    """Build the sampler called `name` (case-insensitive), options in the name overriding `params`.

    ``get_sampler("UncertainGCN(layers=3)", seed=1)`` is ``UncertainGCN(layers=3, seed=1)``.
    Unknown options and bad values are a ValueError naming what is accepted.
    """
    base, options = parse_method(name)
    cls = _lookup(base)
    accepted = _options_of(cls)
    for key in options:
        if key not in accepted or key in _NOT_OPTIONS:
            shown = sorted(accepted - _NOT_OPTIONS)
            raise InputError(f"method {name!r}: {cls.name} has no option {key!r}; its options: {', '.join(shown) or 'none'}")
    sampler = cls(**{**params, **options})
    if options:
        try:
            sampler._check_params()  # bad values fail here, before any run starts
        except (TypeError, ValueError) as exc:
            raise InputError(f"method {name!r}: {exc}") from None
    return sampler


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Add a Sampler subclass to the registry under `cls.name` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def _lookup(base: str) -> type[Sampler]:
    cls = {key.lower(): c for key, c in _REGISTRY.items()}.get(base.lower())
    if cls is None:
        raise InputError(f"unknown method {base!r}; known methods: {', '.join(available_samplers())}")
    return cls


def _options_of(cls: type) -> set[str]:
    """Keyword parameters of `cls`'s constructor, following ``**params`` up the class hierarchy."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def _parse_value(text: str):
    """``3`` → int, ``0.5`` / ``1e-3`` → float, ``true`` / ``false`` → bool, ``none`` → None, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip("'\"")


__all__ = ["BADGE", "BALD", "VAAL", "CoreGCN", "CoreSet", "Entropy", "FeatProp", "FeatureSampler", "ImageSampler",
           "LeastConfidence", "LearnerOutputs", "LearnerSampler", "LearningLoss", "Margin", "OutputSampler", "ProbCover", "Problem",
           "Random", "Sampler", "TypiClust", "UncertainDiscriminator", "UncertainGCN", "available_samplers", "build_sampler",
           "canonical_name", "check_method_options", "feature_samplers", "get_sampler", "methods_for_task", "output_samplers",
           "parse_method", "query_samplers", "register_sampler", "sampler_class"]
