"""Learners: the task-specific part of the cycle (SPEC §5).

``build_learner(dataset, config)`` returns a `TorchLearner` whose network is
chosen by ``config.arch`` (``"auto"`` picks by the dataset: a small CNN for the
embedded digits, DeepPrior for depth-crop regression, ResNet-18 otherwise).
"""

from __future__ import annotations

from seqgcn.data.base import Dataset
from seqgcn.learners.base import Learner
from seqgcn.learners.config import LearnerConfig
from seqgcn.learners.nets import ARCHS, VGG11, DeepPrior, ResNet18, SmallCNN, build_net
from seqgcn.learners.torch_learner import TorchLearner


def default_config(dataset: Dataset) -> LearnerConfig:
    """The default learner settings for `dataset`'s task (`LearnerConfig.for_task`): those of `seqgcn run`."""
    return LearnerConfig.for_task(dataset.task)


def build_learner(dataset: Dataset, config: LearnerConfig | None = None, *, seed: int = 0) -> Learner:
    """A `TorchLearner` for `dataset`, weights drawn from `seed`; `config` defaults to `default_config(dataset)`.

    Raises ValueError for an unknown ``config.arch`` (the message lists the known ones).
    """
    return TorchLearner(dataset, default_config(dataset) if config is None else config, seed=seed)


__all__ = [
    "ARCHS", "DeepPrior", "Learner", "LearnerConfig", "ResNet18", "SmallCNN", "TorchLearner", "VGG11",
    "build_learner", "build_net", "default_config",
]
