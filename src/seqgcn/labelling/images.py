"""The images of a labelling project: found once, decoded once per query, held as one uint8 array.

Every image file under the project folder, recursively, is an item: ``.png``,
``.jpg``/``.jpeg``, ``.bmp``, ``.tif``/``.tiff`` (any case); names starting with
``.`` (files or folders) are ignored. An item is named by its path relative to
the folder, with ``/`` separators, and item ``i`` is the ``i``-th path in sorted
order: that position is the item's global index. A file whose name would not come
back unchanged from the CSV and JSON files (a leading space, a backslash, a
newline, see `scan_images`) is left out, so every item can be labelled.

Decoding: `seqgcn.data.images.read_images`, the decoder of ``seqgcn run
--dataset folder``, so one folder gives the same pixels in both: 8-bit and
16-bit, grey or colour, palette and alpha images; 16-bit samples keep their top
8 bits, alpha is dropped; each image resized to ``size × size`` (aspect ratio not
kept); one channel when every image is grey, else three. Its module docstring
has the rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data.images import read_image, read_images
from seqgcn.labelling.labels import can_store

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageSet:
    """The decoded images of a project folder.

    root : the folder
    paths : (n,) paths relative to `root`, sorted, ``/``-separated; position = global index
    pixels : uint8 array (n, channels, size, size), channels 1 (all grey) or 3
    skipped : paths that could not be decoded and were left out (``skip_unreadable=True``)
    """

    root: Path
    paths: tuple
    pixels: np.ndarray
    skipped: tuple = field(default=())

    def index(self) -> dict:
        """path → global index."""
        return {p: i for i, p in enumerate(self.paths)}


def find_images(root) -> list[str]:
    """Sorted relative paths (``/``-separated) of the image files under `root`, recursively (see `scan_images`).

    Raises ValueError when `root` is not a folder or holds no image file.
    """
    return scan_images(root)[0]


def scan_images(root) -> tuple[list[str], list[str]]:
    """``(paths, refused)``: the sorted relative paths of the image files under `root`, and the image files left out.

    A file is left out (listed in `refused`, sorted) when its relative path is not one
    that every file seqgcn writes and reads back keeps unchanged (`labels.can_store`:
    a leading or trailing space, a backslash, a control character, a byte that is not
    UTF-8): it could be picked but never labelled. Raises ValueError when `root` is not
    a folder or no image file is left.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--images {str(root)!r} is not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # os.walk descends only into these
        rel = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"  # joined as strings: a Path per file costs more than the walk
        found.extend(prefix + f for f in files if _is_image_name(f))
    paths, refused = [], []
    for name in sorted(found):
        (paths if can_store(name) else refused).append(name)
    if not paths:
        left_out = f"; {len(refused)} left out for their names, e.g. {refused[0]!r}" if refused else ""
        raise InputError(f"--images {str(root)!r} holds no image files ({', '.join(EXTENSIONS)}, searched "
                         f"recursively{left_out})")
    return paths, refused


def scan_name(root, path) -> str | None:
    """The relative path under which `scan_images(root)` would list the file `path` once written, or None.

    `path` need not exist. Both the path itself (its folders' symlinks resolved) and the
    file it points to, should it be a symlink, are looked at, as a write through it
    lands there.
    """
    root = Path(os.path.realpath(root))
    path = os.path.abspath(path)
    for where in (Path(os.path.realpath(os.path.dirname(path)), os.path.basename(path)), Path(os.path.realpath(path))):
        if where.is_relative_to(root) and where != root:
            rel = where.relative_to(root).as_posix()
            if not any(part.startswith(".") for part in rel.split("/")) and _is_image_name(where.name) and can_store(rel):
                return rel
    return None


def _is_image_name(name: str) -> bool:
    """A file name the scan takes for an image: not hidden, an image extension."""
    return not name.startswith(".") and name.lower().endswith(EXTENSIONS)


def load_images(root, paths=None, *, size: int = 32, workers: int | None = None, skip_unreadable: bool = False,
                progress: bool = False) -> ImageSet:
    """Decode every image of `root` (or the given relative `paths`) to uint8 ``(n, c, size, size)``.

    Parameters
    ----------
    root : project folder
    paths : relative paths to decode, in this order (default: `find_images(root)`)
    size : side of the square the images are resized to, pixels
    workers : decoding threads (default: the CPU count, at most 8)
    skip_unreadable : leave out the files that cannot be decoded (listed in ``ImageSet.skipped``)
        instead of raising ValueError naming the first of them
    progress : show a progress bar over the files

    Returns
    -------
    ImageSet
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"--image-size={size!r} must be a positive number of pixels")
    root = Path(root)
    paths = list(find_images(root) if paths is None else paths)
    pixels, errors = read_images([root / p for p in paths], size=size, workers=workers, progress=progress)
    if errors and not skip_unreadable:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"{errors[min(errors)]}{more}; fix or remove it, or pass --skip-unreadable to leave such "
                         "files out")
    if len(errors) == len(paths) and paths:
        raise InputError(f"none of the {len(paths)} images under {str(root)!r} can be decoded")
    return ImageSet(root=root, paths=tuple(p for i, p in enumerate(paths) if i not in errors), pixels=pixels,
                    skipped=tuple(paths[i] for i in sorted(errors)))


def open_rgb(path, size: int):
    """A Pillow RGB image of `path` (decoded by `read_image`) scaled so that its longer side is `size`.

    For people to look at: small images are enlarged with nearest-neighbour (crisp pixels), large ones shrunk.
    """
    from PIL import Image

    pixels = read_image(path)  # (h, w, 1|3)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.NEAREST if scale > 1 else Image.BILINEAR)
