"""Samplers, one file each, and the name registry the CLI uses.

    >>> from seqgcn.samplers import get_sampler
    >>> sampler = get_sampler("UncertainGCN", seed=0)
    >>> picked = sampler.select(features, labelled, budget=100)  # doctest: +SKIP
"""

from __future__ import annotations

from seqgcn.samplers.base import Problem, Sampler
from seqgcn.samplers.coreset import CoreSet
from seqgcn.samplers.featprop import FeatProp
from seqgcn.samplers.gcn import CoreGCN, UncertainDiscriminator, UncertainGCN
from seqgcn.samplers.random import Random

_REGISTRY: dict[str, type[Sampler]] = {cls.name: cls for cls in (Random, CoreSet, UncertainGCN, CoreGCN, UncertainDiscriminator, FeatProp)}


def available_samplers() -> list[str]:
    """Names accepted by `get_sampler`."""
    return sorted(_REGISTRY)


def get_sampler(name: str, **params) -> Sampler:
    """Build the sampler called `name` (case-insensitive) with keyword parameters."""
    lookup = {key.lower(): cls for key, cls in _REGISTRY.items()}
    cls = lookup.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(available_samplers())}")
    return cls(**params)


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Add a Sampler subclass to the registry under `cls.name` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


__all__ = ["CoreGCN", "CoreSet", "FeatProp", "Problem", "Random", "Sampler", "UncertainDiscriminator", "UncertainGCN", "available_samplers", "get_sampler", "register_sampler"]
