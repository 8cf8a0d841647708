"""The stratified split and the digits table equal scikit-learn's, which seqgcn no longer imports to get them."""

from __future__ import annotations

import numpy as np
import pytest

from seqgcn.checks import InputError
from seqgcn.data.base import stratified_split
from seqgcn.data.digits import _digits_table


def _sklearn(labels, fraction, seed):
    from sklearn.model_selection import train_test_split  # 2.4 s to import: only in the worker that runs these

    train, test = train_test_split(np.arange(len(labels)), test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 1 / 3, 0.5, 0.9])
def test_stratified_split_equals_scikit_learns(fraction):
    from sklearn import datasets

    rng = np.random.default_rng(0)
    digits = datasets.load_digits().target
    uneven = rng.choice(["a", "b", "c", "d"], size=97, p=[0.55, 0.3, 0.1, 0.05])  # remainders tie and differ
    tiny = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    for labels in (digits, uneven, tiny):
        for seed in range(12):
            try:
                expected = _sklearn(labels, fraction, seed)
            except ValueError:  # a side with fewer rows than classes: refused by both
                with pytest.raises(InputError, match="each side needs one per class"):
                    stratified_split(labels, fraction, seed)
                continue
            train, test = stratified_split(labels, fraction, seed)
            assert np.array_equal(train, expected[0]) and np.array_equal(test, expected[1]), (len(labels), seed)


def test_stratified_split_refuses_a_class_of_one():
    with pytest.raises(InputError, match="has 1 item"):
        stratified_split(np.array([0, 0, 1, 1, 2]), 0.4, 0)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        stratified_split(np.array([0, 0, 1, 1]), 1.0, 0)


def test_the_digits_table_is_load_digits():
    from sklearn import datasets

    table, bunch = _digits_table(), datasets.load_digits()
    assert np.array_equal(table[:, :64], bunch.data) and np.array_equal(table[:, 64], bunch.target)
