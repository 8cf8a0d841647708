"""Exact nearest-neighbour queries on features, in row blocks: never an n × n matrix.

Exact: squared Euclidean distances come from one float32 matrix product per block,
(‖x‖² + ‖y‖²) − 2 x·y (the method of faiss's ``IndexFlatL2``), written into one (BLOCK_ROWS, n)
buffer per worker thread; the norms are added a column chunk at a time, so no other (BLOCK_ROWS, n)
array is made. Blocks run under `seqgcn.graph.RowBlocks`: every torch op on one intra-op thread, the
blocks spread over torch's thread count of workers, each block writing only its own rows, so no
distance depends on the number of threads. Used by TypiClust (k-NN typicality) and ProbCover (the
δ-ball graph and the purity rule for δ).
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from seqgcn.graph import RowBlocks

BLOCK_ROWS = 512  # rows per distance block: one (512, 100,000) float32 buffer per worker = 205 MB
COLUMN_CHUNK = 8192  # columns per norm sum: a (512, 8192) float32 temporary, 16 MB
PURE_MARGIN = 1e-4  # relative: a row counts as pure (own group only) when its other-group distance ≥ radius × (1 + this)


class _Blocks:
    """Squared distances of row blocks of `x` to column ranges of `x`, into a per-thread buffer.

    ``d2 = blocks.distances(rows, lo, hi)`` is (len(rows), hi − lo) float32 ≥ 0, each entry
    (‖x_i‖² + ‖x_j‖²) − 2 x_i·x_j in float32, clamped at 0; a view of the calling thread's buffer, valid
    until that thread's next call. Entries do not depend on the block or range they come in.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.sq = (x * x).sum(dim=1)  # (n,)
        self._local = threading.local()

    def distances(self, rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        b, c = len(rows), hi - lo
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer.numel() < b * c:
            buffer = self._local.buffer = torch.empty(BLOCK_ROWS * len(self.x))
        d2 = buffer[:b * c].view(b, c)
        torch.mm(self.x[rows], self.x[lo:hi].T, out=d2)  # (b, c) x·y
        sq_rows = self.sq[rows, None]  # (b, 1)
        for s in range(0, c, COLUMN_CHUNK):
            part = d2[:, s:s + COLUMN_CHUNK]
            part.mul_(-2.0).add_(sq_rows + self.sq[None, lo + s:lo + s + part.shape[1]])  # −2 x·y exact, then + (‖x‖² + ‖y‖²)
        return d2.clamp_(min=0.0)


def _tensor(features: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))


def mean_knn_sq_distance(features: np.ndarray, k: int) -> np.ndarray:
    """(n,) mean squared distance of each row to its `k` nearest other rows (k < n), float64."""
    x = _tensor(features)
    blocks = _Blocks(x)
    out = np.empty(len(x), dtype=np.float64)

    def block(_, rows: slice) -> None:
        index = torch.arange(rows.start, rows.stop)
        d2 = blocks.distances(index, 0, len(x))  # (b, n)
        d2[torch.arange(len(index)), index] = float("inf")  # not its own neighbour
        out[rows] = torch.topk(d2, k, dim=1, largest=False).values.double().mean(dim=1).numpy()

    with RowBlocks(len(x), block_rows=BLOCK_ROWS) as row_blocks:
        row_blocks.map(block)
    return out


