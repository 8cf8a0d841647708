"""Samplers that read more than features: the raw images (VAAL) or the learner itself (Learning Loss).

Their type says what they read (STYLE §4), in the class attribute ``needs``:

    "images"   select(images (n_items, c, h, w), labelled, budget, candidates=...)
    "learner"  select(learner, labelled, budget, candidates=...); the learner was
               trained with ``fit(..., companion=sampler)`` first (see
               `seqgcn.learners.base.Companion`)

Feature samplers (``needs = "features"``, the default) stay pure functions of
the feature matrix. `seqgcn.loop.ActiveLearner.step` hands each kind its input;
`seqgcn select`, which only has features, refuses the other two.
"""

from __future__ import annotations

import numpy as np

from seqgcn.samplers.base import Problem, Sampler


class ModelSampler(Sampler):
    """Base of the samplers that read images or the learner; the index checks are `Sampler`'s.

    Subclasses set ``needs`` and implement ``_n_items(source)`` and
    ``_select_from(source, problem) -> global indices``; ``problem.features`` is
    a placeholder of shape (n_items, 1) and is never read.
    """

    needs = ""

    def select(self, source, labelled, budget, *, candidates=None) -> np.ndarray:
        """Pick `budget` unlabelled items of `source` (images or a trained learner, see ``needs``).

        Returns global indices (budget,) int64: unique, unlabelled, within `candidates`.
        """
        n_items = self._n_items(source)
        problem = Sampler._check(self, np.zeros((n_items, 1), dtype=np.float32), labelled, budget, candidates)
        picked = np.asarray(self._select_from(source, problem), dtype=np.int64)
        assert picked.shape == (problem.budget,) and np.unique(picked).size == picked.size, picked
        return picked

    def _n_items(self, source) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select_from(self, source, problem: Problem) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def check_number(value, *, name: str, low: float = 0.0, high: float | None = None, positive: bool = False, reference=None) -> None:
    """ValueError unless `value` is a real number in [low, high] (> low with `positive`); the message names the reference value."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and (value > low if positive else value >= low) and (high is None or value <= high)
    if not ok:
        where = f"> {low:g}" if positive else (f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}")
        note = f" (reference: {reference})" if reference is not None else ""
        raise ValueError(f"{name}={value!r} must be a number {where}{note}")


def top_scores(problem: Problem, scores: np.ndarray, *, highest: bool) -> np.ndarray:
    """The `budget` candidates with the highest (or lowest) of `scores` (n_candidates,), best first; ties by index."""
    order = np.argsort(-scores if highest else scores, kind="stable")
    return problem.candidates[order[: problem.budget]]
