"""The active-learning cycle: labelled-set invariants, one index space, the oracle, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from seqgcn.data.base import Dataset
from seqgcn.loop import ActiveLearner, GroundTruthOracle, Oracle
from seqgcn.pool import PoolState
from seqgcn.samplers import FeatureSampler, get_sampler


# --------------------------------------------------------------------------- fakes (no training)
def tiny_dataset(n_train: int = 120, n_test: int = 40, seed: int = 0) -> Dataset:
    """Two Gaussian blobs drawn as 4×4 one-channel 'images'."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(0, 1, (n, 16)) + 2.0 * y[:, None]
        x = np.clip((x + 3) * 30, 0, 255).astype(np.uint8).reshape(n, 1, 4, 4)
        return x, y.astype(np.int64)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return Dataset(name="tiny", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_classes=2)


class FakeLearner:
    """Nearest-centroid classifier; features = a seeded random projection of the pixels."""

    metric_name = "accuracy"
    higher_is_better = True

    def __init__(self, dataset: Dataset, config=None):
        self.dataset = dataset
        self.fit_calls: list[tuple[np.ndarray, np.ndarray]] = []
        self.feature_calls: list[np.ndarray] = []

    def reset(self, seed: int) -> None:
        self.proj = np.random.default_rng(seed).normal(size=(16, 6)).astype(np.float32)
        self.centroids = None

    def _flat(self, x):
        return x.reshape(len(x), -1).astype(np.float32) / 255.0

    def fit(self, indices, targets) -> dict:
        self.fit_calls.append((np.asarray(indices).copy(), np.asarray(targets).copy()))
        x = self._flat(self.dataset.x_train[indices])
        self.centroids = np.stack([x[targets == c].mean(0) if np.any(targets == c) else np.zeros(16) for c in range(2)])
        return {"loss": 0.5, "note": "not a number"}

    def predict(self, x):
        d = ((self._flat(x)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        return d.argmin(1)

    def evaluate(self) -> float:
        return float((self.predict(self.dataset.x_test) == self.dataset.y_test).mean())

    def features(self, indices):
        self.feature_calls.append(np.asarray(indices).copy())
        return self._flat(self.dataset.x_train[indices]) @ self.proj


class RecordingSampler(FeatureSampler):
    """Random picks; remembers what it was given, to check the one-index-space contract."""

    name = "Recording"

    def __init__(self, *, seed=0, device="cpu"):
        self.seed = seed

    def _select(self, problem):
        self.problem_ = problem
        rng = np.random.default_rng(self.seed)
        return rng.choice(problem.candidates, size=problem.budget, replace=False)


def make_active_learner(ds, *, sampler=None, budget=10, subset=30, pool_among=None):
    learner = FakeLearner(ds)
    return ActiveLearner(learner, sampler or RecordingSampler(seed=1), GroundTruthOracle(ds), PoolState(ds.n_train),
                         budget=budget, subset=subset, pool_among=pool_among)


# --------------------------------------------------------------------------- tests
def test_ground_truth_oracle_is_an_oracle():
    ds = tiny_dataset()
    oracle = GroundTruthOracle(ds)
    assert isinstance(oracle, Oracle)
    np.testing.assert_array_equal(oracle.label(np.array([3, 0, 7])), ds.y_train[[3, 0, 7]])


@pytest.mark.parametrize("method", ["Random", "CoreSet", "UncertainGCN", "CoreGCN"])
def test_labelled_set_invariants_across_cycles(method):
    ds = tiny_dataset()
    sampler = get_sampler(method, seed=3, **({"epochs": 20} if "GCN" in method else {}))
    al = make_active_learner(ds, sampler=sampler, budget=8, subset=30)
    seed = al.label_seed(12, np.random.default_rng(0))
    assert seed.size == 12 and np.unique(seed).size == 12
    before = set(seed.tolist())
    for cycle in range(4):
        unlabelled_before = set(al.pool.unlabelled_indices.tolist())
        rec = al.step(cycle, learner_seed=cycle, rng=np.random.default_rng(100 + cycle))
        after = al.pool.labelled_indices
        picked = set(rec["selected"])
        cands = set(al.learner.feature_calls[-1][:30].tolist())  # candidates come first in the features call
        assert rec["n_labelled"] == len(before)
        assert len(after) == len(before) + 8  # grows by exactly the budget
        assert np.unique(after).size == after.size  # no duplicates
        assert before <= set(after.tolist())  # never loses an item
        assert picked == set(after.tolist()) - before
        assert picked <= cands <= unlabelled_before  # selection ⊆ candidates ⊆ unlabelled
        assert np.all(al.pool.labelled_round(sorted(picked)) == cycle + 1)
        before = set(after.tolist())


def test_sampler_sees_global_indices_and_filled_rows():
    ds = tiny_dataset()
    sampler = RecordingSampler(seed=0)
    al = make_active_learner(ds, sampler=sampler, budget=5, subset=20)
    al.label_seed(10, np.random.default_rng(1))
    labelled = al.pool.labelled_indices
    al.step(0, learner_seed=0, rng=np.random.default_rng(2))
    p = sampler.problem_
    assert p.features.shape == (ds.n_train, 6)  # row i = global item i
    np.testing.assert_array_equal(p.labelled, labelled)
    expected = (ds.x_train.reshape(ds.n_train, -1).astype(np.float32) / 255.0) @ al.learner.proj
    nodes = np.concatenate([p.candidates, p.labelled])
    expected = np.ldexp(expected, -np.frexp(np.abs(expected[nodes]).max())[1])  # select divides by a power of two (scale-free)
    np.testing.assert_allclose(p.features[nodes], expected[nodes], rtol=1e-6)
    others = np.setdiff1d(np.arange(ds.n_train), nodes)
    assert not p.features[others].any()


def test_fit_gets_oracle_targets_and_reset_seed():
    ds = tiny_dataset()
    al = make_active_learner(ds)
    al.label_seed(10, np.random.default_rng(0))
    rec = al.step(0, learner_seed=7, rng=np.random.default_rng(0))
    idx, targets = al.learner.fit_calls[0]
    np.testing.assert_array_equal(targets, ds.y_train[idx])
    np.testing.assert_array_equal(al.learner.proj, np.random.default_rng(7).normal(size=(16, 6)).astype(np.float32))
    assert rec["learner_loss"] == 0.5 and "learner_note" not in rec
    for key in ("cycle", "n_labelled", "metric", "train_seconds", "features_seconds", "select_seconds"):
        assert key in rec


def test_last_cycle_evaluates_without_selecting():
    ds = tiny_dataset()
    al = make_active_learner(ds)
    al.label_seed(10, np.random.default_rng(0))
    rec = al.step(3, learner_seed=0, rng=np.random.default_rng(0), select=False)
    assert rec["selected"] == [] and al.pool.n_labelled == 10 and al.learner.feature_calls == []


def test_gcn_diagnostics_are_recorded():
    ds = tiny_dataset()
    al = make_active_learner(ds, sampler=get_sampler("UncertainGCN", seed=0, epochs=5), budget=5, subset=20)
    al.label_seed(10, np.random.default_rng(0))
    rec = al.step(0, learner_seed=0, rng=np.random.default_rng(0))
    assert rec["sampler_n_nodes"] == 20 + 10  # D_S and the labelled set: the graph the GCN was trained on
    assert 0.0 <= rec["sampler_discrimination_accuracy"] <= 1.0 and rec["sampler_eval_loss"] > 0.0


def test_seed_among_and_pool_among_keep_global_indices():
    ds = tiny_dataset()
    real, synthetic = np.arange(0, 40), np.arange(40, ds.n_train)
    al = make_active_learner(ds, budget=6, subset=25, pool_among=synthetic)
    seed = al.label_seed(10, np.random.default_rng(0), seed_among=real)
    assert set(seed.tolist()) <= set(real.tolist())
    for cycle in range(3):
        rec = al.step(cycle, learner_seed=0, rng=np.random.default_rng(cycle))
        assert set(rec["selected"]) <= set(synthetic.tolist())


def test_state_dict_round_trip_reproduces_the_next_cycle():
    ds = tiny_dataset()
    a = make_active_learner(ds)
    a.label_seed(10, np.random.default_rng(0))
    a.step(0, learner_seed=0, rng=np.random.default_rng(0))
    import json

    state = json.loads(json.dumps(a.state_dict()))
    b = make_active_learner(ds)
    b.load_state_dict(state)
    ra = a.step(1, learner_seed=1, rng=np.random.default_rng(5))
    rb = b.step(1, learner_seed=1, rng=np.random.default_rng(5))
    assert ra["selected"] == rb["selected"] and ra["metric"] == rb["metric"]
    np.testing.assert_array_equal(a.pool.labelled_round(), b.pool.labelled_round())


def test_oracle_answering_the_wrong_count_is_an_error():
    ds = tiny_dataset()

    class Bad:
        def label(self, indices):
            return np.zeros(len(indices) + 1)

    al = ActiveLearner(FakeLearner(ds), RecordingSampler(), Bad(), PoolState(ds.n_train), budget=5)
    with pytest.raises(ValueError, match=r"the oracle answered 11 targets for 10 items"):
        al.label_seed(10, np.random.default_rng(0))
