import numpy as np
import pytest

from seqgcn.pool import PoolState


def test_label_and_rounds():
    pool = PoolState(10)
    seed = pool.draw_seed(3, np.random.default_rng(0))
    assert pool.n_labelled == 3 and set(pool.labelled_indices) == set(seed)
    pool.label([int(pool.unlabelled_indices[0])], round=1)
    rounds = pool.labelled_round()
    assert sorted(rounds[rounds >= 0].tolist()) == [0, 0, 0, 1]


def test_relabelling_is_refused():
    pool = PoolState(5)
    pool.label([1, 2], round=0)
    with pytest.raises(ValueError, match="already labelled"):
        pool.label([2, 3], round=1)


def test_candidates_are_unlabelled_and_restricted():
    pool = PoolState(20)
    pool.label(np.arange(5), round=0)
    cand = pool.draw_candidates(6, np.random.default_rng(1), among=np.arange(3, 12))
    assert len(cand) == 6 and set(cand) <= set(range(5, 12))
    assert np.array_equal(pool.draw_candidates(None, np.random.default_rng(1)), np.arange(5, 20))


def test_seed_larger_than_pool_is_an_error():
    with pytest.raises(ValueError, match="seed_size=30 exceeds the 20 unlabelled"):
        PoolState(20).draw_seed(30, np.random.default_rng(0))


def test_state_dict_round_trip():
    pool = PoolState(8)
    pool.label([0, 5], round=0)
    pool.label([3], round=2)
    other = PoolState(8)
    other.load_state_dict(pool.state_dict())
    assert np.array_equal(other.labelled_round(), pool.labelled_round())
    with pytest.raises(ValueError, match="pool of 8 items"):
        PoolState(9).load_state_dict(pool.state_dict())
