import numpy as np
import pytest
import torch

from seqgcn.samplers import CoreGCN, CoreSet, Random, UncertainGCN, available_samplers, get_sampler
from seqgcn.samplers.kcenter import k_center_greedy

FAST_GCN = {"hidden": 8, "epochs": 5}  # enough to exercise every code path quickly


def make_sampler(name, seed=0):
    params = dict(FAST_GCN) if name not in ("Random", "CoreSet") else {}
    return get_sampler(name, seed=seed, **params)


@pytest.mark.parametrize("name", ["Random", "CoreSet", "UncertainGCN", "CoreGCN"])
def test_same_seed_same_selection(name):
    rng = np.random.default_rng(3)
    features = rng.random((60, 5)).astype(np.float32)
    labelled = np.arange(10)
    a = make_sampler(name, seed=7).select(features, labelled, 12)
    b = make_sampler(name, seed=7).select(features, labelled, 12)
    assert np.array_equal(a, b)


def test_random_differs_across_seeds_and_never_repeats():
    features = np.zeros((200, 2), dtype=np.float32)
    a = Random(seed=1).select(features, [0], 100)
    b = Random(seed=2).select(features, [0], 100)
    assert not np.array_equal(a, b) and len(set(a)) == 100


def test_k_center_greedy_picks_the_known_farthest_point():
    centres = torch.tensor([[0.0, 0.0]])
    points = torch.tensor([[1.0, 0.0], [5.0, 0.0], [5.0, 1.0], [0.0, 3.0]])
    # (5, 1) is farthest from the origin (√26 > 5); then (0, 3) is farthest from both centres (3 > 1).
    assert k_center_greedy(points, centres, 2).tolist() == [2, 3]


def test_coreset_returns_global_indices_of_the_farthest_candidate():
    features = np.array([[0, 0], [1, 0], [5, 0], [5, 1], [0, 3], [9, 9]], dtype=np.float32)
    # item 5 is farthest but not a candidate; among candidates 1..4 the answer is item 3.
    assert CoreSet().select(features, [0], 1, candidates=[1, 2, 3, 4]).tolist() == [3]


def test_coreset_blocked_distances_match_direct(monkeypatch):
    import seqgcn.samplers.kcenter as kc

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((50, 4)).astype(np.float32))
    c = torch.from_numpy(rng.random((30, 4)).astype(np.float32))
    direct = torch.cdist(x, c).min(1).values ** 2
    monkeypatch.setattr(kc, "_BLOCK_ELEMS", 7 * 50)  # force 5 blocks of 7 centres (the last one short)
    torch.testing.assert_close(kc._sq_dists_to_set(x, c), direct, atol=1e-5, rtol=1e-5)


def _fixed_scores(scores):
    def fit_graph(self, problem):
        nodes = np.concatenate([problem.candidates, problem.labelled])
        s = torch.tensor(scores + [0.9] * problem.labelled.size, dtype=torch.float64)
        return nodes, torch.logit(s), torch.zeros(nodes.size, 2)  # fit_graph returns logits

    return fit_graph


def test_uncertaingcn_margin_rules_on_known_scores(monkeypatch):
    features = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    monkeypatch.setattr(UncertainGCN, "fit_graph", _fixed_scores([0.5, 0.12, 0.95, 0.0, 0.3]))
    # candidates are items 1..5 with scores 0.5, 0.12, 0.95, 0.0, 0.3 ; s_margin = 0.1
    closest = UncertainGCN(margin=0.1).select(features, [0], 2)
    farthest = UncertainGCN(margin=0.1, margin_rule="farthest").select(features, [0], 2)
    assert closest.tolist() == [2, 4]  # |0.12-0.1| = 0.02, |0.0-0.1| = 0.1
    assert farthest.tolist() == [3, 1]  # |0.95-0.1| = 0.85, |0.5-0.1| = 0.4


