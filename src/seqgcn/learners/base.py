"""The Learner protocol: the only task-specific part of the active-learning cycle.

The loop never knows whether it drives a classifier or a regressor: it resets the
learner, fits it on labelled global indices with the oracle's targets, asks for
one number on the test set, and for one feature vector per item.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Companion(Protocol):
    """A model trained alongside the learner, on its stage outputs (the one hook for such samplers).

    `Learner.fit(..., companion=c)` calls ``module = c.build(stage_channels)``
    once, gives the module its own optimiser with the learner's settings and
    schedule, and at every training step feeds it the globally average-pooled
    stage outputs of the batch, ``[(b, c_k)]`` (detached from the learner when
    ``c.detach_inputs(epoch, epochs)`` is True, epoch counted from 0). The step
    minimises ``mean(per-item loss) + c.loss(module_output, per_item_loss)``.
    Learning Loss (`seqgcn.samplers.LearningLoss`) is the companion in this library.
    """

    def build(self, stage_channels: tuple) -> "torch.nn.Module":  # noqa: F821
        """The module, taking the list of pooled stages ``[(b, c_k)]`` to one score per item (b,)."""

    def detach_inputs(self, epoch: int, epochs: int) -> bool:
        """Whether the module's inputs are cut from the learner's graph in `epoch` (0-based) of `epochs`."""

    def loss(self, predicted, item_losses):
        """Extra loss (scalar tensor) from the module's output (b,) and the learner's per-item losses (b,)."""


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

    def fit(self, indices: np.ndarray, targets: np.ndarray, *, companion: Companion | None = None) -> dict:
        """Train on training rows `indices` (global) with `targets` from the oracle; return stats.

        `companion` (optional, see `Companion`): a module trained jointly with the
        learner on its stage outputs; afterwards `stage_features` feeds it new items.
        """

    def evaluate(self) -> float:
        """The metric on the whole test set."""

    def features(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), feature_dim) float32 features of training rows, test-time transforms."""

    def outputs(self, indices: np.ndarray, *, features: bool = True, probs: bool = True) -> dict:
        """``{"features": (n, d), "probs": (n, n_classes) softmax}`` of training rows, eval mode (samplers that
        read the learner's outputs: Margin, BADGE, ...); probs for a classifier only."""

    def dropout_passes(self, indices: np.ndarray, *, passes: int, dropout: float, seed: int) -> np.ndarray:
        """(passes, n, n_outputs): Monte-Carlo dropout passes before the last layer (BALD)."""

    def stage_features(self, indices: np.ndarray) -> list[np.ndarray]:
        """Pooled stage outputs ``[(len(indices), c_k)]`` of training rows, eval mode (a `Companion`'s input)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels (n,) or regression targets (n, n_targets) for images `x`."""
