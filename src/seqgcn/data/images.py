"""The one image decoder of seqgcn: Pillow reads the file, numpy holds the pixels.

`seqgcn run --dataset folder` (`seqgcn.data.folder`), `seqgcn query`
(`seqgcn.labelling.images`) and ICVL (`seqgcn.data.icvl`) all decode here, so
one folder of images gives the same arrays everywhere.

Files: anything Pillow opens (PNG, JPEG, BMP, TIFF, ...; `EXTENSIONS` are the
names the folder readers look for) and ``.npy`` arrays (`numpy.load`, no
pickles) of shape ``(h, w)`` or ``(h, w, 1|3|4)``.

`read_image` gives uint8 ``(h, w, c)``:

- channels: c = 1 for grey images (Pillow modes 1, L, LA, I, I;16*, F, a palette
  of greys; arrays ``(h, w)`` or ``(h, w, 1)``), c = 3 (RGB) for the others;
  alpha is dropped and other colour modes (CMYK, YCbCr, ...) are converted to RGB;
- values: uint8 as stored; 16-bit samples keep their top 8 bits (``v >> 8``, so
  65535 → 255; Pillow's 32-bit mode I is read as 16-bit, clipped to [0, 255]);
  float and bool are read as [0, 1] (``round(255 v)``, clipped);
- size: with ``size``, resized to ``size × size`` (aspect ratio not kept) by
  `resize`; JPEG may first be decoded at 1/2, 1/4 or 1/8 scale (Pillow's
  ``draft``) when that still leaves at least ``size`` pixels a side.

`read_images` stacks many files channel-first: one channel when every image is
grey, else three (grey images repeated). `read_depth` keeps a grey image's
stored 8- or 16-bit values (ICVL's depth in mm). Files that cannot be decoded
raise `ImageError`, one line naming the file.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from seqgcn.checks import InputError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GREY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
DEPTH_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "I;16N")


class ImageError(InputError):
    """An image file that cannot be decoded; the one-line message names the file and the cause."""


def read_image(path: str | Path, *, size: int | None = None, data: bytes | None = None) -> np.ndarray:
    """Decode one image file to uint8 ``(h, w, c)``, c = 1 (grey) or 3 (RGB); module docstring for the rules.

    With ``size``, the result is ``(size, size, c)``. With ``data``, the file's bytes already read, those
    are decoded (`path` then only names the file and its type). Raises `ImageError` naming the file.
    """
    path = path if isinstance(path, Path) else Path(path)  # Path(a Path) parses it again: 7 us a file
    if size is not None:
        _check_size(size)
    try:
        if path.suffix.lower() == ".npy":
            pixels = np.load(path if data is None else io.BytesIO(data), allow_pickle=False)
        elif data is None:
            with Image.open(path) as image:  # closes the file, whatever happens
                pixels = _pixels(image, size)
        else:  # bytes in memory: nothing to close (and `with` costs a tenth of a small PNG's decode)
            pixels = _pixels(Image.open(io.BytesIO(data)), size)
    except Exception as exc:  # decoders raise many types on corrupt or odd files
        raise _cannot_decode(path, exc) from None
    pixels = _to_uint8(pixels, path)  # (h, w, c)
    return pixels if size is None else resize(pixels, size)


def resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 ``(h, w, c)`` to uint8 ``(size, size, c)``, c = 1 or 3; the aspect ratio is not kept.

    Both sides shrink: Pillow's box filter (area averaging, exact block means for
    integer factors); otherwise Pillow's bilinear filter (antialiased along a side
    that shrinks).
    """
    height, width, channels = pixels.shape
    if (height, width) == (size, size):
        return pixels
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
    method = Image.BOX if height >= size and width >= size else Image.BILINEAR
    return np.asarray(image.resize((size, size), method)).reshape(size, size, channels)


