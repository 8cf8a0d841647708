"""The Learner protocol: the only task-specific part of the active-learning cycle.

The loop never knows whether it drives a classifier or a regressor: it resets the
learner, fits it on labelled global indices with the oracle's targets, asks for
one number on the test set, and for one feature vector per item.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Learner(Protocol):
    """A model trained on the labelled part of a `Dataset` it was built with.

    Attributes
    ----------
    metric_name : str
        Name of the test metric, e.g. ``"accuracy"`` or ``"mean joint error (mm)"``.
    higher_is_better : bool
        Direction of the metric (False for errors).
    """

    metric_name: str
    higher_is_better: bool

    def reset(self, seed: int) -> None:
        """Re-initialise the weights (every cycle, SPEC §5) from `seed`."""

    def fit(self, indices: np.ndarray, targets: np.ndarray) -> dict:
        """Train on training rows `indices` (global) with `targets` from the oracle; return stats."""

    def evaluate(self) -> float:
        """The metric on the whole test set."""

    def features(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), feature_dim) float32 features of training rows, test-time transforms."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels (n,) or regression targets (n, n_targets) for images `x`."""
