"""Neighbour queries: the exact blocks against a dense numpy formula."""

import numpy as np
import pytest

import torch

from seqgcn.samplers import ProbCover
from seqgcn.samplers import neighbours as nb
from seqgcn.samplers.probcover import purity_delta


def clustered(n_per=150, dim=8, seed=0) -> np.ndarray:
    """Four tight, far-apart blobs, unit-normalised as ProbCover sees them: no distance is near a boundary."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim)) * 5
    x = np.concatenate([c + rng.normal(scale=0.3, size=(n_per, dim)) for c in centres])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # (4 · n_per, dim)


def dense_squared(x: np.ndarray) -> np.ndarray:
    """(n, n) float32 squared distances by the blocks' formula, (‖x‖² + ‖y‖²) − 2 x·y, in one dense numpy step."""
    sq = (x * x).sum(1)
    return np.maximum((sq[:, None] + sq[None, :]) - 2.0 * (x @ x.T), 0.0)


def test_exact_blocks_equal_the_dense_formula_across_blocks_and_groups(monkeypatch):
    monkeypatch.setattr(nb, "BLOCK_ROWS", 64)  # many blocks, groups cut across blocks
    monkeypatch.setattr(nb, "COLUMN_CHUNK", 50)
    x = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    groups = np.random.default_rng(2).integers(0, 3, size=300)
    d2 = dense_squared(x).astype(np.float64)
    other = np.where(groups[:, None] != groups[None, :], d2, np.inf)
    assert nb.distance_to_other_group(x, groups) == pytest.approx(np.sqrt(other.min(1)), rel=1e-5)
    np.fill_diagonal(d2, 0.0)
    radius = float(np.sqrt(np.quantile(d2, 0.1)))
    to_other = nb.distance_to_other_group(x, groups)
    for graph in (nb.radius_graph(x, radius), nb.radius_graph(x, radius, groups=groups, to_other=to_other)):
        indptr, indices = graph
        expected = [np.flatnonzero(d2[i] < radius ** 2) for i in range(300)]
        assert all(np.array_equal(indices[indptr[i]:indptr[i + 1]], expected[i]) for i in range(300))


def test_grouped_graph_compares_pure_rows_within_their_group_and_gives_the_same_csr():
    x = clustered()
    groups = np.repeat(np.arange(4), 150)
    to_other = nb.distance_to_other_group(x, groups)
    delta = purity_delta(to_other, alpha=0.95)
    plain = nb.radius_graph(x, delta)
    grouped = nb.radius_graph(x, delta, groups=groups, to_other=to_other)
    assert all(np.array_equal(a, b) for a, b in zip(plain, grouped, strict=True))


def test_probcover_picks_and_delta_do_not_depend_on_torch_threads(monkeypatch):
    monkeypatch.setattr(nb, "BLOCK_ROWS", 64)  # several blocks for the workers to share
    x = np.random.default_rng(3).normal(size=(400, 16)).astype(np.float32)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)  # RowBlocks' worker count follows it
            sampler = ProbCover(classes=4, seed=0)
            results.append((sampler.select(x, np.arange(20), 30).tolist(), sampler.diagnostics_["delta"]))
    finally:
        torch.set_num_threads(before)
    assert results[0] == results[1]
