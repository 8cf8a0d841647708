"""Datasets by name, for the CLI and configs: ``load_dataset("cifar10", data_dir="~/data")``.

=============== ======================================== ==========================
name            loader                                   files under ``data_dir``
=============== ======================================== ==========================
digits          `seqgcn.data.digits.load_digits`         none (bundled, default)
rotated_digits  `seqgcn.data.digits.load_rotated_digits` none (bundled)
cifar10         `seqgcn.data.cifar.load_cifar10`         cifar-10-batches-py/ or .tar.gz
cifar100        `seqgcn.data.cifar.load_cifar100`        cifar-100-python/ or .tar.gz
fashionmnist    `seqgcn.data.fashionmnist...`            IDX files (.gz or plain)
svhn            `seqgcn.data.svhn.load_svhn`             train_32x32.mat, test_32x32.mat
icvl            `seqgcn.data.icvl.load_icvl`             labels.txt + 16-bit depth PNGs
folder          `seqgcn.data.folder.load_image_folder`   ROOT/<class>/<image>
=============== ======================================== ==========================

Extra keyword arguments go to the loader unchanged (e.g. ``split_seed`` for
digits, ``image_size`` for folder, ``max_train`` for icvl). The bundled datasets
ignore `data_dir`. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from seqgcn.checks import InputError
from seqgcn.data import cifar, digits, fashionmnist, folder, icvl, svhn
from seqgcn.data.base import Dataset, DatasetError

# name -> (loader, what to put in data_dir; None for bundled data)
_REGISTRY: dict[str, tuple[Callable[..., Dataset], str | None]] = {
    "digits": (digits.load_digits, None),
    "rotated_digits": (digits.load_rotated_digits, None),
    "cifar10": (cifar.load_cifar10, f"{cifar.CIFAR10_LAYOUT}, published at {cifar.URL}"),
    "cifar100": (cifar.load_cifar100, f"{cifar.CIFAR100_LAYOUT}, published at {cifar.URL}"),
    "fashionmnist": (fashionmnist.load_fashionmnist, f"{fashionmnist.LAYOUT}, published at {fashionmnist.URL}"),
    "svhn": (svhn.load_svhn, f"{svhn.LAYOUT}, published at {svhn.URL}"),
    "icvl": (icvl.load_icvl, f"{icvl.LAYOUT}, published at {icvl.URL}"),
    "folder": (folder.load_image_folder, folder.LAYOUT),
}


def available_datasets() -> list[str]:
    """Names accepted by `load_dataset`, in table order (bundled ones first)."""
    return list(_REGISTRY)


def load_dataset(name: str, *, data_dir: str | Path | None = None, **kwargs) -> Dataset:
    """Load the dataset `name` (see `available_datasets`) from `data_dir`.

    Raises
    ------
    ValueError
        Unknown `name`.
    DatasetError
        A file-based dataset without `data_dir`, or missing / malformed files.
    """
    if name not in _REGISTRY:
        raise InputError(f"unknown dataset {name!r}; known datasets: {', '.join(_REGISTRY)}")
    loader, layout = _REGISTRY[name]
    if layout is None:
        return loader(**kwargs)
    if data_dir is None:
        raise DatasetError(f"dataset {name!r} reads local files: pass --data-dir DIR (expected {layout})")
    folder = Path(data_dir).expanduser()
    if folder.is_file():
        raise DatasetError(f"--data-dir {str(data_dir)!r} is a file; give the folder that holds {layout}")
    return loader(folder, **kwargs)
