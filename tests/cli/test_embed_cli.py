"""`--encoder` end to end through the command line: query rounds, embed → select, run; errors are one line, exit 2.

The encoders are a small random CNN exported in a temporary folder (`test_encoder_models`); ONNX
cases skip when onnxruntime or onnx is missing, the .pt2 cases need only torch.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_encoder_models import Not2D, TinyCNN, colour_folder, export_onnx, export_pt2

from seqgcn.cli import main
from seqgcn.labelling.labels import csv_text
from seqgcn.samplers import available_samplers

META = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    found = {"pt2": export_pt2(TinyCNN(), folder / "cnn.pt2", metadata=META),
             "not2d": export_pt2(Not2D(), folder / "odd.pt2"),
             "corrupt": folder / "corrupt.pt2"}
    found["corrupt"].write_bytes(b"PK\x03\x04 truncated archive")
    return found


@pytest.fixture(scope="module")
def onnx_model(models):
    pytest.importorskip("onnxruntime")
    return export_onnx(TinyCNN(), models["pt2"].with_name("cnn.onnx"), metadata=META)


@pytest.fixture
def project(tmp_path):
    truth = colour_folder(tmp_path / "images", n_per_class=8)
    return tmp_path, truth


def seqgcn(*args) -> int:
    return main([str(a) for a in args])


def answer(batch, truth) -> None:
    """Fill in a batch CSV's label column with the true colours (the person's part)."""
    with open(batch, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    batch.write_text(csv_text([(p, truth[p]) for p, _ in rows]))


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_query_rounds_with_an_encoder_reuse_the_cache(project, models, kind, request, capsys):
    root, truth = project
    model = request.getfixturevalue("onnx_model") if kind == "onnx" else models["pt2"]
    labels = root / "labels.csv"
    common = ["--images", root / "images", "--labels", labels, "--encoder", model]
    assert seqgcn("query", *common, "--budget", 6, "--out", root / "b1.csv") == 0
    out = capsys.readouterr().out
    assert "on the encoder's embeddings" in out and "24 image(s) encoded this round" in out
    answer(root / "b1.csv", truth)
    assert seqgcn("import-labels", root / "b1.csv", "--images", root / "images", "--labels", labels) == 0
    assert seqgcn("query", *common, "--budget", 4, "--out", root / "b2.csv", "--method", "UncertainGCN",
                  "--head-hidden", 8, "--epochs", 50) == 0
    out = capsys.readouterr().out
    assert "method UncertainGCN" in out and "0 image(s) encoded this round" in out
    history = json.loads((root / "labels.queries.json").read_text())
    assert history[1]["encoder"]["kind"] == kind and history[1]["encoder"]["head"]["hidden"] == 8
    picked = [r[0] for r in csv.reader(open(root / "b2.csv"))][1:]
    assert len(picked) == 4 and not set(picked) & set(r[0] for r in csv.reader(open(root / "b1.csv")))


def test_embed_then_select(project, models, capsys):
    root, truth = project
    labels = root / "labels.csv"
    labels.write_text(csv_text([("red/000.png", "red"), ("blue/003.png", "blue")]))
    assert seqgcn("embed", "--images", root / "images", "--encoder", models["pt2"], "--out", root / "emb.npy",
                  "--labels", labels) == 0
    emb = np.load(root / "emb.npy")
    rows = list(csv.reader(open(root / "emb.paths.csv")))
    assert emb.shape == (24, 16) and rows[0] == ["index", "path"] and rows[1] == ["0", "blue/000.png"]
    index = {p: int(i) for i, p in rows[1:]}
    assert (root / "emb.labelled.txt").read_text().split() == [str(index["blue/003.png"]), str(index["red/000.png"])]
    capsys.readouterr()
    assert seqgcn("select", "--features", root / "emb.npy", "--labelled", root / "emb.labelled.txt", "--budget", 3,
                  "--method", "CoreSet") == 0
    picked = [int(line) for line in capsys.readouterr().out.split()]
    assert len(picked) == 3 and not set(picked) & {index["blue/003.png"], index["red/000.png"]}
    # the cache next to labels.csv is the one a query uses: nothing is encoded again
    assert seqgcn("query", "--images", root / "images", "--labels", labels, "--encoder", models["pt2"], "--budget", 2,
                  "--out", root / "b.csv") == 0
    assert "0 image(s) encoded this round" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_run_with_an_encoder_trains_a_head_on_the_embedded_digits(tmp_path, models, kind, request):
    model = request.getfixturevalue("onnx_model") if kind == "onnx" else models["pt2"]
    assert seqgcn("run", "--encoder", model, "--methods", "Random", "CoreGCN", "--trials", 1, "--cycles", 2,
                  "--seed-size", 20, "--budget", 10, "--subset", 60, "--gcn-epochs", 20, "--out", tmp_path / "run") == 0
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["config"]["encoder"] == str(model) and meta["encoder"]["dim"] == 16
    assert meta["encoder"]["head"]["hidden"] == 0
    records = json.loads((tmp_path / "run" / "results.json").read_text())["records"]
    assert all(0 <= r["metric"] <= 1 for r in records)


def test_run_with_an_encoder_serves_every_kind_of_sampler(tmp_path, models):
    """Samplers that read the learner's outputs (probabilities, dropout passes), its stages, or the images."""
    wanted = ("Margin", "BALD", "BADGE", "LearningLoss", "VAAL")
    methods = [m for m in wanted if m in available_samplers()]
    assert seqgcn("run", "--encoder", models["pt2"], "--methods", *methods, "--trials", 1, "--cycles", 2,
                  "--seed-size", 20, "--budget", 10, "--subset", 60, "--head-hidden", 8, "--out", tmp_path / "run") == 0
    records = json.loads((tmp_path / "run" / "results.json").read_text())["records"]
    assert {r["method"] for r in records} == set(methods)
    assert all(len(r["selected"]) == 10 for r in records if r["cycle"] == 0)


