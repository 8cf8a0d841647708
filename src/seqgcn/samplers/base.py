"""What every sampler shares: the `select` contract and its input checks; the three kinds of sampler as types.

What a sampler reads is its type (STYLE §4):

    FeatureSampler   select(features (n_items, d), labelled, budget, candidates=...)    pure: never sees the learner
    ImageSampler     select(images (n_items, c, h, w), labelled, budget, candidates=...)   VAAL
    LearnerSampler   select(learner, labelled, budget, candidates=...): the learner was trained with
                     ``fit(..., companion=sampler)`` first (`seqgcn.learners.base.Companion`)   Learning Loss
    OutputSampler    select(outputs, labelled, budget, candidates=...): `LearnerOutputs` of the trained
                     learner (class probabilities, Monte-Carlo dropout passes, features)   Margin, BADGE, BALD

All three check their indices and their picks the same way (`Sampler`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqgcn.checks import InputError, check_features, check_index_array, check_positive_int


@dataclass(frozen=True)
class Problem:
    """A validated selection problem. All index arrays are global and sorted.

    features   : (n_samples, n_features) float32, divided by a power of two so that
                 max |x| lies in [0.5, 1), over the matrix or per row as the sampler's
                 `scale_invariance` says (exact; see `check_features`)
    labelled   : (n_labelled,) global indices of labelled items
    candidates : (n_candidates,) global indices of the unlabelled items to choose from (D_S)
    budget     : number of items to pick
    """

    features: np.ndarray
    labelled: np.ndarray
    candidates: np.ndarray
    budget: int


class Sampler:
    """Base of the three kinds (`FeatureSampler`, `ImageSampler`, `LearnerSampler`): the index checks and the
    check of the picks. Constructors store parameters only (keyword-only); work happens in `select`.
    """

    name: str = ""
    reads: str = ""  # what `select` reads, for messages: "features", "the training images", "the trained learner"
    needs_labelled: bool = False  # True: an empty labelled set is an error
    tasks: tuple = ("classification", "regression")  # the learners' tasks it can pick for

    def _check_params(self) -> None:
        """Check the constructor's parameters (one-line InputError); run before any work."""

    def _finish(self, picked, problem: "Problem") -> np.ndarray:
        picked = np.asarray(picked, dtype=np.int64)
        self._check_picks(picked, problem)
        return picked

    def _check_picks(self, picked: np.ndarray, problem: Problem) -> None:
        """Refuse a selection that breaks the contract, whatever the input (a RuntimeError, not an assert that -O strips)."""
        who = self.name or type(self).__name__
        if picked.shape != (problem.budget,):
            raise RuntimeError(f"{who} returned {picked.shape} indices where budget={problem.budget} were asked for; this is a bug in the sampler")
        uniq, counts = np.unique(picked, return_counts=True)
        if uniq.size != picked.size:
            raise RuntimeError(
                f"{who} returned index {int(uniq[np.argmax(counts > 1)])} more than once "
                f"({picked.size - uniq.size} duplicate(s) among {picked.size}); this is a bug in the sampler"
            )
        outside = np.setdiff1d(uniq, problem.candidates, assume_unique=True)
        if outside.size:
            raise RuntimeError(
                f"{who} returned {outside.size} index(es) outside the unlabelled candidates (first: {int(outside[0])}); "
                "this is a bug in the sampler"
            )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


class FeatureSampler(Sampler):
    """A pure function of the learner's features (Random, CoreSet, FeatProp, the GCN samplers).

    Subclasses implement `_select(problem) -> global indices`.
    """

    reads = "features"
    scale_invariance: str = "matrix"  # "rows" where each row's scale is irrelevant too (cosine graph)

    def select(self, features, labelled, budget, *, candidates=None) -> np.ndarray:
        """Pick `budget` unlabelled items to label next.

        Parameters
        ----------
        features : array-like, shape (n_samples, n_features)
            One feature vector per item of the pool; row i is global index i.
        labelled : array-like of int, or boolean mask of shape (n_samples,)
            Global indices of the labelled items.
        budget : int
            How many items to pick; at most the number of unlabelled candidates.
        candidates : array-like of int, optional
            The random subset D_S of the unlabelled pool to choose from (global
            indices). Default: every unlabelled item.

        Returns
        -------
        ndarray of int64, shape (budget,)
            Global indices, unique, unlabelled, within `candidates`, in the order picked.
            Checked on the way out: a subclass that breaks this raises RuntimeError.

        Every sampler is invariant to a positive common factor of `features`
        (k-Center greedy's choices and the cosine graph both are); samplers on the
        cosine graph also to a positive factor per row. The features are rescaled
        exactly at this boundary, so any finite scale selects the same items.
        """
        self._check_params()
        problem = self._check(features, labelled, budget, candidates)
        return self._finish(self._select(problem), problem)

    def _select(self, problem: Problem) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, features, labelled, budget, candidates) -> Problem:
        return check_problem(self, check_features(features, rescale=self.scale_invariance), labelled, budget, candidates)


