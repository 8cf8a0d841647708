"""Image folders: ``ROOT/<class>/<image>``, e.g. a synthetic RaFD + StarGAN pool.

Layout: one subfolder per class directly under ``ROOT``; class names are the
sorted subfolder names and the label of a class is its position in that order.
Images are files ending in ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``,
``.tiff`` (any case) or ``.npy``; other files and names starting with ``.`` are
ignored. Within a class, images are taken in sorted file-name order, so row
``i`` of the dataset is the same file on every run.

Reading: `seqgcn.data.images.read_images`, the decoder `seqgcn query` uses, so a
folder gives the same pixels here and there: resized to ``image_size`` ×
``image_size``, one channel when every image (train and test) is grey, else
three (grey images repeated). An image that cannot be decoded is a
`DatasetError` naming the file.

Test set: a second folder with the same layout (``test_dir``; its classes must
be among the training classes), or a stratified split of ``ROOT`` with a fixed
seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data import images
from seqgcn.data.base import CLASSIFICATION, Dataset, DatasetError, channel_stats, check_test_fraction, stratified_split

EXTENSIONS = (*images.EXTENSIONS, ".npy")
LAYOUT = "ROOT/<class>/<image>.png|.jpg|.jpeg|.bmp|.tif|.tiff|.npy with at least two class folders"
EXAMPLE_SOURCE = "e.g. a RaFD pool, https://rafd.socsci.ru.nl/"


def load_image_folder(
    data_dir: str | Path,
    *,
    image_size: int = 32,
    test_dir: str | Path | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    name: str = "folder",
) -> Dataset:
    """Load a class-per-folder image collection as a classification dataset.

    Parameters
    ----------
    data_dir : ROOT, holding one folder per class
    image_size : side of the square images after resizing, pixels
    test_dir : optional second ROOT used as the test set; when None the test set is
        a stratified `test_fraction` of ROOT chosen with ``random_state=split_seed``
    test_fraction : fraction of each class held out when `test_dir` is None, in (0, 1)
    split_seed : seed of that split
    name : the dataset's name in results

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, c, image_size, image_size)``, c = 1 when every image is grey
        else 3; ``y_*`` int64 ``(n,)``;
        mean/std per channel of the training images in [0, 1] units; ``class_names``
        the sorted folder names.
    """
    if image_size < 1:
        raise InputError(f"image_size={image_size!r} must be a positive number of pixels")
    if test_dir is None:
        check_test_fraction(test_fraction)
    root = Path(data_dir)
    class_names = _class_names(root)
    files, y = _list_tree(root, class_names)
    test_files, y_test = [], None
    if test_dir is not None:
        test_root = Path(test_dir)
        test_files, y_test = _list_tree(test_root, _test_classes(test_root, class_names), class_names)
    x = _read(files + test_files, image_size)  # (n + n_test, c, s, s): one channel count for train and test
    if test_dir is None:
        (x_train, y_train), (x_test, y_test) = _split(x, y, test_fraction, split_seed, root, class_names)
    else:
        x_train, y_train, x_test = x[: len(files)], y, x[len(files) :]
    mean, std = channel_stats(x_train)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task=CLASSIFICATION,
        n_classes=len(class_names),
        mean=mean,
        std=std,
        class_names=tuple(class_names),
        info={
            "source": str(root),
            "test_source": str(test_dir) if test_dir is not None else None,
            "image_size": image_size,
            "split_seed": split_seed if test_dir is None else None,
            "test_fraction": test_fraction if test_dir is None else None,
        },
    )


def _subfolders(root: Path) -> list[str]:
    """Sorted names of the non-hidden folders directly under `root`."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_names(root: Path) -> list[str]:
    if not root.is_dir():
        raise _fail(f"data directory {str(root)!r} does not exist")
    names = _subfolders(root)
    if len(names) < 2:
        raise _fail(f"{str(root)!r} has {len(names)} class folder(s)")
    return names


def _test_classes(test_root: Path, train_classes: list[str]) -> list[str]:
    if not test_root.is_dir():
        raise _fail(f"test directory {str(test_root)!r} does not exist")
    names = _subfolders(test_root)
    unknown = sorted(set(names) - set(train_classes))
    if unknown:
        raise _fail(f"test directory {str(test_root)!r} has classes {unknown} absent from the training folder")
    if not names:
        raise _fail(f"test directory {str(test_root)!r} has no class folders")
    return names


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
    )


def _list_tree(root: Path, classes: list[str], label_order: list[str] | None = None) -> tuple[list[Path], np.ndarray]:
    """The image files of ROOT/<class>/* and their int64 (n,) labels, indices into `label_order`."""
    label_order = label_order or classes
    files, labels = [], []
    for name in classes:
        found = _image_files(root / name)
        if not found:
            raise _fail(f"class folder {str(root / name)!r} has no images ({', '.join(EXTENSIONS)})")
        files.extend(found)
        labels.extend([label_order.index(name)] * len(found))
    return files, np.asarray(labels, dtype=np.int64)


def _read(files: list[Path], size: int) -> np.ndarray:
    """uint8 (n, c, size, size) pixels of `files`; the first undecodable file is a DatasetError."""
    pixels, errors = images.read_images(files, size=size)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _fail(f"{errors[min(errors)]}{more}")
    return pixels


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, root: Path, class_names: list[str]):
    """Stratified train/test split with sorted indices; each class needs two images."""
    counts = np.bincount(y)
    if counts.min() < 2:
        small = class_names[int(counts.argmin())]
        raise _fail(f"class folder {str(root / small)!r} has 1 image; a train/test split needs 2 per class")
    try:
        train, test = stratified_split(y, test_fraction, seed)
    except InputError as exc:
        raise _fail(f"cannot split {str(root)!r} with test_fraction={test_fraction} ({exc})") from None
    return (x[train], y[train]), (x[test], y[test])


def _fail(problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, an example source."""
    return DatasetError(f"image folder: {problem}; expected {LAYOUT} ({EXAMPLE_SOURCE})")
