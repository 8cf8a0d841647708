"""The strong baselines on hand-computed answers: uncertainty sampling, BALD, BADGE, TypiClust, ProbCover."""

import numpy as np
import pytest

from seqgcn.checks import InputError
from seqgcn.samplers import BADGE, BALD, Entropy, LeastConfidence, LearnerOutputs, Margin, ProbCover, TypiClust, get_sampler
from seqgcn.samplers.badge import gradient_factors, kmeanspp_picks, squared_distances_to
from seqgcn.samplers.neighbours import distance_to_other_group, mean_knn_sq_distance, radius_graph, transpose
from seqgcn.samplers.probcover import greedy_cover, purity_delta

PROBS = np.array([[0.90, 0.05, 0.05],   # confident
                  [0.40, 0.35, 0.25],   # small margin, high entropy
                  [0.50, 0.50, 0.00],   # zero margin
                  [0.34, 0.33, 0.33],   # near uniform: least confident, highest entropy
                  [0.70, 0.20, 0.10]], dtype=np.float32)


def outputs(**fields):
    return LearnerOutputs(**fields)


def test_uncertainty_scores_pick_the_hand_computed_items():
    lab = []
    assert list(LeastConfidence().select(outputs(probs=PROBS), lab, 2)) == [3, 1]  # 1 − max: .66, .60, .50, ...
    assert list(Margin().select(outputs(probs=PROBS), lab, 3)) == [2, 3, 1]  # margins 0, .01, .05
    assert list(Entropy().select(outputs(probs=PROBS), lab, 2)) == [3, 1]
    assert list(Margin().select(outputs(probs=PROBS), [2, 3], 1)) == [1]  # labelled items are never picked


def test_uncertainty_sampling_equals_scikit_activeml_on_the_same_probabilities():
    skal = pytest.importorskip("skactiveml.pool._uncertainty_sampling")
    probs = np.random.default_rng(3).dirichlet(np.ones(6), size=400).astype(np.float32)
    for cls, method in ((LeastConfidence, "least_confident"), (Margin, "margin_sampling"), (Entropy, "entropy")):
        theirs = skal.uncertainty_scores(probs.astype(np.float64), method=method)  # (n,), higher = picked first
        ours = cls().select(outputs(probs=probs), [0, 1], 25)
        rest = np.argsort(-np.where(np.isin(np.arange(400), [0, 1]), -np.inf, theirs), kind="stable")[:25]
        assert list(ours) == list(rest), method


def test_bald_is_zero_when_passes_agree_and_log2_for_two_opposite_passes():
    agree = np.tile(np.array([[0.5, 0.5]], dtype=np.float32), (2, 1, 1))  # (T=2, 1, 2): uncertain but no disagreement
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=np.float32)  # confident passes that disagree
    passes = np.concatenate([agree, split], axis=1)  # (2, 2, 2): item 0 agree, item 1 split
    sampler = BALD(passes=2)
    assert list(sampler.select(outputs(passes=passes), [], 1)) == [1]
    from seqgcn.samplers.uncertainty import entropy
    mi = entropy(passes.mean(0)) - entropy(passes).mean(0)
    assert mi == pytest.approx([0.0, np.log(2)])


def test_bald_on_a_regressor_picks_the_largest_predictive_variance():
    rng = np.random.default_rng(0)
    passes = rng.normal(size=(10, 6, 3)).astype(np.float32) * np.array([1, 1, 5, 1, 2, 1], dtype=np.float32)[None, :, None]
    picked = BALD().select(LearnerOutputs(passes=passes, task="regression"), [], 2)
    assert list(picked) == [2, 4]


def test_probability_samplers_refuse_a_regressor_and_bad_probabilities():
    with pytest.raises(InputError, match="cannot pick for a regression learner"):
        Margin().select(LearnerOutputs(probs=PROBS, task="regression"), [], 1)
    bad = PROBS.copy()
    bad[1, 0] = 0.9
    with pytest.raises(InputError, match="sum to 1"):
        Entropy().select(outputs(probs=bad), [], 1)
    with pytest.raises(InputError, match="features, which were not given"):
        BADGE().select(outputs(probs=PROBS), [], 1)
    with pytest.raises(InputError, match=r"dropout=1.5 must be a number in \(0, 0.999\]"):
        get_sampler("BALD(dropout=1.5)")
    with pytest.raises(InputError, match=r"alpha=2 must be a number in \(0, 1\] \(reference: 0.95\)"):
        get_sampler("ProbCover(alpha=2)")