def check_problem(sampler: Sampler, features: np.ndarray, labelled, budget, candidates) -> Problem:
    """The validated `Problem` of a selection over the rows of `features` (checked already)."""
    n = features.shape[0]
    lab = np.sort(check_index_array(labelled, n_items=n, name="labelled"))
    budget = check_positive_int(budget, name="budget")
    if sampler.needs_labelled and lab.size == 0:
        raise InputError(f"labelled is empty, but {sampler.name} needs at least one labelled item; label a random seed set first")
    if candidates is None:
        mask = np.ones(n, dtype=bool)
        mask[lab] = False
        cand = np.flatnonzero(mask)
    else:
        cand = np.sort(check_index_array(candidates, n_items=n, name="candidates"))
        clash = np.intersect1d(cand, lab)
        if clash.size:
            raise InputError(f"candidates holds {clash.size} labelled item(s) (first: {clash[0]}); candidates must be unlabelled")
    if budget > cand.size:
        raise InputError(f"budget={budget} exceeds the {cand.size} unlabelled candidates in the pool")
    return Problem(features=features, labelled=lab, candidates=cand, budget=budget)


class _SourceSampler(Sampler):
    """Shared by the samplers that read something else than features: the source gives the item count."""

    def select(self, source, labelled, budget, *, candidates=None) -> np.ndarray:
        """Pick `budget` unlabelled items of `source` (see the subclass); global indices (budget,) int64."""
        self._check_params()
        placeholder = np.zeros((self._n_items(source), 1), dtype=np.float32)  # (n_items, 1): never read
        problem = check_problem(self, placeholder, labelled, budget, candidates)
        return self._finish(self._select_from(source, problem), problem)

    def _n_items(self, source) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select_from(self, source, problem: Problem) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ImageSampler(_SourceSampler):
    """Reads the training images (n_items, c, h, w), e.g. VAAL; `problem.features` is a placeholder."""

    reads = "the training images"

    def _n_items(self, images) -> int:
        return len(images)


class LearnerSampler(_SourceSampler):
    """Reads the learner, trained with this sampler as its companion (Learning Loss)."""

    reads = "the learner's internals (it trains alongside the learner)"

    def _n_items(self, learner) -> int:
        return learner.dataset.n_train


