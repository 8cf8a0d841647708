"""Image folders: ``ROOT/<class>/<image>``, e.g. a synthetic RaFD + StarGAN pool.

Layout: one subfolder per class directly under ``ROOT``; class names are the
sorted subfolder names and the label of a class is its position in that order.
Images are files ending in ``.png``, ``.jpg``, ``.jpeg``, ``.bmp`` (any case) or
``.npy``; other files and names starting with ``.`` are ignored. Within a
class, images are taken in sorted file-name order, so row ``i`` of the dataset is
the same file on every run.

Reading: PNG with `matplotlib.image.imread`; JPEG and BMP with Pillow (a
dependency of matplotlib; a clear error if it is missing); ``.npy`` with
`numpy.load` (no pickles) holding ``(h, w)``, ``(h, w, 1)``, ``(h, w, 3)`` or
``(h, w, 4)``, uint8 in [0, 255] or float in [0, 1]. Gray images are repeated to
3 channels and alpha is dropped. Every image is resized to
``image_size`` × ``image_size`` (`resize`: area averaging when shrinking,
bilinear otherwise).

Test set: a second folder with the same layout (``test_dir``; its classes must
be among the training classes), or a stratified split of ``ROOT`` with a fixed
seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from seqgcn.checks import InputError
from seqgcn.data.base import CLASSIFICATION, Dataset, DatasetError, channel_stats, check_test_fraction

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".npy")
LAYOUT = "ROOT/<class>/<image>.png|.jpg|.jpeg|.bmp|.npy with at least two class folders"
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
        ``x_*`` uint8 ``(n, 3, image_size, image_size)``; ``y_*`` int64 ``(n,)``;
        mean/std per channel of the training images in [0, 1] units; ``class_names``
        the sorted folder names.
    """
    if image_size < 1:
        raise InputError(f"image_size={image_size!r} must be a positive number of pixels")
    if test_dir is None:
        check_test_fraction(test_fraction)
    root = Path(data_dir)
    class_names = _class_names(root)
    x, y = _read_tree(root, class_names, image_size)
    if test_dir is None:
        (x_train, y_train), (x_test, y_test) = _split(x, y, test_fraction, split_seed, root, class_names)
    else:
        x_train, y_train = x, y
        test_root = Path(test_dir)
        x_test, y_test = _read_tree(test_root, _test_classes(test_root, class_names), image_size, class_names)
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


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as uint8 RGB (h, w, 3)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            pixels = np.load(path, allow_pickle=False)
        elif suffix == ".png":
            import matplotlib.image as mpimg

            pixels = mpimg.imread(path)
        else:
            pixels = _read_with_pillow(path)
    except DatasetError:
        raise
    except Exception as exc:  # decoders raise many types on corrupt files
        raise _fail(f"cannot read image {str(path)!r} ({type(exc).__name__}: {exc})") from None
    return _to_rgb_uint8(np.asarray(pixels), path)


def _read_with_pillow(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise _fail(f"reading {str(path)!r} needs Pillow (pip install pillow), or convert it to .png/.npy") from None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _to_rgb_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    """(h, w), (h, w, 1|3|4) uint8/uint16/float/bool -> uint8 (h, w, 3)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (h, w, 1)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4) or min(pixels.shape[:2]) < 1:
        raise _fail(f"image {str(path)!r} has shape {pixels.shape}, expected (h, w) or (h, w, 1|3|4)")
    if pixels.dtype == np.uint8:
        values = pixels
    elif pixels.dtype == np.uint16:
        values = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype == np.bool_ or np.issubdtype(pixels.dtype, np.floating):
        values = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    else:
        raise _fail(f"image {str(path)!r} has dtype {pixels.dtype}, expected uint8, uint16 or float in [0, 1]")
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)  # (h, w, 3)
    return np.ascontiguousarray(values[:, :, :3])  # (h, w, 3)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 (h, w, 3) to uint8 (3, size, size).

    Shrinking both sides: area averaging (exact block means for integer factors);
    otherwise bilinear (antialiased along a side that shrinks).
    """
    chw = torch.from_numpy(image).permute(2, 0, 1)[None].float()  # (1, 3, h, w)
    if min(chw.shape[-2:]) >= size and chw.shape[-2:] != (size, size):
        chw = F.interpolate(chw, size=(size, size), mode="area")  # (1, 3, size, size)
    elif chw.shape[-2:] != (size, size):
        chw = F.interpolate(chw, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return chw[0].round().clamp(0, 255).to(torch.uint8).numpy()  # (3, size, size)


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


def _read_tree(
    root: Path, classes: list[str], size: int, label_order: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, size, size) images and int64 (n,) labels of ROOT/<class>/*; labels index `label_order`."""
    label_order = label_order or classes
    images, labels = [], []
    for name in classes:
        files = _image_files(root / name)
        if not files:
            raise _fail(f"class folder {str(root / name)!r} has no images ({', '.join(EXTENSIONS)})")
        images.extend(resize(read_image(path), size) for path in files)
        labels.extend([label_order.index(name)] * len(files))
    return np.stack(images), np.asarray(labels, dtype=np.int64)  # (n, 3, s, s), (n,)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, root: Path, class_names: list[str]):
    """Stratified train/test split with sorted indices; each class needs two images."""
    counts = np.bincount(y)
    if counts.min() < 2:
        small = class_names[int(counts.argmin())]
        raise _fail(f"class folder {str(root / small)!r} has 1 image; a train/test split needs 2 per class")
    index = np.arange(len(y))
    try:
        train, test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as exc:
        raise _fail(f"cannot split {str(root)!r} with test_fraction={test_fraction} ({exc})") from None
    train, test = np.sort(train), np.sort(test)
    return (x[train], y[train]), (x[test], y[test])


def _fail(problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, an example source."""
    return DatasetError(f"image folder: {problem}; expected {LAYOUT} ({EXAMPLE_SOURCE})")
