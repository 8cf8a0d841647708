"""What every sampler shares: the `select` contract and its input checks.

A sampler is pure (STYLE §4): features, labelled items, budget and a seed in;
global indices out. It never sees the learner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqgcn._validation import check_features, check_index_array, check_positive_int


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
    """Base class. Subclasses implement `_select(problem) -> global indices`.

    Constructors store parameters only (keyword-only); work happens in `select`.
    """

    name: str = ""
    needs_labelled: bool = False  # True: an empty labelled set is an error
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
        problem = self._check(features, labelled, budget, candidates)
        picked = np.asarray(self._select(problem), dtype=np.int64)
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

    def _select(self, problem: Problem) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, features, labelled, budget, candidates) -> Problem:
        feats = check_features(features, rescale=self.scale_invariance)
        n = feats.shape[0]
        lab = np.sort(check_index_array(labelled, n_items=n, name="labelled"))
        budget = check_positive_int(budget, name="budget")
        if self.needs_labelled and lab.size == 0:
            raise ValueError(f"labelled is empty, but {self.name} needs at least one labelled item; label a random seed set first")
        if candidates is None:
            mask = np.ones(n, dtype=bool)
            mask[lab] = False
            cand = np.flatnonzero(mask)
        else:
            cand = np.sort(check_index_array(candidates, n_items=n, name="candidates"))
            clash = np.intersect1d(cand, lab)
            if clash.size:
                raise ValueError(f"candidates holds {clash.size} labelled item(s) (first: {clash[0]}); candidates must be unlabelled")
        if budget > cand.size:
            raise ValueError(f"budget={budget} exceeds the {cand.size} unlabelled candidates in the pool")
        return Problem(features=feats, labelled=lab, candidates=cand, budget=budget)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"
