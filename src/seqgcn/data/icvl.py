"""ICVL hand posture dataset (Tang et al. 2014), preprocessed as in DeepPrior.

Published at https://labicvl.github.io/hand.html. Depth frames are 16-bit
grayscale PNGs of 320×240 pixels, values in mm (0 = no reading). A labels file
has one line per frame::

    relative/path.png u1 v1 d1 u2 v2 d2 ... u16 v16 d16

(pixel column u, pixel row v, depth d in mm of the 16 joints). An image path is
resolved relative to the labels file's folder, then to its ``Depth/`` subfolder.
Frames are decoded by `seqgcn.data.images.read_depth` (8- or 16-bit grey, values kept).

Accepted layouts under ``data_dir`` (the first match wins):

- train labels: ``labels.txt`` or ``Training/labels.txt``;
- test labels: ``test/labels.txt``; else every ``test_seq_*.txt`` in ``data_dir``;
  else every ``Testing/test_seq_*.txt`` (the original release: ``test_seq_1.txt``,
  ``test_seq_2.txt`` over ``Testing/Depth/``), concatenated in name order.

Preprocessing (DeepPrior, Oberweger et al. 2015):

1. Centre. ``centre="joints"``: the mean of the 16 joints in 3D. ``centre="com"``
   (default): the centre of mass (mean u, v, d) of the valid depth pixels inside
   the cube placed at the joints' mean, the usual DeepPrior detection step seeded
   by the annotation; falls back to the joints' mean if no pixel is inside.
2. Crop the square window that the cube (``cube_size`` mm, default 250) projects
   to at the centre depth, and resize it to ``crop_size``² (default 128) by
   nearest-neighbour sampling; pixels outside the frame count as background.
3. Depth: missing (0) or farther than the cube becomes the back face, nearer
   becomes the front face; then ``(d - d_centre) / (cube_size / 2)`` in [-1, 1].
4. Targets: joints converted to 3D with the ICVL intrinsics (fx = fy = 241.42,
   cx = 160, cy = 120: ``x = (u - cx) d / fx``, ``y = (v - cy) d / fy``, ``z = d``),
   minus the centre, divided by ``cube_size / 2``; flattened as
   ``x1, y1, z1, ..., x16, y16, z16``. Joints outside the cube fall outside [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data.base import REGRESSION, Dataset, DatasetError
from seqgcn.data.images import ImageError, read_depth

URL = "https://labicvl.github.io/hand.html"
LAYOUT = (
    "DIR/labels.txt (or DIR/Training/labels.txt) and DIR/test/labels.txt or DIR/[Testing/]test_seq_*.txt, "
    "lines 'path.png u1 v1 d1 ... u16 v16 d16' over 16-bit depth PNGs"
)
N_JOINTS = 16
FX = FY = 241.42
CX, CY = 160.0, 120.0


def load_icvl(
    data_dir: str | Path,
    *,
    cube_size: float = 250.0,
    crop_size: int = 128,
    centre: str = "com",
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Load and preprocess ICVL train and test frames (layouts in the module docstring).

    Parameters
    ----------
    data_dir : folder holding the labels files and depth PNGs
    cube_size : edge of the cube around the hand, mm
    crop_size : side of the square depth crop, pixels
    centre : "com" or "joints" (see the module docstring)
    max_train, max_test : keep only the first frames of each labels file list (None = all)

    Returns
    -------
    Dataset
        ``x_*`` float32 ``(n, 1, crop_size, crop_size)`` in [-1, 1]; ``y_*`` float32
        ``(n, 48)``; ``target_scale = cube_size / 2`` (mm); ``point_dim = 3``;
        ``metric_unit = "mm"``; mean (0.0,), std (1.0,).
    """
    if centre not in ("com", "joints"):
        raise InputError(f"centre={centre!r} must be 'com' or 'joints'")
    if not cube_size > 0 or crop_size < 1:
        raise InputError(f"cube_size={cube_size!r} and crop_size={crop_size!r} must be positive")
    for arg, value in (("max_train", max_train), ("max_test", max_test)):
        if value is not None and value < 1:
            raise InputError(f"{arg}={value!r} must be None (all frames) or a positive count")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise _fail(f"data directory {str(data_dir)!r} does not exist")
    train_files, test_files = _find_label_files(data_dir)
    settings = {"cube_size": float(cube_size), "crop_size": int(crop_size), "centre": centre}
    x_train, y_train = _load_frames(train_files, max_train, settings)
    x_test, y_test = _load_frames(test_files, max_test, settings)
    return Dataset(
        name="icvl",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task=REGRESSION,
        mean=(0.0,),
        std=(1.0,),
        point_dim=3,
        target_scale=float(cube_size) / 2,
        metric_unit="mm",
        info={
            "source": str(data_dir),
            "url": URL,
            "train_labels": [str(p) for p in train_files],
            "test_labels": [str(p) for p in test_files],
            **settings,
        },
    )


