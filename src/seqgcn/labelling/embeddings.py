"""Embeddings of a project's images, cached per image next to labels.csv: an encoder runs once per image.

Layout (``labels.csv`` → ``labels.embeddings/``)::

    labels.embeddings/<key>/encoder.json     the encoder: file, SHA-256, input size, channel order, mean, std, width
    labels.embeddings/<key>/part-NNNNNN.npz  one finished batch: "hashes" (b,) SHA-256 of each image file's bytes,
                                             "embeddings" (b, d) float32

``<key>`` names (encoder file hash, preparation settings) (`seqgcn.learners.encoder.Encoder.key`):
another encoder file or another preparation never reads these embeddings. An
image is looked up by the hash of its bytes, so a renamed or moved image is not
encoded again, and an edited one is.

The pass streams over the paths ``batch_size`` at a time: a thread reads and hashes
the files of the next chunk and decodes those not in the cache while the encoder
runs on the current one (memory: two chunks of pixels, plus (n, d) embeddings);
every encoded batch is written (atomically, by a third thread, while the encoder
runs on the next one) as soon as it is done, so an interrupted pass
resumes at the first batch not written. Later rounds read the parts and encode only images never seen. When
more than `COMPACT_AT` parts accumulate they are merged into one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data.images import read_images
from seqgcn.io import StorageError, write_atomic

COMPACT_AT = 64  # parts in one cache folder before they are merged into one
PART = "part-{:06d}.npz"


@dataclass(frozen=True)
class Embedded:
    """Embeddings of a project's images.

    paths : (n,) relative paths, in the order given (unreadable ones left out); position = global index
    embeddings : (n, d) float32, row i = paths[i]
    skipped : paths that could not be read or decoded (``skip_unreadable=True``)
    encoded : images the encoder ran on in this call (0: everything came from the cache)
    seconds : wall time "total", and "encode": the encoder's share (running it, and waiting for the previous part to be written)
    cache : the cache folder
    """

    paths: tuple
    embeddings: np.ndarray
    skipped: tuple = ()
    encoded: int = 0
    seconds: dict = field(default_factory=dict)
    cache: Path | None = None

    def index(self) -> dict:
        """path → global index."""
        return {p: i for i, p in enumerate(self.paths)}


def cache_folder(labels_path, encoder) -> Path:
    """``<labels folder>/<labels stem>.embeddings/<encoder key>``: where `encoder`'s embeddings of this project live."""
    labels_path = Path(labels_path)
    return labels_path.parent / f"{labels_path.stem}.embeddings" / encoder.key


