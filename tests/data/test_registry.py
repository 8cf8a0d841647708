"""Dataset registry: names, errors, and dispatch to each loader."""

import pickle
import struct

import numpy as np
import pytest
import scipy.io

import seqgcn.data
from seqgcn.data import DatasetError, available_datasets, load_dataset, load_digits

NAMES = ["digits", "rotated_digits", "cifar10", "cifar100", "fashionmnist", "svhn", "icvl", "folder"]


def test_available_datasets():
    assert available_datasets() == NAMES
    assert {"load_dataset", "available_datasets", "load_digits"} <= set(seqgcn.data.__all__)


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; known datasets: digits, rotated_digits, cifar10"):
        load_dataset("mnist")


@pytest.mark.parametrize("name", NAMES[2:])
def test_file_datasets_need_data_dir(name):
    with pytest.raises(DatasetError, match=rf"dataset '{name}' reads local files: pass --data-dir DIR \(expected "):
        load_dataset(name)


def test_digits_without_files_and_kwargs():
    ds = load_dataset("digits", split_seed=2)
    assert ds.name == "digits" and ds.info["split_seed"] == 2
    np.testing.assert_array_equal(ds.y_test, load_digits(split_seed=2).y_test)
    assert load_dataset("rotated_digits", max_angle=30.0).target_scale == 30.0


def test_dispatch_cifar10(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 4]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.name == "cifar10" and ds.n_train == 10


def test_dispatch_fashionmnist(tmp_path):
    for prefix in ("train", "t10k"):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, 1, 28, 28) + bytes(784))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, 1) + b"\x05")
    ds = load_dataset("fashionmnist", data_dir=tmp_path)
    assert ds.y_train.tolist() == [5]


def test_dispatch_svhn(tmp_path):
    for split in ("train", "test"):
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[10], [1]]})
    assert load_dataset("svhn", data_dir=tmp_path).y_test.tolist() == [0, 1]


def test_dispatch_folder_with_kwargs(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            np.save(tmp_path / name / f"{i}.npy", np.zeros((5, 5), np.uint8))
    ds = load_dataset("folder", data_dir=tmp_path, image_size=4, test_fraction=0.5)
    assert ds.x_train.shape == (2, 1, 4, 4)  # grey images: one channel (seqgcn.data.images.read_images)


def test_missing_files_surface_as_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=r"ICVL: missing train labels"):
        load_dataset("icvl", data_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"CIFAR-100: found neither"):
        load_dataset("cifar100", data_dir=tmp_path)