def test_badge_distances_from_factors_equal_the_explicit_gradient_embedding():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(50, 7)).astype(np.float32)
    p = rng.dirichlet(np.ones(4), size=50)
    a, g_sq = gradient_factors(h, p)
    g = (a[:, :, None] * h.astype(np.float64)[:, None, :]).reshape(50, -1)  # (n, C·d), the embedding itself
    assert g_sq == pytest.approx((g * g).sum(1), rel=1e-6)
    explicit = ((g - g[11]) ** 2).sum(1)
    assert squared_distances_to(11, h, a, g_sq) == pytest.approx(explicit, rel=1e-5, abs=1e-6)


def test_badge_first_pick_is_the_largest_gradient_and_draws_follow_d_squared():
    rng = np.random.default_rng(2)
    h = rng.normal(size=(30, 5)).astype(np.float32)
    p = rng.dirichlet(np.ones(3), size=30)
    _, g_sq = gradient_factors(h, p)
    seen = []
    picks = kmeanspp_picks(h, p, 6, np.random.default_rng(0), on_step=lambda step, w: seen.append(w.copy()))
    assert picks[0] == np.argmax(g_sq)
    assert len(set(picks)) == 6 and all(seen[k][picks[:k]].sum() == 0 for k in range(1, 6))  # a pick is never redrawn
    assert list(picks) == list(kmeanspp_picks(h, p, 6, np.random.default_rng(0)))  # same seed, same picks


def test_badge_draw_weights_equal_scikit_activeml_badge_utilities():
    pytest.importorskip("skactiveml")
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import Badge

    rng = np.random.default_rng(4)
    n, d, c = 120, 6, 4
    h = rng.normal(size=(n, d)).astype(np.float32)
    p = rng.dirichlet(np.ones(c), size=n)

    class Fixed(SkactivemlClassifier):  # X is the item index: predict_proba looks the item up
        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X, return_embeddings=False):
            rows = np.asarray(X)[:, 0].astype(int)
            return (p[rows], h[rows].astype(np.float64)) if return_embeddings else p[rows]

    X = np.arange(n, dtype=float)[:, None]
    y = np.full(n, np.nan)
    y[:10] = 0  # items 0..9 labelled: neither side uses them as centres
    clf = Fixed(classes=np.arange(c), missing_label=np.nan)
    theirs, utilities = Badge(missing_label=np.nan, random_state=0, clf_embedding_flag_name="return_embeddings").query(
        X, y, clf, fit_clf=False, batch_size=8, return_utilities=True)
    unl = np.arange(10, n)
    a, g_sq = gradient_factors(h[unl], p[unl])
    assert theirs[0] == 10 + np.argmax(g_sq)  # both start at the largest gradient
    # Replaying their picks, each step's D² weights are ours with one difference (docs/samplers.md): scikit-activeml
    # keeps the first step's ‖g‖² as a distance, i.e. counts the origin g = 0 as a centre; the authors' code does not.
    d2 = np.full(len(unl), np.inf)
    for step, pick in enumerate(np.asarray(theirs) - 10):
        if step > 0:
            weights = np.minimum(d2, g_sq)
            assert weights / weights.sum() == pytest.approx(np.nan_to_num(utilities[step][unl]), rel=1e-5, abs=1e-9), step  # nan: picked
            assert not np.allclose(d2 / d2.sum(), np.nan_to_num(utilities[step][unl]))  # the difference is real
        d2 = np.minimum(d2, squared_distances_to(pick, h[unl], a, g_sq))
        d2[pick] = 0.0
    picked = BADGE(seed=0).select(outputs(features=h, probs=p.astype(np.float32)), np.arange(10), 8)
    assert picked[0] == theirs[0]  # the later draws use each library's own random generator


def test_neighbour_blocks_equal_brute_force():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    full = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)  # (60, 60), test only
    np.fill_diagonal(full, np.inf)
    assert mean_knn_sq_distance(x, 3) == pytest.approx(np.sort(full, axis=1)[:, :3].mean(1), rel=1e-4)
    groups = np.arange(60) % 3
    other = np.where(groups[:, None] != groups[None, :], full, np.inf)
    assert distance_to_other_group(x, groups) == pytest.approx(np.sqrt(other.min(1)), rel=1e-4)
    np.fill_diagonal(full, 0.0)
    radius = float(np.sqrt(np.median(full)))
    indptr, indices = radius_graph(x, radius)
    for i in range(60):
        assert list(indices[indptr[i]:indptr[i + 1]]) == list(np.flatnonzero(full[i] < radius ** 2))
    t_indptr, t_indices = transpose(indptr, indices, 60)
    for j in range(60):
        assert sorted(t_indices[t_indptr[j]:t_indptr[j + 1]]) == list(np.flatnonzero(full[:, j] < radius ** 2))


