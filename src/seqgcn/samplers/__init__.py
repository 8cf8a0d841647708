"""Samplers, one file each, and the name registry the CLI uses.

    >>> from seqgcn.samplers import get_sampler
    >>> sampler = get_sampler("UncertainGCN", seed=0)
    >>> picked = sampler.select(features, labelled, budget=100)  # doctest: +SKIP

A name may carry constructor options, so ablations run side by side under one
protocol: ``"UncertainGCN(adjacency=eye, layers=3)"``. Values are read as int,
float, bool (true/false) or a bare string; the whole string is the method's
label in tables, CSV files and plots.

What a sampler reads is in its type (attribute ``needs``): ``"features"``
(pure functions of the learner's features: Random, CoreSet, FeatProp, the GCN
samplers), ``"images"`` (`VAAL`, trained on the raw images) or ``"learner"``
(`LearningLoss`, trained alongside the learner through its companion hook).
"""

from __future__ import annotations

import inspect
import re

from seqgcn.samplers.base import Problem, Sampler
from seqgcn.samplers.coreset import CoreSet
from seqgcn.samplers.featprop import FeatProp
from seqgcn.samplers.gcn import CoreGCN, UncertainDiscriminator, UncertainGCN
from seqgcn.samplers.learning_loss import LearningLoss
from seqgcn.samplers.random import Random
from seqgcn.samplers.vaal import VAAL

_REGISTRY: dict[str, type[Sampler]] = {
    cls.name: cls for cls in (Random, CoreSet, UncertainGCN, CoreGCN, UncertainDiscriminator, FeatProp, VAAL, LearningLoss)
}
_VARIANT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_NOT_OPTIONS = {"seed", "device", "progress"}  # set by the run, not by a method label


def available_samplers() -> list[str]:
    """Names accepted by `get_sampler` (each may carry options: ``Name(key=value, ...)``)."""
    return sorted(_REGISTRY)


def sampler_needs(name: str) -> str:
    """What the sampler called `name` reads: ``"features"``, ``"images"`` or ``"learner"``."""
    return getattr(_lookup(parse_method(name)[0]), "needs", "features")


def parse_method(name: str) -> tuple[str, dict]:
    """Split ``"UncertainGCN(adjacency=eye, layers=3)"`` into ``("UncertainGCN", {"adjacency": "eye", "layers": 3})``.

    Raises ValueError for text that is not ``Name`` or ``Name(key=value, ...)``.
    """
    match = _VARIANT.match(str(name))
    if match is None:
        raise ValueError(f"method {name!r} is not NAME or NAME(key=value, ...)")
    base, inner = match.group(1), match.group(2)
    options: dict = {}
    for item in filter(None, (part.strip() for part in (inner or "").split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key.isidentifier() or not value:
            raise ValueError(f"method {name!r}: option {item!r} is not key=value")
        if key in options:
            raise ValueError(f"method {name!r}: option {key!r} is given twice")
        options[key] = _parse_value(value)
    return base, options


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
            raise ValueError(f"method {name!r}: {cls.name} has no option {key!r}; its options: {', '.join(shown) or 'none'}")
    sampler = cls(**{**params, **options})
    if options and hasattr(sampler, "_check_params"):
        try:
            sampler._check_params()  # bad values fail here, before any run starts
        except (TypeError, ValueError) as exc:
            raise ValueError(f"method {name!r}: {exc}") from None
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
        raise ValueError(f"unknown method {base!r}; known methods: {', '.join(available_samplers())}")
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


__all__ = ["VAAL", "CoreGCN", "CoreSet", "FeatProp", "LearningLoss", "Problem", "Random", "Sampler", "UncertainDiscriminator",
           "UncertainGCN", "available_samplers", "get_sampler", "parse_method", "register_sampler", "sampler_needs"]