def _by_group(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by group (ascending within a group), and the bounds (n_groups + 1,) of each group in that order."""
    order = np.argsort(groups, kind="stable")
    sizes = np.unique(groups, return_counts=True)[1]
    return order, np.concatenate([[0], np.cumsum(sizes)])


def _group_blocks(bounds: np.ndarray):
    """(start, stop, lo, hi): blocks of at most BLOCK_ROWS positions start:stop of the grouped order, within the group lo:hi."""
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        for start in range(lo, hi, BLOCK_ROWS):
            yield start, min(start + BLOCK_ROWS, hi), int(lo), int(hi)


def distance_to_other_group(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n,) distance of each row to the nearest row of another group (inf when there is none), float64.

    The rows are put in group order once, so a block of one group's rows is compared with the rows
    before and after its group: no distance to its own group is computed, and no mask is needed.
    """
    order, bounds = _by_group(np.asarray(groups))
    x = _tensor(np.asarray(features)[order])  # (n, m) grouped
    blocks = _Blocks(x)
    jobs = list(_group_blocks(bounds))
    nearest = np.full(len(x), np.inf)  # (n,) squared, in grouped order

    def block(i, _) -> None:
        start, stop, lo, hi = jobs[i]
        rows = torch.arange(start, stop)
        for a, b in ((0, lo), (hi, len(x))):
            if b > a:
                got = blocks.distances(rows, a, b).min(dim=1).values.double().numpy()
                nearest[start:stop] = np.minimum(nearest[start:stop], got)

    with RowBlocks(len(jobs), block_rows=1) as row_blocks:
        row_blocks.map(block)
    out = np.empty(len(x))
    out[order] = torch.from_numpy(nearest).sqrt().numpy()  # torch's square root: the same δ, to the bit, as earlier releases
    return out


def radius_graph(features: np.ndarray, radius: float, *, groups: np.ndarray | None = None,
                 to_other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rows within distance < `radius` of each row, itself included, as CSR (indptr (n + 1,), indices) int64.

    Each row's columns are ascending. Distances are float32 sums, so a pair within a rounding error of
    `radius` may be an edge one way only; `transpose` gives the reverse lists exactly.

    groups, to_other : (n,) each, optional: a grouping of the rows and each row's distance to the nearest
        row of another group (`distance_to_other_group`). A row with ``to_other ≥ radius × (1 + 1e-4)`` has
        no neighbour outside its group, so it is compared with its own group only: the same graph (the
        distances are the same float32 numbers), at the cost of the group, not of all n rows. ProbCover's
        purity rule makes this hold for a share `alpha` of the rows.
    """
    x_in = np.asarray(features)
    n = len(x_in)
    if groups is None:
        order, bounds = np.arange(n), np.array([0, n])
        pure = np.zeros(n, dtype=bool)
    else:
        order, bounds = _by_group(np.asarray(groups))
        pure = np.asarray(to_other)[order] >= float(radius) * (1.0 + PURE_MARGIN)  # (n,) in grouped order
    x = _tensor(x_in if groups is None else x_in[order])  # (n, m) grouped
    blocks = _Blocks(x)
    r2 = float(radius) ** 2
    jobs = [(pure_block, rows) for start, stop, lo, hi in _group_blocks(bounds)
            for pure_block, rows in ((True, (start, stop, lo, hi)), (False, (start, stop, 0, n)))]

    def block(i, _) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grouped rows, their counts, their original columns, ascending in each row) of the rows job i covers."""
        pure_block, (start, stop, lo, hi) = jobs[i]
        rows = np.flatnonzero(pure[start:stop] == pure_block) + start
        if rows.size == 0:
            return rows, rows, rows
        d2 = blocks.distances(torch.from_numpy(rows), lo, hi)  # (b, hi − lo)
        d2[torch.arange(len(rows)), torch.from_numpy(rows - lo)] = 0.0  # a row's distance to itself, exactly
        r, c = torch.nonzero(d2 < r2, as_tuple=True)  # row-major: by row, then column
        r, columns = r.numpy(), order[c.numpy() + lo]  # a group's rows are ascending in `order`; all n rows are not
        if not pure_block and groups is not None:
            columns = columns[np.lexsort((columns, r))]
        return rows, np.bincount(r, minlength=len(rows)), columns

    with RowBlocks(len(jobs), block_rows=1) as row_blocks:
        parts = row_blocks.map(block)
    counts = np.zeros(n, dtype=np.int64)  # by original row
    for rows, row_counts, _ in parts:
        counts[order[rows]] = row_counts
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.empty(indptr[-1], dtype=np.int64)
    for rows, row_counts, columns in parts:
        starts = np.cumsum(row_counts) - row_counts  # (b,) where each row's columns begin in `columns`
        indices[np.arange(len(columns)) + np.repeat(indptr[order[rows]] - starts, row_counts)] = columns
    return indptr, indices


def transpose(indptr: np.ndarray, indices: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of the reversed edges: i lists every j that lists i."""
    sources = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))  # (n_edges,)
    order = np.argsort(indices, kind="stable")
    t_indptr = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=n))]).astype(np.int64)
    return t_indptr, sources[order]
