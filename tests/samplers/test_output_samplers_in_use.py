"""The strong baselines where users meet them: `seqgcn run`, `seqgcn select --probs`, `seqgcn query`, the learner's outputs."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from seqgcn.cli import main
from seqgcn.data.digits import load_digits, load_rotated_digits
from seqgcn.learners import LearnerConfig, build_learner
from seqgcn.loop import learner_outputs
from seqgcn.samplers import BALD, BADGE, Margin, methods_for_task, output_samplers

NEW = ["LeastConfidence", "Margin", "Entropy", "BALD", "BADGE", "TypiClust", "ProbCover"]
ERROR = "seqgcn: error: "


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for one epoch on 40 digits (outputs only need a trained net, not a good one)."""
    data = load_digits()
    learner = build_learner(data, LearnerConfig(epochs=1, lr=0.05, milestones=(1,), device="cpu"), seed=0)
    learner.fit(np.arange(40), data.y_train[:40])
    return learner


def test_learner_outputs_are_softmax_rows_and_seeded_dropout_passes(trained):
    rows = np.array([50, 7, 50, 300])
    out = trained.outputs(rows)
    assert out["probs"].shape == (4, 10) and out["features"].shape == (4, trained.feature_dim)
    assert np.allclose(out["probs"].sum(1), 1.0, atol=1e-5) and np.array_equal(out["probs"][0], out["probs"][2])
    assert np.allclose(out["features"], trained.features(rows))
    passes = trained.dropout_passes(rows, passes=5, dropout=0.5, seed=3)
    assert passes.shape == (5, 4, 10) and np.allclose(passes.sum(2), 1.0, atol=1e-5)
    assert np.array_equal(passes, trained.dropout_passes(rows, passes=5, dropout=0.5, seed=3))  # same seed, same masks
    assert not np.array_equal(passes, trained.dropout_passes(rows, passes=5, dropout=0.5, seed=4))
    assert not np.allclose(passes[0], passes[1])  # the passes differ from each other


def test_loop_fills_only_the_rows_the_sampler_reads(trained):
    nodes = np.array([3, 9, 100])
    outputs = learner_outputs(trained, BADGE(), nodes, trained.dataset.n_train)
    assert outputs.passes is None and outputs.probs.shape == (trained.dataset.n_train, 10)
    assert np.count_nonzero(outputs.probs.sum(1)) == 3 and np.allclose(outputs.probs[nodes].sum(1), 1.0, atol=1e-5)
    bald = learner_outputs(trained, BALD(passes=3), nodes, trained.dataset.n_train)
    assert bald.probs is None and bald.features is None and bald.passes.shape == (3, trained.dataset.n_train, 10)


def test_a_regressor_gets_bald_as_predictive_variance_and_refuses_margin():
    data = load_rotated_digits()
    learner = build_learner(data, LearnerConfig.for_task("regression", epochs=1), seed=0)
    learner.fit(np.arange(30), data.y_train[:30])
    passes = learner.dropout_passes(np.arange(20), passes=4, dropout=0.3, seed=0)
    assert passes.shape == (4, 20, data.y_train.shape[1])
    assert "Margin" not in methods_for_task("regression") and "BALD" in methods_for_task("regression")
    from seqgcn.checks import InputError
    with pytest.raises(InputError, match="Margin needs class probabilities"):
        learner_outputs(learner, Margin(), np.arange(20), data.n_train)


