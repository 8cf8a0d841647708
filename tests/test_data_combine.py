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
