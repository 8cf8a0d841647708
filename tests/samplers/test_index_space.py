"""Samplers answer in GLOBAL indices (rows of the original features), never positions within D_S.

Column 0 of every feature matrix holds the row's own global index, so the rows a
sampler picks can be traced back to the items they describe; D_S is a strict
subset of the unlabelled items drawn at random, so a position inside D_S is in
general not the global index of the item at that position.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqgcn.samplers import available_samplers, get_sampler, sampler_class
from seqgcn.samplers.base import FeatureSampler

FEATURE_SAMPLERS = [m for m in available_samplers() if issubclass(sampler_class(m), FeatureSampler)]  # VAAL / LearningLoss: tests/samplers/test_baselines.py

FAST_GCN = {"hidden": 8, "epochs": 3}


def make_sampler(name: str, seed: int = 0):
    sampler = get_sampler(name, seed=seed)
    if hasattr(sampler, "hidden"):  # the GCN samplers
        sampler = get_sampler(name, seed=seed, **FAST_GCN)
    return sampler


def self_indexing_features(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 1 + m) float32: column 0 is the row's global index, the rest non-negative noise."""
    noise = rng.random((n, m), dtype=np.float32)
    return np.hstack([np.arange(n, dtype=np.float32)[:, None], noise])


@st.composite
def index_problems(draw):
    n = draw(st.integers(6, 40))
    m = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    features = self_indexing_features(n, m, rng)
    perm = rng.permutation(n)
    n_lab = draw(st.integers(1, n - 3))  # at least one labelled (GCN samplers need it)
    labelled = perm[:n_lab]  # unsorted, as a user may pass them
    unlabelled = perm[n_lab:]
    n_cand = draw(st.integers(1, unlabelled.size - 1))  # D_S: a strict subset of the unlabelled
    candidates = unlabelled[:n_cand]  # unsorted, random global indices
    budget = draw(st.integers(1, n_cand))
    seed = draw(st.integers(0, 2**31 - 1))
    return features, labelled, candidates, budget, seed


def check_global(picked, features, labelled, candidates, budget):
    picked = np.asarray(picked)
    assert picked.dtype == np.int64 and picked.shape == (budget,)
    assert np.unique(picked).size == budget  # unique
    assert picked.min() >= 0 and picked.max() < features.shape[0]  # rows of the original features
    rows = features[picked]
    # the rows picked describe items of D_S (their encoded global index is in D_S) ...
    assert set(rows[:, 0].astype(np.int64).tolist()) <= set(candidates.tolist())
    # ... and are exactly rows of D_S, not merely rows with a matching index column
    cand_rows = {tuple(r) for r in features[candidates].tolist()}
    assert all(tuple(r) in cand_rows for r in rows.tolist())
    assert not set(picked.tolist()) & set(labelled.tolist())


@pytest.mark.filterwarnings("ignore:.*negative cosine:RuntimeWarning")
@pytest.mark.parametrize("name", FEATURE_SAMPLERS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=index_problems())
def test_picks_are_global_rows_of_candidates(name, problem):
    features, labelled, candidates, budget, seed = problem
    picked = make_sampler(name, seed).select(features, labelled, budget, candidates=candidates)
    check_global(picked, features, labelled, candidates, budget)

    # The order of the candidates argument is irrelevant: same picks, same seed.
    shuffled = np.random.default_rng(seed).permutation(candidates)
    again = make_sampler(name, seed).select(features, labelled, budget, candidates=shuffled)
    check_global(again, features, labelled, candidates, budget)
    if name == "Random":
        assert set(again.tolist()) == set(picked.tolist())


@pytest.mark.filterwarnings("ignore:.*negative cosine:RuntimeWarning")
@pytest.mark.parametrize("name", FEATURE_SAMPLERS)
def test_positions_would_be_labelled(name):
    """D_S at the top of the pool, labelled at the bottom: positions 0..k-1 in D_S are labelled items.

    A sampler returning positions within D_S instead of global indices would pick labelled items here.
    """
    n = 30
    features = self_indexing_features(n, 3, np.random.default_rng(5))
    labelled = np.arange(10)
    candidates = np.arange(20, 30)
    picked = make_sampler(name).select(features, labelled, 6, candidates=candidates)
    check_global(picked, features, labelled, candidates, 6)
    assert picked.min() >= 20
