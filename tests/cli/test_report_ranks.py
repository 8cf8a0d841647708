"""`seqgcn report --ranks`: known ranks of hand-made finished runs, a real tiny run, the files, one-line refusals."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seqgcn.cli import main
from seqgcn.experiment.results import write_json

# AUBC per (trial, method): each curve is flat, so its AUBC is its metric
ACCURACY = {"A": [0.9, 0.7, 0.8, 0.5], "B": [0.8, 0.9, 0.7, 0.5], "C": [0.8, 0.6, 0.6, 0.5]}  # higher is better
ERROR = {"A": [10.0, 15.0], "B": [20.0, 15.0], "C": [30.0, 10.0], "D": [5.0, 40.0]}  # degrees, lower is better


def finished_run(run_dir: Path, aubc: dict, *, metric_name="accuracy", higher_is_better=True, upper_bound=False) -> Path:
    """A finished run's results.json (what `seqgcn report` reads), its curves flat at the given AUBC; no plot drawn."""
    records = []
    for method, values in aubc.items():
        for trial, value in enumerate(values):
            cycles = [0] if upper_bound else [0, 1, 2]
            records += [{"method": method, "trial": trial, "cycle": c, "n_labelled": 10 * (c + 1), "metric": value}
                        for c in cycles]
    meta = {"config": {"methods": list(aubc)}, "mode": "upper_bound" if upper_bound else "active_learning",
            "metric_name": metric_name, "higher_is_better": higher_is_better, "dataset": {"name": "toy"}}
    run_dir.mkdir(parents=True)
    write_json(run_dir / "results.json", {**meta, "records": records})
    return run_dir


def report(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def settings(tmp_path) -> tuple[Path, Path]:
    acc = finished_run(tmp_path / "runs" / "digits_low", ACCURACY)
    err = finished_run(tmp_path / "runs" / "rotated", ERROR, metric_name="mean error (deg)", higher_is_better=False)
    return acc, err


def read_ranks(path: Path):
    pandas = pytest.importorskip("pandas")
    return pandas.read_csv(path)  # defaults: one header row, commas


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()


def test_ranks_per_setting_and_pooled_next_to_the_runs(settings):
    acc, err = settings
    code, out, stderr = report("--ranks", acc, err)
    assert code == 0, stderr
    # accuracy: ranks (1, 2.5, 2.5), (2, 1, 3), (1, 2, 3), (2, 2, 2) → A 1.5, B 1.875, C 2.625
    ranks = read_ranks(acc / "ranks.csv")
    assert list(ranks["method"]) == ["A", "B", "C"] and list(ranks["setting"]) == ["digits_low"] * 3
    np.testing.assert_allclose(ranks["mean_rank"], [1.5, 1.875, 2.625])
    np.testing.assert_allclose(ranks["aubc_mean"], [0.725, 0.725, 0.625])
    assert (ranks["n_blocks"] == 4).all() and (ranks["direction"] == "higher is better").all()
    # error, lower is better: (2, 3, 4, 1), (2.5, 2.5, 1, 4) → A 2.25, C 2.5, D 2.5, B 2.75
    ranks = read_ranks(err / "ranks.csv")
    assert list(ranks["method"]) == ["A", "C", "D", "B"]
    np.testing.assert_allclose(ranks["mean_rank"], [2.25, 2.5, 2.5, 2.75])
    # pooled over A, B, C (D is only in one setting): the error blocks re-ranked among three: (1, 2, 3), (2.5, 2.5, 1)
    pooled = read_ranks(acc.parent / "pooled_ranks.csv")
    assert list(pooled["method"]) == ["A", "B", "C"] and (pooled["n_blocks"] == 6).all()
    np.testing.assert_allclose(pooled["mean_rank"], [9.5 / 6, 12 / 6, 14.5 / 6])
    assert pooled["aubc_mean"].isna().all()  # AUBCs of different units are not pooled
    for folder, prefix in [(acc, ""), (err, ""), (acc.parent, "pooled_")]:
        for name in ("cd_diagram.png", "win_rates.png"):
            assert_png(folder / f"{prefix}{name}")

    assert "ranks of digits_low" in out and "AUBC of accuracy (%) per trial (higher is better)" in out
    assert ["A", "72.50", "±", "17.08", "1.50"] in [ln.split() for ln in out.splitlines()]  # %, std with ddof=1
    assert "mean error (deg) per trial (lower is better)" in out
    assert "ranks pooled over 2 settings (digits_low, rotated): 6 blocks = trial × setting" in out
    assert "left out (not in every setting): D" in out
    assert out.count("Friedman test over") == 3 and out.count("Nemenyi critical difference (alpha = 0.05)") == 3


def test_out_dir_holds_every_file_named_by_its_setting(settings, tmp_path):
    acc, err = settings
    code, out, stderr = report("--ranks", acc, err, "--out", tmp_path / "ranks")
    assert code == 0, stderr
    names = sorted(p.name for p in (tmp_path / "ranks").iterdir())
    assert names == sorted(f"{s}_{f}" for s in ("digits_low", "rotated", "pooled")
                           for f in ("ranks.csv", "cd_diagram.png", "win_rates.png"))
    assert not (acc / "ranks.csv").exists()


def test_a_real_tiny_run(tmp_path, one_torch_thread):
    run_dir = tmp_path / "real"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", "--trials", "2", "--cycles", "2", "--seed-size", "10", "--budget", "10", "--subset", "40",
                     "--epochs", "1", "--methods", "Random", "CoreSet", "--workers", "1", "--out", str(run_dir)]) == 0
    code, out, stderr = report("--ranks", run_dir)
    assert code == 0, stderr
    assert "Friedman test over 2 trials × 2 methods" in out and "pooled" not in out
    ranks = read_ranks(run_dir / "ranks.csv")
    assert sorted(ranks["method"]) == ["CoreSet", "Random"] and ranks["mean_rank"].sum() == pytest.approx(3.0)
    assert_png(run_dir / "cd_diagram.png")
    assert_png(run_dir / "win_rates.png")


