"""FeatProp (Wu et al. 2019): k-Medoids on propagated node features; pick the medoids.

Wu et al., "Active learning for graph neural networks via node feature
propagation" (arXiv:1910.07567), work on a given graph: they propagate the node
features, X̂ = S^K X (S the normalised adjacency, K = 2), cluster X̂ with
k-Medoids under the Euclidean distance, and label the medoids (real nodes, unlike
k-Means centres). The Sequential GCN paper compares against FeatProp on image
data, which has no graph, so it approximates FeatProp with a graph built from the
learner's features. Here that graph is the one of eq. 4 (`seqgcn.graph.Adjacency`,
an operator, never N×N), on the candidates followed by the labelled items:

    V  = rows of the features, L2-normalised            (N, m)
    X' = A^hops V                                       (N, m)
    P  = X'[:n_candidates]                              (n, m) the points to cluster

k-Medoids on P, alternating (Voronoi iteration, as scikit-learn-extra's
``method="alternate"``):

    init    `budget` medoids by k-means++ seeding: the first uniformly at random,
            each next one with probability ∝ squared distance to the nearest
            medoid so far (deterministic given `seed`)
    assign  every point to its nearest medoid, in blocks of rows: O(n·k·m) time,
            O(block) memory, never an (n × n) matrix
    update  in every cluster, the member with the smallest sum of distances to
            the cluster's members becomes its medoid. Clusters larger than
            `_MAX_CLUSTER` (2,000) members score every member against a random
            sample of 2,000 members (an unbiased estimate of the sum), so a
            cluster costs at most O(size·2,000·m) time; within-cluster distances
            are computed in blocks of rows. Costs within a relative 1e-4 of the
            smallest count as tied (a 2-member cluster always ties) and the
            lowest position among them wins, so float rounding (e.g. of the
            features' scale) cannot flip the choice. The costs are computed in
            float64 on coordinates centred on the cluster's mean: in float32 the
            square root of a rounded squared distance near 0 is off by ~1e-3.

The alternation stops after `iterations` rounds or when no medoid changes. A
cluster that ends empty (possible only with duplicate points) is refilled with
the candidate farthest from its assigned medoid, so the picks are always
`budget` unique candidates.

``kmedoids="fasterpam"`` uses the maintained `kmedoids` package instead
(FasterPAM, Schubert & Rousseeuw 2021; ``pip install seqgcn[kmedoids]``) from
the same k-means++ medoids: swaps until no swap lowers the total distance, on
the full (n × n) distance matrix (float32: 400 MB at n = 10,000). It reaches a
lower total distance; benchmarks/kmedoids_compare.py measures both
(docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
import torch

from seqgcn.checks import MAX_DEPTH, MAX_STEPS, InputError, check_choice, check_int, resolve_device
from seqgcn.graph import NORMALIZATIONS, Adjacency, l2_normalize
from seqgcn.samplers.base import FeatureSampler, Problem

_BLOCK_ELEMS = 1 << 24  # largest (rows × columns) distance block held at once (64 MB in float32)
KMEDOIDS = ("alternate", "fasterpam")
_MAX_CLUSTER = 2000  # larger clusters score their members against a sample of this many members
_TIE_RTOL = 1e-4  # member costs this close count as a tie (e.g. the two members of a 2-point cluster)


def _block_rows(n_cols: int) -> int:
    return max(1, _BLOCK_ELEMS // max(1, n_cols))


def _sq_dists(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (r, k) between rows of x (r, d) and of c (k, d); x_sq = (x·x).sum(1)."""
    return (x_sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]).clamp_min_(0.0)  # (r, k)


def _assign(points: torch.Tensor, p_sq: torch.Tensor, medoids: torch.Tensor):
    """Nearest medoid of every point, in blocks of rows: labels (n,) int64 and squared distances (n,)."""
    n = points.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=points.device)
    best = torch.empty(n, dtype=points.dtype, device=points.device)
    step = _block_rows(medoids.shape[0])
    for start in range(0, n, step):
        rows = slice(start, start + step)
        d2 = _sq_dists(points[rows], p_sq[rows], medoids)  # (B, k)
        best[rows], labels[rows] = d2.min(dim=1)
    return labels, best


