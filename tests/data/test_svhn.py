"""SVHN .mat reader on tiny MATLAB v5 files written with scipy.io.savemat."""

import numpy as np
import pytest
import scipy.io

from seqgcn.data.base import DatasetError
from seqgcn.data.svhn import load_svhn


def _write(root, n_train=4, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
        y[0, 0] = 10
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        out[split] = (x, y)
    return out


def test_shapes_labels_and_ten_means_zero(tmp_path):
    raw = _write(tmp_path)
    ds = load_svhn(tmp_path)
    assert ds.name == "svhn" and ds.n_classes == 10
    assert ds.x_train.shape == (4, 3, 32, 32) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (3, 3, 32, 32)
    assert ds.y_train.dtype == np.int64
    assert ds.y_train[0] == 0
    expected = raw["train"][1].ravel().astype(np.int64) % 10
    np.testing.assert_array_equal(ds.y_train, expected)
    assert ds.y_train.min() >= 0 and ds.y_train.max() <= 9


def test_pixel_layout(tmp_path):
    raw = _write(tmp_path)
    ds = load_svhn(tmp_path)
    x = raw["test"][0]  # (32, 32, 3, N): row, column, channel, image
    for n, c, i, j in [(0, 0, 0, 0), (1, 2, 5, 9), (2, 1, 31, 30)]:
        assert ds.x_test[n, c, i, j] == x[i, j, c, n]


def test_missing_file(tmp_path):
    _write(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DatasetError, match=r"SVHN: missing file .*test_32x32\.mat.*housenumbers"):
        load_svhn(tmp_path)


def test_missing_dir(tmp_path):
    with pytest.raises(DatasetError, match=r"data directory .* does not exist"):
        load_svhn(tmp_path / "none")


def test_not_a_mat_file(tmp_path):
    _write(tmp_path)
    (tmp_path / "train_32x32.mat").write_bytes(b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"cannot read .*train_32x32\.mat' as a MATLAB file"):
        load_svhn(tmp_path)


def test_truncated_mat(tmp_path):
    _write(tmp_path)
    path = tmp_path / "train_32x32.mat"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DatasetError, match=r"cannot read .*train_32x32\.mat"):
        load_svhn(tmp_path)


def test_missing_variable(tmp_path):
    _write(tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 1), np.uint8)})
    with pytest.raises(DatasetError, match=r"lacks variable 'X' or 'y'"):
        load_svhn(tmp_path)


def test_wrong_shape(tmp_path):
    _write(tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((3, 32, 32, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DatasetError, match=r"X is uint8 \(3, 32, 32, 2\), expected uint8 \(32, 32, 3, N\)"):
        load_svhn(tmp_path)


def test_count_mismatch(tmp_path):
    _write(tmp_path)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1))})
    with pytest.raises(DatasetError, match=r"y has 3 labels for 2 images"):
        load_svhn(tmp_path)


def test_label_out_of_range(tmp_path):
    _write(tmp_path)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[1], [11]]})
    with pytest.raises(DatasetError, match=r"labels outside 1\.\.10"):
        load_svhn(tmp_path)
