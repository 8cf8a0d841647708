"""One active-learning cycle (paper Fig. 1, Algorithm 1), in the order the diagram draws it.

```
I   learner  : re-initialise, train on the labelled set, evaluate on the test set
II  graph    : features of (random subset D_S of the unlabelled pool) + (labelled set)
III GCN      : (inside the sampler) labelled-vs-unlabelled GCN
IV  sampler  : pick `budget` items of D_S
V   oracle   : label them; the rest of D_S returns to the pool
```

Index space: every index here is a global row of the training set (STYLE §3).
The sampler gets a features matrix of shape (n_items, d) whose row i is global
item i; only the rows of D_S and of the labelled set are filled (the others are
zero and never read), so a sampler's output needs no conversion.

What the sampler reads is its type (`seqgcn.samplers.base`): a `FeatureSampler`
reads the features above, an `ImageSampler` the training images (VAAL), a
`LearnerSampler` the learner itself, which then trains the sampler's module
alongside it in step I (Learning Loss, through the `companion` hook of `Learner.fit`).

Rounds: the seed set D_0 is round 0; items picked in cycle c get round c + 1,
i.e. an item's round is the first cycle whose learner trains on it.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import numpy as np

from seqgcn.checks import InputError
from seqgcn.pool import PoolState
from seqgcn.samplers.base import FeatureSampler, ImageSampler, LearnerOutputs, LearnerSampler, OutputSampler


@runtime_checkable
class Oracle(Protocol):
    """The annotator: gives the targets of the global training rows it is asked about."""

    def label(self, indices: np.ndarray) -> np.ndarray:
        """Targets of `indices` (global), aligned with them: (n,) labels or (n, n_targets) values."""


class GroundTruthOracle:
    """An oracle that answers from the dataset's own training targets (simulated annotation)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def label(self, indices: np.ndarray) -> np.ndarray:
        return self.dataset.y_train[np.asarray(indices, dtype=np.int64)]