def _sum_dists(members: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Sum of Euclidean distances from each row of members (s, d) to all rows of ref (r, d): (s,)."""
    m_sq = (members * members).sum(1)  # (s,)
    out = torch.empty(members.shape[0], dtype=members.dtype, device=members.device)
    step = _block_rows(ref.shape[0])
    for start in range(0, members.shape[0], step):
        rows = slice(start, start + step)
        out[rows] = _sq_dists(members[rows], m_sq[rows], ref).sqrt_().sum(1)  # (B,)
    return out


def kmeans_pp_init(points: torch.Tensor, k: int, *, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): k distinct positions into points (n, d).

    The first is uniform; each next is drawn with probability ∝ its squared distance
    to the nearest one so far. If every remaining point coincides with a chosen
    one (duplicates), the lowest unchosen position is taken.
    """
    n = points.shape[0]
    p_sq = (points * points).sum(1)  # (n,)
    picked = np.empty(k, dtype=np.int64)
    min_d2 = torch.full((n,), float("inf"), dtype=points.dtype, device=points.device)
    chosen = np.zeros(n, dtype=bool)
    for i in range(k):
        if i == 0:
            j = int(rng.integers(n))
        else:
            weights = min_d2.double()
            cum = torch.cumsum(weights, 0)  # (n,)
            total = float(cum[-1])
            if total > 0.0:
                j = int(torch.searchsorted(cum, torch.tensor([rng.random() * total], dtype=cum.dtype, device=cum.device), right=True))
                j = min(j, n - 1)
            if total <= 0.0 or chosen[j] or float(weights[j]) <= 0.0:
                j = int(np.flatnonzero(~chosen)[0])
        picked[i] = j
        chosen[j] = True
        d2 = (p_sq - 2.0 * (points @ points[j]) + p_sq[j]).clamp_min_(0.0)  # (n,)
        torch.minimum(min_d2, d2, out=min_d2)
        min_d2[j] = 0.0
    return picked


def fasterpam_medoids(points: torch.Tensor, k: int, *, rng: np.random.Generator, max_iter: int = 100) -> np.ndarray:
    """FasterPAM (package `kmedoids`) on the Euclidean distances of points (n, d), from k-means++ medoids; k positions."""
    try:
        import kmedoids
    except ModuleNotFoundError:
        raise InputError("kmedoids='fasterpam' needs the kmedoids package: pip install 'seqgcn[kmedoids]'") from None
    start = kmeans_pp_init(points, k, rng=rng)  # (k,)
    diss = torch.cdist(points, points).cpu().numpy().astype(np.float32, copy=False)  # (n, n)
    np.fill_diagonal(diss, 0.0)
    result = kmedoids.fasterpam(diss, start.copy(), max_iter=max_iter, n_cpu=1)  # deterministic from `start`
    return np.asarray(result.medoids, dtype=np.int64)


def total_distance(points: torch.Tensor, medoids: np.ndarray) -> float:
    """k-Medoids objective: sum over points (n, d) of the Euclidean distance to the nearest of `medoids` (positions)."""
    _, d2 = _assign(points, (points * points).sum(1), points[torch.as_tensor(medoids, device=points.device)])
    return float(d2.sqrt().double().sum())


def k_medoids(points: torch.Tensor, k: int, *, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Alternating k-Medoids on points (n, d); returns k distinct positions into points (the medoids)."""
    n = points.shape[0]
    p_sq = (points * points).sum(1)  # (n,)
    medoids = kmeans_pp_init(points, k, rng=rng)  # (k,)
    for _ in range(iterations):
        labels, d2 = _assign(points, p_sq, points[medoids])
        labels, d2 = labels.cpu().numpy(), d2.cpu().numpy()
        order = np.argsort(labels, kind="stable")
        sizes = np.bincount(labels, minlength=k)
        groups = np.split(order, np.cumsum(sizes)[:-1])  # members of each cluster, as positions
        new = np.full(k, -1, dtype=np.int64)
        for c, members in enumerate(groups):
            if members.size == 0:
                continue
            ref = members if members.size <= _MAX_CLUSTER else rng.choice(members, _MAX_CLUSTER, replace=False)
            member_t = torch.from_numpy(members).to(points.device)
            ref_t = torch.from_numpy(ref).to(points.device)
            pts = points[member_t].double()  # (size, d)
            centre = pts.mean(0)  # distances do not move with the origin; near it, |x|² − 2x·y + |y|² cancels less
            cost = _sum_dists(pts - centre, points[ref_t].double() - centre)  # (size,)
            near_best = cost <= cost.min() * (1.0 + _TIE_RTOL)  # (size,) ties within float rounding
            new[c] = members[int(torch.nonzero(near_best)[0])]  # the lowest position among them
        empty = np.flatnonzero(new < 0)
        if empty.size:  # refill with the candidates farthest from their medoid
            taken = np.zeros(n, dtype=bool)
            taken[new[new >= 0]] = True
            far = np.argsort(-d2, kind="stable")
            new[empty] = far[~taken[far]][: empty.size]
        if np.array_equal(new, medoids):
            break
        medoids = new
    return medoids


class FeatProp(FeatureSampler):
    """FeatProp baseline: propagate features over the eq. 4 graph, k-Medoids, pick the medoids.

    Nodes are the candidates D_S followed by the labelled items (only the
    candidates when nothing is labelled yet). X' = A^hops V with V the
    L2-normalised features (N, m); the candidates' rows of X' (n, m) are
    clustered into `budget` clusters by k-Medoids (see the module docstring:
    k-means++ seeding, alternating assign/update, clusters above 2,000 members
    scored against a sample of 2,000). Memory O(N·m + block); time
    O(hops·N·m² + iterations·n·budget·m).

    Parameters (all keyword-only)
    ----------
    hops : int, default 2
        Propagation steps K of X' = A^K V (Wu et al. use K = 2); 0 clusters V itself.
    iterations : int, default 10
        Most assign/update alternations of k-Medoids; it stops earlier when no
        medoid changes.
    normalization : {"column", "row"}, default "column"
        Adjacency normalisation, as the GCN samplers (reference code / paper text).
    kmedoids : {"alternate", "fasterpam"}, default "alternate"
        The hand-written alternating k-Medoids (O(n·budget·m) memory-light), or
        FasterPAM from the `kmedoids` package (lower objective; O(n²) memory).
    seed : int
        k-means++ seeding and the sample of large clusters; same seed, same selection.
    device : {"cpu", "cuda", "auto"}

    Returns the medoids' global indices in cluster order (the order their
    clusters were seeded). With budget == n_candidates every candidate is returned.
    """

    name = "FeatProp"
    scale_invariance = "rows"  # nodes are L2-normalised rows: a positive factor per row changes nothing

    def __init__(self, *, hops: int = 2, iterations: int = 10, normalization: str = "column", kmedoids: str = "alternate",
                 seed: int = 0, device: str = "cpu"):
        self.hops = hops
        self.iterations = iterations
        self.normalization = normalization
        self.kmedoids = kmedoids
        self.seed = seed
        self.device = device

    def _check_params(self) -> None:
        if isinstance(self.hops, bool) or not isinstance(self.hops, (int, np.integer)) or self.hops < 0:
            raise InputError(f"hops={self.hops!r} must be a non-negative integer (propagation steps; default 2)")
        check_int(self.hops, name="hops", low=0, high=MAX_DEPTH)
        check_int(self.iterations, name="iterations", high=MAX_STEPS)
        check_choice(self.normalization, NORMALIZATIONS, name="normalization")
        check_choice(self.kmedoids, KMEDOIDS, name="kmedoids")

    def _select(self, problem: Problem) -> np.ndarray:
        n_cand = problem.candidates.size
        if problem.budget == n_cand:  # every candidate is a medoid of its own cluster
            return problem.candidates.copy()
        device = resolve_device(self.device)
        nodes = np.concatenate([problem.candidates, problem.labelled])  # (N,) candidates first
        v = l2_normalize(torch.from_numpy(problem.features[nodes]).to(device))  # (N, m)
        adj = Adjacency(v, normalization=self.normalization)
        x = v
        for _ in range(self.hops):
            x = adj @ x  # (N, m)
        rng = np.random.default_rng(self.seed)
        points = x[:n_cand].contiguous()  # (n_candidates, m)
        if self.kmedoids == "fasterpam":
            pos = fasterpam_medoids(points, problem.budget, rng=rng)
        else:
            pos = k_medoids(points, problem.budget, iterations=self.iterations, rng=rng)
        return problem.candidates[pos]
