"""FashionMNIST from its IDX files (https://github.com/zalandoresearch/fashion-mnist).

Expected under ``data_dir`` (each file plain or gzipped with a ``.gz`` suffix;
``data_dir/FashionMNIST/raw/`` — torchvision's layout — is also searched):

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

IDX format: a big-endian int32 magic number — 2051 (0x00000803: unsigned
bytes, 3 dimensions) for images, 2049 (0x00000801, 1 dimension) for labels —
then one big-endian int32 size per dimension (N, 28, 28 or N), then the
uint8 values in row-major order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from seqgcn.data.base import CLASSIFICATION, Dataset, DatasetError

URL = "https://github.com/zalandoresearch/fashion-mnist"
LAYOUT = (
    "DIR/train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte (each optionally .gz)"
)
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Per-channel statistics of the 60,000 training images, in [0, 1] units.
MEAN = (0.2860,)
STD = (0.3530,)


def load_fashionmnist(data_dir: str | Path) -> Dataset:
    """Load FashionMNIST from the four IDX files in `data_dir`.

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 1, 28, 28)`` (60,000 train, 10,000 test for the full set);
        ``y_*`` int64 ``(n,)`` in 0..9; the standard FashionMNIST mean/std.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise _fail(f"data directory {str(data_dir)!r} does not exist")
    x_train, y_train = _read_pair(data_dir, "train")
    x_test, y_test = _read_pair(data_dir, "t10k")
    return Dataset(
        name="fashionmnist",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task=CLASSIFICATION,
        n_classes=10,
        mean=MEAN,
        std=STD,
        class_names=CLASS_NAMES,
        info={"source": str(data_dir), "url": URL},
    )


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read one IDX file (plain, or gzipped when the name ends in ``.gz``) of uint8 values.

    Parameters
    ----------
    path : path to the file
    magic : 2051 for images (3 dimensions) or 2049 for labels (1 dimension)

    Returns
    -------
    ndarray, uint8, shape given by the header: (N, rows, cols) or (N,)
    """
    path = Path(path)
    raw = _read_bytes(path)
    n_dims = magic & 0xFF
    header_size = 4 * (1 + n_dims)
    if len(raw) < header_size:
        raise _fail(f"file {str(path)!r} is truncated: {len(raw)} bytes, shorter than its {header_size}-byte header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise _fail(f"file {str(path)!r} has magic number {found}, expected {magic}")
    shape = tuple(int.from_bytes(raw[4 * (1 + d) : 4 * (2 + d)], "big") for d in range(n_dims))
    expected = header_size + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise _fail(f"file {str(path)!r} has {len(raw)} bytes, but its header {shape} needs {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_pair(data_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 1, 28, 28) and labels int64 (n,) of one split ("train" or "t10k")."""
    images_path = _find(data_dir, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(data_dir, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, IMAGES_MAGIC)  # (n, 28, 28)
    labels = read_idx(labels_path, LABELS_MAGIC)  # (n,)
    if images.shape[1:] != (28, 28):
        raise _fail(f"file {str(images_path)!r} holds {images.shape[1]}x{images.shape[2]} images, expected 28x28")
    if len(images) != len(labels):
        raise _fail(f"{str(images_path)!r} has {len(images)} images but {str(labels_path)!r} has {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise _fail(f"file {str(labels_path)!r} has label {int(labels.max())}, expected 0..9")
    return images[:, None].copy(), labels.astype(np.int64)  # (n, 1, 28, 28), (n,)


def _find(data_dir: Path, name: str) -> Path:
    """The plain or .gz file `name` in `data_dir` or `data_dir/FashionMNIST/raw`."""
    for folder in (data_dir, data_dir / "FashionMNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise _fail(f"missing file {str(data_dir / name)!r} (or .gz)")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise _fail(f"missing file {str(path)!r}") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(f"cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from None


def _fail(problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, where the data is published."""
    return DatasetError(f"FashionMNIST: {problem}; expected {LAYOUT} (published at {URL})")
