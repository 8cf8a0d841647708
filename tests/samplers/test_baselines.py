"""VAAL, Learning Loss, method variants, the `select` refusal and the t-SNE views (issue 7)."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import torch

from seqgcn.cli import main
from seqgcn.data.base import Dataset
from seqgcn.learners import LearnerConfig, TorchLearner
from seqgcn.learners.base import Companion
from seqgcn.loop import ActiveLearner, GroundTruthOracle
from seqgcn.experiment.rundir import load_views, save_view
from seqgcn.report.tsne import plot_tsne
from seqgcn.pool import PoolState
from seqgcn.samplers import VAAL, LearningLoss, UncertainGCN, get_sampler, parse_method, sampler_class
from seqgcn.samplers.base import FeatureSampler, ImageSampler, LearnerSampler
from seqgcn.samplers.learning_loss import ranking_loss
from seqgcn.samplers.vaal import VAE, vaal_sizes


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def toy_set(n_train=60, n_test=20, side=8, n_classes=3, seed=0) -> Dataset:
    """Class k = a bright 2×2 block at a class-specific place on noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % n_classes
        x = rng.integers(0, 60, size=(n, 1, side, side)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, :, 0:2, 2 * k:2 * k + 2] = 255
        return x, y.astype(np.int64)

    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    return Dataset("toy", xtr, ytr, xte, yte, n_classes=n_classes, mean=(0.2,), std=(0.3,))


LABELLED = np.arange(0, 20)  # global rows 0..19 labelled
CANDIDATES = np.arange(40, 60)  # D_S at the end: positions 0..k-1 within D_S would be labelled rows


def check_picks(picked, budget):
    assert picked.dtype == np.int64 and picked.shape == (budget,)
    assert np.unique(picked).size == budget  # unique
    assert set(picked.tolist()) <= set(CANDIDATES.tolist())  # global rows of D_S, hence unlabelled


# --------------------------------------------------------------------------- ranking loss, detach point
def test_ranking_loss_equals_hand_computation():
    p = torch.tensor([0.5, 2.0, -1.0, 0.0, 1.0])  # B = 5: pairs (0, 4), (1, 3); item 2 is left out
    ell = torch.tensor([3.0, 0.1, 9.0, 0.2, 1.0])
    # pair (0,4): ℓ0 > ℓ4 → sign +1, p0 − p4 = −0.5 → max(0, 1 − (−0.5)) = 1.5
    # pair (1,3): ℓ1 < ℓ3 → sign −1, p1 − p3 = 2.0 → max(0, 1 + 2.0) = 3.0
    assert float(ranking_loss(p, ell, margin=1.0)) == pytest.approx((1.5 + 3.0) / 2)
    # a pair ranked right by more than the margin costs nothing; a batch of one costs 0
    assert float(ranking_loss(torch.tensor([3.0, 0.0]), torch.tensor([2.0, 1.0]))) == 0.0
    assert float(ranking_loss(torch.tensor([3.0]), torch.tensor([2.0]))) == 0.0


def test_ranking_loss_does_not_push_the_true_losses():
    p = torch.tensor([0.0, 0.0], requires_grad=True)
    ell = torch.tensor([1.0, 2.0], requires_grad=True)
    ranking_loss(p, ell).backward()
    assert ell.grad is None or float(ell.grad.abs().sum()) == 0.0
    assert p.grad.tolist() == [1.0, -1.0]  # loss = max(0, 1 + (p0 − p1)) = 1 on its linear part


def test_detach_point_is_the_reference_epoch():
    ll = LearningLoss()
    assert [e for e in range(200) if ll.detach_inputs(e, 200)] == list(range(121, 200))  # reference: epoch > 120
    assert [e for e in range(10) if LearningLoss(detach_fraction=0.5).detach_inputs(e, 10)] == [6, 7, 8, 9]


