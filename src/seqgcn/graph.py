"""The sampler's graph as an operator: A·Z without ever forming the N×N matrix A.

Paper eq. 4, with V the (N, m) features, each row L2-normalised:

    S = V Vᵀ                      cosine similarities, (N, N), never materialised
    A = D⁻¹ (S − I) + I           normalization="row"    (as written in the paper)
    A = (S − I) D⁻¹ + I           normalization="column" (the authors' reference code)

D is the diagonal degree matrix of S − I. S is symmetric, so its row and column
sums agree: d = V (Vᵀ 1) − 1. Since S has rank ≤ m,

    A Z = D⁻¹ (V (Vᵀ Z) − Z) + Z          (row)
    A Z = V (Vᵀ D⁻¹Z) − D⁻¹Z + Z          (column)

costs O(N·m·k) time and O(N·(m + k)) memory for Z of shape (N, k).

Ablations of the paper (§4.1): ``kind="eye"`` (A = I: the GCN becomes a dense
network) and ``kind="ones"`` (S filled with ones: every node equally similar to
every other, A = (11ᵀ − I)/(N − 1) + I under either normalisation).

Both sums over N in A Z (Vᵀ Z and, for "ones", 1ᵀ Z) split over rows, so A Z is
also computed in blocks of rows (`Adjacency.reduce_rows`, `Adjacency.apply_rows`,
`Adjacency.matmul`). `RowBlocks` runs such blocks: fixed blocks of `BLOCK_ROWS`
rows, taken by a few threads in any order, every torch op on one intra-op
thread, and the blocks' partial sums added in block order. The numbers are then
the same whatever the thread count and the machine's load; only the speed
changes.
"""

from __future__ import annotations

import itertools
import warnings
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from seqgcn.checks import InputError

NORMALIZATIONS = ("column", "row")
KINDS = ("cosine", "eye", "ones")
BLOCK_ROWS = 1024  # rows per block: a constant, so that no sum depends on the number of threads


