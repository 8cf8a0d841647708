"""ICVL loader: DeepPrior preprocessing, labels layouts, 16-bit depth PNGs (written by Pillow), errors."""

import numpy as np
import pytest
from PIL import Image

from seqgcn.data import icvl
from seqgcn.data.base import DatasetError
from seqgcn.data.icvl import load_icvl, preprocess, uvd_to_xyz


# ---------------------------------------------------------------- preprocessing

# A synthetic hand: 16 joints on a 3 x 3 cm grid at 400 mm, a flat blob behind them.
JOINTS = np.array([[150 + 6 * (k % 4), 110 + 6 * (k // 4), 400.0 + k] for k in range(16)])  # (16, 3) u, v, d


def _frame(background=0):
    depth = np.full((240, 320), background, dtype=np.uint16)  # (240, 320) mm
    depth[100:140, 140:180] = 410  # the hand blob
    return depth


def test_uvd_to_xyz_principal_point_and_scale():
    np.testing.assert_allclose(uvd_to_xyz(np.array([160.0, 120.0, 500.0])), [0, 0, 500])
    np.testing.assert_allclose(uvd_to_xyz(np.array([160.0 + 241.42, 120.0 - 241.42, 300.0])), [300, -300, 300])


def test_preprocess_joints_centre_known_answer():
    crop, target = preprocess(_frame().astype(float), JOINTS, centre="joints")
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    assert target.shape == (48,) and target.dtype == np.float32
    xyz = uvd_to_xyz(JOINTS)
    np.testing.assert_allclose(target.reshape(16, 3), (xyz - xyz.mean(0)) / 125.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(target.reshape(16, 3).mean(0), 0, atol=1e-6)
    # blob depth 410 mm against a centre at 407.5 mm; missing pixels are the back face (+1)
    np.testing.assert_allclose(crop[64, 64], (410 - 407.5) / 125, rtol=1e-5)
    assert crop[0, 0] == 1.0 and crop.min() >= -1 and crop.max() <= 1


def test_preprocess_com_centre_is_blob_centre():
    crop, target = preprocess(_frame().astype(float), JOINTS, centre="com")
    com = uvd_to_xyz(np.array([159.5, 119.5, 410.0]))  # mean pixel of the blob
    xyz = uvd_to_xyz(JOINTS)
    np.testing.assert_allclose(target.reshape(16, 3), (xyz - com) / 125.0, rtol=1e-5, atol=1e-6)
    assert crop[64, 64] == pytest.approx(0.0, abs=1e-6)  # blob depth is the centre depth


def test_preprocess_clips_near_and_far():
    depth = _frame(background=2000).astype(float)
    depth[118:122, 158:162] = 100  # far in front of the cube
    crop, _ = preprocess(depth, JOINTS, centre="joints")
    assert crop.min() == -1.0 and crop.max() == 1.0


# ---------------------------------------------------------------- loading


def _line(path, joints):
    return path + " " + " ".join(f"{v:.3f}" for v in joints.ravel())


def _write_dataset(root, layout="flat", n_train=3, n_test=2):
    if layout == "flat":
        train_dir, test_file, test_dir = root, root / "test" / "labels.txt", root / "test"
    else:  # the original release
        train_dir, test_file, test_dir = root / "Training", root / "Testing" / "test_seq_1.txt", root / "Testing"
    Image.fromarray(_frame()).save(root / "frame.png")  # 16-bit grey
    png = (root / "frame.png").read_bytes()
    for folder, labels, n in ((train_dir, train_dir / "labels.txt", n_train), (test_dir, test_file, n_test)):
        depth_root = folder / "Depth" if layout == "original" else folder
        lines = []
        for i in range(n):
            rel = f"seq/image_{i:04d}.png"
            (depth_root / "seq").mkdir(parents=True, exist_ok=True)
            (depth_root / rel).write_bytes(png)
            lines.append(_line(rel, JOINTS + [i, 0, 0]))
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("layout", ["flat", "original"])
def test_load_icvl_layouts(tmp_path, layout):
    _write_dataset(tmp_path, layout)
    ds = load_icvl(tmp_path, crop_size=32)
    assert ds.name == "icvl" and ds.task == "regression"
    assert ds.x_train.shape == (3, 1, 32, 32) and ds.x_train.dtype == np.float32
    assert ds.y_train.shape == (3, 48) and ds.y_train.dtype == np.float32
    assert ds.x_test.shape == (2, 1, 32, 32)
    assert ds.target_scale == 125.0 and ds.point_dim == 3 and ds.metric_unit == "mm"
    assert ds.mean == (0.0,) and ds.std == (1.0,) and ds.n_targets == 48
    assert np.abs(ds.x_train).max() <= 1


def test_load_icvl_keeps_16_bit_depth(tmp_path):
    _write_dataset(tmp_path, n_train=1)
    ds = load_icvl(tmp_path, crop_size=32, centre="joints", max_train=1)
    crop, target = preprocess(_frame().astype(np.float64), JOINTS, crop_size=32, centre="joints")
    np.testing.assert_array_equal(ds.x_train[0, 0], crop)  # the depth in mm came through unchanged
    np.testing.assert_array_equal(ds.y_train[0], target)


def test_load_icvl_test_seq_files_concatenated_and_limits(tmp_path):
    _write_dataset(tmp_path, "flat")
    (tmp_path / "test" / "labels.txt").rename(tmp_path / "test_seq_1.txt")
    text = (tmp_path / "test_seq_1.txt").read_text().replace("seq/", "test/seq/")
    (tmp_path / "test_seq_1.txt").write_text(text)
    (tmp_path / "test_seq_2.txt").write_text(text)
    ds = load_icvl(tmp_path, crop_size=16, max_train=2)
    assert ds.n_train == 2 and ds.n_test == 4
    assert [p.rsplit("/", 1)[-1] for p in ds.info["test_labels"]] == ["test_seq_1.txt", "test_seq_2.txt"]


def test_missing_train_labels(tmp_path):
    with pytest.raises(DatasetError, match=r"ICVL: missing train labels .*labels\.txt.*labicvl"):
        load_icvl(tmp_path)


def test_missing_dir(tmp_path):
    with pytest.raises(DatasetError, match=r"data directory .* does not exist"):
        load_icvl(tmp_path / "nothing")


def test_missing_test_labels(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / "test" / "labels.txt").unlink()
    with pytest.raises(DatasetError, match=r"missing test labels"):
        load_icvl(tmp_path)


def test_missing_image(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / "seq" / "image_0001.png").unlink()
    with pytest.raises(DatasetError, match=r"missing depth image .*image_0001\.png.* listed at .*labels\.txt:2"):
        load_icvl(tmp_path)


_NAN_SECOND_U = np.tile([160.0, 120.0, 400.0], 16)
_NAN_SECOND_U[3] = np.nan  # the second joint's u


@pytest.mark.parametrize(
    "labels,match",
    [
        ("seq/image_0000.png 1 2 3\n", r"labels\.txt:1 has 3 numbers after the path, expected 48"),
        ("seq/image_0000.png " + "x " * 48 + "\n", r"labels\.txt:1 has a non-numeric"),
        (_line("seq/image_0000.png", JOINTS * [1, 1, 0]) + "\n", r"joint depth <= 0"),
        ("seq/image_0000.png " + " ".join(str(v) for v in _NAN_SECOND_U) + "\n",
         r"labels\.txt:1 has a NaN or infinite joint coordinate"),
        ("\n\n", r"lists no frames"),
    ],
    ids=["wrong_field_count", "non_numeric", "zero_depth_joint", "nan_joint_coordinate", "empty_labels"],
)
def test_malformed_labels_line(tmp_path, labels, match):
    _write_dataset(tmp_path)
    (tmp_path / "labels.txt").write_text(labels)
    with pytest.raises(DatasetError, match=match):
        load_icvl(tmp_path)


def test_corrupt_png(tmp_path):
    _write_dataset(tmp_path)
    path = tmp_path / "seq" / "image_0002.png"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"^ICVL: cannot decode image .*image_0002\.png.*listed at .*labels\.txt:3"):
        load_icvl(tmp_path)


def test_colour_png_refused(tmp_path):
    _write_dataset(tmp_path)
    Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(tmp_path / "seq" / "image_0001.png")
    with pytest.raises(DatasetError, match=r"image_0001\.png' has Pillow mode 'RGB', expected a grey 8- or 16-bit"):
        load_icvl(tmp_path)


def test_rejects_bad_centre(tmp_path):
    with pytest.raises(ValueError, match="centre='middle'"):
        load_icvl(tmp_path, centre="middle")
    with pytest.raises(ValueError, match="max_train=0"):
        load_icvl(tmp_path, max_train=0)


def test_module_constants():
    assert icvl.FX == icvl.FY == 241.42 and (icvl.CX, icvl.CY) == (160.0, 120.0)