@pytest.mark.parametrize("case, match", [
    ("unfinished", "holds no results.json (not finished)"),
    ("one_method", "holds one method (A); ranks compare at least two"),
    ("one_trial", "holds one trial; ranks need at least two"),
    ("upper_bound", "is an upper-bound run"),
    ("twice", "a run dir is given twice"),
    ("diverged", "score of 'A' in block 1 is nan; every score must be finite"),
])
def test_refusals_are_one_line_and_write_nothing(settings, tmp_path, case, match):
    acc, _ = settings
    bad = tmp_path / case
    if case == "unfinished":
        bad.mkdir()
        (bad / "config.json").write_text("{}")
    elif case == "one_method":
        finished_run(bad, {"A": [0.5, 0.6]})
    elif case == "one_trial":
        finished_run(bad, {"A": [0.5], "B": [0.6]})
    elif case == "diverged":  # a NaN metric: the later run fails, and the first one gets no files either
        finished_run(bad, {"A": [0.5, float("nan")], "B": [0.6, 0.7]})
    elif case == "upper_bound":
        finished_run(bad, {"Upper bound": [0.9, 0.8]}, upper_bound=True)
    else:
        bad = acc
    code, out, stderr = report("--ranks", acc, bad)
    assert code == 2 and out == ""
    assert stderr.startswith("seqgcn: error: ") and match in stderr and stderr.count("\n") == 1
    assert not (acc / "ranks.csv").exists() and not (acc.parent / "pooled_ranks.csv").exists()


def test_options_that_do_not_go_together(settings):
    acc, _ = settings
    code, _, stderr = report("--ranks", acc, "--plot", "x.png")
    assert code == 2 and "--plot does not apply with --ranks" in stderr
    code, _, stderr = report(acc, "--out", "somewhere")
    assert code == 2 and "--out applies only with --ranks" in stderr
