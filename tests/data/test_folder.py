"""Image-folder loader on tiny PNG / NPY trees written in tmp_path (pixel rules: tests/data/test_images.py)."""

import numpy as np
import pytest
from PIL import Image

from seqgcn.data.base import DatasetError
from seqgcn.data.folder import load_image_folder


def _solid(colour, size=8):
    return np.broadcast_to(np.asarray(colour, np.uint8), (size, size, 3)).copy()  # (s, s, 3)


def _write_tree(root, per_class=4, size=8):
    """Class 'angry' as RGBA PNGs (red), 'happy' as .npy (green), 'sad' as gray 2-D .npy."""
    for name in ("angry", "happy", "sad"):
        (root / name).mkdir(parents=True)
    for i in range(per_class):
        Image.fromarray(_solid((255, 0, 0), size)).convert("RGBA").save(root / "angry" / f"{i:02d}.png")
        np.save(root / "happy" / f"{i:02d}.npy", _solid((0, 255, 0), size))
        np.save(root / "sad" / f"{i:02d}.npy", np.full((size, size), 0.5, np.float32))
    (root / "angry" / "README.txt").write_text("ignored")
    (root / ".hidden").mkdir()


def test_split_shapes_labels_and_colours(tmp_path):
    _write_tree(tmp_path)
    ds = load_image_folder(tmp_path, image_size=8, test_fraction=0.25)
    assert ds.class_names == ("angry", "happy", "sad") and ds.n_classes == 3
    assert ds.x_train.shape == (9, 3, 8, 8) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (3, 3, 8, 8) and ds.y_test.dtype == np.int64
    assert sorted(ds.y_test.tolist()) == [0, 1, 2]  # stratified
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        expected = {0: (255, 0, 0), 1: (0, 255, 0), 2: (128, 128, 128)}[int(y)]
        assert tuple(x[:, 3, 4]) == expected  # channel-first layout
    assert ds.mean == pytest.approx(((255 * 3 + 128 * 3) / 9 / 255, (255 * 3 + 128 * 3) / 9 / 255, 128 / 3 / 255))


def test_split_is_deterministic(tmp_path):
    _write_tree(tmp_path, per_class=6)
    a = load_image_folder(tmp_path, image_size=4)
    b = load_image_folder(tmp_path, image_size=4)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.info["split_seed"] == 0


def test_separate_test_folder(tmp_path):
    _write_tree(tmp_path / "train")
    (tmp_path / "test" / "sad").mkdir(parents=True)
    np.save(tmp_path / "test" / "sad" / "x.npy", np.zeros((5, 7), np.uint8))
    ds = load_image_folder(tmp_path / "train", image_size=6, test_dir=tmp_path / "test")
    assert ds.n_train == 12 and ds.x_test.shape == (1, 3, 6, 6)
    assert ds.y_test.tolist() == [2]  # label of 'sad' in the training order


def test_all_grey_folder_gives_one_channel(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "test" / name).mkdir(parents=True)
        Image.fromarray(np.full((9, 9), 30, np.uint8)).save(tmp_path / "train" / name / "x.png")
        Image.fromarray(np.full((9, 9), 0x5000, np.uint16)).save(tmp_path / "test" / name / "y.png")
    ds = load_image_folder(tmp_path / "train", image_size=3, test_dir=tmp_path / "test")
    assert ds.x_train.shape == ds.x_test.shape == (2, 1, 3, 3) and len(ds.mean) == 1
    assert (ds.x_train == 30).all() and (ds.x_test == 0x50).all()
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "test" / "a" / "z.png")  # one colour test image
    ds = load_image_folder(tmp_path / "train", image_size=3, test_dir=tmp_path / "test")
    assert ds.x_train.shape == (2, 3, 3, 3) and ds.x_test.shape == (3, 3, 3, 3)  # train and test agree


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"image folder: data directory .* does not exist; expected ROOT/<class>"):
        load_image_folder(tmp_path / "nope")


def test_one_class_only(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match=r"has 1 class folder\(s\)"):
        load_image_folder(tmp_path)


def test_empty_class(tmp_path):
    _write_tree(tmp_path)
    (tmp_path / "zzz").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*zzz.* has no images"):
        load_image_folder(tmp_path)


def test_class_too_small_to_split(tmp_path):
    _write_tree(tmp_path)
    (tmp_path / "zzz").mkdir()
    np.save(tmp_path / "zzz" / "only.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"zzz.* has 1 image; a train/test split needs 2 per class"):
        load_image_folder(tmp_path)


def test_corrupt_png(tmp_path):
    _write_tree(tmp_path)
    (tmp_path / "angry" / "01.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DatasetError, match=r"^image folder: cannot decode image .*01\.png.*; expected ROOT/<class>"):
        load_image_folder(tmp_path)


def test_pickled_npy_refused(tmp_path):
    _write_tree(tmp_path)
    np.save(tmp_path / "happy" / "00.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match=r"cannot decode image .*00\.npy.*(pickle|Object arrays)"):
        load_image_folder(tmp_path)


def test_bad_shape(tmp_path):
    _write_tree(tmp_path)
    np.save(tmp_path / "happy" / "00.npy", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"has shape \(4, 4, 2\), expected \(h, w\) or \(h, w, 1\|3\|4\)"):
        load_image_folder(tmp_path)


def test_bad_dtype(tmp_path):
    _write_tree(tmp_path)
    np.save(tmp_path / "happy" / "00.npy", np.zeros((4, 4), np.int64))
    with pytest.raises(DatasetError, match=r"has dtype int64, expected uint8"):
        load_image_folder(tmp_path)


def test_test_folder_with_unknown_class(tmp_path):
    _write_tree(tmp_path / "train")
    (tmp_path / "test" / "surprised").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"classes \['surprised'\] absent from the training folder"):
        load_image_folder(tmp_path / "train", test_dir=tmp_path / "test")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="image_size=0"):
        load_image_folder(tmp_path, image_size=0)
    with pytest.raises(ValueError, match="test_fraction=0"):
        load_image_folder(tmp_path, test_fraction=0)
