"""Uncertainty sampling on the learner's softmax, and BALD on Monte-Carlo dropout passes.

Each scores every candidate and picks the `budget` best (ties: lower global index first):

    LeastConfidence   1 − max_c p_c                                        highest first
    Margin            p_(1) − p_(2), the top two probabilities              lowest first
    Entropy           −Σ_c p_c log p_c                                      highest first
    BALD              H[(1/T) Σ_t p_t] − (1/T) Σ_t H[p_t]                   highest first
                      (Houlsby et al. 2011; Gal, Islam & Ghahramani 2017: the mutual information between
                      the prediction and the weights, over T dropout passes p_t); for a regressor,
                      the predictive variance over the passes, averaged over the outputs.

Where BALD's dropout sits: every method of a run trains the same learner, and seqgcn's
classifiers (ResNet-18, VGG-11, the small CNN) have no dropout layer. BALD therefore applies
dropout of rate `dropout` to the penultimate features, right before the final linear layer,
in the T passes only (the learner trains without it); DeepAL (Huang, ej0cl6/deep-active-learning,
``BALDDropout``) puts its dropout at the same place, before the last linear layer. DeepPrior
has its own dropout there (rate 0.3, used in training), so for the regressor the passes use
the layer the network was trained with, at BALD's rate. See docs/samplers.md.
"""

from __future__ import annotations

import numpy as np

from seqgcn.checks import check_positive_int
from seqgcn.samplers.base import LearnerOutputs, OutputSampler, Problem, check_option_number, top_scores


def entropy(probs: np.ndarray) -> np.ndarray:
    """−Σ p log p over the last axis, in nats, with 0 log 0 = 0; float64."""
    p = probs.astype(np.float64)
    logs = np.log(np.where(p > 0, p, 1.0))  # log 1 = 0 where p = 0
    return -(p * logs).sum(axis=-1)


class LeastConfidence(OutputSampler):
    """Pick the candidates whose most likely class has the lowest probability: score 1 − max_c p_c."""

    name = "LeastConfidence"

    def __init__(self, *, seed: int = 0):
        self.seed = seed  # unused: the choice is deterministic (ties by index)

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        p = outputs.probs[problem.candidates]  # (n_candidates, C)
        return top_scores(problem, 1.0 - p.max(axis=1).astype(np.float64), highest=True)


class Margin(OutputSampler):
    """Pick the candidates with the smallest gap between the two most likely classes, p_(1) − p_(2)."""

    name = "Margin"

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        p = outputs.probs[problem.candidates].astype(np.float64)  # (n_candidates, C)
        top2 = np.partition(p, -2, axis=1)[:, -2:]  # (n_candidates, 2): second, first
        return top_scores(problem, top2[:, 1] - top2[:, 0], highest=False)


class Entropy(OutputSampler):
    """Pick the candidates whose predicted class distribution has the highest entropy."""

    name = "Entropy"

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        return top_scores(problem, entropy(outputs.probs[problem.candidates]), highest=True)


class BALD(OutputSampler):
    """Bayesian Active Learning by Disagreement over `passes` Monte-Carlo dropout passes (module docstring).

    Parameters
    ----------
    passes : int
        T, the stochastic forward passes (20, as in Gal et al. 2017's experiments).
    dropout : float
        Dropout rate on the penultimate features in those passes, in (0, 1) (0.5, as in Gal et al.).
    seed : int
        Seeds the dropout masks (the loop passes it to the learner).
    """

    name = "BALD"
    needs = frozenset({"passes"})
    tasks = ("classification", "regression")

    def __init__(self, *, passes: int = 20, dropout: float = 0.5, seed: int = 0):
        self.passes = passes
        self.dropout = dropout
        self.seed = seed

    def _check_params(self) -> None:
        check_positive_int(self.passes, name="passes")
        check_option_number(self.dropout, name="dropout", low=0.0, positive=True, high=0.999, reference=0.5)

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        passes = outputs.passes[:, problem.candidates].astype(np.float64)  # (T, n_candidates, k)
        if outputs.task == "classification":
            scores = entropy(passes.mean(axis=0)) - entropy(passes).mean(axis=0)  # (n_candidates,) mutual information
        else:
            scores = passes.var(axis=0).mean(axis=1)  # (n_candidates,) predictive variance, mean over outputs
        return top_scores(problem, scores, highest=True)
