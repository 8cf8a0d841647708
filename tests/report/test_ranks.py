"""Ranks over trials on hand-computed examples: rank table with ties, Friedman = scipy, Nemenyi CD = Demšar's table."""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np
import pytest
from PIL import Image

from seqgcn.checks import InputError
from seqgcn.report.ranks import (DEMSAR_Q05, block_ranks, critical_difference, friedman, nemenyi_q, plot_cd_diagram,
                                 plot_win_rates, rank_methods, ranking_csv, ranking_text, studentized_q, win_rates)

# 4 blocks × 3 methods, accuracy-like (higher is better), with ties in blocks 0 and 3
SCORES = np.array([[0.9, 0.8, 0.8],
                   [0.7, 0.9, 0.6],
                   [0.8, 0.7, 0.6],
                   [0.5, 0.5, 0.5]])
METHODS = ("A", "B", "C")


def test_rank_table_by_hand_with_ties_in_both_directions():
    higher = block_ranks(SCORES, higher_is_better=True)
    np.testing.assert_array_equal(higher, [[1, 2.5, 2.5], [2, 1, 3], [1, 2, 3], [2, 2, 2]])
    lower = block_ranks(SCORES, higher_is_better=False)  # an error metric: the smallest value ranks first
    np.testing.assert_array_equal(lower, [[3, 1.5, 1.5], [2, 3, 1], [3, 2, 1], [2, 2, 2]])
    mixed = block_ranks(SCORES, higher_is_better=[True, False, True, False])  # pooled settings: one direction per block
    np.testing.assert_array_equal(mixed, [higher[0], lower[1], higher[2], lower[3]])
    r = rank_methods(SCORES, METHODS, higher_is_better=True)
    np.testing.assert_allclose(r.mean_rank, [6 / 4, 7.5 / 4, 10.5 / 4])
    assert [r.methods[p] for p in r.order] == ["A", "B", "C"] and r.n_blocks == 4


def test_friedman_by_hand_and_equal_to_scipy():
    from scipy.stats import friedmanchisquare  # 1.3 s to import: only in the worker that runs this

    # no ties, N = 2, k = 3, both blocks ranked 1, 2, 3: R = (2, 4, 6); 12/(2·3·4)·56 − 3·2·4 = 4; df 2: p = e^(−2)
    stat, p = friedman([[1, 2, 3], [1, 2, 3]])
    assert stat == pytest.approx(4.0) and p == pytest.approx(math.exp(-2.0))
    rng = np.random.default_rng(3)
    for n, k in [(4, 3), (10, 4), (7, 6), (30, 8)]:
        x = rng.integers(0, 4, size=(n, k)).astype(float)  # few distinct values: many ties
        for higher in (True, False):
            r = rank_methods(x, [f"m{j}" for j in range(k)], higher_is_better=higher)
            expected = friedmanchisquare(*x.T)  # rank direction does not change the statistic
            assert r.statistic == pytest.approx(expected.statistic, rel=1e-12)
            assert r.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    r = rank_methods(SCORES, METHODS)
    assert (r.statistic, r.p_value) == pytest.approx(tuple(friedmanchisquare(*SCORES.T)))


def test_friedman_of_blocks_that_are_all_ties_is_zero():
    assert friedman([[2, 2, 2]] * 3) == (0.0, 1.0)  # no block orders the methods


def test_nemenyi_q_is_demsars_table_and_the_studentized_range_agrees():
    assert DEMSAR_Q05 == {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
    for k, q in DEMSAR_Q05.items():
        assert nemenyi_q(k) == q
        assert studentized_q(k) == pytest.approx(q, abs=1e-3)  # the table prints 2.343 for 2.3437, 2.949 for 2.9483
    # k > 10: the studentized range, as in the extended tables (q_0.05 for k = 11 … 20, three decimals)
    extended = [3.219, 3.268, 3.313, 3.354, 3.391, 3.426, 3.458, 3.489, 3.517, 3.544]
    for k, q in zip(range(11, 21), extended, strict=True):
        assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)


def test_critical_difference_formula_and_demsars_worked_example():
    for k in (2, 3, 5, 10, 12):
        for n in (2, 10, 30):
            assert critical_difference(k, n) == pytest.approx(nemenyi_q(k) * math.sqrt(k * (k + 1) / (6 * n)))
    # Demšar (2006), the worked example of the Friedman test: four classifiers on 14 data sets,
    # CD = 2.569·sqrt(4·5 / (6·14)) = 1.25
    assert critical_difference(4, 14) == pytest.approx(1.2535, abs=1e-4)
    assert rank_methods(SCORES, METHODS).cd == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)))