def test_run_with_every_new_method_records_unique_picks(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--methods", *NEW, "--trials", "1", "--cycles", "2", "--epochs", "1", "--seed-size", "20",
                 "--budget", "10", "--subset", "200", "--workers", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    records = json.loads((out / "results.json").read_text())["records"]
    picked = {r["method"]: r["selected"] for r in records if r["cycle"] == 0}
    assert sorted(picked) == sorted(NEW) and all(len(set(p)) == 10 for p in picked.values())


def test_run_refuses_a_probability_method_for_regression_before_any_work(tmp_path, capsys):
    code = main(["run", "--dataset", "rotated_digits", "--methods", "BALD", "Entropy", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(ERROR + "Entropy needs class probabilities") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.fixture
def select_files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.normal(size=(80, 6)).astype(np.float32))
    probs = rng.dirichlet(np.ones(4), size=80).astype(np.float32)
    np.save(tmp_path / "p.npy", probs)
    (tmp_path / "l.txt").write_text("0\n1\n2\n")
    return tmp_path, probs


def run_select(capsys, *argv):
    code = main(["select", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("method", ["LeastConfidence", "Margin", "Entropy", "BADGE"])
def test_select_with_probs_prints_the_samplers_picks(select_files, capsys, method):
    folder, probs = select_files
    code, out, err = run_select(capsys, "--features", folder / "f.npy", "--probs", folder / "p.npy", "--labelled",
                                folder / "l.txt", "--budget", 5, "--method", method, "--seed", 1)
    assert code == 0, err
    picks = [int(v) for v in out.split()]
    assert len(set(picks)) == 5 and not set(picks) & {0, 1, 2}
    if method == "Margin":  # the five smallest top-two gaps among the unlabelled
        top2 = np.sort(probs, axis=1)[:, -2:]
        gaps = np.where(np.isin(np.arange(80), [0, 1, 2]), np.inf, top2[:, 1] - top2[:, 0])
        assert picks == list(np.argsort(gaps, kind="stable")[:5])


@pytest.mark.parametrize("change, message", [
    (lambda p: p * 0.5, "rows must sum to 1"),
    (lambda p: np.where(np.arange(80)[:, None] == 7, np.nan, p), "NaN or inf"),
    (lambda p: p[:60], "has 60 rows but the features file has 80"),
    (lambda p: p[:, :1] * 0 + 1, "at least 2 classes"),
    (lambda p: -p, "must lie in \\[0, 1\\]"),
])
def test_select_refuses_bad_probabilities_in_one_line(select_files, capsys, change, message):
    folder, probs = select_files
    np.save(folder / "bad.npy", change(probs))
    code, out, err = run_select(capsys, "--features", folder / "f.npy", "--probs", folder / "bad.npy", "--labelled",
                                folder / "l.txt", "--budget", 5, "--method", "Entropy")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith(ERROR)

    assert re.search(message, err)


@pytest.mark.parametrize("argv, message", [
    (["--method", "Margin", "--features", "f.npy"], "Margin reads class probabilities: give --probs"),
    (["--method", "BADGE", "--probs", "p.npy"], "BADGE reads features"),
    (["--method", "CoreSet", "--features", "f.npy", "--probs", "p.npy"], "--probs is read by"),
    (["--method", "BALD", "--features", "f.npy"], "BALD reads the learner's outputs, so 'seqgcn select' cannot run it"),
    (["--method", "Entropy", "--probs", "missing.npy"], "probs file .* does not exist"),
])
def test_select_refuses_a_wrong_combination_of_inputs(select_files, capsys, argv, message):
    folder, _ = select_files
    argv = [str(folder / a) if a.endswith(".npy") else a for a in argv]
    code, out, err = run_select(capsys, *argv, "--labelled", folder / "l.txt", "--budget", 3)

    assert code == 2 and err.startswith(ERROR) and re.search(message, err), err


def test_every_output_sampler_is_offered_by_query_and_select_help(capsys):
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in output_samplers():
        assert name in text


def test_query_picks_with_margin_from_the_trained_learner(tmp_path, capsys):
    from PIL import Image

    data = load_digits()
    keep = np.flatnonzero(data.y_train < 3)[:40]
    rows = []
    for k, i in enumerate(keep):
        Image.fromarray(data.x_train[i, 0]).save(tmp_path / f"img_{k:02d}.png")
        if k < 12:
            rows.append((f"img_{k:02d}.png", str(data.y_train[i])))
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    out = tmp_path.parent / f"{tmp_path.name}-batch.csv"
    code = main(["query", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv"), "--budget", "4",
                 "--method", "Margin", "--epochs", "1", "--image-size", "8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    with open(out, newline="") as fh:
        picked = [r["path"] for r in csv.DictReader(fh)]
    assert len(picked) == 4 and not set(picked) & {p for p, _ in rows}
