"""Careless and hostile input through `seqgcn.cli.main`: exit 0 with a valid result, or exit 2 with one line,
nothing written and nothing lost (issue 15, the cases in the experiment and sampler layers)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from seqgcn.cli import main
from seqgcn.experiment import ExperimentConfig
from seqgcn.experiment.rundir import save_view

TINY = ["--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5", "--subset", "30", "--epochs", "1"]


def one_line_error(capsys, argv) -> str:
    start = time.perf_counter()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("seqgcn: error: ") and err.count("\n") == 1, err
    assert time.perf_counter() - start < 5, "an error must come at once, before any work"
    return err.strip()


def test_one_variant_under_two_spellings_is_one_method(capsys, tmp_path):
    for methods in (["UncertainGCN(layers=3)", "UncertainGCN( layers = 3 )"], ["UncertainGCN", "UncertainGCN(layers=2)"]):
        err = one_line_error(capsys, ["run", *TINY, "--methods", *methods, "--out", tmp_path / "run"])
        assert "names a method twice" in err
    assert not (tmp_path / "run").exists()
    config = ExperimentConfig.from_dict({"methods": ["uncertaingcn( layers = 3 )", "CoreGCN(embedding=hidden+logit)"]})
    assert config.methods == ("UncertainGCN(layers=3)", "CoreGCN")  # the label in tables and files


def test_config_files_that_cannot_be_meant(capsys, tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("trials: 2\ntrials: 3\n")
    assert "key 'trials' is given twice" in one_line_error(capsys, ["run", "--config", dup, "--out", tmp_path / "a"])
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("dataset: caf\xe9\n".encode("latin-1"))
    assert f"config file '{latin}' is not UTF-8 text" in one_line_error(capsys, ["run", "--config", latin])
    huge = tmp_path / "huge.yaml"
    with open(huge, "w") as fh:
        fh.write("methods:\n" + "  - Random\n" * 200_000)  # 2.2 MB
    assert "a config file is at most" in one_line_error(capsys, ["run", "--config", huge])
    many = tmp_path / "many.yaml"
    many.write_text("methods: [" + ", ".join(["Random"] * 1500) + "]\n")
    assert "at most 1000 can be compared" in one_line_error(capsys, ["run", "--config", many])
    assert not (tmp_path / "a").exists()


def test_an_error_quoting_a_huge_value_is_capped(capsys, tmp_path):
    f = tmp_path / "big.yaml"
    f.write_text("dataset: [" + ", ".join(["x" * 50] * 200) + "]\n")  # a list where a name is expected
    err = one_line_error(capsys, ["run", "--config", f])
    assert len(err) < 1200 and err.endswith("more characters)")


def test_data_dir_naming_a_file(capsys, tmp_path):
    f = tmp_path / "cifar.tar"
    f.write_bytes(b"not a folder")
    err = one_line_error(capsys, ["run", *TINY, "--dataset", "cifar10", "--data-dir", f, "--out", tmp_path / "r"])
    assert f"--data-dir '{f}' is a file" in err and not (tmp_path / "r").exists()


def test_plot_tsne_on_damaged_or_unwritable_output_is_one_line(capsys, tmp_path):
    rng = np.random.default_rng(0)
    nodes = np.arange(30)
    path = save_view(tmp_path, {"nodes": nodes, "features": rng.normal(size=(30, 4)).astype(np.float32),
                                "labelled": nodes[20:], "candidates": nodes[:20], "selected": nodes[:3]},
                     trial=0, method="Random", cycle=0)
    out = tmp_path / "missing-folder" / "tsne.png"
    err = one_line_error(capsys, ["plot", "tsne", tmp_path, "--out", out])  # checked before the t-SNE work
    assert f"cannot write '{out.parent}" in err
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert "cannot read saved features" in one_line_error(capsys, ["plot", "tsne", tmp_path])
    assert not (tmp_path / "tsne.png").exists()


def test_a_sampler_option_no_method_takes(capsys, tmp_path):
    err = one_line_error(capsys, ["run", *TINY, "--methods", "Random", "CoreSet", "--gcn-epochs", "5", "--out", tmp_path / "r"])
    assert err == ("seqgcn: error: command line: option gcn_epochs=5 applies to none of the methods (Random, CoreSet); "
                   "remove it or add a method that takes it")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("method, message", [
    ("UncertainGCN(layers=100000000)", "layers=100000000 must be at most 1,000"),
    ("CoreGCN(hidden=10000000)", "hidden=10000000 must be at most 65,536"),
    ("UncertainGCN(epochs=1000000000)", "epochs=1000000000 must be at most 1,000,000"),
    ("FeatProp(hops=99999)", "hops=99999 must be at most 1,000"),
])
def test_options_beyond_any_sense_fail_at_once(capsys, tmp_path, method, message):
    err = one_line_error(capsys, ["run", *TINY, "--methods", method, "--out", tmp_path / "r"])
    assert message in err and not (tmp_path / "r").exists()


def test_query_takes_threads_as_run_does(capsys, tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(images / f"{i}.png")
    base = ["query", "--images", images, "--labels", tmp_path / "labels.csv", "--budget", "2", "--out", tmp_path / "b.csv"]
    err = one_line_error(capsys, [*base, "--threads", "0"])
    assert err == "seqgcn: error: command line: threads=0 must be a positive integer"
    assert not (tmp_path / "labels.csv").exists() and not (tmp_path / "b.csv").exists()
    assert main([str(a) for a in [*base, "--threads", "2"]]) == 0  # first round: a diverse seed batch
    assert (tmp_path / "b.csv").read_text().count("\n") == 3
