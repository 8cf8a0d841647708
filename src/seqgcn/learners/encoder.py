"""A frozen pretrained encoder read from a file: an ONNX model or a `torch.export` program (``.pt2``).

``load_encoder(path)`` opens the file once, resolves how images are prepared for
it and runs it on two blank images, so that a file that cannot be read, a wrong
input size or an output of the wrong shape fails at once with one line (exit 2 on
the command line) instead of after decoding every image.

Preparation of uint8 images ``(n, c, h, w)`` (every caller's format):

```
resize   : bilinear (antialiased when shrinking) to input_size × input_size, when h, w differ from it
channels : grey repeated to 3 when the model takes 3; colour averaged to 1 when it takes 1; "bgr" reverses RGB
scale    : x / 255, then (x - mean) / std per channel
run      : the model, in batches of `batch_size` (a model exported with a fixed batch runs in batches of that size,
           the last one padded)
pool     : output (n, d) kept; (n, d, h, w) feature maps averaged over h, w; any other shape is refused
```

Where the settings come from, first found wins: the argument (``--encoder-input-size``,
``--encoder-channel-order``, ``--encoder-mean``, ``--encoder-std``), the file's
metadata, the model's input shape (size and channels when they are fixed), the
ImageNet convention (RGB, mean 0.485 0.456 0.406, std 0.229 0.224 0.225) that
public backbones are trained with. Metadata keys (values as JSON or comma-separated):
``input_size``, ``channel_order`` ("rgb" | "bgr"), ``mean``, ``std``; in an ONNX file
they are entries of ``metadata_props``, in a ``.pt2`` file the JSON object stored
as the extra file ``seqgcn.json`` (``torch.export.save(ep, f, extra_files={"seqgcn.json": ...})``).

The encoder's identity is the SHA-256 of its file (`Encoder.sha256`; for ONNX with
its weights in ``FILE.data``, as `torch.onnx.export` writes them by default, of
both); with the settings it keys the embedding cache (`Encoder.key`), so another
file or another preparation never reuses old embeddings. Nothing is downloaded.

ONNX needs onnxruntime (``pip install 'seqgcn[encoder]'``); ``.pt2`` needs only torch.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqgcn.checks import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ("rgb", "bgr")
METADATA_FILE = "seqgcn.json"  # the extra file of a .pt2 program that holds the metadata
SUFFIXES = {".onnx": "onnx", ".pt2": "pt2"}
PROBE = 2  # blank images the encoder runs on when loaded


@dataclass(frozen=True)
class EncoderSettings:
    """How images are prepared for an encoder (see the module docstring)."""

    input_size: int       # side of the square input, pixels
    channels: int         # 1 or 3, what the model takes
    channel_order: str    # "rgb" | "bgr" (3 channels only)
    mean: tuple           # per model channel, in [0, 1] units
    std: tuple            # per model channel, > 0


class Encoder:
    """A loaded encoder; `embed` turns uint8 images into (n, dim) float32 embeddings.

    Attributes
    ----------
    path : Path
    kind : "onnx" | "pt2"
    sha256 : hex digest of the file
    settings : EncoderSettings
    dim : width of the embeddings
    batch_size : images per forward pass (the model's own fixed batch when it has one)
    threads : the CPU threads it was opened for (`load_encoder`)
    key : 16 hex digits naming (file, settings): the embedding cache's key
    """

    def __init__(self, path: Path, kind: str, sha256: str, settings: EncoderSettings, run, fixed_batch: int | None,
                 batch_size: int, threads: int = 1):
        self.path, self.kind, self.sha256, self.settings = path, kind, sha256, settings
        self.threads = threads
        self._run = run  # float32 (b, c, s, s) ndarray -> first output ndarray
        self.fixed_batch = fixed_batch
        self.batch_size = fixed_batch or batch_size
        self.key = hashlib.sha256(json.dumps([sha256, asdict(settings)]).encode()).hexdigest()[:16]
        self.dim = 0
        self.dim = int(self._probe().shape[1])

    def describe(self) -> dict:
        """JSON-ready identity: file, hash, settings, width (stored with cached embeddings and in results)."""
        return {"path": str(self.path), "kind": self.kind, "sha256": self.sha256, "dim": self.dim,
                "batch_size": self.batch_size, **asdict(self.settings)}

    def embed(self, pixels: np.ndarray, *, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 embeddings of uint8 images `pixels` (n, c, h, w), c = 1 or 3; in batches."""
        from tqdm import tqdm

        pixels = np.asarray(pixels)
        if pixels.ndim != 4 or pixels.shape[1] not in (1, 3):
            raise InputError(f"images to embed must be (n, 1 or 3, h, w); got shape {pixels.shape}")
        out = np.empty((len(pixels), self.dim), dtype=np.float32)  # (n, dim)
        starts = range(0, len(pixels), self.batch_size)
        for lo in tqdm(starts, desc=f"embed ({self.path.name})", unit="batch", disable=not progress):
            out[lo:lo + self.batch_size] = self.embed_batch(pixels[lo:lo + self.batch_size])
        return out

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        """(b, dim) float32 embeddings of at most `batch_size` uint8 images (b, c, h, w)."""
        x = self.prepare(pixels)  # (b, c', s, s)
        b = len(x)
        if self.fixed_batch and b < self.fixed_batch:  # a model exported for one batch size: pad with copies
            x = np.concatenate([x, np.repeat(x[-1:], self.fixed_batch - b, axis=0)])
        return self._pool(self._run(x))[:b]

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (b, c, h, w) → float32 (b, channels, input_size, input_size), normalised (module docstring)."""
        s = self.settings
        x = torch.from_numpy(np.ascontiguousarray(pixels)).float().mul_(1.0 / 255.0)  # (b, c, h, w) in [0, 1]
        if x.shape[2:] != (s.input_size, s.input_size):
            x = F.interpolate(x, size=(s.input_size, s.input_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[2] > s.input_size or x.shape[3] > s.input_size)
        if s.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (b, 3, s, s)
        elif s.channels == 1 and x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)  # (b, 1, s, s)
        if s.channels == 3 and s.channel_order == "bgr":
            x = x.flip(1)
        mean = torch.tensor(s.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(s.std, dtype=torch.float32).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous().numpy()  # (b, channels, s, s)

    def _pool(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))  # (b, d, h, w) -> (b, d)
        if out.ndim != 2 or (self.dim and out.shape[1] != self.dim):
            raise InputError(f"encoder {str(self.path)!r} outputs shape {tuple(out.shape)}; expected embeddings (n, d) "
                             "or feature maps (n, d, h, w) (averaged to (n, d)); export the model up to its pooled "
                             "features")
        return out

    def _probe(self) -> np.ndarray:
        s = self.settings
        blank = np.zeros((PROBE, s.channels, s.input_size, s.input_size), dtype=np.uint8)
        try:
            return self.embed_batch(blank)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"encoder {str(self.path)!r} fails on a ({PROBE}, {s.channels}, {s.input_size}, "
                             f"{s.input_size}) input ({_first_line(exc)}); set --encoder-input-size to the size it "
                             "was exported for") from None


def load_encoder(path, *, input_size: int | None = None, channel_order: str | None = None, mean=None, std=None,
                 batch_size: int = 256, threads: int = 1) -> Encoder:
    """Open the encoder `path` (.onnx or .pt2), resolve its settings, run it once; see the module docstring.

    Parameters
    ----------
    path : the model file
    input_size, channel_order, mean, std : override the file's metadata (None: metadata, then defaults)
    batch_size : images per forward pass
    threads : CPU threads of onnxruntime (a .pt2 program uses torch's, set by the caller)

    Raises InputError (one line) for a missing, unknown or unreadable file, settings that
    contradict the model's input shape, or an output that is not (n, d) after pooling.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"--encoder {str(path)!r} must be an ONNX model (.onnx) or a torch.export program (.pt2)")
    if not path.is_file():
        raise InputError(f"--encoder {str(path)!r} does not exist")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--encoder-batch-size={batch_size!r} must be a positive integer")
    digest = file_sha256(path)
    weights = path.with_name(path.name + ".data")  # torch.onnx.export's external weights, when it wrote them apart
    if kind == "onnx" and weights.is_file():
        digest = hashlib.sha256((digest + file_sha256(weights)).encode()).hexdigest()
    run, shape, metadata = (_open_onnx if kind == "onnx" else _open_pt2)(path, threads)
    settings = _settings(path, shape, metadata, input_size=input_size, channel_order=channel_order, mean=mean, std=std)
    fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return Encoder(path, kind, digest, settings, run, fixed_batch, batch_size, threads=max(1, int(threads)))


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- the two formats
def _open_onnx(path: Path, threads: int):
    """(run, input shape with None for free dims, metadata) of an ONNX model."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(f"--encoder {str(path)!r} is an ONNX model, which needs onnxruntime: "
                         "pip install 'seqgcn[encoder]' (or export the model with torch.export to a .pt2 file)") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the warnings of a model's optimisation are not the user's concern
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InputError(f"--encoder {str(path)!r} cannot be read as an ONNX model ({_first_line(exc)})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(float)":
        got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise InputError(f"--encoder {str(path)!r} takes {got}; expected one float image input (n, c, h, w)")
    name = inputs[0].name
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape)
    metadata = dict(session.get_modelmeta().custom_metadata_map)

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run, shape, metadata


def _open_pt2(path: Path, threads: int):
    """(run, input shape with None for dynamic dims, metadata) of a torch.export program."""
    if not zipfile.is_zipfile(path):  # torch.export.load would also log a traceback before failing
        raise InputError(f"--encoder {str(path)!r} cannot be read as a torch.export program (not a .pt2 archive)")
    extra = {METADATA_FILE: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except Exception as exc:
        raise InputError(f"--encoder {str(path)!r} cannot be read as a torch.export program ({_first_line(exc)})") from None
    user = set(program.graph_signature.user_inputs)
    vals = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder" and n.name in user]
    if len(vals) != 1 or not isinstance(vals[0], torch.Tensor) or vals[0].ndim != 4:
        got = [tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for v in vals]
        raise InputError(f"--encoder {str(path)!r} takes inputs {got}; expected one image tensor (n, c, h, w)")
    shape = tuple(d if isinstance(d, int) else None for d in vals[0].shape)
    module = program.module()
    try:
        metadata = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
    except ValueError:
        raise InputError(f"--encoder {str(path)!r}: its {METADATA_FILE} is not JSON") from None
    if not isinstance(metadata, dict):
        raise InputError(f"--encoder {str(path)!r}: its {METADATA_FILE} is not a JSON object")

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        out = module(torch.from_numpy(x))
        while isinstance(out, (tuple, list)):  # several outputs: the first
            out = out[0]
        return out.float().numpy()

    return run, shape, metadata


# --------------------------------------------------------------------------- settings
def _settings(path: Path, shape: tuple, metadata: dict, *, input_size, channel_order, mean, std) -> EncoderSettings:
    where = f"--encoder {str(path)!r}"
    meta = {k: _meta_value(where, k, metadata[k]) for k in ("input_size", "channel_order", "mean", "std") if k in metadata}
    _, c, h, w = shape
    if h is not None and w is not None and h != w:
        raise InputError(f"{where} takes {h}×{w} inputs; seqgcn feeds square images (export it for a square size)")
    fixed = h if h is not None else w
    size = input_size if input_size is not None else meta.get("input_size", fixed)
    if size is None:
        raise InputError(f"{where} does not say its input size (no fixed size, no 'input_size' metadata); "
                         "give --encoder-input-size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
        raise InputError(f"--encoder-input-size={size!r} must be a side in pixels, 1 to 4096")
    if fixed is not None and size != fixed:
        raise InputError(f"--encoder-input-size={size} does not match {where}, which takes {fixed}×{fixed} inputs")
    channels = c if c is not None else 3
    if channels not in (1, 3):
        raise InputError(f"{where} takes {channels}-channel inputs; seqgcn feeds 1 (grey) or 3 (colour)")
    order = channel_order if channel_order is not None else meta.get("channel_order", "rgb")
    if not isinstance(order, str) or order.lower() not in CHANNEL_ORDERS:
        raise InputError(f"--encoder-channel-order={order!r} must be one of {', '.join(CHANNEL_ORDERS)}")
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,), (0.5,))
    mean = _per_channel("--encoder-mean", mean if mean is not None else meta.get("mean", default_mean), channels)
    std = _per_channel("--encoder-std", std if std is not None else meta.get("std", default_std), channels)
    if not all(s > 0 for s in std):
        raise InputError(f"--encoder-std={list(std)} must be positive")
    return EncoderSettings(input_size=int(size), channels=channels, channel_order=order.lower(), mean=mean, std=std)


def _meta_value(where: str, key: str, value):
    """A metadata value as Python: JSON or comma-separated numbers (ONNX stores strings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            parts = [p.strip() for p in value.split(",")]
            try:
                value = [float(p) for p in parts] if len(parts) > 1 else value.strip()
            except ValueError:
                raise InputError(f"{where}: metadata {key}={value!r} is neither JSON nor comma-separated numbers") from None
    if key == "input_size" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def _per_channel(option: str, values, channels: int) -> tuple:
    """One finite float per model channel; a single value is used for every channel."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"{option}={values!r} must be numbers, one per channel") from None
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or not all(np.isfinite(values)):
        raise InputError(f"{option}={list(values)} must be {channels} finite number(s), one per input channel")
    return values


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split())[:300]