class RecordingLL(LearningLoss):
    """Learning Loss that records, per training step, whether its inputs still reach the learner."""

    def loss(self, predicted, item_losses):
        self.steps.append(self._reaches_learner(predicted))
        return super().loss(predicted, item_losses)

    def _reaches_learner(self, predicted) -> bool:
        """Walk the autograd graph of `predicted` looking for a parameter of the learner's network."""
        seen, stack = set(), [predicted.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            var = getattr(fn, "variable", None)
            if var is not None and any(var is p for p in self.learner_params):
                return True
            stack.extend(next_fn for next_fn, _ in fn.next_functions)
        return False


def test_learner_trains_the_companion_and_detaches_after_60_percent():
    ds = toy_set()
    learner = TorchLearner(ds, LearnerConfig(epochs=5, batch_size=30, lr=0.05, device="cpu"), seed=0)
    ll = RecordingLL(seed=0)
    ll.steps, ll.learner_params = [], list(learner.model.parameters())
    assert isinstance(ll, Companion)
    stats = learner.fit(np.arange(30), ds.y_train[:30], companion=ll)
    assert stats["steps"] == 5 and len(ll.steps) == 5  # 5 epochs × 1 batch, one companion loss per step
    # epochs 0..3 (epoch ≤ int(0.6·5) = 3) feed the learner's graph; epoch 4 is detached
    assert ll.steps == [True] * 4 + [False]


def test_learning_loss_scores_change_with_training_and_pick_the_highest():
    ds = toy_set()
    learner = TorchLearner(ds, LearnerConfig(epochs=1, batch_size=20, lr=0.05, device="cpu"), seed=0)
    untrained = LearningLoss(seed=3)
    untrained.build(tuple(learner.model.stage_channels))
    before = untrained.select(learner, LABELLED, 5, candidates=CANDIDATES)
    trained = LearningLoss(seed=3)
    learner.fit(LABELLED, ds.y_train[LABELLED], companion=trained)
    picked = trained.select(learner, LABELLED, 5, candidates=CANDIDATES)
    check_picks(picked, 5)
    assert not np.allclose(untrained.scores_, trained.scores_)  # the module learnt something
    assert picked.tolist() == CANDIDATES[np.argsort(-trained.scores_, kind="stable")[:5]].tolist()
    assert before.tolist() == CANDIDATES[np.argsort(-untrained.scores_, kind="stable")[:5]].tolist()


def test_learning_loss_needs_a_trained_module():
    learner = TorchLearner(toy_set(), LearnerConfig(epochs=1, device="cpu"), seed=0)
    with pytest.raises(ValueError, match=r"no trained module: train the learner with fit\(\.\.\., companion=sampler\) first"):
        LearningLoss().select(learner, LABELLED, 5, candidates=CANDIDATES)


@pytest.mark.parametrize("arch, channels", [("small_cnn", (16, 32, 128)), ("vgg11", (64, 128, 256, 512, 512))])
def test_stage_features_shapes(arch, channels):
    learner = TorchLearner(toy_set(), LearnerConfig(arch=arch, device="cpu"), seed=0)
    pooled = learner.stage_features(np.array([3, 1, 4]))
    assert [p.shape for p in pooled] == [(3, c) for c in channels]


# --------------------------------------------------------------------------- VAAL
@pytest.mark.parametrize("shape, z", [((1, 8, 8), 16), ((1, 28, 28), 32), ((3, 32, 32), 32)])
def test_vae_sizes_follow_the_image(shape, z):
    c, side, _ = shape
    sizes = vaal_sizes(side)
    assert sizes["z"] == z
    vae = VAE(c, side, sizes["channels"], sizes["z"]).eval()
    recon, mu, logvar = vae(torch.zeros(2, *shape), torch.zeros(2, z))
    assert recon.shape == (2, *shape) and mu.shape == logvar.shape == (2, z)
    if side == 28:  # the reference's 28×28 encoder: last kernel 3, 2×2 before flattening
        assert vae.encoder[9].kernel_size == (3, 3) and vae.fc_mu.in_features == 1024 * 2 * 2


def test_vaal_iterations_follow_the_reference_formula():
    assert VAAL().n_iterations(1000, 10000, 32) == 11000 * 100 // 128  # CIFAR-10 protocol: 8,593
    assert VAAL().n_iterations(320, 500, 8) == 820 * 3 // 128  # small images: 3 passes
    assert VAAL(passes=100).n_iterations(320, 500, 8) == 640
    assert VAAL(iterations=7).n_iterations(320, 500, 8) == 7


def test_vaal_invariants_and_training_changes_the_scores():
    images = toy_set().x_train
    short = VAAL(iterations=1, batch_size=16, seed=0)
    longer = VAAL(iterations=6, batch_size=16, seed=0)
    a = short.select(images, LABELLED, 6, candidates=CANDIDATES)
    b = longer.select(images, LABELLED, 6, candidates=CANDIDATES)
    for picked in (a, b):
        check_picks(picked, 6)
    assert not np.allclose(short.scores_, longer.scores_)
    assert b.tolist() == CANDIDATES[np.argsort(longer.scores_, kind="stable")[:6]].tolist()  # lowest D(mu)
    assert np.array_equal(b, VAAL(iterations=6, batch_size=16, seed=0).select(images, LABELLED, 6, candidates=CANDIDATES))


def test_vaal_refuses_non_images():
    with pytest.raises(ValueError, match=r"VAAL reads square images of shape \(n_items, channels, side, side\); got shape \(60, 5\)"):
        VAAL().select(np.zeros((60, 5)), LABELLED, 3)


def test_loop_hands_each_sampler_its_input():
    ds = toy_set()
    learner = TorchLearner(ds, LearnerConfig(epochs=2, batch_size=20, lr=0.05, device="cpu"), seed=0)
    for name in ("VAAL(iterations=2, batch_size=16)", "LearningLoss"):
        al = ActiveLearner(learner, get_sampler(name, seed=0), GroundTruthOracle(ds), PoolState(ds.n_train), budget=5, subset=20)
        al.label_seed(10, np.random.default_rng(0))
        record = al.step(0, learner_seed=1, rng=np.random.default_rng(2))
        assert len(set(record["selected"])) == 5 and al.pool.n_labelled == 15
        assert al.last_view is None  # nothing kept unless asked


# --------------------------------------------------------------------------- variants
def test_variant_names_parse():
    assert parse_method("UncertainGCN(adjacency=eye, layers=3)") == ("UncertainGCN", {"adjacency": "eye", "layers": 3})
    assert parse_method(" CoreGCN ") == ("CoreGCN", {})
    assert parse_method("VAAL(passes=100, beta=0.5, progress=false)")[1] == {"passes": 100, "beta": 0.5, "progress": False}
    sampler = get_sampler("uncertaingcn(adjacency=eye, layers=3)", seed=4, layers=2)  # the name's options win
    assert isinstance(sampler, UncertainGCN) and (sampler.adjacency, sampler.layers, sampler.seed) == ("eye", 3, 4)
    assert get_sampler("UncertainDiscriminator(dropout=0.5)").dropout == 0.5  # options reach the base class
    assert issubclass(sampler_class("VAAL(passes=3)"), ImageSampler)
    assert issubclass(sampler_class("LearningLoss"), LearnerSampler)
    assert issubclass(sampler_class("CoreSet"), FeatureSampler) and not issubclass(sampler_class("VAAL"), FeatureSampler)


@pytest.mark.parametrize("name, message", [
    ("UncertainGCN(depth=3)", r"method 'UncertainGCN\(depth=3\)': UncertainGCN has no option 'depth'; its options: "
                              r"adjacency, dropout, epochs, hidden, layers, lr, margin, margin_rule, normalization, "
                              r"weight_decay, weight_unlabelled$"),
    ("UncertainGCN(adjacency=full)", r"method 'UncertainGCN\(adjacency=full\)': adjacency='full' is not one of 'cosine', 'eye', 'ones'$"),
    ("CoreGCN(layers=0)", r"layers=0 must be a positive integer"),
    ("VAAL(lr=0)", r"method 'VAAL\(lr=0\)': lr=0 must be a number > 0 \(reference: 0.0005\)$"),
    ("VAAL(passes=2.5)", r"passes=2.5 must be a positive integer"),
    ("LearningLoss(detach_fraction=2)", r"detach_fraction=2 must be a number in \[0, 1\] \(reference: 0.6\)$"),
    ("Random(seed=3)", r"Random has no option 'seed'; its options: none"),
    ("UncertainGCN(layers)", r"option 'layers' is not key=value"),
    ("UncertainGCN(layers=2, layers=3)", r"option 'layers' is given twice"),
    ("Uncertain GCN", r"is not NAME or NAME\(key=value, \.\.\.\)"),
    ("KMeans(k=3)", r"unknown method 'KMeans'; known methods: BADGE, BALD, CoreGCN, CoreSet"),
])
def test_variant_names_reject_bad_options(name, message):
    with pytest.raises(ValueError, match=message):
        get_sampler(name)


def test_run_compares_variants_side_by_side(tmp_path, capsys):
    methods = ["UncertainGCN(epochs=3, hidden=8)", "UncertainGCN(adjacency=eye, epochs=3, hidden=8)"]
    code = main(["run", "--methods", *methods, "--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5",
                 "--subset", "50", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 0
    out = capsys.readouterr().out
    table = out.split("\n\nresults:")[0]
    assert all(m in table.splitlines()[1] for m in methods)  # one column per variant
    with open(tmp_path / "run" / "results.csv", newline="") as fh:  # a plain CSV: no comment lines to skip
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == [methods[0]] * 2 + [methods[1]] * 2  # commas quoted, one label each
    assert main(["report", str(tmp_path / "run")]) == 0  # the labels come back from results.json as they were given
    report = capsys.readouterr().out
    assert report.startswith(table)


# --------------------------------------------------------------------------- CLI select refuses, t-SNE
@pytest.mark.parametrize("method, why", [("VAAL", "the training images"), ("LearningLoss", "the learner's internals")])
def test_select_refuses_model_based_samplers(tmp_path, capsys, method, why):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).random((20, 3)).astype(np.float32))
    (tmp_path / "l.txt").write_text("0\n1\n")
    code = main(["select", "--features", str(tmp_path / "f.npy"), "--labelled", str(tmp_path / "l.txt"), "--budget", "2",
                 "--method", method, "--out", str(tmp_path / "o.txt")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "o.txt").exists()
    assert re.fullmatch(rf"seqgcn: error: {method} reads {re.escape(why)}.*, so 'seqgcn select' cannot run it; "
                        rf"use 'seqgcn run --methods {method}' \(add --dataset NAME for your data\)\n", err), err


def test_tsne_command_writes_a_png_from_a_saved_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for method in ("Random", "UncertainGCN(layers=3)"):
        for cycle in (0, 1):
            nodes = np.arange(40)
            save_view(tmp_path, {"nodes": nodes, "features": rng.normal(size=(40, 5)).astype(np.float32),
                                 "labelled": nodes[30:], "candidates": nodes[:30], "selected": nodes[:4],
                                 "truth": nodes % 3}, trial=0, method=method, cycle=cycle)
    assert sorted(m for m, _ in load_views(tmp_path)) == ["Random", "Random", "UncertainGCN(layers=3)", "UncertainGCN(layers=3)"]
    assert main(["plot", "tsne", str(tmp_path), "--cycles", "1", "--methods", "UncertainGCN(layers=3)", "Random",
                 "--perplexity", "5"]) == 0
    png = tmp_path / "tsne.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:  # one row per method, one column: taller than wide
        assert image.height > image.width
    with pytest.raises(ValueError, match=r"no saved features for cycle 7 \(trial 0\); saved: 0, 1"):
        plot_tsne(load_views(tmp_path), cycles=[7])
    with pytest.raises(ValueError, match=r"no saved features for trial 2 in"):
        load_views(tmp_path, trial=2)


# --------------------------------------------------------------------------- FeatProp's k-Medoids
def test_fasterpam_and_alternate_find_the_true_medoids():
    pytest.importorskip("kmedoids")
    from seqgcn.samplers.featprop import fasterpam_medoids, k_medoids, total_distance

    points = torch.tensor([[0.0], [1.0], [2.0], [100.0], [101.0], [105.0]])  # medoids: 1 and 101
    for medoids in (fasterpam_medoids(points, 2, rng=np.random.default_rng(0)),
                    k_medoids(points, 2, iterations=10, rng=np.random.default_rng(0))):
        assert sorted(medoids.tolist()) == [1, 4]
        assert total_distance(points, medoids) == pytest.approx((1 + 0 + 1) + (1 + 0 + 4))


def test_featprop_with_fasterpam_keeps_the_invariants():
    pytest.importorskip("kmedoids")
    features = np.random.default_rng(0).random((60, 4)).astype(np.float32)
    picked = get_sampler("FeatProp(kmedoids=fasterpam)").select(features, LABELLED, 7, candidates=CANDIDATES)
    check_picks(picked, 7)
    with pytest.raises(ValueError, match=r"kmedoids='pam' is not one of 'alternate', 'fasterpam'"):
        get_sampler("FeatProp(kmedoids=pam)")


def test_keep_view_holds_what_the_sampler_saw_and_round_trips(tmp_path):
    ds = toy_set()
    learner = TorchLearner(ds, LearnerConfig(epochs=1, batch_size=20, device="cpu"), seed=0)
    al = ActiveLearner(learner, get_sampler("CoreSet"), GroundTruthOracle(ds), PoolState(ds.n_train), budget=4, subset=15,
                       keep_view=True)
    labelled = al.label_seed(10, np.random.default_rng(0))
    record = al.step(0, learner_seed=1, rng=np.random.default_rng(2))
    view = al.last_view
    assert np.array_equal(view["labelled"], np.sort(labelled)) and view["candidates"].size == 15
    assert np.array_equal(view["nodes"], np.concatenate([view["candidates"], view["labelled"]]))
    assert view["selected"].tolist() == record["selected"] and set(record["selected"]) <= set(view["candidates"].tolist())
    assert np.allclose(view["features"], learner.features(view["nodes"]), atol=1e-6)
    assert np.array_equal(view["truth"], ds.y_train[view["nodes"]])
    save_view(tmp_path, view, trial=0, method="CoreSet", cycle=0)
    loaded = load_views(tmp_path)[("CoreSet", 0)]
    assert loaded.keys() == {*view, "trial"} and all(np.array_equal(loaded[k], v) for k, v in view.items())
