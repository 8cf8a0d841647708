"""The images of a labelling project: found once, decoded once per query, held as one uint8 array.

Every image file under the project folder, recursively, is an item: ``.png``,
``.jpg``/``.jpeg``, ``.bmp``, ``.tif``/``.tiff`` (any case); names starting with
``.`` (files or folders) are ignored. An item is named by its path relative to
the folder, with ``/`` separators, and item ``i`` is the ``i``-th path in sorted
order: that position is the item's global index.

Decoding (Pillow): 8-bit and 16-bit, grey or colour, palette and alpha images.
16-bit and 32-bit integer images keep their top 8 bits (value >> 8, so 65535 →
255); float images are read as [0, 1]; alpha is dropped. Each image is resized
to ``size × size`` with Pillow's antialiased bilinear filter (the aspect ratio is
not kept) and written straight into a preallocated ``(n, 3, size, size)`` uint8
array, so memory is O(images × image size) and no decoded full-size image
outlives its own decode. Decoding runs in a thread pool: Pillow releases the GIL
while it decodes and resizes. When every image is grey the array is cut to one
channel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


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
    """Sorted relative paths (``/``-separated) of the image files under `root`, recursively.

    Raises ValueError when `root` is not a folder or holds no image file.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--images {str(root)!r} is not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # os.walk descends only into these
        rel = Path(folder).relative_to(root)
        found.extend((rel / f).as_posix() for f in files if not f.startswith(".") and f.lower().endswith(EXTENSIONS))
    if not found:
        raise InputError(f"--images {str(root)!r} holds no image files ({', '.join(EXTENSIONS)}, searched recursively)")
    return sorted(found)


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
    from tqdm import tqdm

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"--image-size={size!r} must be a positive number of pixels")
    root = Path(root)
    paths = list(find_images(root) if paths is None else paths)
    workers = workers or min(8, os.cpu_count() or 1)
    pixels = np.empty((len(paths), 3, size, size), dtype=np.uint8)  # (n, 3, size, size), filled in place
    grey = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}

    def decode_into(i: int) -> None:
        try:
            grey[i] = _decode(root / paths[i], size, pixels[i])
        except Exception as exc:  # decoders raise many types on corrupt or odd files
            errors[i] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(decode_into, range(len(paths))), total=len(paths), desc="decode images",
                      unit="img", disable=not progress):
            pass
    if errors and not skip_unreadable:
        first = min(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"cannot decode image {str(root / paths[first])!r} ({errors[first]}){more}; "
                         "fix or remove it, or pass --skip-unreadable to leave such files out")
    keep = np.ones(len(paths), dtype=bool)
    keep[list(errors)] = False
    if errors:
        if not keep.any():
            raise InputError(f"none of the {len(paths)} images under {str(root)!r} can be decoded")
        pixels, grey = pixels[keep], grey[keep]
    if grey.all():
        pixels = np.ascontiguousarray(pixels[:, :1])  # (n, 1, size, size)
    return ImageSet(root=root, paths=tuple(p for p, k in zip(paths, keep, strict=True) if k), pixels=pixels,
                    skipped=tuple(paths[i] for i in sorted(errors)))


def open_rgb(path, size: int):
    """A Pillow RGB image of `path` (8-bit, alpha dropped) scaled so that its longer side is `size`.

    For people to look at: small images are enlarged with nearest-neighbour (crisp pixels), large ones shrunk.
    """
    from PIL import Image

    with Image.open(path) as image:
        image = _to_8bit(image).convert("RGB")
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.NEAREST if scale > 1 else Image.BILINEAR)


def _decode(path: Path, size: int, out: np.ndarray) -> bool:
    """Decode `path` into `out` (3, size, size) uint8; return True when the image is grey."""
    from PIL import Image

    with Image.open(path) as image:
        grey = image.mode in GREY_MODES or (image.mode == "P" and _grey_palette(image))
        image.draft(None, (size, size))  # JPEG: let the decoder downscale by 1/2, 1/4, 1/8 when it can
        image = _to_8bit(image).convert("L" if grey else "RGB")
        image = image.resize((size, size), Image.BILINEAR)
        arr = np.asarray(image)  # (size, size) or (size, size, 3)
    out[...] = arr[None] if grey else arr.transpose(2, 0, 1)
    return grey


def _to_8bit(image):
    """Pillow's 16/32-bit integer and float modes as 8-bit "L" (top 8 bits; floats as [0, 1])."""
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.int64)  # (h, w)
        return Image.fromarray(np.clip(values >> 8, 0, 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)  # (h, w)
        return Image.fromarray(np.clip(np.rint(values * 255), 0, 255).astype(np.uint8))
    return image


def _grey_palette(image) -> bool:
    palette = image.getpalette() or []
    rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())