def check_option_number(value, *, name: str, low: float = 0.0, high: float | None = None, positive: bool = False, reference=None) -> None:
    """ValueError unless `value` is a real number in [low, high] (> low with `positive`); the message names the reference value."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and (value > low if positive else value >= low) and (high is None or value <= high)
    if not ok:
        if positive:
            where = f"in ({low:g}, {high:g}]" if high is not None else f"> {low:g}"
        else:
            where = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        note = f" (reference: {reference})" if reference is not None else ""
        raise InputError(f"{name}={value!r} must be a number {where}{note}")


def check_flag(value, *, name: str) -> None:
    """InputError unless `value` is true or false."""
    if not isinstance(value, bool):
        raise InputError(f"{name}={value!r} must be true or false")


def top_scores(problem: Problem, scores: np.ndarray, *, highest: bool) -> np.ndarray:
    """The `budget` candidates with the highest (or lowest) of `scores` (n_candidates,), best first; ties by index."""
    order = np.argsort(-scores if highest else scores, kind="stable")
    return problem.candidates[order[: problem.budget]]


@dataclass(frozen=True)
class LearnerOutputs:
    """What the trained learner says about the items; row i is global item i (only D_S ∪ L rows need be filled).

    features : (n_items, d) float32 penultimate features, or None
    probs    : (n_items, n_classes) float32 softmax of the learner, or None
    passes   : (T, n_items, n_outputs) float32 outputs of T Monte-Carlo dropout passes (softmax for a classifier,
               the predicted targets for a regressor), or None
    task     : "classification" or "regression"
    """

    features: np.ndarray | None = None
    probs: np.ndarray | None = None
    passes: np.ndarray | None = None
    task: str = "classification"

    def n_items(self) -> int:
        for array, axis in ((self.probs, 0), (self.features, 0), (self.passes, 1)):
            if array is not None:
                return int(np.shape(array)[axis])
        raise InputError("the learner outputs hold no array; give probs, features or passes")


class OutputSampler(_SourceSampler):
    """Reads the trained learner's outputs (`LearnerOutputs`): uncertainty sampling, BALD, BADGE.

    `needs` names the fields it reads; the loop asks the learner for those only. Subclasses
    implement `_select_outputs(outputs, problem)`, with `outputs` checked by `_check_outputs`.
    """

    reads = "the learner's outputs"
    needs: frozenset = frozenset({"probs"})
    tasks = ("classification",)

    @classmethod
    def check_task(cls, task: str) -> None:
        """InputError unless the sampler can pick for a learner of `task`."""
        if task not in cls.tasks:
            raise InputError(f"{cls.name} needs class probabilities, so it cannot pick for a {task} learner; "
                             f"choose a method that works on features (e.g. CoreSet, TypiClust, ProbCover)")

    def _n_items(self, outputs) -> int:
        if not isinstance(outputs, LearnerOutputs):
            raise InputError(f"{self.name} reads LearnerOutputs (class probabilities{', features' if 'features' in self.needs else ''}), "
                             f"got {type(outputs).__name__}")
        return outputs.n_items()

    def _select_from(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:
        return self._select_outputs(self._check_outputs(outputs, problem.candidates), problem)

    def _check_outputs(self, outputs: LearnerOutputs, rows: np.ndarray) -> LearnerOutputs:
        """Every field in `needs` present, of one row count; its `rows` (the candidates, the only ones read)
        finite, and probabilities there in [0, 1] summing to 1."""
        self.check_task(outputs.task)
        n = outputs.n_items()
        checked = {}
        for name in ("features", "probs", "passes"):
            array = getattr(outputs, name)
            if name not in self.needs:
                checked[name] = None
                continue
            if array is None:
                raise InputError(f"{self.name} reads the learner's {name}, which were not given")
            array = np.asarray(array, dtype=np.float32)
            want = 3 if name == "passes" else 2
            count = array.shape[1] if name == "passes" and array.ndim == 3 else array.shape[0]
            if array.ndim != want or count != n or array.shape[-1] < 1:
                raise InputError(f"{name} must be a {want}-D array with one row per item ({n}); got shape {array.shape}")
            read = array[:, rows] if name == "passes" else array[rows]
            if not np.isfinite(read).all():
                raise InputError(f"{name} holds NaN or infinite values")
            if name == "probs" or (name == "passes" and outputs.task == "classification"):
                check_probabilities(read, name=name)
            checked[name] = array
        return LearnerOutputs(task=outputs.task, **checked)

    def _select_outputs(self, outputs: LearnerOutputs, problem: Problem) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| allowed: float32 softmax sums are within 1e-6, rounded CSV/npy files less exact


def check_probabilities(probs: np.ndarray, *, name: str = "probs") -> None:
    """InputError unless every row (last axis) of `probs` is a probability vector: in [0, 1], summing to 1."""
    if probs.shape[-1] < 2:
        raise InputError(f"{name} must have at least 2 classes (columns); got shape {probs.shape}")
    if (probs < 0).any() or (probs > 1).any():
        raise InputError(f"{name} must lie in [0, 1]; found values from {float(probs.min()):g} to {float(probs.max()):g}")
    sums = probs.sum(axis=-1, dtype=np.float64)
    worst = np.unravel_index(np.argmax(np.abs(sums - 1.0)), sums.shape)
    if abs(sums[worst] - 1.0) > PROBABILITY_TOLERANCE:
        raise InputError(f"{name} rows must sum to 1 (softmax outputs); row {worst[-1]} sums to {float(sums[worst]):.6g}")