def test_gcn_learns_to_separate_labelled_from_unlabelled_and_reports_diagnostics():
    rng = np.random.default_rng(0)
    labelled_cluster = rng.normal([5, 0, 0, 0], 0.3, size=(40, 4))
    unlabelled_cluster = rng.normal([0, 5, 0, 0], 0.3, size=(60, 4))
    features = np.abs(np.vstack([labelled_cluster, unlabelled_cluster])).astype(np.float32)
    sampler = UncertainGCN(seed=0)
    sampler.select(features, np.arange(40), 5)
    diag = sampler.diagnostics_
    assert diag["mean_score_labelled"] > diag["mean_score_unlabelled"] + 0.3
    assert diag["discrimination_accuracy"] > 0.95
    assert diag["n_nodes"] == 100 and np.isfinite(diag["final_train_loss"])


def test_coregcn_picks_the_outlier_far_from_the_labelled_cluster():
    rng = np.random.default_rng(1)
    cluster = np.abs(rng.normal([3, 0.5, 0.5], 0.05, size=(30, 3)))
    outlier = np.array([[0.1, 0.1, 4.0]])
    features = np.vstack([cluster, outlier]).astype(np.float32)
    assert CoreGCN(seed=0).select(features, np.arange(20), 1).tolist() == [30]


def test_registry_is_case_insensitive_and_lists_known_methods():
    assert isinstance(get_sampler("coregcn"), CoreGCN)
    assert {"Random", "CoreSet", "UncertainGCN", "CoreGCN"} <= set(available_samplers())
    with pytest.raises(ValueError, match=r"unknown method 'VAALX'; known methods: BADGE, BALD, CoreGCN, CoreSet"):
        get_sampler("VAALX")


