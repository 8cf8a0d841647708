import numpy as np
import pytest

from seqgcn.data.base import Dataset
from seqgcn.data.combine import combine_pools


def _dataset(name, n, value, n_classes=3, size=4):
    x = np.full((n, 1, size, size), value, dtype=np.uint8)
    y = np.arange(n) % n_classes
    return Dataset(name=name, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], n_classes=n_classes)


def test_seed_rows_come_first_and_pool_rows_follow():
    real, synth = _dataset("real", 5, 10), _dataset("synth", 7, 200)
    combined = combine_pools(real, synth)
    ds = combined.dataset
    assert ds.n_train == 5 + 7 + 2 and ds.name == "real+synth"  # the pool's 2 test images join the pool
    assert np.all(ds.x_train[combined.seed_among] == 10)
    assert np.all(ds.x_train[combined.pool_among] == 200)
    assert np.array_equal(ds.x_test, real.x_test)  # evaluation stays on real images


@pytest.mark.parametrize(
    "other,match",
    [
        (_dataset("synth", 4, 0, n_classes=5), "3 vs 5 classes"),
        (_dataset("synth", 4, 0, size=8), r"image shape \(1, 4, 4\) vs \(1, 8, 8\)"),
    ],
)
def test_mismatched_datasets_are_refused(other, match):
    with pytest.raises(ValueError, match=f"do not match: {match}"):
        combine_pools(_dataset("real", 4, 0), other)


def test_a_grey_pool_beside_a_colour_seed_set_is_repeated_to_three_channels():
    real = _dataset("real", 5, 10)
    colour = Dataset(name="real", x_train=np.repeat(real.x_train, 3, axis=1), y_train=real.y_train,
                     x_test=np.repeat(real.x_test, 3, axis=1), y_test=real.y_test, n_classes=3,
                     mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    combined = combine_pools(colour, _dataset("synth", 4, 200))
    assert combined.dataset.x_train.shape == (5 + 4 + 2, 3, 4, 4)
    assert np.all(combined.dataset.x_train[combined.pool_among] == 200)
    assert combined.dataset.mean == (0.1, 0.2, 0.3)  # the seed set's statistics
