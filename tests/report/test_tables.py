"""Tables, AUBC and learning curves on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from seqgcn.report.curves import plot_learning_curves
from seqgcn.report.tables import aubc, summarize, summary_table


def _records():
    # method A: two trials over labelled counts 10, 20, 40
    out = []
    for trial, ys in enumerate([[0.5, 0.7, 0.9], [0.3, 0.5, 0.7]]):
        for cycle, (n, y) in enumerate(zip([10, 20, 40], ys, strict=True)):
            out.append({"method": "A", "trial": trial, "cycle": cycle, "n_labelled": n, "metric": y})
    for cycle, (n, y) in enumerate(zip([10, 20, 40], [0.4, 0.4, 0.4], strict=True)):
        out.append({"method": "B", "trial": 0, "cycle": cycle, "n_labelled": n, "metric": y})
    return out


def test_aubc_hand_computed():
    # trapezoids: (20-10)*(0.5+0.7)/2 = 6 ; (40-20)*(0.7+0.9)/2 = 16 ; area 22 over x-range 30
    assert aubc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    assert aubc([10, 20, 40], [0.4, 0.4, 0.4]) == pytest.approx(0.4)  # a flat curve has its own height
    assert aubc([0, 1], [0.0, 1.0]) == pytest.approx(0.5)
    assert aubc([7], [0.3]) == pytest.approx(0.3)  # one point: its metric
    assert aubc([40, 10, 20], [0.9, 0.5, 0.7]) == pytest.approx(22 / 30)  # order of points does not matter


def test_aubc_rejects_mismatched_input():
    with pytest.raises(ValueError, match="same non-zero length"):
        aubc([1, 2], [0.1])


def test_summarize_mean_std_and_aubc():
    s = summarize(_records())
    np.testing.assert_allclose(s["A"]["mean"], [0.4, 0.6, 0.8])
    np.testing.assert_allclose(s["A"]["std"], [np.sqrt(0.02)] * 3)  # ddof=1 over two trials
    assert s["A"]["aubc_per_trial"] == pytest.approx([22 / 30, 16 / 30])
    assert s["A"]["aubc_mean"] == pytest.approx(19 / 30)
    assert s["B"]["std"] == [0.0, 0.0, 0.0] and s["B"]["aubc_std"] == 0.0


def test_summary_table_is_aligned_and_says_the_direction():
    table = summary_table(_records(), metric_name="accuracy (%)", scale=100)
    lines = table.splitlines()
    assert "higher is better" in lines[0]
    assert lines[1].split() == ["cycle", "labelled", "A", "B"]
    assert "40.00 ± 14.14" in lines[3] and "40.00 ± 0.00" in lines[3]
    assert lines[-1].split()[:4] == ["AUBC", "63.33", "±", "14.14"]  # (22/30, 16/30): std = 0.2/√2
    body = [ln for ln in lines[1:] if not ln.startswith("-")]
    assert len({len(ln) for ln in body}) == 1  # aligned columns
    reg = summary_table(_records(), metric_name="mean joint error (mm)", higher_is_better=False)
    assert "lower is better" in reg.splitlines()[0]


def test_learning_curve_png(tmp_path):
    path = tmp_path / "curve.png"
    plot_learning_curves(_records(), path, title="toy", metric_name="accuracy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