@pytest.mark.parametrize("case, extra, match", [
    ("corrupt", [], "cannot be read as a torch.export program"),
    ("not2d", [], r"outputs shape \(2, 2, 4, 4, 1\); expected embeddings"),
    ("pt2", ["--encoder-input-size", "64"], "--encoder-input-size=64 does not match"),
    ("missing", [], "does not exist"),
])
@pytest.mark.parametrize("command", ["query", "embed", "run"])
def test_a_bad_encoder_is_one_line_and_exit_2(project, models, capsys, case, extra, match, command):
    root, _ = project
    model = root / "missing.pt2" if case == "missing" else models[case]
    args = {"query": ["--images", root / "images", "--labels", root / "labels.csv", "--budget", 2,
                      "--out", root / "b.csv"],
            "embed": ["--images", root / "images", "--out", root / "e.npy"],
            "run": ["--out", root / "run"]}[command]
    assert seqgcn(command, *args, "--encoder", model, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("seqgcn: error: ") and __import__("re").search(match, err)
    assert not (root / "b.csv").exists() and not (root / "e.npy").exists() and not (root / "run").exists()


def test_a_corrupt_onnx_file_is_one_line_and_exit_2(project, capsys):
    pytest.importorskip("onnxruntime")
    root, _ = project
    (root / "bad.onnx").write_bytes(b"\x08garbage")
    assert seqgcn("embed", "--images", root / "images", "--out", root / "e.npy", "--encoder", root / "bad.onnx") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read as an ONNX model" in err


@pytest.mark.parametrize("command, extra, match", [
    ("query", ["--arch", "resnet18"], "--arch sets the CNN learner"),
    ("run", ["--epochs", "3"], "--epochs sets the CNN learner"),
    ("query", ["--encoder-mean", "0.5", "--no-encoder"], "--encoder-mean applies only with --encoder"),
])
def test_options_that_do_not_apply_are_refused(project, models, capsys, command, extra, match):
    root, _ = project
    args = {"query": ["--images", root / "images", "--labels", root / "labels.csv", "--budget", 2,
                      "--out", root / "b.csv"], "run": ["--out", root / "run"]}[command]
    encoder = [] if "--no-encoder" in extra else ["--encoder", models["pt2"]]
    assert seqgcn(command, *args, *encoder, *[e for e in extra if e != "--no-encoder"]) == 2
    assert match in capsys.readouterr().err


def test_resume_refuses_an_encoder_file_that_changed(tmp_path, capsys):
    model = export_pt2(TinyCNN(seed=1), tmp_path / "enc.pt2", metadata=META)
    run = ["run", "--encoder", model, "--methods", "Random", "--trials", 1, "--cycles", 2, "--seed-size", 10,
           "--budget", 5, "--subset", 30]
    assert seqgcn(*run, "--out", tmp_path / "run") == 0
    assert seqgcn(*run, "--resume", tmp_path / "run") == 0  # same file: nothing left to do
    export_pt2(TinyCNN(seed=2), model, metadata=META)
    assert seqgcn(*run, "--resume", tmp_path / "run") == 2
    assert "was run with another encoder file" in capsys.readouterr().err
