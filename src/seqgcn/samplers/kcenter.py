"""k-Center greedy (Sener & Savarese 2018), shared by CoreSet and CoreGCN.

Memory stays O(N·d): a running min-distance vector replaces the N×N distance
matrix, and the initial distances to the labelled centres are computed in blocks.
Every torch op runs on one intra-op thread, so the sums inside the distances have
one order and the picks are the same whatever the thread count or the load.
"""

from __future__ import annotations

import numpy as np
import torch

from seqgcn.graph import RowBlocks

_BLOCK_ELEMS = 1 << 24  # largest (rows × centres) distance block held at once (64 MB in float32)


def _sq_dists_to_set(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance from each row of x (n, d) to its nearest row of centres (k, d): (n,)."""
    x_sq = (x * x).sum(1)  # (n,)
    best = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    step = max(1, _BLOCK_ELEMS // max(1, x.shape[0]))
    for start in range(0, centres.shape[0], step):
        c = centres[start:start + step]  # (k', d)
        d2 = x_sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]  # (n, k')
        best = torch.minimum(best, d2.min(dim=1).values)
    return best.clamp_min_(0.0)


def k_center_greedy(points: torch.Tensor, centres: torch.Tensor, budget: int, *, generator: torch.Generator | None = None) -> np.ndarray:
    """Greedily pick `budget` rows of `points` (n, d), each the farthest from all centres so far.

    centres : (k, d) initial centres (the labelled items); may be empty (k = 0), in
        which case the first pick is a random point (drawn from `generator`).
    Returns positions into `points`, in the order picked.

    The choices do not depend on a positive common factor of points and centres,
    so both are first divided by their largest |value|: squared distances then
    stay within [0, 4·d], with no overflow (|x| ≳ 1e19 in float32) and no underflow.
    """
    with RowBlocks(points.shape[0], workers=1, device=points.device):  # one intra-op thread, restored on exit
        return _k_center_greedy(points, centres, budget, generator)


def _k_center_greedy(points: torch.Tensor, centres: torch.Tensor, budget: int, generator) -> np.ndarray:
    n = points.shape[0]
    peak = max(float(points.abs().max()), float(centres.abs().max()) if centres.numel() else 0.0)
    if peak > 0.0:
        points, centres = points / peak, centres / peak
    if centres.shape[0] > 0:
        min_d2 = _sq_dists_to_set(points, centres)  # (n,)
    else:
        min_d2 = torch.full((n,), float("inf"), dtype=points.dtype, device=points.device)
    p_sq = (points * points).sum(1)  # (n,)
    picked = np.empty(budget, dtype=np.int64)
    for i in range(budget):
        if centres.shape[0] == 0 and i == 0:
            j = int(torch.randint(n, (1,), generator=generator).item())
        else:
            j = int(torch.argmax(min_d2).item())
        picked[i] = j
        new = points[j]  # (d,)
        d2 = (p_sq - 2.0 * (points @ new) + p_sq[j]).clamp_min_(0.0)  # (n,)
        torch.minimum(min_d2, d2, out=min_d2)
        min_d2[j] = -1.0  # never pick twice, even among exact duplicates
    return picked
