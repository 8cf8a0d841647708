import numpy as np
import pytest
import torch

import seqgcn.samplers.featprop as fp
from seqgcn.samplers import FeatProp, get_sampler


def random_problem(seed: int, n: int = 80, m: int = 6):
    """Non-negative features; 10 labelled; candidates a strict subset of the unlabelled."""
    rng = np.random.default_rng(seed)
    features = rng.random((n, m)).astype(np.float32)
    perm = rng.permutation(n)
    labelled = np.sort(perm[:10])
    candidates = np.sort(perm[10:50])  # perm[50:] are unlabelled but not candidates
    return features, labelled, candidates


def check_picks(picked, labelled, candidates, budget):
    assert picked.dtype == np.int64 and picked.shape == (budget,)
    assert len(np.unique(picked)) == budget  # unique
    assert not set(picked.tolist()) & set(labelled.tolist())  # unlabelled
    assert set(picked.tolist()) <= set(candidates.tolist())  # global indices, within candidates


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [1, 7, 39])
def test_invariants_with_a_strict_subset_of_candidates(seed, budget):
    features, labelled, candidates = random_problem(seed)
    picked = FeatProp(seed=seed).select(features, labelled, budget, candidates=candidates)
    check_picks(picked, labelled, candidates, budget)


def test_same_seed_same_selection():
    features, labelled, candidates = random_problem(3)
    a = FeatProp(seed=5).select(features, labelled, 8, candidates=candidates)
    b = FeatProp(seed=5).select(features, labelled, 8, candidates=candidates)
    assert np.array_equal(a, b)


def three_squares(rng: np.random.Generator):
    """3 clusters of 5 candidates in orthogonal subspaces, each a square around a centre point that is in the data.

    Cluster k lives in dims 3k..3k+2: centre 10·e_{3k}, the others 10·e_{3k} ± 0.5·e_{3k+1},
    10·e_{3k} ± 0.5·e_{3k+2} (same norm, so L2-normalising keeps the square). Cosines
    across subspaces are 0, so the graph, and the propagated features, keep each
    square's symmetry: the centre stays the unique medoid. Labelled items and
    non-candidate items live in dims 9..11. Rows are shuffled; returns global indices.
    """
    rows, centres = [], []
    for k in range(3):
        centre = np.zeros(12)
        centre[3 * k] = 10.0
        centres.append(len(rows))
        rows.append(centre)
        for dim in (3 * k + 1, 3 * k + 2):
            for sign in (1.0, -1.0):
                p = centre.copy()
                p[dim] = sign * 0.5
                rows.append(p)
    n_cand = len(rows)
    others = np.zeros((6, 12))
    others[:, 9:] = 1.0 + rng.random((6, 3))
    features = np.vstack([np.array(rows), others]).astype(np.float32)
    perm = rng.permutation(features.shape[0])  # new row i holds old row perm[i]
    where = np.argsort(perm)  # old row j is now at where[j]
    candidates = np.sort(where[:n_cand])
    labelled = np.sort(where[n_cand:n_cand + 4])  # the last 2 "others" are unlabelled non-candidates
    return features[perm], labelled, candidates, np.sort(where[centres])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_known_answer_picks_each_cluster_centre(seed):
    features, labelled, candidates, centres = three_squares(np.random.default_rng(seed))
    picked = FeatProp(seed=seed).select(features, labelled, 3, candidates=candidates)
    assert sorted(picked.tolist()) == centres.tolist()


def test_known_answer_without_propagation_and_with_row_normalization():
    features, labelled, candidates, centres = three_squares(np.random.default_rng(7))
    for sampler in (FeatProp(hops=0), FeatProp(normalization="row")):
        assert sorted(sampler.select(features, labelled, 3, candidates=candidates).tolist()) == centres.tolist()


def test_empty_labelled_set_works():
    features, _, _ = random_problem(4, n=30)
    picked = FeatProp(seed=0).select(features, [], 5)
    check_picks(picked, np.array([], dtype=np.int64), np.arange(30), 5)
    # the known answer also holds with a graph on the candidates only
    f, _, candidates, centres = three_squares(np.random.default_rng(0))
    assert sorted(FeatProp().select(f[candidates], [], 3).tolist()) == np.searchsorted(candidates, centres).tolist()


def test_budget_equal_to_all_candidates_returns_them_all():
    features, labelled, candidates = random_problem(5)
    picked = FeatProp().select(features, labelled, candidates.size, candidates=candidates)
    assert sorted(picked.tolist()) == candidates.tolist()


def test_duplicate_points_still_give_unique_picks():
    """All points equal: seeding falls back to unchosen positions, empty clusters are refilled."""
    features = np.ones((12, 4), dtype=np.float32)
    picked = FeatProp().select(features, [0, 1], 5)
    check_picks(picked, np.array([0, 1]), np.arange(2, 12), 5)


def test_large_cluster_sampling_and_blocked_distances(monkeypatch):
    features, labelled, candidates, centres = three_squares(np.random.default_rng(1))
    monkeypatch.setattr(fp, "_BLOCK_ELEMS", 7)  # blocks of a few rows in assignment and update
    assert sorted(FeatProp(seed=1).select(features, labelled, 3, candidates=candidates).tolist()) == centres.tolist()
    monkeypatch.setattr(fp, "_MAX_CLUSTER", 3)  # every cluster scored against a sample of 3 members
    features, labelled, candidates = random_problem(6)
    check_picks(FeatProp(seed=1).select(features, labelled, 4, candidates=candidates), labelled, candidates, 4)


def test_blocked_assignment_matches_direct(monkeypatch):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((50, 4)).astype(np.float32))
    c = torch.from_numpy(rng.random((6, 4)).astype(np.float32))
    direct = torch.cdist(x, c).min(1)
    monkeypatch.setattr(fp, "_BLOCK_ELEMS", 6 * 7)  # blocks of 7 rows, the last one short
    labels, d2 = fp._assign(x, (x * x).sum(1), c)
    assert torch.equal(labels, direct.indices)
    torch.testing.assert_close(d2, direct.values ** 2, atol=1e-5, rtol=1e-5)


def test_registered_and_errors_pinned():
    assert isinstance(get_sampler("featprop", hops=1), FeatProp)
    features, labelled, _ = random_problem(0, n=20)
    with pytest.raises(ValueError, match=r"hops=-1 must be a non-negative integer"):
        FeatProp(hops=-1).select(features, labelled, 2)
    with pytest.raises(ValueError, match=r"iterations=0 must be a positive integer"):
        FeatProp(iterations=0).select(features, labelled, 2)
    with pytest.raises(ValueError, match=r"normalization='both' is not one of 'column', 'row'"):
        FeatProp(normalization="both").select(features, labelled, 2)
