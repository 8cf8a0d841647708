"""PoolState: the labelled/unlabelled split of one dataset, in one global index space.

Every index a user, a sampler or a results file sees is a row of the training
set ("global index"). PoolState also remembers the cycle ("round") in which each
item was labelled: round 0 is the random seed set D_0.
"""

from __future__ import annotations

import numpy as np

from seqgcn.checks import InputError, check_index_array, check_positive_int

UNLABELLED = -1


class PoolState:
    """Which items of a pool of `n_items` are labelled, and since which round.

    Parameters
    ----------
    n_items : int
        Size of the pool (rows of the training set).
    """

    def __init__(self, n_items: int):
        self.n_items = check_positive_int(n_items, name="n_items")
        self._round = np.full(self.n_items, UNLABELLED, dtype=np.int64)  # (n_items,)

    # -- queries ---------------------------------------------------------------
    @property
    def labelled_mask(self) -> np.ndarray:
        return self._round != UNLABELLED

    @property
    def labelled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labelled_mask)

    @property
    def unlabelled_indices(self) -> np.ndarray:
        return np.flatnonzero(self._round == UNLABELLED)

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(self.labelled_mask))

    @property
    def n_unlabelled(self) -> int:
        return self.n_items - self.n_labelled

    def labelled_round(self, indices=None) -> np.ndarray:
        """Round in which each item was labelled (-1: still unlabelled)."""
        return self._round.copy() if indices is None else self._round[np.asarray(indices, dtype=np.int64)]

    # -- verbs -----------------------------------------------------------------
    def label(self, indices, *, round: int) -> None:
        """Mark `indices` (global, currently unlabelled) as labelled in `round`."""
        idx = check_index_array(indices, n_items=self.n_items, name="indices")
        if round < 0:
            raise InputError(f"round={round} must be >= 0")
        already = idx[self._round[idx] != UNLABELLED]
        if already.size:
            raise InputError(
                f"indices holds {already.size} item(s) that are already labelled (first: {already[0]}, "
                f"labelled in round {self._round[already[0]]}); a sampler must pick unlabelled items only"
            )
        self._round[idx] = round

    def draw_seed(self, size: int, rng: np.random.Generator, *, among=None) -> np.ndarray:
        """Label a random seed set D_0 of `size` items (round 0), drawn without replacement."""
        pool = self._unlabelled_among(among)
        size = check_positive_int(size, name="seed_size")
        if size > pool.size:
            raise InputError(f"seed_size={size} exceeds the {pool.size} unlabelled items available for the seed set")
        seed = np.sort(rng.choice(pool, size=size, replace=False))
        self.label(seed, round=0)
        return seed

    def draw_candidates(self, size: int | None, rng: np.random.Generator, *, among=None) -> np.ndarray:
        """A random subset D_S of the unlabelled pool (all of it when `size` is None or too large)."""
        pool = self._unlabelled_among(among)
        if size is None or size >= pool.size:
            return pool
        return np.sort(rng.choice(pool, size=size, replace=False))

    def _unlabelled_among(self, among) -> np.ndarray:
        """Sorted unlabelled global indices, restricted to `among` when given."""
        unlabelled = self.unlabelled_indices
        return unlabelled if among is None else np.intersect1d(unlabelled, among)

    # -- persistence -----------------------------------------------------------
    def state_dict(self) -> dict:
        return {"n_items": self.n_items, "labelled_round": self._round.tolist()}

    def load_state_dict(self, state: dict) -> None:
        rounds = np.asarray(state["labelled_round"], dtype=np.int64)
        if int(state["n_items"]) != self.n_items or rounds.shape != (self.n_items,):
            raise InputError(f"state is for a pool of {state['n_items']} items; this pool has {self.n_items}")
        if rounds.min(initial=0) < UNLABELLED:
            raise InputError("state holds a labelled_round below -1")
        self._round = rounds.copy()

    def __repr__(self) -> str:
        return f"PoolState(n_items={self.n_items}, n_labelled={self.n_labelled})"
