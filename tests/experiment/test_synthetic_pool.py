"""Synthetic pool (paper §4.3): the seed set from the real images, candidates only from the pool dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqgcn.cli import main


def write_folder(root, n_per_class: int, seed: int) -> None:
    """ROOT/<class>/<i>.npy: 8×8 uint8 images, class 'top' bright above, class 'bottom' bright below."""
    rng = np.random.default_rng(seed)
    for name in ("bottom", "top"):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 60, (8, 8)).astype(np.uint8)  # (8, 8) noise
            rows = slice(0, 4) if name == "top" else slice(4, 8)
            img[rows] += 150
            np.save(root / name / f"{i:03d}.npy", img)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("pool")
    write_folder(base / "real", 12, seed=0)
    write_folder(base / "synthetic", 15, seed=1)
    return base / "real", base / "synthetic"


def run(capsys, *argv):
    code = main(["run", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_seed_set_is_real_and_every_selection_comes_from_the_pool(capsys, tmp_path, folders):
    real, synthetic = folders
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "--dataset", "folder", "--data-dir", real, "--pool-dataset", "folder",
                            "--pool-data-dir", synthetic, "--arch", "small_cnn", "--epochs", "1", "--trials", "2",
                            "--cycles", "3", "--seed-size", "6", "--budget", "4", "--subset", "all",
                            "--methods", "Random", "CoreGCN", "--out", out)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    info = res["dataset"]["info"]
    n_real, n_pool = info["seed_source"]["n_train"], info["pool_source"]["n_train"]
    assert res["dataset"]["n_train"] == n_real + n_pool and n_pool == 30  # all 30 synthetic images, test split included
    assert res["dataset"]["n_test"] == 24 - n_real  # the real test set: the rest of the 24 real images
    assert res["config"]["pool_dataset"] == "folder" and res["config"]["pool_data_dir"] == str(synthetic)

    for trial, seed in res["seed_sets"].items():
        assert len(seed) == 6 and all(0 <= i < n_real for i in seed), (trial, seed)
    lines = [ln for ln in (out / "results.csv").read_text().splitlines() if not ln.startswith("#")]
    header = lines[0].split(",")
    selected = [int(i) for ln in lines[1:] for i in dict(zip(header, ln.split(","), strict=True))["selected"].split()]
    assert len(selected) == 2 * 2 * 2 * 4  # trials × methods × selecting cycles × budget
    assert all(n_real <= i < n_real + n_pool for i in selected)
    assert [r["n_labelled"] for r in res["records"] if r["method"] == "CoreGCN" and r["trial"] == 0] == [6, 10, 14]


def one_line_error(capsys, *argv) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1, err
    return err.strip()


def test_mismatched_datasets_are_a_one_line_error(capsys, tmp_path, folders):
    real, _ = folders
    err = one_line_error(capsys, "--dataset", "digits", "--pool-dataset", "rotated_digits", "--out", tmp_path / "a")
    assert err.startswith("seqgcn: error: the seed dataset 'digits' and the pool dataset 'rotated_digits' do not match: "
                          "task 'classification' vs 'regression'")
    err = one_line_error(capsys, "--dataset", "digits", "--pool-dataset", "folder", "--pool-data-dir", real,
                         "--out", tmp_path / "b")
    assert "do not match: image shape (1, 8, 8) vs (1, 32, 32)" in err  # a grey folder: one channel, as in query
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_budget_and_cycles_are_checked_against_the_pool_size(capsys, tmp_path, folders):
    real, synthetic = folders
    common = ["--dataset", "folder", "--data-dir", real, "--pool-dataset", "folder", "--pool-data-dir", synthetic,
              "--subset", "all", "--out", tmp_path / "c"]
    err = one_line_error(capsys, *common, "--seed-size", "6", "--budget", "11", "--cycles", "4")
    assert err == ("seqgcn: error: budget × (cycles − 1) = 11 × 3 = 33 exceeds the 30 items of the folder pool; "
                   "lower --budget or --cycles")
    err = one_line_error(capsys, *common, "--seed-size", "25", "--budget", "2")
    assert err.startswith("seqgcn: error: seed_size=25 exceeds the ") and "items of the real folder training set" in err
    err = one_line_error(capsys, "--pool-data-dir", synthetic, "--out", tmp_path / "d")
    assert err.endswith("is set but pool_dataset is not; add --pool-dataset NAME")
