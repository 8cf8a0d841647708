"""CIFAR-10/100 python-version loaders on tiny batches written like the originals."""

import os
import pickle
import tarfile

import numpy as np
import pytest

from seqgcn.data.base import DatasetError
from seqgcn.data.cifar import CIFAR10_MEAN, load_cifar10, load_cifar100

N_PER_BATCH = 4


def _batch(n, seed, label_key=b"labels", n_classes=10, protocol=2):
    """Pickle a batch dict with bytes keys, as Python 2 wrote the originals."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, n_classes, size=n)]
    return pickle.dumps({b"batch_label": b"x", b"data": data, label_key: labels}, protocol=protocol), data, labels


def _write_cifar10(root, protocol=2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    expected = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        raw, data, labels = _batch(N_PER_BATCH, i, protocol=protocol)
        (folder / name).write_bytes(raw)
        expected[name] = (data, labels)
    meta = {b"label_names": [f"c{k}".encode() for k in range(10)], b"num_cases_per_batch": N_PER_BATCH}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, expected


def _write_cifar100(root):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    expected = {}
    for i, name in enumerate(["train", "test"]):
        raw, data, labels = _batch(6, 10 + i, label_key=b"fine_labels", n_classes=100)
        (folder / name).write_bytes(raw)
        expected[name] = (data, labels)
    return folder, expected


def _tar(folder, archive):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def test_cifar10_folder_shapes_labels_and_names(tmp_path):
    _, expected = _write_cifar10(tmp_path)
    ds = load_cifar10(tmp_path)
    assert ds.name == "cifar10" and ds.n_classes == 10
    assert ds.x_train.shape == (5 * N_PER_BATCH, 3, 32, 32) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (N_PER_BATCH, 3, 32, 32)
    assert ds.y_train.dtype == np.int64
    train_labels = sum((expected[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert ds.y_train.tolist() == train_labels
    assert ds.y_test.tolist() == expected["test_batch"][1]
    assert ds.class_names == tuple(f"c{k}" for k in range(10))
    assert ds.mean == CIFAR10_MEAN


def test_cifar10_pixel_layout_is_channel_major(tmp_path):
    _, expected = _write_cifar10(tmp_path)
    ds = load_cifar10(tmp_path)
    row = expected["test_batch"][0][2]  # (3072,)
    # value at channel c, pixel (i, j) sits at c * 1024 + i * 32 + j
    for c, i, j in [(0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 17, 3)]:
        assert ds.x_test[2, c, i, j] == row[c * 1024 + i * 32 + j]


def test_cifar10_from_archive_matches_folder(tmp_path):
    folder, _ = _write_cifar10(tmp_path / "src")
    (tmp_path / "arc").mkdir()
    _tar(folder, tmp_path / "arc" / "cifar-10-python.tar.gz")
    from_folder = load_cifar10(tmp_path / "src")
    from_archive = load_cifar10(tmp_path / "arc")
    np.testing.assert_array_equal(from_archive.x_train, from_folder.x_train)
    np.testing.assert_array_equal(from_archive.y_test, from_folder.y_test)
    assert from_archive.class_names == from_folder.class_names
    assert not (tmp_path / "arc" / "cifar-10-batches-py").exists()  # never extracted


def test_cifar10_accepts_batches_folder_itself_and_protocol4_str_keys(tmp_path):
    folder, _ = _write_cifar10(tmp_path, protocol=4)
    raw = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]}, protocol=4)
    (folder / "test_batch").write_bytes(raw)
    ds = load_cifar10(folder)
    assert ds.y_test.tolist() == [1, 2]


def test_cifar10_protocol5_arrays(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    raw, data, _ = _batch(3, 99, protocol=5)
    (folder / "test_batch").write_bytes(raw)
    ds = load_cifar10(tmp_path)
    np.testing.assert_array_equal(ds.x_test.reshape(3, -1), data)


def test_cifar100_fine_labels(tmp_path):
    _, expected = _write_cifar100(tmp_path)
    ds = load_cifar100(tmp_path)
    assert ds.name == "cifar100" and ds.n_classes == 100
    assert ds.x_train.shape == (6, 3, 32, 32)
    assert ds.y_train.tolist() == expected["train"][1]
    assert ds.class_names == ()


def test_cifar100_from_archive(tmp_path):
    folder, expected = _write_cifar100(tmp_path / "src")
    (tmp_path / "arc").mkdir()
    _tar(folder, tmp_path / "arc" / "cifar-100-python.tar.gz")
    ds = load_cifar100(tmp_path / "arc")
    assert ds.y_test.tolist() == expected["test"][1]


def test_missing_directory(tmp_path):
    with pytest.raises(DatasetError, match=r"CIFAR-10: data directory .* does not exist.*cifar-10-batches-py"):
        load_cifar10(tmp_path / "nope")


def test_missing_everything_names_layout_and_url(tmp_path):
    with pytest.raises(DatasetError, match=r"found neither .*cifar\.html") as info:
        load_cifar10(tmp_path)
    assert "\n" not in str(info.value)


def test_missing_batch(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match=r"missing file .*data_batch_3"):
        load_cifar10(tmp_path)


def test_missing_test_in_archive(tmp_path):
    folder, _ = _write_cifar100(tmp_path / "src")
    (folder / "test").unlink()
    _tar(folder, tmp_path / "cifar-100-python.tar.gz")
    with pytest.raises(DatasetError, match=r"CIFAR-100: missing file .*tar\.gz:cifar-100-python/test"):
        load_cifar100(tmp_path)


def test_corrupt_archive(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a gzip file")
    with pytest.raises(DatasetError, match=r"cannot read archive .*cifar-10-python\.tar\.gz"):
        load_cifar10(tmp_path)


def test_truncated_pickle(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"data_batch_2.* is not a readable pickle"):
        load_cifar10(tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_pickle_refused(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil()}))
    with pytest.raises(DatasetError, match=r"data_batch_1.* forbidden object (posix|nt|os)\.system"):
        load_cifar10(tmp_path)


def test_malicious_pickle_builtins_eval_refused(tmp_path):
    folder, _ = _write_cifar10(tmp_path)

    class EvalCall:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    (folder / "test_batch").write_bytes(pickle.dumps(EvalCall()))
    with pytest.raises(DatasetError, match=r"test_batch.* forbidden object builtins\.eval"):
        load_cifar10(tmp_path)


def test_not_a_dict(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DatasetError, match=r"test_batch.* holds a list, not a dict"):
        load_cifar10(tmp_path)


def test_missing_key(tmp_path):
    folder, _ = _write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}))
    with pytest.raises(DatasetError, match=r"test_batch.* lacks key 'data' or 'labels'"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"'data' is uint8 \(2, 100\), expected uint8 \(N, 3072\)"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}, r"2 labels for 3 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels outside 0\.\.9"),
    ],
    ids=["wrong_data_shape", "label_count_mismatch", "label_out_of_range"],
)
def test_malformed_test_batch(tmp_path, bad, match):
    folder, _ = _write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(DatasetError, match=match):
        load_cifar10(tmp_path)
