"""SVHN, cropped digits "format 2" (http://ufldl.stanford.edu/housenumbers/).

Expected under ``data_dir``: ``train_32x32.mat`` and ``test_32x32.mat``
(MATLAB v5 files, read with `scipy.io.loadmat`). Each holds ``X``: uint8
``(32, 32, 3, N)`` (row, column, RGB channel, image) and ``y``: ``(N, 1)``
labels 1..10, where 10 stands for the digit 0. The optional
``extra_32x32.mat`` is not used (the paper's pool is the 73,257 train images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqgcn.data.base import CLASSIFICATION, Dataset, DatasetError

URL = "http://ufldl.stanford.edu/housenumbers/"
LAYOUT = "DIR/train_32x32.mat and DIR/test_32x32.mat (MATLAB v5, X 32x32x3xN uint8, y Nx1 in 1..10)"
# Per-channel statistics of the training images, in [0, 1] units.
MEAN = (0.4377, 0.4438, 0.4728)
STD = (0.1980, 0.2010, 0.1970)


def load_svhn(data_dir: str | Path) -> Dataset:
    """Load SVHN train and test from `data_dir`.

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 3, 32, 32)`` (73,257 train, 26,032 test for the full set);
        ``y_*`` int64 ``(n,)`` in 0..9 (the file's label 10 becomes 0).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise _fail(f"data directory {str(data_dir)!r} does not exist")
    x_train, y_train = read_svhn_mat(data_dir / "train_32x32.mat")
    x_test, y_test = read_svhn_mat(data_dir / "test_32x32.mat")
    return Dataset(
        name="svhn",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task=CLASSIFICATION,
        n_classes=10,
        mean=MEAN,
        std=STD,
        class_names=tuple(str(d) for d in range(10)),
        info={"source": str(data_dir), "url": URL},
    )


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one SVHN .mat file into uint8 images (N, 3, 32, 32) and int64 labels (N,) in 0..9."""
    path = Path(path)
    if not path.is_file():
        raise _fail(f"missing file {str(path)!r}")
    try:
        import scipy.io  # only when SVHN files are read

        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as exc:  # scipy raises several types for a bad or truncated file
        raise _fail(f"cannot read {str(path)!r} as a MATLAB file ({type(exc).__name__}: {exc})") from None
    if "X" not in mat or "y" not in mat:
        raise _fail(f"file {str(path)!r} lacks variable 'X' or 'y'")
    images, labels = np.asarray(mat["X"]), np.asarray(mat["y"])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise _fail(f"file {str(path)!r}: X is {images.dtype} {images.shape}, expected uint8 (32, 32, 3, N)")
    labels = labels.reshape(-1).astype(np.int64)  # (N,)
    if len(labels) != images.shape[3]:
        raise _fail(f"file {str(path)!r}: y has {len(labels)} labels for {images.shape[3]} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 10):
        raise _fail(f"file {str(path)!r}: labels outside 1..10")
    x = np.ascontiguousarray(images.transpose(3, 2, 0, 1))  # (N, 3, 32, 32)
    return x, labels % 10  # 10 -> digit 0


def _fail(problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, where the data is published."""
    return DatasetError(f"SVHN: {problem}; expected {LAYOUT} (published at {URL})")
