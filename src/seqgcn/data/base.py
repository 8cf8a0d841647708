"""The one dataset interface every loader returns and every learner reads.

A dataset is held in memory as arrays: images channel-first, `uint8` in [0, 255]
for photographs and digits, `float32` for depth crops. Row `i` of `x_train` is
global index `i` of the active-learning pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from seqgcn.checks import InputError

CLASSIFICATION = "classification"
REGRESSION = "regression"


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (n, c, h, w), in [0, 1] units."""
    scaled = x.astype(np.float64) / 255.0  # (n, c, h, w)
    mean = scaled.mean(axis=(0, 2, 3))  # (c,)
    std = scaled.std(axis=(0, 2, 3))  # (c,)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def check_test_fraction(test_fraction: float) -> None:
    """A held-out fraction must lie strictly between 0 and 1 (shared by the loaders that split)."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction={test_fraction!r} must be strictly between 0 and 1")


def stratified_split(labels, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) row indices of a stratified split: the rows scikit-learn's ``train_test_split(rows,
    test_size=test_fraction, stratify=labels, random_state=seed)`` gives, without importing scikit-learn
    (2.4 s in every process that loads the digits or splits a folder).

    Its StratifiedShuffleSplit, draw for draw from one ``RandomState(seed)``: ⌈fraction·n⌉ test rows; the
    train rows per class, then the test rows per class, by `_approximate_mode`; each class's rows permuted,
    the first to train and the next to test. tests/data/test_base.py checks it against scikit-learn.
    Raises InputError when a class has fewer than 2 rows, or a side fewer rows than there are classes.
    """
    labels = np.asarray(labels)
    check_test_fraction(test_fraction)
    n_test = math.ceil(test_fraction * len(labels))
    n_train = len(labels) - n_test
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise InputError(f"class {classes[counts.argmin()]!r} has {counts.min()} item; a stratified split needs 2")
    if min(n_train, n_test) < len(classes):
        raise InputError(f"test_fraction={test_fraction} leaves {n_train} train and {n_test} test items for "
                         f"{len(classes)} classes; each side needs one per class")
    members = np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])  # rows of each class
    rng = np.random.RandomState(seed)
    to_train = _approximate_mode(counts, n_train, rng)
    to_test = _approximate_mode(counts - to_train, n_test, rng)
    train, test = [], []
    for rows, a, b in zip(members, to_train, to_test):
        rows = rows[rng.permutation(len(rows))]
        train.append(rows[:a])
        test.append(rows[a:a + b])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Items per class of `draws` items drawn from classes of `counts`: each class its share rounded down, then
    one more to the classes with the largest remainders, ties broken by `rng` (scikit-learn's rule)."""
    share = counts / counts.sum() * draws
    taken = np.floor(share)
    missing = int(draws - taken.sum())
    remainder = share - taken
    for value in np.sort(np.unique(remainder))[::-1]:
        if missing <= 0:
            break
        tied = np.flatnonzero(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        taken[chosen] += 1
        missing -= len(chosen)
    return taken.astype(int)


class DatasetError(InputError):
    """A dataset file is missing or malformed (the message names the file and the expected layout)."""


@dataclass(frozen=True)
class Dataset:
    """Train pool and test set of one task.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"digits"``, ``"cifar10"``.
    x_train, x_test : ndarray, shape (n, channels, height, width)
        Images; uint8 in [0, 255] or float32.
    y_train, y_test : ndarray
        Classification: int64 labels, shape (n,). Regression: float32 targets, shape (n, n_targets).
    task : {"classification", "regression"}
    n_classes : int or None
        Number of classes (classification only).
    mean, std : tuple of float, one per channel
        Normalisation applied by learners after scaling uint8 images to [0, 1]
        (float32 images are normalised with the same formula, without the scaling).
    point_dim : int
        Regression: targets are `n_targets // point_dim` points of `point_dim`
        coordinates (3 for hand joints); the metric is the mean Euclidean error per point.
    target_scale : float
        Regression: multiply a target difference by this to get metric units (e.g. mm).
    metric_unit : str
        Unit of the regression metric, e.g. ``"mm"``.
    class_names : tuple of str
        Optional names of the classes.
    info : dict
        Free-form provenance (source files, split seed, ...), stored in results files.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = CLASSIFICATION
    n_classes: int | None = None
    mean: tuple = (0.5,)
    std: tuple = (0.5,)
    point_dim: int = 1
    target_scale: float = 1.0
    metric_unit: str = ""
    class_names: tuple = ()
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in (CLASSIFICATION, REGRESSION):
            raise InputError(f"task={self.task!r} must be 'classification' or 'regression'")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4:
                raise InputError(f"x_{split} must be (n, channels, height, width); got shape {x.shape}")
            if len(x) != len(y):
                raise InputError(f"x_{split} has {len(x)} rows but y_{split} has {len(y)}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise InputError(f"mean/std need one value per channel ({self.channels}); got {self.mean}, {self.std}")

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_test(self) -> int:
        return len(self.x_test)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    @property
    def n_targets(self) -> int:
        """Output size of a learner: classes, or regression targets."""
        return int(self.n_classes) if self.task == CLASSIFICATION else int(self.y_train.shape[1])