def test_win_rate_matrix_on_a_tiny_example():
    w = win_rates(block_ranks(SCORES, higher_is_better=True))
    # A vs B: blocks 0 and 2 won, 1 lost, 3 tied → (2 + 0.5) / 4; A vs C: 0, 1, 2 won, 3 tied → 3.5 / 4;
    # B vs C: block 0 tied, 1 and 2 won, 3 tied → 3 / 4
    expected = np.array([[np.nan, 2.5, 3.5], [1.5, np.nan, 3.0], [0.5, 1.0, np.nan]]) / 4
    np.testing.assert_allclose(w, expected)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose((w + w.T)[off], 1.0)  # i beats j or j beats i, ties split
    lower = win_rates(block_ranks(SCORES, higher_is_better=False))
    np.testing.assert_allclose(lower[off], expected.T[off])  # flipping the direction swaps wins and losses


def test_groups_of_methods_not_significantly_different():
    r = rank_methods(SCORES, METHODS)
    spread = dataclasses.replace(r, methods=("A", "B", "C", "D"), mean_rank=np.array([3.0, 1.0, 2.6, 1.5]), cd=1.2)
    # sorted: B 1.0, D 1.5, C 2.6, A 3.0 → B–D (1.6 < 2.2), D–C (2.7), C–A (3.8); no group holds another
    assert spread.groups() == [("B", "D"), ("D", "C"), ("C", "A")]
    wide = dataclasses.replace(spread, cd=5.0)
    assert wide.groups() == [("B", "D", "C", "A")]
    narrow = dataclasses.replace(spread, cd=0.3)
    assert narrow.groups() == []  # every pair differs
    assert "every pair of methods differs significantly" in ranking_text(narrow, title="t")


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(InputError, match="at least two methods"):
        rank_methods(SCORES[:, :1], ["A"])
    with pytest.raises(InputError, match="at least two blocks"):
        rank_methods(SCORES[:1], METHODS)
    with pytest.raises(InputError, match=r"shape \(n_blocks, 2\)"):
        rank_methods(SCORES, ["A", "B"])
    bad = SCORES.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="score of 'B' in block 2 is nan"):
        rank_methods(bad, METHODS)
    with pytest.raises(InputError, match="distinct"):
        rank_methods(SCORES, ["A", "A", "C"])
    with pytest.raises(InputError, match="one per block"):
        rank_methods(SCORES, METHODS, higher_is_better=[True, False])


def test_text_and_csv():
    r = rank_methods(SCORES, METHODS)
    aubc = {"A": (0.725, 0.17), "B": (0.725, 0.17), "C": (0.625, 0.13)}
    text = ranking_text(r, title="toy", aubc=aubc, scale=100)
    lines = text.splitlines()
    assert lines[0] == "toy" and lines[1].split() == ["method", "AUBC", "mean", "rank"]
    assert lines[3].split() == ["A", "72.50", "±", "17.00", "1.50"] and lines[5].split()[0] == "C"
    assert f"p = {r.p_value:.4f}" in text and f"CD = {r.cd:.2f}" in text
    assert "not significantly different: {A, B, C}" in text
    rows = list(csv.DictReader(io.StringIO(ranking_csv(r, setting="toy", aubc=aubc, metric_name="accuracy",
                                                       direction="higher is better"))))
    assert [row["method"] for row in rows] == ["A", "B", "C"]
    assert [float(row["mean_rank"]) for row in rows] == pytest.approx([1.5, 1.875, 2.625])
    assert float(rows[0]["critical_difference"]) == pytest.approx(r.cd) and rows[2]["aubc_mean"] == "0.625"


def test_pngs_are_valid_images(tmp_path):
    r = rank_methods(np.random.default_rng(0).normal(size=(12, 5)), ["Random", "CoreSet", "UncertainGCN", "CoreGCN", "VAAL"])
    for draw, name in [(plot_cd_diagram, "cd.png"), (plot_win_rates, "win.png")]:
        path = tmp_path / name
        draw(r, path, title="toy")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 300 and image.size[1] > 150
