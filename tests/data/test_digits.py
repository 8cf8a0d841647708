"""The embedded digits datasets: shapes, value range, stratification, determinism."""

import numpy as np
import pytest

from seqgcn.data.digits import load_digits, load_rotated_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def rotated():
    return load_rotated_digits()


def test_digits_shapes_and_dtypes(digits):
    assert digits.name == "digits"
    assert digits.task == "classification" and digits.n_classes == 10
    assert digits.n_train + digits.n_test == 1797
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.x_train.dtype == np.uint8
    assert digits.y_train.dtype == np.int64 and digits.y_train.shape == (digits.n_train,)
    assert digits.n_test == pytest.approx(0.25 * 1797, abs=1)


def test_digits_value_range_is_full_uint8(digits):
    pixels = np.concatenate([digits.x_train.ravel(), digits.x_test.ravel()])
    assert pixels.min() == 0 and pixels.max() == 255
    # values are v * 255 // 16 for v in 0..16
    assert set(np.unique(pixels)) <= {v * 255 // 16 for v in range(17)}


def test_digits_mean_std_from_train(digits):
    scaled = digits.x_train / 255.0
    assert digits.mean == pytest.approx((scaled.mean(),))
    assert digits.std == pytest.approx((scaled.std(),))


def test_digits_split_is_stratified(digits):
    train_counts = np.bincount(digits.y_train, minlength=10) / digits.n_train
    test_counts = np.bincount(digits.y_test, minlength=10) / digits.n_test
    np.testing.assert_allclose(train_counts, test_counts, atol=0.01)


def test_digits_split_deterministic_and_seed_dependent(digits):
    again = load_digits()
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    other = load_digits(split_seed=1)
    assert not np.array_equal(other.y_train, digits.y_train)
    assert other.info["split_seed"] == 1 and "sklearn" in other.info["source"]


def test_digits_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        load_digits(test_fraction=1.5)


def test_rotated_shapes_and_targets(rotated):
    assert rotated.name == "rotated_digits" and rotated.task == "regression"
    assert rotated.x_train.shape[1:] == (1, 16, 16) and rotated.x_train.dtype == np.uint8
    assert rotated.y_train.shape == (rotated.n_train, 1) and rotated.y_train.dtype == np.float32
    y = np.concatenate([rotated.y_train, rotated.y_test])
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0.4  # uniform in [-1, 1]
    assert rotated.target_scale == 60.0 and rotated.metric_unit == "deg" and rotated.point_dim == 1
    assert rotated.n_targets == 1


def test_rotated_data_fixed_across_split_seeds(rotated):
    other = load_rotated_digits(split_seed=3)
    def key(ds):
        return sorted(np.concatenate([ds.y_train, ds.y_test]).ravel().tolist())
    assert key(other) == key(rotated)


def test_rotated_zero_angle_is_upsampled_digit():
    from scipy import ndimage

    tiny = load_rotated_digits(max_angle=1e-9)
    plain = load_digits()
    assert tiny.x_train.shape == (plain.n_train, 1, 16, 16)
    expected = np.stack([ndimage.zoom(img[0].astype(np.float32), 2, order=1) for img in plain.x_train[:50]])
    np.testing.assert_allclose(tiny.x_train[:50, 0], expected, atol=1.0)


def test_rotated_rejects_bad_angle():
    with pytest.raises(ValueError, match="max_angle=0"):
        load_rotated_digits(max_angle=0)
