"""The embedded default datasets: scikit-learn's bundled handwritten digits.

No files are needed: scikit-learn ships the 1,797 8×8 digit images (pixel values
0..16, 10 classes, UCI "Optical Recognition of Handwritten Digits" test set).
Two tasks are built on them:

- `load_digits` — classification, images ``(n, 1, 8, 8)`` uint8.
- `load_rotated_digits` — regression: each digit upsampled to 16×16 and rotated
  by a known angle; the target is the angle. It exercises the regression path
  (learner, metric in degrees) in seconds on a CPU.

Both use a fixed stratified train/test split (stratified by digit class), so the
same `split_seed` always gives the same split.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data.base import CLASSIFICATION, REGRESSION, Dataset, channel_stats, check_test_fraction, stratified_split

SOURCE = "scikit-learn's bundled digits (sklearn/datasets/data/digits.csv.gz, as sklearn.datasets.load_digits reads it)"
ANGLE_SEED = 20210619  # fixed: the rotation of each digit is part of the data, not of the split


def load_digits(*, test_fraction: float = 0.25, split_seed: int = 0) -> Dataset:
    """Load the bundled digits as a 10-class classification dataset.

    Parameters
    ----------
    test_fraction : float in (0, 1)
        Fraction of the 1,797 images held out as the test set (stratified by class).
    split_seed : int
        ``random_state`` of the stratified split; the split is a pure function of it.

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 1, 8, 8)`` in [0, 255] (source value ``v`` in 0..16 becomes
        ``v * 255 // 16``); ``y_*`` int64 ``(n,)`` in 0..9; mean/std of the training
        pixels in [0, 1] units.
    """
    check_test_fraction(test_fraction)
    images, labels = _raw_digits()  # (1797, 8, 8) uint8, (1797,) int64
    x = images[:, None]  # (1797, 1, 8, 8)
    train, test = stratified_split(labels, test_fraction, split_seed)
    mean, std = channel_stats(x[train])
    return Dataset(
        name="digits",
        x_train=x[train],
        y_train=labels[train],
        x_test=x[test],
        y_test=labels[test],
        task=CLASSIFICATION,
        n_classes=10,
        mean=mean,
        std=std,
        class_names=tuple(str(d) for d in range(10)),
        info={"source": SOURCE, "split_seed": split_seed, "test_fraction": test_fraction},
    )


def load_rotated_digits(
    *, test_fraction: float = 0.25, split_seed: int = 0, max_angle: float = 60.0
) -> Dataset:
    """Load the bundled digits as a rotation-angle regression dataset.

    Each 8×8 digit is upsampled to 16×16 (bilinear, `scipy.ndimage.zoom`) and
    rotated by an angle drawn uniformly from ``[-max_angle, max_angle]`` degrees
    (`scipy.ndimage.rotate`, ``reshape=False``, bilinear, zero fill). The angles
    come from a fixed generator (seed ``ANGLE_SEED``), so the images and targets
    are identical for every call; `split_seed` only changes the split.

    Parameters
    ----------
    test_fraction : float in (0, 1)
        Fraction held out as the test set (stratified by digit class).
    split_seed : int
        ``random_state`` of the stratified split.
    max_angle : float > 0
        Largest absolute rotation in degrees.

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 1, 16, 16)``; ``y_*`` float32 ``(n, 1)``: angle / max_angle,
        in [-1, 1]; ``target_scale = max_angle`` so errors come out in degrees;
        ``point_dim = 1``; ``metric_unit = "deg"``.
    """
    check_test_fraction(test_fraction)
    if not np.isfinite(max_angle) or max_angle <= 0:
        raise InputError(f"max_angle={max_angle!r} must be a positive number of degrees")
    images, labels = _raw_digits()  # (1797, 8, 8) uint8
    angles = np.random.default_rng(ANGLE_SEED).uniform(-1.0, 1.0, len(images)) * max_angle  # (1797,)
    x = np.stack([_rotate(img, a) for img, a in zip(images, angles, strict=True)])[:, None]  # (1797, 1, 16, 16)
    y = (angles / max_angle).astype(np.float32)[:, None]  # (1797, 1)
    train, test = stratified_split(labels, test_fraction, split_seed)
    mean, std = channel_stats(x[train])
    return Dataset(
        name="rotated_digits",
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        task=REGRESSION,
        mean=mean,
        std=std,
        point_dim=1,
        target_scale=float(max_angle),
        metric_unit="deg",
        info={
            "source": SOURCE,
            "split_seed": split_seed,
            "test_fraction": test_fraction,
            "max_angle": float(max_angle),
            "angle_seed": ANGLE_SEED,
        },
    )


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """Bundled digits as uint8 (n, 8, 8) in [0, 255] and int64 labels (n,)."""
    table = _digits_table()  # (1797, 65): 64 pixel values in 0..16, then the label
    values = table[:, :64].reshape(-1, 8, 8).astype(np.int64)  # (1797, 8, 8) in 0..16
    images = (values * 255 // 16).astype(np.uint8)  # (1797, 8, 8) in 0..255
    return images, table[:, 64].astype(np.int64)


def _digits_table() -> np.ndarray:
    """scikit-learn's digits.csv.gz, read as its ``load_digits`` reads it, but without importing scikit-learn
    (2.4 s in each process); scikit-learn's own loader when the file is not where this expects it."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    path = folder / "datasets" / "data" / "digits.csv.gz" if folder else None
    if path is None or not path.is_file():
        from sklearn import datasets as sk_datasets

        bunch = sk_datasets.load_digits()
        return np.column_stack([bunch.data, bunch.target])
    with gzip.open(path, mode="rt", encoding="utf-8") as fh:
        return np.loadtxt(fh, delimiter=",")


def _rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Upsample an (8, 8) uint8 image to (16, 16) and rotate it by `angle` degrees."""
    from scipy import ndimage

    big = ndimage.zoom(image.astype(np.float32), 2, order=1)  # (16, 16)
    turned = ndimage.rotate(big, angle, reshape=False, order=1, mode="grid-constant", cval=0.0)  # (16, 16)
    return np.clip(np.rint(turned), 0, 255).astype(np.uint8)