# ---------------------------------------------------------------- labels and frames


def _find_label_files(data_dir: Path) -> tuple[list[Path], list[Path]]:
    train = [p for p in (data_dir / "labels.txt", data_dir / "Training" / "labels.txt") if p.is_file()]
    if not train:
        raise _fail(f"missing train labels {str(data_dir / 'labels.txt')!r}")
    candidates = (
        [data_dir / "test" / "labels.txt"],
        sorted(data_dir.glob("test_seq_*.txt")),
        sorted((data_dir / "Testing").glob("test_seq_*.txt")),
    )
    for group in candidates:
        test = [p for p in group if p.is_file()]
        if test:
            return train[:1], test
    raise _fail(f"missing test labels {str(data_dir / 'test' / 'labels.txt')!r} or test_seq_*.txt")


def _load_frames(label_files: list[Path], limit: int | None, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed crops float32 (n, 1, s, s) and targets float32 (n, 48) of the listed frames."""
    entries = [entry for path in label_files for entry in read_labels(path)]
    if limit is not None:
        entries = entries[:limit]
    crops, targets = [], []
    for image_path, joints, where in entries:
        depth = _read_depth(image_path, where)  # (240, 320)
        crop, target = preprocess(depth, joints, **settings)
        crops.append(crop)
        targets.append(target)
    # `preprocess` returns float32 already: no second full-size copy of the crops.
    return np.stack(crops)[:, None], np.stack(targets)  # (n, 1, s, s), (n, 48)


def read_labels(path: str | Path) -> list[tuple[Path, np.ndarray, str]]:
    """Parse one labels file into (image path, joints (16, 3) as u, v, d, "file:line") triples."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    entries = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 1 + 3 * N_JOINTS:
            raise _fail(f"line {where} has {len(fields) - 1} numbers after the path, expected {3 * N_JOINTS}")
        try:
            joints = np.array([float(v) for v in fields[1:]], dtype=np.float64).reshape(N_JOINTS, 3)
        except ValueError:
            raise _fail(f"line {where} has a non-numeric joint coordinate") from None
        if not np.isfinite(joints).all():
            raise _fail(f"line {where} has a NaN or infinite joint coordinate")
        if not (joints[:, 2] > 0).all():
            raise _fail(f"line {where} has a joint depth <= 0 mm, expected positive depths")
        entries.append((_resolve_image(path.parent, fields[0]), joints, where))
    if not entries:
        raise _fail(f"labels file {str(path)!r} lists no frames")
    return entries


def _resolve_image(folder: Path, relative: str) -> Path:
    direct = folder / relative
    return direct if direct.is_file() else folder / "Depth" / relative


def _read_depth(image_path: Path, where: str) -> np.ndarray:
    if not image_path.is_file():
        raise _fail(f"missing depth image {str(image_path)!r} listed at {where}")
    try:
        return read_depth(image_path).astype(np.float64)  # (h, w) mm
    except ImageError as exc:
        raise _fail(f"{exc}, listed at {where}") from None


# ---------------------------------------------------------------- DeepPrior preprocessing


def uvd_to_xyz(uvd: np.ndarray) -> np.ndarray:
    """Pixel (u, v) and depth d in mm, shape (..., 3), to camera coordinates in mm, shape (..., 3)."""
    u, v, d = uvd[..., 0], uvd[..., 1], uvd[..., 2]
    return np.stack([(u - CX) * d / FX, (v - CY) * d / FY, d], axis=-1)


def preprocess(
    depth: np.ndarray, joints: np.ndarray, *, cube_size: float = 250.0, crop_size: int = 128, centre: str = "com"
) -> tuple[np.ndarray, np.ndarray]:
    """Crop, resize and normalise one frame (module docstring, steps 1–4).

    Parameters
    ----------
    depth : (h, w) depth in mm, 0 where missing
    joints : (16, 3) joint pixel u, v and depth d in mm

    Returns
    -------
    crop : float32 (crop_size, crop_size) in [-1, 1]
    target : float32 (48,) joints relative to the centre, in cube half-sizes
    """
    half = cube_size / 2
    xyz = uvd_to_xyz(joints)  # (16, 3) mm
    centre_xyz = xyz.mean(axis=0)  # (3,)
    if centre == "com":
        centre_xyz = _centre_of_mass(depth, centre_xyz, half)
    crop = _crop(depth, centre_xyz, half, crop_size)  # (s, s) mm
    crop = (np.clip(crop, centre_xyz[2] - half, centre_xyz[2] + half) - centre_xyz[2]) / half  # (s, s)
    target = ((xyz - centre_xyz) / half).reshape(-1)  # (48,)
    return crop.astype(np.float32), target.astype(np.float32)


def _project(xyz: np.ndarray) -> tuple[float, float]:
    return float(xyz[0] * FX / xyz[2] + CX), float(xyz[1] * FY / xyz[2] + CY)


def _window(xyz: np.ndarray, half: float) -> tuple[float, float, float]:
    """Pixel centre (u, v) and pixel half-width of the cube's projection at the centre depth."""
    u, v = _project(xyz)
    return u, v, half * FX / xyz[2]


def _centre_of_mass(depth: np.ndarray, seed_xyz: np.ndarray, half: float) -> np.ndarray:
    """3D centre of the valid pixels inside the cube centred at `seed_xyz`; the seed if none are."""
    u0, v0, r = _window(seed_xyz, half)
    height, width = depth.shape
    top, bottom = max(int(np.floor(v0 - r)), 0), min(int(np.ceil(v0 + r)), height)
    left, right = max(int(np.floor(u0 - r)), 0), min(int(np.ceil(u0 + r)), width)
    patch = depth[top:bottom, left:right]  # (ph, pw)
    inside = (patch > 0) & (np.abs(patch - seed_xyz[2]) <= half)  # (ph, pw)
    if not inside.any():
        return seed_xyz
    rows, cols = np.nonzero(inside)
    uvd = np.array([cols.mean() + left, rows.mean() + top, patch[inside].mean()])  # (3,)
    return uvd_to_xyz(uvd)


def _crop(depth: np.ndarray, centre_xyz: np.ndarray, half: float, size: int) -> np.ndarray:
    """Nearest-neighbour resample of the cube's window to (size, size); outside/missing -> back face."""
    u0, v0, r = _window(centre_xyz, half)
    steps = (np.arange(size) + 0.5) / size * 2 - 1  # (size,) in (-1, 1)
    cols = np.floor(u0 + steps * r).astype(np.int64)  # (size,)
    rows = np.floor(v0 + steps * r).astype(np.int64)  # (size,)
    height, width = depth.shape
    valid = (rows[:, None] >= 0) & (rows[:, None] < height) & (cols[None] >= 0) & (cols[None] < width)  # (s, s)
    values = depth[np.clip(rows, 0, height - 1)[:, None], np.clip(cols, 0, width - 1)[None]]  # (s, s)
    back = centre_xyz[2] + half
    return np.where(valid & (values > 0), values, back)  # (s, s)


def _fail(problem: str) -> DatasetError:
    """A one-line DatasetError: the problem, the expected layout, where the data is published."""
    return DatasetError(f"ICVL: {problem}; expected {LAYOUT} (published at {URL})")
