"""FashionMNIST IDX reader on tiny files written in the real format, plain and gzipped."""

import gzip
import struct

import numpy as np
import pytest

from seqgcn.data.base import DatasetError
from seqgcn.data.fashionmnist import load_fashionmnist, read_idx


def _idx_images(images):
    n, rows, cols = images.shape
    return struct.pack(">iiii", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def _idx_labels(labels):
    return struct.pack(">ii", 2049, len(labels)) + np.asarray(labels, np.uint8).tobytes()


def _write(root, n_train=5, n_test=3, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        arrays[prefix] = (images, labels)
        for kind, raw in (("images-idx3-ubyte", _idx_images(images)), ("labels-idx1-ubyte", _idx_labels(labels))):
            name = f"{prefix}-{kind}"
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (root / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_loads_shapes_labels_and_pixels(tmp_path, gz):
    arrays = _write(tmp_path, gz=gz)
    ds = load_fashionmnist(tmp_path)
    assert ds.name == "fashionmnist" and ds.n_classes == 10 and len(ds.class_names) == 10
    assert ds.x_train.shape == (5, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (3, 1, 28, 28)
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, arrays["train"][1])
    np.testing.assert_array_equal(ds.x_test[:, 0], arrays["t10k"][0])


def test_pixel_order_is_row_major(tmp_path):
    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 2, 5] = 200  # row 2, column 5 -> byte 2 * 28 + 5 after the header
    raw = _idx_images(images)
    assert raw[16 + 2 * 28 + 5] == 200
    (tmp_path / "x").write_bytes(raw)
    assert read_idx(tmp_path / "x", 2051)[0, 2, 5] == 200


def test_torchvision_raw_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _write(raw, gz=True)
    assert load_fashionmnist(tmp_path).n_train == 5


def test_missing_dir(tmp_path):
    with pytest.raises(DatasetError, match=r"FashionMNIST: data directory .* does not exist.*fashion-mnist"):
        load_fashionmnist(tmp_path / "absent")


def test_missing_file(tmp_path):
    _write(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match=r"missing file .*t10k-labels-idx1-ubyte.* \(or \.gz\); expected DIR/"):
        load_fashionmnist(tmp_path)


def test_wrong_magic(tmp_path):
    _write(tmp_path)
    raw = bytearray((tmp_path / "train-images-idx3-ubyte").read_bytes())
    raw[:4] = struct.pack(">i", 2049)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.* has magic number 2049, expected 2051"):
        load_fashionmnist(tmp_path)


def test_truncated_body(tmp_path):
    _write(tmp_path)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(DatasetError, match=r"has 3926 bytes, but its header \(5, 28, 28\) needs 3936"):
        load_fashionmnist(tmp_path)


def test_truncated_header(tmp_path):
    _write(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.* is truncated: 3 bytes"):
        load_fashionmnist(tmp_path)


def test_truncated_gzip(tmp_path):
    _write(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DatasetError, match=r"cannot read .*t10k-images-idx3-ubyte\.gz"):
        load_fashionmnist(tmp_path)


def test_count_mismatch(tmp_path):
    _write(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_labels([1, 2, 3]))
    with pytest.raises(DatasetError, match=r"has 5 images but .*train-labels-idx1-ubyte.* has 3 labels"):
        load_fashionmnist(tmp_path)


def test_wrong_image_size(tmp_path):
    _write(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_images(np.zeros((5, 32, 32), np.uint8)))
    with pytest.raises(DatasetError, match=r"holds 32x32 images, expected 28x28"):
        load_fashionmnist(tmp_path)


def test_label_out_of_range(tmp_path):
    _write(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_labels([0, 1, 12]))
    with pytest.raises(DatasetError, match=r"has label 12, expected 0\.\.9"):
        load_fashionmnist(tmp_path)
