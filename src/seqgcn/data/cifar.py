"""CIFAR-10 and CIFAR-100, "python version" (https://www.cs.toronto.edu/~kriz/cifar.html).

Accepted layouts under ``data_dir`` (the first one found is used):

- CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``,
  ``test_batch`` and optionally ``batches.meta``; or the archive
  ``cifar-10-python.tar.gz`` itself (read in memory, never extracted to disk).
  ``data_dir`` may also be the ``cifar-10-batches-py`` folder itself.
- CIFAR-100: ``cifar-100-python/`` with ``train``, ``test`` and optionally
  ``meta``; or ``cifar-100-python.tar.gz``. Labels are the 100 ``fine_labels``.

Each file is a pickled dict (written by Python 2, so keys may be ``bytes``)
with ``data``: uint8 ``(N, 3072)``, each row the 1024 red, then 1024 green,
then 1024 blue values of a 32×32 image in row-major order; and ``labels`` (or
``fine_labels``): N ints. Files are unpickled with `_RestrictedUnpickler`,
which builds only plain containers and numpy arrays, so a tampered file cannot
run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from seqgcn.data.base import CLASSIFICATION, Dataset, DatasetError

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

# Well-known per-channel statistics of the training images, in [0, 1] units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

CIFAR10_LAYOUT = "DIR/cifar-10-batches-py/data_batch_1..5 and test_batch, or DIR/cifar-10-python.tar.gz"
CIFAR100_LAYOUT = "DIR/cifar-100-python/train and test, or DIR/cifar-100-python.tar.gz"

_VARIANTS = {
    10: {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
        "layout": CIFAR10_LAYOUT,
        "stats": (CIFAR10_MEAN, CIFAR10_STD),
    },
    100: {
        "title": "CIFAR-100",
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "train": ("train",),
        "test": ("test",),
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
        "layout": CIFAR100_LAYOUT,
        "stats": (CIFAR100_MEAN, CIFAR100_STD),
    },
}

# (module, name) pairs a pickled numpy array or plain container may reference.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 pickles of arrays
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("__builtin__", "bytearray"),
    ("__builtin__", "list"),
    ("__builtin__", "dict"),
    ("__builtin__", "tuple"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
}


class _UnsafePickle(Exception):
    """Raised inside the unpickler; re-raised as DatasetError naming the file."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in `_ALLOWED_GLOBALS`."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise _UnsafePickle(f"{module}.{name}")


def load_cifar10(data_dir: str | Path) -> Dataset:
    """Load CIFAR-10 from `data_dir` (layouts in the module docstring).

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 3, 32, 32)`` (50,000 train, 10,000 test for the full set);
        ``y_*`` int64 ``(n,)`` in 0..9; the standard CIFAR-10 mean/std.
    """
    return _load(Path(data_dir), 10)


def load_cifar100(data_dir: str | Path) -> Dataset:
    """Load CIFAR-100 (fine labels) from `data_dir` (layouts in the module docstring).

    Returns
    -------
    Dataset
        ``x_*`` uint8 ``(n, 3, 32, 32)``; ``y_*`` int64 ``(n,)`` in 0..99; the standard
        CIFAR-100 mean/std.
    """
    return _load(Path(data_dir), 100)


def _load(data_dir: Path, n_classes: int) -> Dataset:
    spec = _VARIANTS[n_classes]
    reader, source = _open_source(data_dir, spec)
    x_train, y_train = _read_split(reader, spec["train"], spec, n_classes)
    x_test, y_test = _read_split(reader, spec["test"], spec, n_classes)
    class_names = _read_class_names(reader, spec)
    mean, std = spec["stats"]
    return Dataset(
        name=f"cifar{n_classes}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task=CLASSIFICATION,
        n_classes=n_classes,
        mean=mean,
        std=std,
        class_names=class_names,
        info={"source": source, "url": URL},
    )


def _fail(spec: dict, problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, where the data is published."""
    return DatasetError(f"{spec['title']}: {problem}; expected {spec['layout']} (published at {URL})")


def _open_source(data_dir: Path, spec: dict):
    """Return (reader, source description); reader(name) -> (bytes or None, display path)."""
    if not data_dir.is_dir():
        raise _fail(spec, f"data directory {str(data_dir)!r} does not exist")
    for folder in (data_dir / spec["folder"], data_dir):
        if (folder / spec["train"][0]).is_file():
            return _folder_reader(folder), str(folder)
    archive = data_dir / spec["archive"]
    if archive.is_file():
        return _archive_reader(archive, spec), str(archive)
    raise _fail(spec, f"found neither {str(data_dir / spec['folder'])!r} nor {str(archive)!r}")


def _folder_reader(folder: Path):
    def read(name: str):
        path = folder / name
        return (path.read_bytes() if path.is_file() else None), str(path)

    return read


def _archive_reader(archive: Path, spec: dict):
    """Read every regular member of the archive into memory, keyed by its base name."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {}
            for member in tar.getmembers():
                if member.isfile() and Path(member.name).parent.name == spec["folder"]:
                    members[Path(member.name).name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _fail(spec, f"cannot read archive {str(archive)!r} ({exc})") from None

    def read(name: str):
        return members.get(name), f"{archive}:{spec['folder']}/{name}"

    return read


def _read_split(reader, names: tuple, spec: dict, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the batches `names` into uint8 (n, 3, 32, 32) images and int64 (n,) labels."""
    xs, ys = [], []
    for name in names:
        raw, where = reader(name)
        if raw is None:
            raise _fail(spec, f"missing file {where!r}")
        batch = _unpickle(raw, where, spec)
        x, y = _batch_arrays(batch, where, spec, n_classes)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _unpickle(raw: bytes, where: str, spec: dict) -> dict:
    """Unpickle a dict with the restricted unpickler; keys are returned as str."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _UnsafePickle as exc:
        raise _fail(spec, f"file {where!r} references forbidden object {exc} (refused to unpickle)") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise _fail(spec, f"file {where!r} is not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise _fail(spec, f"file {where!r} holds a {type(obj).__name__}, not a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _batch_arrays(batch: dict, where: str, spec: dict, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    label_key = spec["label_key"]
    if "data" not in batch or label_key not in batch:
        raise _fail(spec, f"file {where!r} lacks key 'data' or {label_key!r} (keys: {sorted(map(str, batch))})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise _fail(spec, f"file {where!r}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.ndim != 1 or len(labels) != len(data):
        raise _fail(spec, f"file {where!r}: {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise _fail(spec, f"file {where!r}: labels outside 0..{n_classes - 1}")
    images = data.reshape(-1, 3, 32, 32)  # (N, 3, 32, 32): channel-major rows, row-major pixels
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _read_class_names(reader, spec: dict) -> tuple:
    """Class names from the optional meta file; empty tuple when it is absent."""
    raw, where = reader(spec["meta"])
    if raw is None:
        return ()
    meta = _unpickle(raw, where, spec)
    names = meta.get(spec["names_key"], [])
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