class ActiveLearner:
    """Learner + sampler + oracle over one `PoolState`; `step` runs one cycle.

    Parameters
    ----------
    learner : seqgcn.learners.Learner
        Re-initialised every cycle with the seed given to `step`.
    sampler : seqgcn.samplers.Sampler
        Picks the next items (its own seed is set by the caller when building it).
    oracle : Oracle
        Asked once per item, when the item is labelled; the answers are kept here.
    pool : PoolState
        The labelled/unlabelled split, updated in place.
    budget : int
        Items labelled per cycle.
    subset : int or None
        Size of the random candidate subset D_S (None: the whole unlabelled pool).
    pool_among : array of int, optional
        Global indices eligible as candidates (e.g. only synthetic images); default: all.
    images : array (n_items, c, h, w), optional
        Training images for samplers that read images (VAAL); default: the learner's
        ``dataset.x_train``.
    keep_view : bool
        Keep what the sampler saw in ``last_view`` after each selection (for t-SNE
        views, `seqgcn.report.tsne.save_view`): learner features of D_S ∪ L, the labelled,
        candidate and selected global indices, and the true targets of those rows
        where the learner's dataset has them. Computes the features also for
        samplers that do not read them.
    """

    def __init__(self, learner, sampler, oracle: Oracle, pool: PoolState, *, budget: int, subset: int | None = None, pool_among=None,
                 images=None, keep_view: bool = False):
        self.learner = learner
        self.sampler = sampler
        self.oracle = oracle
        self.pool = pool
        self.budget = budget
        self.subset = subset
        self.pool_among = None if pool_among is None else np.asarray(pool_among, dtype=np.int64)
        self.images = images
        self.keep_view = keep_view
        self.last_view: dict | None = None
        self._targets: dict[int, np.ndarray] = {}  # global index -> target, answered by the oracle

    # -- verbs -----------------------------------------------------------------
    def label_seed(self, size: int, rng: np.random.Generator, *, seed_among=None) -> np.ndarray:
        """Draw and label the random seed set D_0 (round 0); `seed_among` restricts where it comes from."""
        seed = self.pool.draw_seed(size, rng, among=seed_among)
        self._ask_oracle(seed)
        return seed

    def step(self, cycle: int, *, learner_seed: int, rng: np.random.Generator, select: bool = True) -> dict:
        """Run cycle `cycle`: train, evaluate and (when `select`) label `budget` new items.

        Returns the cycle's record: n_labelled, metric, per-phase seconds, the
        selected global indices (empty when `select` is False) and the sampler's
        diagnostics prefixed with ``sampler_``.
        """
        labelled = self.pool.labelled_indices  # (n_labelled,) global
        companion = self.sampler if isinstance(self.sampler, LearnerSampler) else None  # trains alongside the learner (Learning Loss), every cycle
        trained = train_and_evaluate(self.learner, labelled, self.targets(labelled), seed=learner_seed, companion=companion)  # I
        record = {"cycle": cycle, **trained, "features_seconds": 0.0, "select_seconds": 0.0}
        if not select:  # the last cycle evaluates only
            record["selected"] = []
            return record

        t2 = time.perf_counter()
        candidates = self.pool.draw_candidates(self.subset, rng, among=self.pool_among)  # D_S, global
        reads_features = isinstance(self.sampler, FeatureSampler)
        features = self._global_features(candidates, labelled) if reads_features or self.keep_view else None  # II
        if isinstance(self.sampler, ImageSampler):
            source = self._images()  # (n_items, c, h, w), VAAL
        elif isinstance(self.sampler, LearnerSampler):
            source = self.learner  # trained with the sampler's module in I, Learning Loss
        elif isinstance(self.sampler, OutputSampler):
            source = learner_outputs(self.learner, self.sampler, np.concatenate([candidates, labelled]), self.pool.n_items)
        else:
            source = features  # (n_items, d), rows of D_S ∪ L filled
        t3 = time.perf_counter()
        picked = self.sampler.select(source, labelled, self.budget, candidates=candidates)  # III + IV
        t4 = time.perf_counter()
        if self.keep_view:
            self.last_view = self._view(features, labelled, candidates, picked)
        self.pool.label(picked, round=cycle + 1)  # V: the rest of D_S stays unlabelled
        self._ask_oracle(picked)
        record.update(features_seconds=t3 - t2, select_seconds=t4 - t3, selected=[int(i) for i in picked])
        record.update(_scalars(getattr(self.sampler, "diagnostics_", None), prefix="sampler_"))
        return record

    def targets(self, indices) -> np.ndarray:
        """The oracle's answers for labelled `indices` (global), stacked in their order."""
        return np.stack([self._targets[int(i)] for i in indices])

    # -- persistence -----------------------------------------------------------
    def state_dict(self) -> dict:
        """Pool state and the oracle's answers so far (JSON-serialisable)."""
        idx = sorted(self._targets)
        values = np.stack([self._targets[i] for i in idx]) if idx else np.empty(0)
        return {"pool": self.pool.state_dict(), "target_indices": idx,
                "target_values": values.tolist(), "target_dtype": str(values.dtype)}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        values = np.asarray(state["target_values"], dtype=state["target_dtype"])
        self._targets = {int(i): v for i, v in zip(state["target_indices"], values, strict=True)}

    # -- helpers ---------------------------------------------------------------
    def _ask_oracle(self, indices: np.ndarray) -> None:
        answers = np.asarray(self.oracle.label(indices))
        if len(answers) != len(indices):
            raise InputError(f"the oracle answered {len(answers)} targets for {len(indices)} items; it must answer one per item")
        self._targets.update({int(i): a for i, a in zip(indices, answers, strict=True)})

    def _images(self) -> np.ndarray:
        """The training images (n_items, c, h, w) for samplers that read images."""
        images = self.images if self.images is not None else getattr(getattr(self.learner, "dataset", None), "x_train", None)
        if images is None:
            raise InputError(f"{self.sampler.name} reads the training images; pass images= to ActiveLearner")
        return images

    def _view(self, features: np.ndarray, labelled: np.ndarray, candidates: np.ndarray, picked: np.ndarray) -> dict:
        """What the sampler saw: features of D_S ∪ L (rows in `nodes` order) and the index sets, all global."""
        nodes = np.concatenate([candidates, labelled])  # (N,)
        truth = getattr(getattr(self.learner, "dataset", None), "y_train", None)
        view = {"nodes": nodes, "features": features[nodes], "labelled": labelled, "candidates": candidates,
                "selected": np.asarray(picked, dtype=np.int64)}
        if truth is not None:
            view["truth"] = np.asarray(truth)[nodes]  # simulation only: the true targets of every node
        return view

    def _global_features(self, candidates: np.ndarray, labelled: np.ndarray) -> np.ndarray:
        """(n_items, d) float32 matrix, row i = global item i; only D_S and the labelled rows are filled."""
        nodes = np.concatenate([candidates, labelled])  # (N,)
        feats = np.asarray(self.learner.features(nodes), dtype=np.float32)  # (N, d), test-time transforms
        full = np.zeros((self.pool.n_items, feats.shape[1]), dtype=np.float32)  # (n_items, d)
        full[nodes] = feats
        return full


