"""The one image decoder: known pixels of tiny files in the real formats, resizing, errors,
and the same folder giving the same arrays in `seqgcn run --dataset folder` and `seqgcn query`."""

import numpy as np
import pytest
from PIL import Image

from seqgcn.checks import InputError
from seqgcn.data.folder import load_image_folder
from seqgcn.data.images import ImageError, read_depth, read_image, read_images, resize
from seqgcn.labelling import load_images


def _full(shape, value, dtype=np.uint8):
    return np.full(shape, value, dtype=dtype)


def _palette_image(palette):
    image = Image.new("P", (4, 3), 1)  # (w, h), every pixel palette entry 1
    image.putpalette(palette)
    return image


# ---------------------------------------------------------------- one file, known pixels


@pytest.mark.parametrize(
    "name,make,expected",
    [
        ("rgb.png", lambda: Image.fromarray(_full((3, 4, 3), (10, 20, 30))), [10, 20, 30]),
        ("grey16.png", lambda: Image.fromarray(_full((3, 4), 0x1234, np.uint16)), [0x12]),  # top 8 bits
        ("max16.tif", lambda: Image.fromarray(_full((3, 4), 0xFFFF, np.uint16)), [255]),
        ("grey.tif", lambda: Image.fromarray(_full((3, 4), 200)), [200]),
        ("float.tif", lambda: Image.fromarray(_full((3, 4), 0.5, np.float32)), [128]),  # [0, 1]
        ("c.bmp", lambda: Image.fromarray(_full((3, 4, 3), (1, 2, 250))), [1, 2, 250]),
        ("rgba.png", lambda: Image.fromarray(_full((3, 4, 4), (7, 8, 9, 0))), [7, 8, 9]),  # alpha dropped
        ("la.png", lambda: Image.fromarray(_full((3, 4), 60)).convert("LA"), [60]),
        ("grey_palette.png", lambda: _palette_image([50, 50, 50] * 2), [50]),
        ("colour_palette.png", lambda: _palette_image([50, 60, 70] * 2), [50, 60, 70]),
    ],
)
def test_read_image_known_pixels(tmp_path, name, make, expected):
    make().save(tmp_path / name)
    pixels = read_image(tmp_path / name)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 4, len(expected))
    np.testing.assert_array_equal(pixels.reshape(-1, len(expected)), np.tile(expected, (12, 1)))


def test_read_image_jpeg_nearly_exact(tmp_path):
    Image.fromarray(_full((16, 16, 3), (0, 0, 250))).save(tmp_path / "c.jpg", quality=95)
    pixels = read_image(tmp_path / "c.jpg")
    assert pixels.shape == (16, 16, 3)
    assert np.abs(pixels.astype(int) - [0, 0, 250]).max() <= 3


