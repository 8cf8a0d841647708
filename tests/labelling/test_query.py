"""Labelling your own images: decoding, labels files, answers, `seqgcn query` / `import-labels` round trips, bad input."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seqgcn.cli import main
from seqgcn.data.digits import load_digits
from seqgcn.labelling import find_images, load_images, read_answers, read_labels, run_query
from seqgcn.labelling.exports import label_config
from seqgcn.labelling.query import SEED_METHOD

ERROR = "seqgcn: error: "
FAST = ["--epochs", "2", "--gcn-epochs", "20", "--image-size", "8", "--subset", "all"]


# --------------------------------------------------------------------------- a tiny project
def write_csv(path: Path, rows, header=("path", "label")) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """60 pool + 15 held-out 8×8 digit PNGs of classes 0, 1, 2 in nested folders, and their true labels."""
    root = tmp_path_factory.mktemp("project")
    digits = load_digits()
    keep = np.flatnonzero(digits.y_train < 3)[:75]
    truth = {}
    for k, i in enumerate(keep):
        rel = f"part{k % 2}/img_{k:03d}.png"
        (root / "images" / f"part{k % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.x_train[i, 0]).save(root / "images" / rel)
        truth[rel] = str(digits.y_train[i])
    paths = sorted(truth)
    test = paths[::5]  # 15 held out
    write_csv(root / "test.csv", [(p, truth[p]) for p in test])
    return {"root": root, "images": root / "images", "truth": truth, "test": root / "test.csv",
            "pool": [p for p in paths if p not in test]}


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fill(batch: Path, truth: dict) -> None:
    """The annotator: answer every row of a batch CSV with the true label."""
    with open(batch, newline="") as fh:
        rows = list(csv.DictReader(fh))
    write_csv(batch, [(r["path"], truth[r["path"]]) for r in rows])


# --------------------------------------------------------------------------- images
def test_decoding_8_and_16_bit_grey_and_colour(tmp_path):
    Image.fromarray(np.full((6, 4), 0x1234, dtype=np.uint16)).save(tmp_path / "deep.png")  # 16-bit grey
    Image.fromarray(np.full((5, 5, 3), (10, 20, 30), dtype=np.uint8)).save(tmp_path / "c.bmp")
    Image.fromarray(np.full((3, 3), 200, dtype=np.uint8)).save(tmp_path / "sub.tif")
    Image.fromarray(np.full((8, 8, 3), 90, dtype=np.uint8)).save(tmp_path / "j.jpg", quality=95)
    (tmp_path / ".hidden.png").write_bytes(b"not an image")  # ignored: hidden
    (tmp_path / "notes.txt").write_text("ignored")
    assert find_images(tmp_path) == ["c.bmp", "deep.png", "j.jpg", "sub.tif"]
    got = load_images(tmp_path, size=4, workers=2)
    assert got.pixels.shape == (4, 3, 4, 4) and got.pixels.dtype == np.uint8  # one colour image: all RGB
    np.testing.assert_array_equal(got.pixels[0].reshape(3, -1).T, np.tile([10, 20, 30], (16, 1)))
    assert (got.pixels[1] == 0x12).all()  # 16-bit keeps its top 8 bits
    assert np.abs(got.pixels[2].astype(int) - 90).max() <= 2  # JPEG, nearly exact on a flat image
    assert (got.pixels[3] == 200).all()


def test_all_grey_folder_gives_one_channel(tmp_path):
    for k in range(3):
        Image.fromarray(np.full((10, 7), 40 * k, dtype=np.uint8)).save(tmp_path / f"{k}.png")
    got = load_images(tmp_path, size=5)
    assert got.pixels.shape == (3, 1, 5, 5)
    assert [int(got.pixels[k].max()) for k in range(3)] == [0, 40, 80]


def test_unreadable_image_is_named_or_skipped(tmp_path):
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"cannot decode image .*broken\.png.*--skip-unreadable"):
        load_images(tmp_path, size=4)
    got = load_images(tmp_path, size=4, skip_unreadable=True)
    assert got.paths == ("good.png",) and got.skipped == ("broken.png",) and len(got.pixels) == 1


# --------------------------------------------------------------------------- labels and answers
def test_label_studio_export_in_the_real_format(tmp_path):
    """A task list as Label Studio's "JSON" export writes it (keys and nesting of a 1.23 export)."""
    export = [
        {"id": 7, "annotations": [
            {"id": 3, "completed_by": 1, "result": [
                {"value": {"choices": ["cat"]}, "id": "Xy1", "from_name": "label", "to_name": "image",
                 "type": "choices", "origin": "manual"}],
             "was_cancelled": False, "ground_truth": False, "created_at": "2026-01-02T10:00:00.000000Z",
             "updated_at": "2026-01-02T10:00:00.000000Z", "draft_created_at": None, "lead_time": 2.5,
             "prediction": {}, "result_count": 1, "unique_id": "a-b", "import_id": None, "last_action": None,
             "bulk_created": False, "task": 7, "project": 1, "updated_by": 1, "parent_prediction": None,
             "parent_annotation": None, "last_created_by": None}],
         "drafts": [], "predictions": [],
         "data": {"image": "data:image/png;base64,AAAA", "path": "a/one.png"}, "meta": {},
         "created_at": "2026-01-02T09:00:00.000000Z", "updated_at": "2026-01-02T10:00:00.000000Z", "inner_id": 1,
         "total_annotations": 1, "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0,
         "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 1, "updated_by": 1, "allow_skip": True,
         "comment_authors": []},
        {"id": 8, "annotations": [{"id": 4, "result": [], "was_cancelled": True, "task": 8}],
         "data": {"image": "x", "path": "b.png"}},  # skipped: cancelled
        {"id": 9, "annotations": [], "data": {"image": "x", "path": "c.png"}},  # not labelled yet
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    answers = read_answers(path)
    assert [(a.path, a.label) for a in answers] == [("a/one.png", "cat")]
    assert answers[0].where.endswith("task 7 annotation 3")


@pytest.mark.parametrize("text, message", [
    ('[{"id": 1, "data": {"image": "x"}, "annotations": []}]', r"task 1: key 'data\.path' is missing"),
    ('{"tasks": []}', r"expected a JSON list of tasks"),
    ('[{"id": 2, "data": {"path": "a.png"},\n "annotations": [{"id": 5, "result": []}]}]',
     r"task 2 annotation 5: key 'result' holds 0 classification choices"),
    ('[{"id": 1,\n "data": }]', r"malformed JSON in .* line 2 column"),
])
def test_malformed_label_studio_export_names_the_key_or_line(tmp_path, text, message):
    path = tmp_path / "export.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_answers(path)


def test_labels_file_later_row_wins_and_rows_are_checked(tmp_path):
    write_csv(tmp_path / "labels.csv", [("a.png", "x"), ("./b.png", "y"), ("a.png", "z")])
    assert read_labels(tmp_path / "labels.csv", images={"a.png", "b.png"}) == {"a.png": "z", "b.png": "y"}
    with pytest.raises(ValueError, match=r"labels\.csv line 3: image 'b\.png' does not exist"):
        read_labels(tmp_path / "labels.csv", images={"a.png"})
    assert read_labels(tmp_path / "missing.csv") == {}


def test_label_studio_config_lists_the_classes():
    xml = label_config(["cat", 'say "hi"'])
    assert '<Choice value="cat"/>' in xml and "<Choice value='say \"hi\"'/>" in xml
    assert '<Image name="image" value="$image"/>' in xml and 'toName="image"' in xml
    with pytest.raises(ValueError, match="--classes"):
        label_config([])


# --------------------------------------------------------------------------- query
def test_same_inputs_and_seed_same_batch(project, tmp_path):
    labels = write_csv(tmp_path / "labels.csv", [(p, project["truth"][p]) for p in project["pool"][:12]])
    kw = dict(budget=6, image_size=8, test_labels=project["test"], subset=None, sampler_params={"epochs": 20})
    from seqgcn.learners import LearnerConfig

    config = LearnerConfig(epochs=2, lr=0.05, milestones=(2,), device="cpu")
    first = run_query(project["images"], labels, seed=3, learner_config=config, **kw)
    again = run_query(project["images"], labels, seed=3, learner_config=config, **kw)
    other = run_query(project["images"], labels, seed=4, learner_config=config, **kw)
    assert first.picked == again.picked and first.accuracy == again.accuracy
    assert first.picked != other.picked
    assert not first.first_round and first.method == "CoreGCN" and 0.0 <= first.accuracy <= 1.0
    assert len(set(first.picked)) == 6 and not set(first.picked) & set(project["pool"][:12])
    assert not set(first.picked) & set(read_labels(project["test"]))  # held-out images are never picked
    seed1 = run_query(project["images"], tmp_path / "none.csv", seed=3, **kw)
    assert seed1.first_round and seed1.method == SEED_METHOD and seed1.accuracy is None
    assert seed1.picked == run_query(project["images"], tmp_path / "none.csv", seed=3, **kw).picked


def test_cli_three_rounds_query_label_import(project, tmp_path, capsys):
    labels, out = tmp_path / "labels.csv", tmp_path / "out"
    out.mkdir()
    common = ["--images", project["images"], "--labels", labels]
    for round_ in (1, 2, 3):
        batch = out / f"batch{round_}.csv"
        code, text, err = cli(capsys, "query", *common, "--test-labels", project["test"], "--budget", 10,
                              "--out", batch, *FAST)
        assert code == 0, err
        assert ("first round: " + SEED_METHOD in text) == (round_ == 1)
        with open(batch, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["label"] for r in rows] == [""] * 10 and len({r["path"] for r in rows}) == 10
        assert Image.open(batch.with_suffix(".png")).size[0] > 0
        fill(batch, project["truth"])
        code, text, err = cli(capsys, "import-labels", batch, *common)
        assert code == 0, err
        assert f"{10 * round_} labelled images" in text
    labels_now = read_labels(labels)
    assert len(labels_now) == 30 and all(project["truth"][p] == c for p, c in labels_now.items())
    history = json.loads((tmp_path / "labels.queries.json").read_text())
    assert [r["round"] for r in history] == [1, 2, 3] and [r["n_labelled"] for r in history] == [0, 10, 20]
    assert history[0]["accuracy"] is None and all(0.0 <= r["accuracy"] <= 1.0 for r in history[1:])
    picked = [p for r in history for p in r["picked"]]
    assert len(set(picked)) == 30  # no image asked twice


def test_query_warns_when_the_previous_batch_is_unanswered(project, tmp_path, capsys):
    common = ["--images", project["images"], "--labels", tmp_path / "labels.csv", "--budget", 5, *FAST]
    assert cli(capsys, "query", *common, "--out", tmp_path / "b1.csv")[0] == 0
    code, _, err = cli(capsys, "query", *common, "--out", tmp_path / "b2.csv")
    assert code == 0
    assert "warning: 5 of the 5 images of the previous batch" in err and "b1.csv" in err


def test_label_studio_files_from_query(project, tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", [(p, project["truth"][p]) for p in project["pool"][:9]])
    code, _, err = cli(capsys, "query", "--images", project["images"], "--labels", labels, "--budget", 4,
                       "--out", tmp_path / "b.csv", "--format", "label-studio", "--classes", "extra", *FAST)
    assert code == 0, err
    tasks = json.loads((tmp_path / "b.tasks.json").read_text())
    assert len(tasks) == 4 and all(t["data"]["image"].startswith("data:image/png;base64,") for t in tasks)
    with open(tmp_path / "b.csv", newline="") as fh:
        assert [t["data"]["path"] for t in tasks] == [r["path"] for r in csv.DictReader(fh)]
    xml = (tmp_path / "b.config.xml").read_text()
    assert all(f'<Choice value="{c}"/>' in xml for c in ("0", "1", "2", "extra"))


# --------------------------------------------------------------------------- import-labels
def test_import_refusals_write_nothing(project, tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", [(project["pool"][0], "0")])
    before = labels.read_bytes()
    a, b, c = project["pool"][:3]
    cases = [
        ([("nope.png", "1")], r"line 2: image 'nope\.png' does not exist"),
        ([(b, "")], rf"line 2: the label of '{b}' is empty"),
        ([(b, "1"), (c, "2"), (b, "2")], rf"image '{b}' is answered twice with different labels: '1' \(a\.csv line 2\) and '2' \(a\.csv line 4\)"),
        ([(a, "2")], rf"image '{a}' is already labelled '0'.*--overwrite"),
    ]
    for rows, message in cases:
        answers = write_csv(tmp_path / "a.csv", rows)
        code, _, err = cli(capsys, "import-labels", answers, "--images", project["images"], "--labels", labels)
        assert code == 2 and err.startswith(ERROR) and err.count("\n") == 1
        assert re.search(message, err), err
        assert labels.read_bytes() == before
    answers = write_csv(tmp_path / "a.csv", [(a, "2"), (b, "1")])
    code, text, _ = cli(capsys, "import-labels", answers, "--images", project["images"], "--labels", labels, "--overwrite")
    assert code == 0 and "imported 2 label(s)" in text
    assert labels.read_bytes() == before + f"{a},2\r\n{b},1\r\n".encode()  # appended in the file's CRLF: the later row wins
    assert read_labels(labels) == {a: "2", b: "1"}


# --------------------------------------------------------------------------- bad input to query
def test_bad_query_input_is_one_line_and_writes_nothing(project, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    for k in range(4):
        Image.fromarray(np.full((4, 4), k * 60, dtype=np.uint8)).save(broken / f"ok{k}.png")
    (broken / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    ghost = write_csv(tmp_path / "ghost.csv", [(project["pool"][0], "0"), ("gone.png", "1")])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(f"path,label\n{project['pool'][0]},1\n{project['pool'][1]},1,extra\n")
    header = write_csv(tmp_path / "header.csv", [("a.png", "1")], header=("file", "class"))
    out = tmp_path / "out" / "batch.csv"
    out.parent.mkdir()
    images, none = project["images"], tmp_path / "none.csv"
    cases = [
        (["--images", broken, "--labels", none, "--budget", 1], r"cannot decode image .*bad\.jpg"),
        (["--images", empty, "--labels", none, "--budget", 1], r"holds no image files"),
        (["--images", images, "--labels", ghost, "--budget", 1], r"ghost\.csv line 3: image 'gone\.png' does not exist"),
        (["--images", images, "--labels", none, "--budget", 76], r"--budget=76 exceeds the 75 unlabelled images"),
        (["--images", images, "--labels", ragged, "--budget", 1], r"ragged\.csv' line 3: 3 fields, expected 2"),
        (["--images", images, "--labels", header, "--budget", 1], r"header\.csv' line 1: header is 'file,class'"),
        (["--images", images, "--labels", none, "--budget", 1, "--test-labels", none], r"test labels file .* does not exist"),
        (["--images", images, "--labels", none, "--budget", 1, "--lr", "inf"], r"lr=inf must be a finite number > 0"),
        (["--images", images, "--labels", none, "--budget", 1, "--batch-size", "0"], r"batch_size=0 must be a positive integer"),
    ]
    for args, message in cases:
        code, _, err = cli(capsys, "query", *args, "--out", out, *FAST)
        assert code == 2, (args, err)
        assert err.startswith(ERROR) and err.count("\n") == 1, err
        assert re.search(message, err), err
    assert list(out.parent.iterdir()) == [] and not none.exists()
    code, text, err = cli(capsys, "query", "--images", broken, "--labels", none, "--budget", 2, "--out", out,
                          "--skip-unreadable", *FAST)
    assert code == 0 and "skipped unreadable image 'bad.jpg'" in err and "picked 2 images" in text


def test_missing_sdk_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "label_studio_sdk", None)  # import fails as if not installed
    code, _, err = cli(capsys, "labelstudio", "pull", "--url", "http://localhost:1", "--api-key", "k",
                       "--images", tmp_path, "--labels", tmp_path / "labels.csv")
    assert code == 2 and "pip install seqgcn[labelstudio]" in err and err.count("\n") == 1