class RowBlocks:
    """Rows 0..n_rows in fixed blocks of `block_rows`, run by `workers` threads; a context manager.

        with RowBlocks(n, workers=2) as blocks:
            parts = blocks.map(lambda i, rows: v[rows].T @ z[rows])   # one result per block, in block order
            total = blocks.sum(parts)                              # (m, k), added in block order

    On entry torch's intra-op thread count is set to 1 (restored on exit), so every
    torch op runs single-threaded: its float sums have one order, on any machine.
    The parallelism is the blocks': `map` hands them out one at a time to whichever
    thread is free, so a thread slowed by another process on its core simply runs
    fewer blocks. Which thread ran which block changes no number: each block writes
    only its own rows or returns its own partial result, and `sum` adds those in
    block order. `workers` (default: torch's thread count when the object is built)
    therefore sets the speed only. Torch ops release the GIL, so the threads run
    in parallel. Off the CPU the rows form one block, run by the calling thread.
    """

    def __init__(self, n_rows: int, *, workers: int | None = None, device="cpu", block_rows: int = BLOCK_ROWS):
        on_cpu = torch.device(device).type == "cpu"
        step = block_rows if on_cpu else max(n_rows, 1)
        self.slices = [slice(r, min(r + step, n_rows)) for r in range(0, n_rows, step)]
        self.workers = max(1, min(workers or torch.get_num_threads(), len(self.slices))) if on_cpu else 1
        self.on_cpu = on_cpu
        self._pool = None
        self._threads = None

    def __enter__(self) -> "RowBlocks":
        if self.on_cpu:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)
        if self.workers > 1:  # the calling thread is one of the workers
            self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="seqgcn-rows",
                                            initializer=torch.set_num_threads, initargs=(1,))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._threads is not None:
            torch.set_num_threads(self._threads)
            self._threads = None

    def map(self, fn) -> list:
        """``[fn(i, rows) for i, rows in enumerate(self.slices)]``, run by the workers in any order; results in block order."""
        results = [None] * len(self.slices)
        order = itertools.count()  # next() is atomic under the GIL: each block is taken exactly once

        def work() -> None:
            while (i := next(order)) < len(results):
                results[i] = fn(i, self.slices[i])

        helpers = [self._pool.submit(work) for _ in range(self.workers - 1)] if self._pool is not None else []
        try:
            work()
        finally:
            for helper in helpers:
                helper.result()
        return results

    def submit(self, fn) -> Future:
        """Run ``fn()`` on a worker thread (now, on the calling thread, with one worker); its Future."""
        if self._pool is not None:
            return self._pool.submit(fn)
        done = Future()
        done.set_result(fn())
        return done

    @staticmethod
    def sum(parts: list):
        """The blocks' partial results added in block order (None stays None)."""
        if parts[0] is None:
            return None
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows of `x` (N, m) scaled to unit Euclidean norm (zero rows stay zero).

    Each row is first divided by its largest |value|, so the squares inside the
    norm can neither overflow (|x| ≳ 1e19 in float32) nor vanish (|x| ≲ 1e-19):
    the result depends on a row's direction only, whatever its scale.
    """
    peak = x.abs().amax(dim=1, keepdim=True)  # (N, 1)
    x = x / torch.where(peak > 0, peak, torch.ones_like(peak))  # (N, m), max |x| = 1 per non-zero row
    norm = x.norm(dim=1, keepdim=True)  # (N, 1), in [1, √m] for non-zero rows
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


class Adjacency:
    """The normalised adjacency A of eq. 4 as a linear operator: ``adj @ z``.

    Parameters
    ----------
    v : Tensor, shape (N, m)
        Node features, each row already L2-normalised (see `l2_normalize`).
    normalization : {"column", "row"}
        "column" as the reference code, "row" as the paper's text.
    kind : {"cosine", "eye", "ones"}
        "cosine" is the paper's graph; "eye" and "ones" are its ablations.
    min_degree : float
        Degrees of S − I below this (possible when features have negative
        cosines, e.g. not taken after a ReLU) are raised to it, with a warning.

    A node whose feature row is all zeros has no direction, hence no cosine
    with any node: it is left isolated (its row and column of A are those of
    I), with a warning that names it as such rather than as a low degree.
    """

    def __init__(self, v: torch.Tensor, *, normalization: str = "column", kind: str = "cosine", min_degree: float = 1e-6):
        self.v = v
        self.n = v.shape[0]
        self.normalization = normalization
        self.kind = kind
        if kind == "cosine":
            zero = v.abs().amax(dim=1) == 0  # (N,) rows without a direction
            degree = v @ v.sum(0) - 1.0  # (N,) row sums of S − I, diagonal of D
            if bool(zero.any()):
                warnings.warn(
                    f"{int(zero.sum())} of {self.n} graph nodes have all-zero features (first: node "
                    f"{int(torch.nonzero(zero)[0])}): without a direction they have no cosine similarity "
                    "to any node and were left isolated. Check the feature extraction.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            low = (degree < min_degree) & ~zero
            if bool(low.any()):
                warnings.warn(
                    f"{int(low.sum())} of {self.n} graph nodes have degree < {min_degree:g} "
                    f"(min {float(degree[low].min()):.3g}): their features have mostly negative cosine "
                    "similarities with the other nodes (or are orthogonal to them); degrees were clamped. Use non-negative features (e.g. after a ReLU).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            inv_degree = 1.0 / degree.clamp_min(min_degree)  # (N,)
            self.inv_degree = torch.where(zero, 0.0, inv_degree)[:, None]  # (N, 1): 0 isolates a zero row
        elif kind == "ones":
            self.inv_degree = None
        elif kind != "eye":
            raise InputError(f"kind={kind!r} is not one of {KINDS}")

    def __matmul__(self, z: torch.Tensor) -> torch.Tensor:
        """A @ z for z of shape (N, k); returns (N, k)."""
        every = slice(0, self.n)
        return self.apply_rows(every, z, self.reduce_rows(every, z))

    def matmul(self, z: torch.Tensor, blocks: RowBlocks) -> torch.Tensor:
        """A @ z for z of shape (N, k), computed in `blocks`: the same numbers for any worker count."""
        total = blocks.sum(blocks.map(lambda _, rows: self.reduce_rows(rows, z[rows])))
        out = torch.empty_like(z)  # (N, k)
        blocks.map(lambda _, rows: out[rows].copy_(self.apply_rows(rows, z[rows], total)))
        return out

    def reduce_rows(self, rows: slice, z_rows: torch.Tensor):
        """The share of nodes `rows` in the one sum over all nodes of A @ z; z_rows = z[rows], (B, k).

        Returns (m, k): Vᵀ D⁻¹ z over these rows ("column") or Vᵀ z ("row"); (1, k): 1ᵀ z
        ("ones"); None ("eye"). Summed over all rows, it is what `apply_rows` needs.
        """
        if self.kind == "eye":
            return None
        if self.kind == "ones":
            return z_rows.sum(0, keepdim=True)  # (1, k)
        if self.normalization == "row":
            return self.v[rows].T @ z_rows  # (m, k)
        return self.v[rows].T @ (self.inv_degree[rows] * z_rows)  # (m, k)

    def apply_rows(self, rows: slice, z_rows: torch.Tensor, total) -> torch.Tensor:
        """Rows `rows` of A @ z, (B, k), from z_rows = z[rows] and `total`, the sum of `reduce_rows` over all rows."""
        if self.kind == "eye":
            return z_rows
        if self.kind == "ones":
            return (total - z_rows) / max(self.n - 1, 1) + z_rows  # (B, k)
        if self.normalization == "row":
            return self.inv_degree[rows] * (self.v[rows] @ total - z_rows) + z_rows  # (B, k)
        zd = self.inv_degree[rows] * z_rows  # (B, k) D⁻¹ z
        return self.v[rows] @ total - zd + z_rows  # (B, k)

    def transpose(self) -> "Adjacency":
        """Aᵀ, also an operator: S is symmetric, so transposing swaps row and column normalisation."""
        flipped = object.__new__(Adjacency)
        flipped.__dict__.update(self.__dict__)
        flipped.normalization = "row" if self.normalization == "column" else "column"
        return flipped

    def dense(self) -> torch.Tensor:
        """The (N, N) matrix itself: for tests and small graphs only."""
        eye = torch.eye(self.n, dtype=self.v.dtype, device=self.v.device)
        return self @ eye


def dense_adjacency(v: torch.Tensor, *, normalization: str = "column") -> torch.Tensor:
    """Eq. 4 computed literally with N×N matrices (the reference code's way). Tests and benchmarks only."""
    n = v.shape[0]
    eye = torch.eye(n, dtype=v.dtype, device=v.device)
    s = v @ v.T - eye  # (N, N)
    degree = s.sum(1)  # (N,)
    if normalization == "row":
        return s / degree[:, None] + eye
    return s / degree[None, :] + eye