def test_read_image_npy_arrays(tmp_path):
    rgba = np.zeros((3, 3, 4), np.float32)
    rgba[..., 1], rgba[..., 3] = 1.0, 0.5
    np.save(tmp_path / "a.npy", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy")[0, 0], [0, 255, 0])
    np.save(tmp_path / "b.npy", _full((2, 2), 0xABCD, np.uint16))
    assert read_image(tmp_path / "b.npy").shape == (2, 2, 1) and read_image(tmp_path / "b.npy")[0, 0, 0] == 0xAB
    np.save(tmp_path / "c.npy", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match=r"c\.npy' has shape \(4, 4, 2\), expected \(h, w\) or \(h, w, 1\|3\|4\)"):
        read_image(tmp_path / "c.npy")
    np.save(tmp_path / "d.npy", np.zeros((4, 4), np.int64))
    with pytest.raises(ImageError, match=r"d\.npy' has dtype int64, expected uint8"):
        read_image(tmp_path / "d.npy")


# ---------------------------------------------------------------- resizing


def test_resize_known_answers():
    image = np.zeros((4, 4, 1), np.uint8)
    image[:, 2:] = 200  # right half
    np.testing.assert_array_equal(resize(image, 2)[..., 0], [[0, 200], [0, 200]])  # block means
    colour = _full((4, 6, 3), (8, 16, 24))
    np.testing.assert_array_equal(resize(colour, 2), _full((2, 2, 3), (8, 16, 24)))
    big = resize(_full((3, 3, 3), (10, 20, 30)), 9)  # enlarging: bilinear
    assert big.shape == (9, 9, 3) and (big == [10, 20, 30]).all()
    assert resize(image, 4) is image  # already the size: untouched


def test_read_image_with_size_is_resize_of_the_full_image(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(13, 9, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    for size in (4, 9, 20):
        np.testing.assert_array_equal(read_image(tmp_path / "a.png", size=size),
                                      resize(read_image(tmp_path / "a.png"), size))
    with pytest.raises(InputError, match="size=0 must be a positive number of pixels"):
        read_image(tmp_path / "a.png", size=0)


# ---------------------------------------------------------------- depth, errors, many files


def test_read_depth_keeps_the_stored_values(tmp_path):
    depth = np.random.default_rng(1).integers(0, 65536, size=(5, 7)).astype(np.uint16)
    Image.fromarray(depth).save(tmp_path / "d.png")
    got = read_depth(tmp_path / "d.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, depth)
    Image.fromarray(_full((2, 3), 77)).save(tmp_path / "e.png")
    np.testing.assert_array_equal(read_depth(tmp_path / "e.png"), _full((2, 3), 77, np.uint16))
    Image.fromarray(_full((2, 3, 3), 77)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match=r"rgb\.png' has Pillow mode 'RGB', expected a grey 8- or 16-bit image"):
        read_depth(tmp_path / "rgb.png")


def test_undecodable_files_are_one_line_errors_naming_the_file(tmp_path):
    Image.fromarray(_full((20, 20), 9)).save(tmp_path / "good.png")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "good.png").read_bytes()[:50])
    for name in ("garbage.png", "truncated.png", "missing.jpg"):
        for read in (read_image, read_depth):
            with pytest.raises(ImageError, match=rf"^cannot decode image '.*{name}' \(\w+: ") as caught:
                read(tmp_path / name)
            assert "\n" not in str(caught.value) and isinstance(caught.value, InputError)


def test_read_images_channel_rule_and_errors(tmp_path):
    Image.fromarray(_full((6, 6), 40)).save(tmp_path / "grey.png")
    Image.fromarray(_full((6, 6, 3), (1, 2, 3))).save(tmp_path / "colour.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    grey, errors = read_images([tmp_path / "grey.png"] * 2, size=3)
    assert grey.shape == (2, 1, 3, 3) and (grey == 40).all() and errors == {}
    mixed, errors = read_images([tmp_path / "grey.png", tmp_path / "bad.png", tmp_path / "colour.png"], size=3)
    assert mixed.shape == (2, 3, 3, 3) and list(errors) == [1] and "bad.png" in errors[1]
    assert (mixed[0] == 40).all()  # grey repeated to 3 channels
    np.testing.assert_array_equal(mixed[1, :, 0, 0], [1, 2, 3])


def test_read_images_screen_sees_each_files_bytes_and_skips_what_it_refuses(tmp_path):
    Image.fromarray(_full((6, 6, 3), (9, 8, 7))).save(tmp_path / "keep.png")
    Image.fromarray(_full((6, 6), 40)).save(tmp_path / "skip.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    files = [tmp_path / "skip.png", tmp_path / "keep.png", tmp_path / "missing.png", tmp_path / "bad.png"]
    seen = {}

    def screen(i, data):
        seen[i] = data
        return i != 0

    pixels, errors = read_images(files, size=3, workers=2, screen=screen)
    assert seen == {0: files[0].read_bytes(), 1: files[1].read_bytes(), 3: files[3].read_bytes()}
    assert pixels.shape == (1, 3, 3, 3) and (pixels[0, :, 0, 0] == [9, 8, 7]).all()  # the grey file was not decoded
    assert sorted(errors) == [2, 3] and errors[2].startswith("cannot read image") and "bad.png" in errors[3]
    np.testing.assert_array_equal(pixels, read_images(files[1:2], size=3)[0])  # from the bytes: the same pixels


# ---------------------------------------------------------------- one folder, two commands, the same arrays


def _write_folder(root, colour: bool):
    """ROOT/<class>/<image> in every format, sizes that shrink by odd factors, enlarge, and are not square."""
    rng = np.random.default_rng(2)

    def pixels(h, w, bits=8):
        if bits == 16:
            return rng.integers(0, 65536, size=(h, w)).astype(np.uint16)
        return rng.integers(0, 256, size=(h, w, 3) if colour else (h, w), dtype=np.uint8)

    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
    Image.fromarray(pixels(23, 17)).save(root / "cat" / "a.png")
    Image.fromarray(pixels(64, 48)).save(root / "cat" / "b.jpg", quality=90)
    Image.fromarray(pixels(5, 9)).save(root / "cat" / "c.bmp")
    Image.fromarray(pixels(30, 30, bits=16)).save(root / "dog" / "d.png")  # 16-bit grey
    Image.fromarray(pixels(7, 7)).save(root / "dog" / "e.tif")
    Image.fromarray(pixels(3, 40)).save(root / "dog" / "f.jpeg")


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "all_grey"])
def test_folder_dataset_and_query_decode_a_folder_identically(tmp_path, colour):
    _write_folder(tmp_path, colour)
    dataset = load_image_folder(tmp_path, image_size=7, test_dir=tmp_path)  # every image in x_train, in order
    query = load_images(tmp_path, size=7, workers=2)
    assert query.paths == ("cat/a.png", "cat/b.jpg", "cat/c.bmp", "dog/d.png", "dog/e.tif", "dog/f.jpeg")
    assert dataset.x_train.shape == query.pixels.shape == (6, 3 if colour else 1, 7, 7)
    assert dataset.x_train.dtype == query.pixels.dtype == np.uint8
    np.testing.assert_array_equal(dataset.x_train, query.pixels)
    np.testing.assert_array_equal(dataset.x_test, query.pixels)
