"""Random sampling, without replacement (the reference code draws with replacement: a bug not copied)."""

from __future__ import annotations

import numpy as np

from seqgcn.samplers.base import FeatureSampler, Problem


class Random(FeatureSampler):
    """Pick `budget` candidates uniformly at random, without replacement.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Source of randomness; the same seed gives the same selection.
    device : str
        Ignored (accepted so that every sampler takes the same keywords).
    """

    name = "Random"

    def __init__(self, *, seed=0, device="cpu"):
        self.seed = seed
        self.device = device  # accepted for a uniform API; nothing to compute

    def _select(self, problem: Problem) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.choice(problem.candidates, size=problem.budget, replace=False)