def test_purity_delta_is_the_largest_radius_with_enough_pure_balls():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    clusters = (x[:, 0] > 0).astype(np.int64)
    d = distance_to_other_group(x, clusters)
    delta = purity_delta(d, alpha=0.9)

    def purity(r):
        return np.mean(d >= r)  # B_r(x) = {y : |x − y| < r} pure iff no other-cluster point closer than r

    assert purity(delta) >= 0.9 and purity(np.nextafter(delta, np.inf)) < 0.9


def test_greedy_cover_takes_the_largest_uncovered_ball_first():
    #    0 (labelled) covers {0, 1}; candidate 2 reaches {1, 2, 3}; 3 reaches {2, 3, 4, 5}; 4 reaches {3, 4}; 5 {3, 5}
    lists = [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4, 5], [3, 4], [3, 5]]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in lists])])
    indices = np.concatenate(lists)
    picks = greedy_cover(indptr, indices, n_labelled=1, budget=3, rng=np.random.default_rng(0))
    assert picks[0] == 3  # 4 new items; then only item 1's ball adds nothing; coverage is complete
    assert set(picks[1:]) <= {1, 2, 4, 5} and len(set(picks)) == 3


def test_typiclust_picks_the_most_typical_item_of_each_blob():
    rng = np.random.default_rng(7)
    centres = np.array([[5, 0], [-5, 0], [0, 5], [0, -5]], dtype=np.float32)
    blobs = np.concatenate([c + rng.normal(scale=0.6, size=(40, 2)) for c in centres]).astype(np.float32)  # (160, 2)
    picked = TypiClust(normalize=False, seed=0).select(blobs, [], 4)
    assert sorted(picked // 40) == [0, 1, 2, 3]  # one per blob (k-means finds the four blobs)
    for item in picked:  # and the blob's most typical item: 1 / mean squared distance to its 20 nearest
        members = np.arange(40) + 40 * (item // 40)
        d2 = ((blobs[members, None] - blobs[None, members]) ** 2).sum(-1)  # (40, 40), test only
        np.fill_diagonal(d2, np.inf)
        assert members[np.argmax(1 / (np.sort(d2, axis=1)[:, :20].mean(1) + 1e-5))] == item


def test_typiclust_equals_scikit_activeml_given_the_same_clusters():
    pytest.importorskip("skactiveml")
    from skactiveml.pool import TypiClust as Theirs

    from seqgcn.checks import check_features
    from seqgcn.samplers import typiclust as ours_module

    rng = np.random.default_rng(8)
    centres = rng.normal(scale=6.0, size=(6, 3))
    x = np.concatenate([c + rng.normal(size=(30, 3)) for c in centres])
    x = check_features(x, rescale="matrix")  # what our sampler computes on: the same numbers for both
    labels = ours_module.kmeans_labels(x, 8, seed=0)  # |L| + budget = 3 + 5 clusters on both sides

    class Given:  # their cluster_algo: hands back our clustering
        def __init__(self, n_clusters=None, random_state=None):
            pass

        def fit_predict(self, X):
            return labels

    y = np.full(len(x), np.nan)
    lab = [0, 30, 60]
    y[lab] = 1
    theirs = Theirs(cluster_algo=Given, k=3, random_state=0, missing_label=np.nan).query(x, y, batch_size=5)
    original = ours_module.kmeans_labels
    ours_module.kmeans_labels = lambda feats, k, seed: _relabel(labels, lab)  # L first, as the sampler orders nodes
    try:
        ours = TypiClust(k_nn=3, min_cluster_size=0, normalize=False).select(x, lab, 5)
    finally:
        ours_module.kmeans_labels = original
    # Both visit the uncovered clusters largest first, in the same order ...
    assert list(labels[ours]) == list(labels[theirs])
    # ... and pick each cluster's most typical item over k = 3 neighbours; typicality is theirs 1 / mean distance,
    # ours (the authors') 1 / mean squared distance, which can crown another item (docs/samplers.md).
    for mine, other in zip(ours, theirs, strict=True):
        members = np.flatnonzero(labels == labels[mine])
        d2 = ((x[members, None].astype(np.float64) - x[None, members]) ** 2).sum(-1)  # test only
        np.fill_diagonal(d2, np.inf)
        nearest = np.sort(d2, axis=1)[:, :3]
        assert members[np.argmin(nearest.mean(1))] == mine
        assert members[np.argmin(np.sqrt(nearest).mean(1))] == other
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) >= 4


def _relabel(labels: np.ndarray, lab: list) -> np.ndarray:
    """`labels` of the rows in the sampler's node order: labelled rows first, then the rest ascending."""
    rest = np.setdiff1d(np.arange(len(labels)), lab)
    return labels[np.concatenate([np.sort(lab), rest])]


@pytest.mark.filterwarnings("ignore:The maximum purity")  # theirs warns when given one delta, no grid to scan
def test_probcover_out_degrees_equal_scikit_activeml_utilities_for_a_given_delta():
    pytest.importorskip("skactiveml")
    from skactiveml.pool import ProbCover as Theirs

    from seqgcn.checks import check_features

    rng = np.random.default_rng(9)
    x = check_features(rng.normal(size=(150, 2)), rescale="matrix")
    y = np.full(150, np.nan)
    lab = [3, 40]
    y[lab] = 0
    delta = 0.21
    _, utilities = Theirs(deltas=[delta], random_state=0, missing_label=np.nan).query(
        x.astype(np.float64), y, batch_size=1, return_utilities=True)
    indptr, indices = radius_graph(x, delta)
    covered = np.zeros(150, dtype=bool)
    for i in lab:
        covered[indices[indptr[i]:indptr[i + 1]]] = True
    degree = np.array([np.sum(~covered[indices[indptr[i]:indptr[i + 1]]]) for i in range(150)], dtype=float)
    unl = np.setdiff1d(np.arange(150), lab)
    assert np.array_equal(degree[unl], utilities[0][unl])  # uncovered out-degrees: the greedy's scores, equal
    best = np.flatnonzero(degree[unl] == degree[unl].max())
    assert ProbCover(delta=delta, normalize=False).select(x, lab, 1)[0] == unl[best[0]]  # ties: lowest index (theirs: random)


@pytest.mark.filterwarnings("ignore:The maximum purity")  # theirs warns when given one delta, no grid to scan
def test_probcover_equals_scikit_activeml_where_no_scores_tie():
    pytest.importorskip("skactiveml")
    from skactiveml.pool import ProbCover as Theirs

    # Stars: a centre within δ of 4, 3 or 2 spokes that are farther than δ from each other; stars far apart.
    # The centres' degrees 5, 4, 3 are unique maxima at each step, so both libraries must pick them in that order.
    delta, rows = 0.1, []
    for k, (cx, cy) in zip((2, 4, 3), ((0.2, 0.2), (0.6, 0.2), (0.2, 0.6)), strict=True):
        rows.append((cx, cy))
        rows += [(cx + 0.08 * np.cos(a), cy + 0.08 * np.sin(a)) for a in np.arange(k) * 2 * np.pi / k]
    rows.append((0.9, 0.9))  # labelled, alone
    x = np.asarray(rows, dtype=np.float32)
    y = np.full(len(x), np.nan)
    y[-1] = 0
    theirs = Theirs(deltas=[delta], random_state=0, missing_label=np.nan).query(x.astype(np.float64), y, batch_size=3)
    ours = ProbCover(delta=delta, normalize=False).select(x, [len(x) - 1], 3)
    assert list(ours) == list(theirs) == [3, 8, 0]


def test_probcover_purity_rule_equals_scikit_activeml_on_a_grid():
    pytest.importorskip("skactiveml")
    from skactiveml.pool import ProbCover as Theirs

    from seqgcn.checks import check_features
    from seqgcn.samplers.typiclust import kmeans_labels

    rng = np.random.default_rng(10)
    x = check_features(np.concatenate([rng.normal(size=(60, 2)) + s for s in ([0, 0], [4, 4], [0, 4])]), rescale="matrix")
    clusters = kmeans_labels(x, 3, seed=0)

    class Given:
        def __init__(self, n_clusters=None, random_state=None):
            pass

        def fit_predict(self, X):
            return clusters

    grid = np.linspace(0.01, 0.5, 50)
    theirs = Theirs(n_classes=3, deltas=grid, alpha=0.9, cluster_algo=Given, random_state=0, missing_label=np.nan)
    y = np.full(len(x), np.nan)
    y[0] = 0
    theirs.query(x.astype(np.float64), y, batch_size=1)
    ours = purity_delta(distance_to_other_group(x, clusters), alpha=0.9)
    # theirs: the largest grid radius with purity >= alpha (their balls include the boundary, ours do not)
    assert grid[grid <= ours].max() == pytest.approx(theirs.delta_max_)


def test_clusters_do_not_depend_on_the_callers_thread_pools():
    from threadpoolctl import threadpool_limits

    from seqgcn.samplers.typiclust import kmeans_labels

    x = np.random.default_rng(11).normal(size=(3000, 16)).astype(np.float32)
    with threadpool_limits(limits=1):
        one = kmeans_labels(x, 60, seed=0), kmeans_labels(x, 8, seed=0)
    with threadpool_limits(limits=2):
        two = kmeans_labels(x, 60, seed=0), kmeans_labels(x, 8, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