def embed_images(root, paths, encoder, cache, *, skip_unreadable: bool = False, progress: bool = False,
                 workers: int | None = None) -> Embedded:
    """Embeddings of the images `paths` (relative to `root`) by `encoder`, through the cache folder `cache`.

    Parameters
    ----------
    root : the project folder
    paths : relative image paths, in order (`seqgcn.labelling.images.find_images`)
    encoder : `seqgcn.learners.encoder.Encoder`
    cache : the cache folder (`cache_folder`), created when missing
    skip_unreadable : leave out the files that cannot be read or decoded instead of failing at the first
    progress : a progress bar over the images
    workers : hashing and decoding threads (default: the cores the encoder's own threads leave, at least 1, at most 8)

    Raises InputError for an unreadable image (without `skip_unreadable`); batches finished
    before it stay cached.
    """
    from tqdm import tqdm

    root, cache = Path(root), Path(cache)
    t0 = time.perf_counter()
    _open_cache(cache, encoder)
    known = _read_parts(cache, encoder.dim)  # hash -> (d,) float32
    chunks = [range(lo, min(lo + encoder.batch_size, len(paths))) for lo in range(0, len(paths), encoder.batch_size)]
    hashes: dict[int, str] = {}  # position -> SHA-256 of the file
    bad: dict[int, str] = {}  # position -> why it is left out
    claimed: set = set()  # hashes already sent to the decoder (under `_read_chunk`'s lock)
    number, encoded, encode_seconds = _next_part(cache), 0, 0.0
    workers = workers or max(1, min(8, (os.cpu_count() or 1) - encoder.threads))
    bar = tqdm(total=len(paths), desc=f"embed images ({encoder.path.name})", unit="img", disable=not progress)
    written = None  # the Future of the last part's write
    with ThreadPoolExecutor(max_workers=1) as prefetch, \
            ThreadPoolExecutor(max_workers=1) as writer:  # reads chunk k + 1, writes part k − 1, while the encoder runs
        read = lambda chunk: _read_chunk(root, paths, chunk, known, claimed, encoder, workers)  # noqa: E731
        pending = prefetch.submit(read, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            chunk_hashes, errors, new, pixels = pending.result()
            if k + 1 < len(chunks):
                pending = prefetch.submit(read, chunks[k + 1])
            if errors and not skip_unreadable:
                bar.close()
                raise InputError(f"{errors[min(errors)]}; fix or remove it, or pass --skip-unreadable to leave such "
                                 "files out")
            hashes.update(chunk_hashes)
            bad.update(errors)
            if new:
                t = time.perf_counter()
                emb = encoder.embed_batch(pixels)  # (b', d)
                if written is not None:
                    written.result()  # a full disk stops the pass here (StorageError), one part late at most
                written = writer.submit(_write_part, cache / PART.format(number), new, emb)  # never encoded again
                encode_seconds += time.perf_counter() - t
                number, encoded = number + 1, encoded + len(new)
                known.update(zip(new, emb))
            bar.update(len(chunks[k]))
        if written is not None:
            written.result()
    bar.close()
    _compact(cache)
    keep = [i for i in range(len(paths)) if i not in bad and hashes.get(i) in known]  # a failed decode's copies too
    if not keep:
        raise InputError(f"none of the {len(paths)} images under {str(root)!r} can be decoded")
    embeddings = np.stack([known[hashes[i]] for i in keep]).astype(np.float32, copy=False)  # (n, d)
    kept = set(keep)
    return Embedded(paths=tuple(paths[i] for i in keep), embeddings=embeddings, encoded=encoded,
                    skipped=tuple(paths[i] for i in range(len(paths)) if i not in kept), cache=cache,
                    seconds={"total": time.perf_counter() - t0, "encode": encode_seconds})


# --------------------------------------------------------------------------- steps
def _read_chunk(root: Path, paths, chunk, known: dict, claimed: set, encoder, workers):
    """Read and hash the files of `chunk`; decode, from the same bytes, those whose content is neither cached nor
    claimed yet (each file is read once).

    Returns ``({position: hash}, {position: error}, [new hashes], uint8 pixels (len(new), c, s, s))``.
    """
    digests = [None] * len(chunk)  # SHA-256 of each file read, in chunk order
    chosen = [False] * len(chunk)  # files sent to the decoder: the rows of `pixels`, in chunk order
    lock = threading.Lock()

    def screen(j: int, data: bytes) -> bool:
        """Decode file j? Yes when its content is new: then it is claimed, here, for this chunk."""
        digests[j] = digest = hashlib.sha256(data).hexdigest()
        with lock:  # two threads may hold copies of one content: only one decodes it
            if digest in known or digest in claimed:
                return False
            claimed.add(digest)
        chosen[j] = True
        return True

    pixels, failed = read_images([root / paths[i] for i in chunk], size=encoder.settings.input_size,
                                 workers=workers, screen=screen)
    errors = {chunk[j]: message for j, message in failed.items()}
    hashes = {i: digest for i, digest in zip(chunk, digests) if digest is not None and i not in errors}
    new = [digests[j] for j in range(len(chunk)) if chosen[j] and j not in failed]  # one per row of `pixels`
    return hashes, errors, new, (pixels if new else None)


def _open_cache(cache: Path, encoder) -> None:
    """Create the cache folder with its encoder.json; an existing one must describe the same encoder."""
    info = cache / "encoder.json"
    described = {k: v for k, v in encoder.describe().items() if k not in ("path", "batch_size")}
    if info.is_file():
        try:
            stored = json.loads(info.read_text())
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict) and stored.get("sha256") == encoder.sha256 and stored.get("dim") == encoder.dim:
            return
        for part in cache.glob("part-*.npz"):  # not this encoder's (or unreadable): start over
            part.unlink()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot create the embedding cache {str(cache)!r}: {exc.strerror or exc}") from None
    write_atomic(info, json.dumps({**described, "path": str(encoder.path)}, indent=1) + "\n")


def _read_parts(cache: Path, dim: int) -> dict:
    """hash → (dim,) float32 from every readable part; a damaged part (an interrupted write) is removed."""
    known = {}
    for part in sorted(cache.glob("part-*.npz")):
        try:
            with np.load(part, allow_pickle=False) as data:
                hashes, emb = data["hashes"], data["embeddings"]
            if emb.ndim != 2 or emb.shape != (len(hashes), dim):
                raise ValueError(f"shape {emb.shape}")
        except (OSError, ValueError, KeyError, EOFError):
            part.unlink(missing_ok=True)
            continue
        known.update(zip(hashes.tolist(), emb))
    return known


def _write_part(path: Path, hashes: list, embeddings: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, hashes=np.asarray(hashes), embeddings=np.asarray(embeddings, dtype=np.float32))
    write_atomic(path, buffer.getvalue())  # a full disk: StorageError, one line


def _next_part(cache: Path) -> int:
    numbers = [int(p.stem.split("-")[1]) for p in cache.glob("part-*.npz") if p.stem.split("-")[1].isdigit()]
    return max(numbers, default=-1) + 1


def _compact(cache: Path) -> None:
    """Merge the parts into one when there are more than COMPACT_AT (fewer files to open every round)."""
    parts = sorted(cache.glob("part-*.npz"))
    if len(parts) <= COMPACT_AT:
        return
    hashes, embeddings = [], []
    for part in parts:
        with np.load(part, allow_pickle=False) as data:
            hashes.append(data["hashes"])
            embeddings.append(data["embeddings"])
    _write_part(cache / PART.format(_next_part(cache)), list(np.concatenate(hashes)), np.concatenate(embeddings))
    for part in parts:
        part.unlink()
