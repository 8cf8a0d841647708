"""CoreSet (Sener & Savarese 2018): k-Center greedy on the learner's features."""

from __future__ import annotations

import numpy as np
import torch

from seqgcn.checks import resolve_device
from seqgcn.samplers.base import FeatureSampler, Problem
from seqgcn.samplers.kcenter import k_center_greedy


class CoreSet(FeatureSampler):
    """Pick the candidates that are farthest from the labelled set, one at a time.

    With the labelled items as initial centres, repeatedly add the candidate whose
    Euclidean distance to its nearest centre is largest (k-Center greedy). Runs in
    O(N·m) memory and O(budget·N·m) time.

    Parameters
    ----------
    seed : int
        Used only when the labelled set is empty (the first centre is then random).
    device : {"cpu", "cuda", "auto"}
    """

    name = "CoreSet"

    def __init__(self, *, seed=0, device="cpu"):
        self.seed = seed
        self.device = device

    def _select(self, problem: Problem) -> np.ndarray:
        device = resolve_device(self.device)
        feats = torch.from_numpy(problem.features).to(device)
        gen = torch.Generator().manual_seed(int(self.seed))
        pos = k_center_greedy(feats[problem.candidates], feats[problem.labelled], problem.budget, generator=gen)
        return problem.candidates[pos]
