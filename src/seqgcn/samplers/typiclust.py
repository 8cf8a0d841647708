"""TypiClust (Hacohen, Dekel & Weinshall, ICML 2022): the most typical item of each uncovered cluster.

As in the authors' code (avihu111/TypiClust, ``deep-al/pycls/al/typiclust.py``):

1. the features of L ∪ D_S are L2-normalised (their ``load_features(normalized=True)``) and clustered
   by k-means into K = min(|L| + budget, `max_clusters` = 500) clusters (scikit-learn ``KMeans``
   for K ≤ 50, ``MiniBatchKMeans(batch_size=5000)`` above, as theirs; seeded here);
2. clusters of at most `min_cluster_size` = 5 items are dropped; the rest are visited in order of
   fewest labelled items, then largest size (then lowest cluster id), cycling when the budget
   exceeds their number;
3. in the visited cluster, among its items not labelled or picked yet, the pick maximises the
   typicality 1 / (mean squared distance to its k nearest such items + 1e-5), with
   k = min(`k_nn` = 20, size // 2).

Where this differs from the authors' code, only where theirs would fail: a visited cluster with no
item left is skipped; a cluster of one item left gives that item; if every cluster is too small, all
clusters are visited. scikit-activeml's ``TypiClust`` differs from the authors' (docs/samplers.md).
"""

from __future__ import annotations

import numpy as np

from seqgcn.checks import check_int
from seqgcn.samplers.base import FeatureSampler, Problem, check_flag
from seqgcn.samplers.neighbours import mean_knn_sq_distance

KMEANS_EXACT_UP_TO = 50  # clusters: KMeans up to here, MiniBatchKMeans above (authors' threshold)
MINIBATCH = 5000  # MiniBatchKMeans batch size (authors' value)
NORMALIZE_ROWS = 8192  # rows per chunk of `normalized`: (8192, 512) float64 = 34 MB


class OnNormalizedFeatures(FeatureSampler):
    """A feature sampler that L2-normalises the rows first when ``self.normalize`` (TypiClust, ProbCover): then a
    positive factor per row changes nothing, otherwise only a common one."""

    normalize: bool = True

    @property
    def scale_invariance(self) -> str:
        return "rows" if self.normalize else "matrix"

    def _normalized(self, x: np.ndarray) -> np.ndarray:
        return normalized(x) if self.normalize else x


class TypiClust(OnNormalizedFeatures):
    """Typical items of uncovered k-means clusters (module docstring).

    Parameters
    ----------
    k_nn : int
        Neighbours in the typicality (authors: 20).
    min_cluster_size : int
        Clusters of at most this many items are never visited (authors: 5).
    max_clusters : int
        Upper bound on K (authors: 500).
    normalize : bool
        L2-normalise the features first (authors: true).
    seed : int
        Seeds k-means.
    """

    name = "TypiClust"

    def __init__(self, *, k_nn: int = 20, min_cluster_size: int = 5, max_clusters: int = 500, normalize: bool = True,
                 seed: int = 0):
        self.k_nn = k_nn
        self.min_cluster_size = min_cluster_size
        self.max_clusters = max_clusters
        self.normalize = normalize
        self.seed = seed

    def _check_params(self) -> None:
        check_int(self.k_nn, name="k_nn", low=1)
        check_int(self.min_cluster_size, name="min_cluster_size", low=0)
        check_int(self.max_clusters, name="max_clusters", low=1)
        check_flag(self.normalize, name="normalize")

    def _select(self, problem: Problem) -> np.ndarray:
        nodes = np.concatenate([problem.labelled, problem.candidates])  # (N,) L first, as the authors order them
        x = self._normalized(problem.features[nodes])  # (N, d)
        n_clusters = min(len(problem.labelled) + problem.budget, self.max_clusters, len(nodes))
        clusters = kmeans_labels(x, n_clusters, seed=self.seed)  # (N,)
        open_ = np.zeros(len(nodes), dtype=bool)
        open_[len(problem.labelled):] = True  # candidates not picked yet
        visit = visiting_order(clusters, n_labelled=len(problem.labelled), n_clusters=n_clusters,
                               min_size=self.min_cluster_size)
        picked = []
        step = 0
        while len(picked) < problem.budget:
            members = np.flatnonzero(open_ & (clusters == visit[step % len(visit)]))
            step += 1
            if members.size == 0:
                if not np.isin(visit, clusters[open_]).any():
                    visit = np.unique(clusters[open_])  # every visited cluster is used up: the rest, by id
                continue
            k = min(self.k_nn, members.size // 2)
            if k == 0:
                best = members[0]
            else:
                typicality = 1.0 / (mean_knn_sq_distance(x[members], k) + 1e-5)  # (size,)
                best = members[int(np.argmax(typicality))]
            picked.append(nodes[best])
            open_[best] = False
        return np.asarray(picked, dtype=np.int64)


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32; computed in float64, `NORMALIZE_ROWS` rows at a
    time, so the float64 copies are small (each row's result does not depend on the chunk it is in)."""
    out = np.empty(x.shape, dtype=np.float32)
    for lo in range(0, len(x), NORMALIZE_ROWS):
        part = x[lo:lo + NORMALIZE_ROWS]
        norms = np.linalg.norm(part.astype(np.float64), axis=1, keepdims=True)  # (b, 1)
        out[lo:lo + NORMALIZE_ROWS] = part / np.where(norms > 0, norms, 1.0)  # float64, rounded to float32
    return out


def kmeans_labels(x: np.ndarray, n_clusters: int, *, seed: int) -> np.ndarray:
    """Cluster ids (n,) of k-means on `x`: KMeans up to 50 clusters, MiniBatchKMeans above (the authors' split).

    On one OpenMP and BLAS thread: scikit-learn's k-means adds per-thread partial sums, so with its default
    (one thread per core, one under Ray) the clusters, hence the picks, would depend on the machine and backend.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans  # lazy: scikit-learn takes a second to import
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    seed = int(seed) % 2**32
    if n_clusters <= KMEANS_EXACT_UP_TO:
        model = KMeans(n_clusters=n_clusters, random_state=seed, n_init="auto")
    else:
        model = MiniBatchKMeans(n_clusters=n_clusters, batch_size=MINIBATCH, random_state=seed, n_init="auto")
    with threadpool_limits(limits=1):
        return model.fit_predict(x).astype(np.int64)


def visiting_order(clusters: np.ndarray, *, n_labelled: int, n_clusters: int, min_size: int) -> np.ndarray:
    """Cluster ids larger than `min_size`, by fewest labelled items (the first `n_labelled` rows), then largest, then id."""
    sizes = np.bincount(clusters, minlength=n_clusters)
    labelled = np.bincount(clusters[:n_labelled], minlength=n_clusters)
    ids = np.arange(n_clusters)
    order = ids[np.lexsort((ids, -sizes, labelled))]
    kept = order[sizes[order] > min_size]
    return kept if kept.size else order[sizes[order] > 0]
