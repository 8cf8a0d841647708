"""Learners: the task-specific part of the cycle (SPEC §5).

``build_learner(dataset, config)`` returns a `TorchLearner` whose network is
chosen by ``config.arch`` (``"auto"`` picks by the dataset: a small CNN for the
embedded digits, DeepPrior for depth-crop regression, ResNet-18 otherwise).
"""

from __future__ import annotations

from seqgcn.data.base import CLASSIFICATION, Dataset
from seqgcn.learners.base import Learner
from seqgcn.learners.config import LearnerConfig
from seqgcn.learners.nets import ARCHS, VGG11, DeepPrior, ResNet18, SmallCNN, build_net
from seqgcn.learners.torch_learner import TorchLearner


def default_config(dataset: Dataset) -> LearnerConfig:
    """The paper's learner settings for `dataset`'s task (SPEC §5–6).

    Classification: SGD lr 0.1, momentum 0.9, wd 5e-4, batch 128, 200 epochs, lr ÷10 after 160.
    Regression (DeepPrior): Adam lr 1e-3, batch 128, same epochs and schedule.
    """
    if dataset.task == CLASSIFICATION:
        return LearnerConfig()
    return LearnerConfig(optimizer="adam", lr=1e-3)


def build_learner(dataset: Dataset, config: LearnerConfig | None = None, *, seed: int = 0) -> Learner:
    """A `TorchLearner` for `dataset`, weights drawn from `seed`; `config` defaults to `default_config(dataset)`.

    Raises ValueError for an unknown ``config.arch`` (the message lists the known ones).
    """
    return TorchLearner(dataset, default_config(dataset) if config is None else config, seed=seed)


__all__ = [
    "ARCHS", "DeepPrior", "Learner", "LearnerConfig", "ResNet18", "SmallCNN", "TorchLearner", "VGG11",
    "build_learner", "build_net", "default_config",
]