def learner_outputs(learner, sampler: OutputSampler, nodes: np.ndarray, n_items: int) -> LearnerOutputs:
    """What `sampler` reads of the trained `learner` (its `needs`), rows `nodes` filled in (n_items, ...) arrays.

    Methods that need class probabilities refuse a regressor here, in one line, before any pass runs.
    """
    task = getattr(learner, "task", "classification")
    sampler.check_task(task)
    fields = {}
    wanted = {"features", "probs"} & sampler.needs
    if wanted:
        got = learner.outputs(nodes, features="features" in wanted, probs="probs" in wanted)
        for name, rows in got.items():  # (N, k) -> (n_items, k), row i = global item i
            fields[name] = np.zeros((n_items, rows.shape[1]), dtype=np.float32)
            fields[name][nodes] = rows
    if "passes" in sampler.needs:
        rows = learner.dropout_passes(nodes, passes=sampler.passes, dropout=sampler.dropout, seed=sampler.seed)  # (T, N, k)
        fields["passes"] = np.zeros((rows.shape[0], n_items, rows.shape[2]), dtype=np.float32)
        fields["passes"][:, nodes] = rows
    return LearnerOutputs(task=task, **fields)


def train_and_evaluate(learner, indices: np.ndarray, targets: np.ndarray, *, seed: int, companion=None) -> dict:
    """Re-initialise `learner` with `seed`, train it on `indices` (global) with `targets`, evaluate on the test set.

    `companion`: a module trained alongside (`seqgcn.learners.base.Companion`), or None.

    Returns n_labelled, metric, train_seconds, eval_seconds and the learner's numeric
    fit statistics prefixed with ``learner_`` (shared by `ActiveLearner.step` and the
    upper-bound run of `seqgcn.experiment`).
    """
    t0 = time.perf_counter()
    learner.reset(seed)
    fit_stats = learner.fit(indices, targets) if companion is None else learner.fit(indices, targets, companion=companion)
    t1 = time.perf_counter()
    metric = float(learner.evaluate())
    t2 = time.perf_counter()
    return {"n_labelled": int(len(indices)), "metric": metric, "train_seconds": t1 - t0, "eval_seconds": t2 - t1,
            **_scalars(fit_stats, prefix="learner_")}


def _scalars(stats: dict | None, *, prefix: str) -> dict:
    """The numeric entries of `stats` (not bool) as plain Python int/float (JSON- and CSV-friendly), keys prefixed."""
    out = {}
    for key, value in (stats or {}).items():
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = int(value) if isinstance(value, (int, np.integer)) else float(value)
    return out