def read_images(paths, *, size: int, workers: int | None = None, progress: bool = False, screen=None):
    """Decode many files with `read_image` in a thread pool (Pillow releases the GIL while it decodes).

    Parameters
    ----------
    paths : image files, in order
    size : side of the square the images are resized to, pixels
    workers : decoding threads (default: the CPU count, at most 8)
    progress : show a progress bar over the files
    screen : optional ``screen(position, data) -> bool``, called (from the decoding threads) with each
        file's bytes, read once, before it is decoded: False leaves the file out undecoded, and not as
        an error (e.g. `seqgcn.labelling.embeddings` hashes the bytes and skips what it has cached)

    Returns
    -------
    pixels : uint8 ``(n_decoded, c, size, size)`` of the files decoded, in order; c = 1 when
        every one of them is grey, else 3 (grey images repeated). Memory: one preallocated
        ``(n, 3, size, size)`` array; no full-size image outlives its own decode.
    errors : ``{position in paths: one-line message naming the file}`` of the files left out as unreadable
    """
    from tqdm import tqdm

    _check_size(size)
    paths = list(paths)
    pixels = np.empty((len(paths), 3, size, size), dtype=np.uint8)  # (n, 3, size, size), filled in place
    grey = np.zeros(len(paths), dtype=bool)
    decoded = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}

    def decode_into(i: int) -> None:
        data = None
        if screen is not None:
            try:
                with open(paths[i], "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                errors[i] = f"cannot read image {str(paths[i])!r}: {exc.strerror or exc}"
                return
            if not screen(i, data):
                return
        try:
            image = read_image(paths[i], size=size, data=data)  # (size, size, c)
        except ImageError as exc:
            errors[i] = str(exc)
            return
        pixels[i] = image.transpose(2, 0, 1)  # (c, size, size), a grey channel broadcast to 3
        grey[i] = image.shape[2] == 1
        decoded[i] = True

    with tqdm(total=len(paths), desc="decode images", unit="img", disable=not progress) as bar:
        def decode_slice(rows: range) -> None:
            for i in rows:
                decode_into(i)
                bar.update()

        _for_each_slice(len(paths), workers, decode_slice)
    if not decoded.all():
        pixels, grey = pixels[decoded], grey[decoded]
    if grey.all():
        pixels = np.ascontiguousarray(pixels[:, :1])  # (n_readable, 1, size, size)
    return pixels, errors


def _for_each_slice(n: int, workers: int | None, fn) -> None:
    """Call ``fn(range)`` on `workers` contiguous slices of 0..n, one thread each (default: the CPU count, at most 8).

    One task per thread, not per item: for small files Pillow's own Python code, which
    holds the GIL, costs more than the decoding, and a task per file would add a hand-off
    between threads for each of them. Large files (photos) spend their time in Pillow's C
    decoders, which release the GIL, and the slices then run in parallel.
    """
    workers = max(1, min(workers or min(8, os.cpu_count() or 1), n))
    bounds = [n * k // workers for k in range(workers + 1)]
    slices = [range(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if workers == 1:
        fn(slices[0])
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in [pool.submit(fn, rows) for rows in slices]:
            done.result()


def read_depth(path: str | Path) -> np.ndarray:
    """The stored values of a grey 8- or 16-bit image as uint16 ``(h, w)``, nothing rescaled.

    For depth maps (ICVL: mm, 0 = no reading). Raises `ImageError` naming the file when it
    cannot be decoded or is not a grey 8/16-bit image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            mode = image.mode
            pixels = np.asarray(image) if mode in DEPTH_MODES else None  # (h, w)
    except Exception as exc:  # decoders raise many types on corrupt or odd files
        raise _cannot_decode(path, exc) from None
    if pixels is None:
        raise ImageError(f"image {str(path)!r} has Pillow mode {mode!r}, expected a grey 8- or 16-bit image")
    if pixels.min() < 0 or pixels.max() > 0xFFFF:
        raise ImageError(f"image {str(path)!r} has values outside [0, 65535], expected a 16-bit image")
    return pixels.astype(np.uint16)


def _check_size(size) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"size={size!r} must be a positive number of pixels")


def _cannot_decode(path: Path, exc: Exception) -> ImageError:
    return ImageError(f"cannot decode image {str(path)!r} ({type(exc).__name__}: {' '.join(str(exc).split())})")


def _pixels(image: Image.Image, size: int | None) -> np.ndarray:
    """A Pillow image as an array: grey modes ``(h, w)`` in their dtype, others uint8 ``(h, w)`` or ``(h, w, 3)``.

    With `size`, a JPEG may be decoded at a reduced scale that still leaves `size` pixels a side (``draft``).
    """
    if size is not None:
        image.draft(None, (size, size))
    if image.mode in ("L", "RGB"):  # the usual 8-bit modes: their bytes as stored, a third cheaper than np.asarray
        image.load()
        return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(image.height, image.width, -1)
    if image.mode in GREY_MODES:
        return np.asarray(image)
    grey = image.mode in ("LA", "La") or (image.mode in ("P", "PA") and _grey_palette(image))
    return np.asarray(image.convert("L" if grey else "RGB"))


def _grey_palette(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


def _to_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    """``(h, w)`` or ``(h, w, 1|3|4)`` uint8/uint16/int32/float/bool to uint8 ``(h, w, 1|3)``; alpha dropped."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (h, w, 1)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4) or min(pixels.shape[:2]) < 1:
        raise ImageError(f"image {str(path)!r} has shape {pixels.shape}, expected (h, w) or (h, w, 1|3|4)")
    kind, bits = pixels.dtype.kind, 8 * pixels.dtype.itemsize
    if (kind, bits) == ("u", 8):
        values = pixels
    elif (kind, bits) in (("u", 16), ("i", 32)):  # 16-bit samples; Pillow's mode I holds them in int32
        values = np.clip(pixels.astype(np.int64) >> 8, 0, 255).astype(np.uint8)
    elif kind in "bf":
        values = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"image {str(path)!r} has dtype {pixels.dtype}, expected uint8, uint16 or float in [0, 1]")
    return np.ascontiguousarray(values[:, :, :3])  # (h, w, 1|3)
