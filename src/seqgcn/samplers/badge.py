"""BADGE: Batch Active learning by Diverse Gradient Embeddings (Ash, Zhang, Krishnamurthy, Langford & Agarwal, ICLR 2020).

Each candidate i is embedded by the gradient of the cross-entropy loss with respect to the
last layer's weights, taking the predicted class ŷ_i as its label:

    g_i = (p_i − e_{ŷ_i}) ⊗ h_i        (C·d,)     p_i softmax (C,), h_i penultimate features (d,)

and the batch is the k-means++ seeding of {g_i}: the first pick has the largest ‖g_i‖, each
next one is drawn with probability proportional to D(g_i)², its squared distance to the
nearest pick so far (the authors' ``init_centers``; scikit-activeml's ``Badge`` does the same).
Labelled items are not centres, as in both.

No C·d-wide matrix is built: ‖g_i − g_j‖² = ‖a_i‖²‖h_i‖² + ‖a_j‖²‖h_j‖² − 2 (a_i·a_j)(h_i·h_j)
with a = p − e_ŷ, so each pick costs one product with the features (n, d) and one with the
probabilities (n, C). When every remaining candidate coincides with a pick (all D² = 0), the
next one is drawn uniformly among the rest (scikit-activeml's rule; the authors' code stops).
"""

from __future__ import annotations

import numpy as np

from seqgcn.samplers.base import LearnerOutputs, OutputSampler, Problem


class BADGE(OutputSampler):
    """k-means++ seeding on last-layer gradient embeddings (module docstring).

    Parameters
    ----------
    seed : int
        Seeds the D²-weighted draws. Same inputs and seed, same picks.
    """

    name = "BADGE"
    needs = frozenset({"features", "probs"})

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        h = outputs.features[problem.candidates]  # (n, d) float32
        p = outputs.probs[problem.candidates].astype(np.float64)  # (n, C)
        picks = kmeanspp_picks(h, p, problem.budget, np.random.default_rng(self.seed))
        return problem.candidates[picks]


def gradient_factors(features: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a = p − e_ŷ (n, C) float64 and ‖g‖² = ‖a‖²‖h‖² (n,) float64 of the gradient embeddings g = a ⊗ h."""
    a = probs.astype(np.float64, copy=True)  # (n, C)
    a[np.arange(len(a)), probs.argmax(axis=1)] -= 1.0
    h_sq = np.einsum("ij,ij->i", features, features, dtype=np.float64)  # (n,)
    return a, (a * a).sum(axis=1) * h_sq


def squared_distances_to(index: int, features: np.ndarray, a: np.ndarray, g_sq: np.ndarray) -> np.ndarray:
    """‖g_i − g_index‖² for every row i (n,) float64, from the factors (never the (n, C·d) embedding)."""
    hh = (features @ features[index]).astype(np.float64)  # (n,)
    aa = a @ a[index]  # (n,)
    return np.maximum(g_sq + g_sq[index] - 2.0 * aa * hh, 0.0)  # cancellation can dip below 0


def kmeanspp_picks(features: np.ndarray, probs: np.ndarray, budget: int, rng: np.random.Generator,
                   *, on_step=None) -> np.ndarray:
    """Rows (budget,) of the k-means++ seeding of the gradient embeddings, in pick order.

    on_step(step, weights) : called before each draw with the D² weights (n,) it is drawn from (tests).
    """
    a, g_sq = gradient_factors(features, probs)
    n = len(a)
    picked = np.empty(budget, dtype=np.int64)
    d2 = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)
    for step in range(budget):
        if step == 0:
            weights = g_sq.copy()
            pick = int(np.argmax(weights))  # the largest gradient norm
        else:
            weights = np.where(taken, 0.0, d2)
            if weights.sum() <= 0.0:  # every candidate left coincides with a pick: uniform over the rest
                weights = (~taken).astype(np.float64)
            cumulative = np.cumsum(weights)
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            pick = min(pick, n - 1)
            while taken[pick] or weights[pick] == 0.0:  # a zero-width step can only be hit at the edge
                pick = (pick + 1) % n
        if on_step is not None:
            on_step(step, weights)
        picked[step] = pick
        taken[pick] = True
        d2 = np.minimum(d2, squared_distances_to(pick, features, a, g_sq))
    return picked