# --------------------------------------------------------------------------- errors, pinned
FEATS = np.random.default_rng(0).random((10, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "features,labelled,budget,candidates,exc,match",
    [
        (np.where(np.eye(10, 3) > 0, np.nan, FEATS), [0], 1, None, ValueError, r"features contains NaN or inf in 3 row\(s\) \(first: row 0\)"),
        (np.full((10, 3), np.inf), [0], 1, None, ValueError, "features contains NaN or inf"),
        (FEATS[0], [0], 1, None, ValueError, r"features must be 2-D \(n_samples, n_features\); got ndim=1"),
        (FEATS[None], [0], 1, None, ValueError, "features must be 2-D"),
        (np.array([["a", "b"]]), [0], 1, None, TypeError, "features must hold numbers"),
        (FEATS, [0, 12], 1, None, ValueError, r"labelled holds index 12, outside \[0, 9\]: features has only 10 rows"),
        (FEATS, [-1], 1, None, ValueError, r"labelled holds index -1, outside \[0, 9\]"),
        (FEATS, [1, 1, 2], 1, None, ValueError, "labelled holds index 1 more than once"),
        (FEATS, [0, 1], 0, None, ValueError, "budget=0 must be a positive integer"),
        (FEATS, [0, 1], -3, None, ValueError, "budget=-3 must be a positive integer"),
        (FEATS, [0, 1], 2.5, None, TypeError, "budget=2.5 must be a positive integer"),
        (FEATS, [0, 1], 9, None, ValueError, "budget=9 exceeds the 8 unlabelled candidates in the pool"),
        (FEATS, [0, 1], 3, [2, 3], ValueError, "budget=3 exceeds the 2 unlabelled candidates"),
        (FEATS, [0, 1], 1, [1, 2], ValueError, r"candidates holds 1 labelled item\(s\) \(first: 1\)"),
        (FEATS, [0, 1], 1, [2, 20], ValueError, r"candidates holds index 20, outside \[0, 9\]"),
        (FEATS, np.ones(4, dtype=bool), 1, None, ValueError, "labelled as a boolean mask must have length 10"),
    ],
)
def test_bad_input_errors_are_pinned(features, labelled, budget, candidates, exc, match):
    for name in ("Random", "CoreGCN"):
        with pytest.raises(exc, match=match):
            make_sampler(name).select(features, labelled, budget, candidates=candidates)


@pytest.mark.parametrize("name", ["UncertainGCN", "CoreGCN"])
def test_gcn_needs_a_labelled_item(name):
    with pytest.raises(ValueError, match=f"labelled is empty, but {name} needs at least one labelled item"):
        make_sampler(name).select(FEATS, [], 2)


def test_random_and_coreset_accept_an_empty_labelled_set():
    assert len(Random().select(FEATS, [], 3)) == 3
    assert len(CoreSet().select(FEATS, [], 3)) == 3


@pytest.mark.parametrize(
    "params,match",
    [
        ({"normalization": "both"}, "normalization='both' is not one of 'column', 'row'"),
        ({"margin_rule": "nearest"}, "margin_rule='nearest' is not one of 'closest', 'farthest'"),
        ({"dropout": 1.0}, r"dropout=1.0 must be a number in \[0, 1\)"),
        ({"epochs": 0}, "epochs=0 must be a positive integer"),
        ({"adjacency": "knn"}, "adjacency='knn' is not one of 'cosine', 'eye', 'ones'"),
    ],
)
def test_bad_gcn_parameters_are_reported_at_select(params, match):
    with pytest.raises(ValueError, match=match):
        UncertainGCN(**params).select(FEATS, [0], 1)


@pytest.mark.parametrize("layers", [1, 3])
def test_gcn_layer_ablations_run(layers):
    picked = UncertainGCN(layers=layers, hidden=8, epochs=5).select(FEATS, [0, 1], 3)
    assert len(set(picked)) == 3


def test_dropout_masks_keep_rate_and_expectation():
    from seqgcn.samplers.gcn import dropout_masks

    (mask,) = dropout_masks(np.random.default_rng(0), 2000, 64, 1, 0.7)
    kept = (mask > 0).float().mean().item()
    assert abs(kept - 0.7) < 0.005  # 128,000 draws: 4.5 standard errors
    assert abs(mask.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    values = torch.unique(mask).tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(65536 / round(0.7 * 65536))]


@pytest.mark.parametrize("normalization", ["column", "row"])
@pytest.mark.parametrize("kind", ["cosine", "eye", "ones"])
def test_two_layer_step_gradients_equal_autograd(normalization, kind):
    from seqgcn.graph import Adjacency, l2_normalize
    from seqgcn.samplers.gcn import dropout_masks, gcn_forward, gcn_loss, init_gcn_params, two_layer_step

    rng = np.random.default_rng(0)
    v = l2_normalize(torch.from_numpy(rng.random((37, 6)).astype(np.float32)))
    adj = Adjacency(v, normalization=normalization, kind=kind)
    ax = adj @ v
    is_labelled = torch.from_numpy(rng.random(37) < 0.3)
    params = init_gcn_params([6, 5, 1], rng=rng)
    (mask,) = dropout_masks(rng, 37, 5, 1, 0.7)

    logits, _ = gcn_forward(ax, adj, params, [mask])
    expected_loss = gcn_loss(logits, is_labelled, 1.2)
    expected = torch.autograd.grad(expected_loss, params)
    loss = two_layer_step(ax, adj, adj.transpose(), params, mask, is_labelled, 1.2, block_rows=8)  # 5 blocks
    assert loss == pytest.approx(float(expected_loss.detach()), rel=1e-6)
    for p, g in zip(params, expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)


def test_adjacency_transpose_is_the_dense_transpose():
    from seqgcn.graph import Adjacency, l2_normalize

    v = l2_normalize(torch.rand(9, 4, generator=torch.Generator().manual_seed(1)))
    for normalization in ("column", "row"):
        adj = Adjacency(v, normalization=normalization)
        torch.testing.assert_close(adj.transpose().dense(), adj.dense().T)
