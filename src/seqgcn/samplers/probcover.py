"""ProbCover (Yehuda, Dekel, Hacohen & Weinshall, NeurIPS 2022): greedy maximum coverage of δ-balls.

As in the authors' code (avihu111/TypiClust, ``deep-al/pycls/al/prob_cover.py``):

1. the features of L ∪ D_S are L2-normalised and joined by the directed graph i → j iff
   ‖x_i − x_j‖ < δ (self-loops included), kept as neighbour lists;
2. every item reachable from a labelled item is covered; each pick is the candidate with the most
   uncovered out-neighbours (lowest index on ties, as their ``argmax``), whose out-neighbours then
   become covered. When nothing is left to cover, the rest of the batch is drawn at random among
   the candidates (the paper's rule; the authors' code would take row 0, a labelled item).

δ by the purity rule of the paper (§4, "choosing δ"): k-means with K = `classes` clusters on the same
features; a ball B_δ(x) is pure when every item in it shares x's cluster; δ is the largest radius
whose share of pure balls is at least `alpha` = 0.95. With d(x) the distance from x to the nearest
item of another cluster, B_δ(x) is pure iff d(x) ≥ δ, so the largest such δ is an order statistic of d,
found exactly, where the authors scan a grid of radii. Give `delta` to fix it instead.

Exact neighbours (the default): d(x) compares each item with every item of the other clusters (about N²
distances, in row blocks); the δ-graph then compares an item whose ball is pure (d(x) ≥ δ, a share `alpha`
of them) with its own cluster only, and the others with every item: the graph of all N² pairs, cheaper.
"""

from __future__ import annotations

import numpy as np

from seqgcn.checks import check_int
from seqgcn.samplers.base import Problem, check_flag, check_option_number
from seqgcn.samplers.neighbours import distance_to_other_group, radius_graph, transpose
from seqgcn.samplers.typiclust import OnNormalizedFeatures, kmeans_labels


class ProbCover(OnNormalizedFeatures):
    """Greedy coverage of δ-balls around the picks (module docstring).

    Parameters
    ----------
    delta : float or None
        Ball radius, in units of the (normalised) features; None: the purity rule.
    alpha : float
        Purity required by the rule, in (0, 1) (paper: 0.95).
    classes : int
        K of the purity rule's k-means: the number of classes (default 10, as CIFAR-10 and the digits).
    normalize : bool
        L2-normalise the features first (authors: true). Without it an explicit `delta` is in units of
        the features after seqgcn's exact power-of-two rescale (`seqgcn.checks.check_features`).
    seed : int
        Seeds k-means and the random picks once everything is covered.
    """

    name = "ProbCover"

    def __init__(self, *, delta: float | None = None, alpha: float = 0.95, classes: int = 10, normalize: bool = True,
                 seed: int = 0):
        self.delta = delta
        self.alpha = alpha
        self.classes = classes
        self.normalize = normalize
        self.seed = seed

    def _check_params(self) -> None:
        if self.delta is not None:
            check_option_number(self.delta, name="delta", positive=True)
        check_option_number(self.alpha, name="alpha", positive=True, high=1.0, reference=0.95)
        check_int(self.classes, name="classes", low=2)
        check_flag(self.normalize, name="normalize")

    def _select(self, problem: Problem) -> np.ndarray:
        nodes = np.concatenate([problem.labelled, problem.candidates])  # (N,) L first
        x = self._normalized(problem.features[nodes])  # (N, d)
        delta, clusters, to_other = self.delta, None, None
        if delta is None:
            clusters = kmeans_labels(x, min(self.classes, len(nodes)), seed=self.seed)  # (N,)
            to_other = distance_to_other_group(x, clusters)  # (N,)
            delta = purity_delta(to_other, alpha=self.alpha)
        self.diagnostics_ = {"delta": float(delta)}
        indptr, indices = radius_graph(x, delta, groups=clusters, to_other=to_other)
        picks = greedy_cover(indptr, indices, n_labelled=len(problem.labelled), budget=problem.budget,
                             rng=np.random.default_rng(self.seed))
        return nodes[picks]


def purity_delta(to_other: np.ndarray, *, alpha: float) -> float:
    """The largest δ such that at least a share `alpha` of the balls {y : ‖x − y‖ < δ} hold one cluster only.

    B_δ(x_i) is pure iff d_i ≥ δ, d_i = `to_other`[i] the distance to the nearest row of another cluster
    (`distance_to_other_group`); so with d sorted ascending and m = ⌊(1 − alpha)·n⌋ rows allowed impure,
    δ = d_(m) (0-based).
    """
    d = np.sort(to_other)  # (n,)
    m = int(np.floor((1.0 - alpha) * len(d) + 1e-9))
    delta = float(d[min(m, len(d) - 1)])
    if not np.isfinite(delta) or delta <= 0.0:  # one cluster only, or duplicates across clusters
        finite = d[np.isfinite(d) & (d > 0)]
        delta = float(finite.min()) if finite.size else 1.0
    return delta


def greedy_cover(indptr: np.ndarray, indices: np.ndarray, *, n_labelled: int, budget: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Rows (budget,) picked greedily among rows n_labelled.. : most uncovered out-neighbours first.

    The first `n_labelled` rows are labelled: what they reach is covered from the start.
    """
    n = len(indptr) - 1
    t_indptr, t_indices = transpose(indptr, indices, n)  # who reaches each row
    covered = np.zeros(n, dtype=bool)
    degree = np.diff(indptr).astype(np.int64)  # uncovered out-neighbours of each row

    def cover(rows: np.ndarray) -> None:
        rows = rows[~covered[rows]]
        covered[rows] = True
        for j in rows:  # each row is covered once: O(edges) in all
            degree[t_indices[t_indptr[j]:t_indptr[j + 1]]] -= 1

    for i in range(n_labelled):
        cover(indices[indptr[i]:indptr[i + 1]])
    available = np.ones(n, dtype=bool)
    available[:n_labelled] = False
    picks = []
    for _ in range(budget):
        scores = np.where(available, degree, -1)
        best = int(np.argmax(scores))
        if scores[best] <= 0:  # nothing left to cover: random among the candidates left
            best = int(rng.choice(np.flatnonzero(available)))
        picks.append(best)
        available[best] = False
        cover(indices[indptr[best]:indptr[best + 1]])
    return np.asarray(picks, dtype=np.int64)
