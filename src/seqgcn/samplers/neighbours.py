"""Exact nearest-neighbour queries on features, in row blocks: never an n × n matrix.

Squared Euclidean distances come from one float32 matrix product per block,
‖x‖² + ‖y‖² − 2 x·y (the method of faiss's ``IndexFlatL2``), so a block of `BLOCK_ROWS`
rows against n points holds BLOCK_ROWS × n floats. Used by TypiClust (k-NN typicality)
and ProbCover (the δ-ball graph and the purity rule for δ).
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_ROWS = 1024  # rows per distance block: 1024 × 100,000 float32 = 400 MB at most


def _blocks(x: torch.Tensor):
    """Yield (lo, hi, squared distances (hi − lo, n) float32 ≥ 0) of rows lo:hi of `x` to every row of `x`."""
    sq = (x * x).sum(dim=1)  # (n,)
    for lo in range(0, len(x), BLOCK_ROWS):
        hi = min(lo + BLOCK_ROWS, len(x))
        d2 = sq[lo:hi, None] + sq[None, :] - 2.0 * (x[lo:hi] @ x.T)  # (b, n)
        d2.clamp_(min=0.0)
        d2[torch.arange(hi - lo), torch.arange(lo, hi)] = 0.0  # a point's distance to itself, exactly
        yield lo, hi, d2


def mean_knn_sq_distance(features: np.ndarray, k: int) -> np.ndarray:
    """(n,) mean squared distance of each row to its `k` nearest other rows (k < n), float64."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    out = np.empty(len(x), dtype=np.float64)
    for lo, hi, d2 in _blocks(x):
        d2[torch.arange(hi - lo), torch.arange(lo, hi)] = float("inf")  # not its own neighbour
        nearest = torch.topk(d2, k, dim=1, largest=False).values  # (b, k)
        out[lo:hi] = nearest.double().mean(dim=1).numpy()
    return out


def distance_to_other_group(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n,) distance of each row to the nearest row of another group (inf when there is none), float64."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    g = torch.from_numpy(np.asarray(groups, dtype=np.int64))
    out = np.empty(len(x), dtype=np.float64)
    for lo, hi, d2 in _blocks(x):
        d2.masked_fill_(g[lo:hi, None] == g[None, :], float("inf"))
        out[lo:hi] = d2.min(dim=1).values.double().sqrt().numpy()
    return out


def radius_graph(features: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows within distance < `radius` of each row, itself included, as CSR (indptr (n + 1,), indices) int64.

    Distances are float32 sums, so a pair within a rounding error of `radius` may be an edge one
    way only; `transpose` gives the reverse lists exactly.
    """
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    r2 = float(radius) ** 2
    counts, columns = [], []
    for _, _, d2 in _blocks(x):
        rows, cols = torch.nonzero(d2 < r2, as_tuple=True)  # row-major: sorted by row, then column
        counts.append(torch.bincount(rows, minlength=len(d2)).numpy())
        columns.append(cols.numpy())
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    return indptr, np.concatenate(columns).astype(np.int64)


def transpose(indptr: np.ndarray, indices: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of the reversed edges: i lists every j that lists i."""
    sources = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))  # (n_edges,)
    order = np.argsort(indices, kind="stable")
    t_indptr = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=n))]).astype(np.int64)
    return t_indptr, sources[order]
