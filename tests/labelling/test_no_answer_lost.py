"""No answer ever lost (issue 15, items 1-4 and `select` on a full disk).

Every refused command must exit 2 with one line and leave every file as it was
(byte for byte, no new file); a query whose disk fills writes all of its outputs or none.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import seqgcn.cli.labelstudio as labelstudio_cli
from seqgcn.cli import main
from seqgcn.labelling import find_images
from seqgcn.labelling.labels import Answer, can_store, normalise_path, read_label_studio_export, read_labels
from labelling.test_query import write_csv  # tests/ is on the path (pyproject)

FAST = ["--epochs", "1", "--gcn-epochs", "5", "--image-size", "8", "--subset", "all"]
ODD_NAMES = [" leading.png", "back\\slash.png", "new\nline.png"]  # found by the scan, lost by a CSV


def read_batch(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return [row["path"] for row in csv.DictReader(fh)]


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict:
    """Every file under `root` (hidden ones too) → its bytes, or where it links to for a symlink."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path)] = ("link", os.readlink(path))
        elif path.is_file():
            files[str(path)] = path.read_bytes()
    return files


def refused(capsys, root: Path, *argv) -> str:
    """Run a command that must be refused: exit 2, one error line (after any warnings), every file under `root`
    as it was; the error line."""
    before = snapshot(root)
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("seqgcn: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("seqgcn: error: ") and err.endswith("\n"), err
    assert snapshot(root) == before
    return lines[0]


@pytest.fixture
def project(tmp_path):
    """12 distinct 8×8 grey PNGs in images/ (two in a subfolder), labels.csv with two of them, test.csv with two."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(12):
        name = f"sub/im{k:02d}.png" if k < 2 else f"im{k:02d}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(images / name)
    write_csv(tmp_path / "labels.csv", [("im02.png", "a"), ("im03.png", "b")])
    write_csv(tmp_path / "test.csv", [("im04.png", "a"), ("im05.png", "b")])
    return tmp_path


def query(root: Path, *extra, labels="labels.csv", out="batch.csv") -> list:
    return ["query", "--images", root / "images", "--labels", root / labels, "--budget", 3, "--out", root / out,
            "--seed", 0, *FAST, *extra]


# --------------------------------------------------------------------------- 1. an output that is an input or another output
@pytest.mark.parametrize("out, extra, message", [
    ("labels.csv", [], "--out '{root}/labels.csv' is the same file as the --labels file '{root}/labels.csv'"),
    ("test.csv", ["--test-labels", "test.csv"], "--out '{root}/test.csv' is the same file as the --test-labels file"),
    ("batch.png", [], "the contact sheet '{root}/batch.png' (named after --out) is the same file as --out '{root}/batch.png'"),
    ("labels.queries.json", [], "--out '{root}/labels.queries.json' is the same file as the query history"),
    ("b.csv", ["--format", "label-studio", "--test-labels", "b.tasks.json"],
     "the Label Studio tasks '{root}/b.tasks.json' (named after --out) is the same file as the --test-labels file"),
    ("images/sub", [], "--out '{root}/images/sub' is a folder; choose another --out"),
    ("/dev/null", [], "--out '/dev/null' is a device or a pipe, not a regular file"),
])
def test_query_refuses_an_output_that_is_an_input_or_another_output(project, capsys, out, extra, message):
    (project / "b.tasks.json").write_bytes((project / "test.csv").read_bytes())
    extra = [project / e if e.endswith((".csv", ".json")) else e for e in extra]
    err = refused(capsys, project, *query(project, *extra, out=out))
    assert message.format(root=project) in err, err
    assert err.endswith("choose another --out")


@pytest.mark.parametrize("link", [os.symlink, os.link])
@pytest.mark.parametrize("target", ["labels.csv", "test.csv", "images/im07.png"])
def test_query_refuses_a_link_to_an_input(project, capsys, link, target):
    link(project / target, project / "alias.csv")
    err = refused(capsys, project, *query(project, "--test-labels", project / "test.csv", out="alias.csv"))
    assert f"--out '{project}/alias.csv' is the same file as" in err and "writing it would destroy that" in err


def test_a_missing_labels_file_is_an_output_too(project, capsys):
    (project / "labels.csv").unlink()
    err = refused(capsys, project, *query(project, out="labels.csv"))
    assert f"--out '{project}/labels.csv' is the same file as --labels '{project}/labels.csv' (created empty)" in err


def test_query_keeps_a_batch_whose_answers_are_not_imported(project, capsys):
    assert cli(capsys, *query(project))[0] == 0
    picked = read_batch(project / "batch.csv")
    write_csv(project / "batch.csv", [(picked[0], "a"), (picked[1], ""), (picked[2], "b")])  # answered, not imported
    err = refused(capsys, project, *query(project))
    assert f"--out '{project}/batch.csv' holds 2 answer(s) that are not in '{project}/labels.csv' yet" in err
    assert "seqgcn import-labels" in err
    assert cli(capsys, "import-labels", project / "batch.csv", "--images", project / "images",
               "--labels", project / "labels.csv")[0] == 2  # the empty label: fill it in first
    write_csv(project / "batch.csv", [(picked[0], "a"), (picked[2], "b")])
    assert cli(capsys, "import-labels", project / "batch.csv", "--images", project / "images",
               "--labels", project / "labels.csv")[0] == 0
    assert cli(capsys, *query(project))[0] == 0  # every answer is in labels.csv: the batch may be replaced
    (project / "notes.csv").write_text("my own notes\n")
    assert "exists and is not a batch CSV" in refused(capsys, project, *query(project, out="notes.csv"))


def test_import_labels_refuses_to_write_over_what_it_reads(project, capsys):
    images = project / "images"
    err = refused(capsys, project, "import-labels", project / "labels.csv", "--images", images,
                  "--labels", project / "labels.csv")
    assert "--labels" in err and "is the same file as the answers file" in err
    os.symlink(project / "test.csv", project / "alias.csv")
    err = refused(capsys, project, "import-labels", project / "test.csv", "--images", images,
                  "--labels", project / "alias.csv")
    assert "is the same file as the answers file" in err
    err = refused(capsys, project, "import-labels", project / "test.csv", "--images", images, "--labels", images / "im07.png")
    assert "is the same file as image 'im07.png' of --images" in err
    assert "is a folder" in refused(capsys, project, "import-labels", project / "test.csv", "--images", images,
                                    "--labels", images)


def test_labelstudio_pull_refuses_the_same_way(project, capsys, monkeypatch):
    monkeypatch.setattr(labelstudio_cli.labelstudio, "connect", lambda url, key: None)
    monkeypatch.setattr(labelstudio_cli.labelstudio, "pull", lambda client, title: [Answer("im07.png", "a", "task 1")])
    pull = ["labelstudio", "pull", "--url", "http://localhost:1", "--api-key", "k", "--images", project / "images"]
    assert "is a folder" in refused(capsys, project, *pull, "--labels", project / "images" / "sub")
    assert "would be inside --images" in refused(capsys, project, *pull, "--labels", project / "images" / "labels.png")
    code, text, _ = cli(capsys, *pull, "--labels", project / "labels.csv")
    assert code == 0 and "imported 1 label(s)" in text and read_labels(project / "labels.csv")["im07.png"] == "a"


def test_a_symlinked_labels_file_keeps_its_link(project, capsys, tmp_path_factory):
    real = tmp_path_factory.mktemp("shared") / "labels.csv"
    (project / "labels.csv").rename(real)
    (project / "labels.csv").symlink_to(real)
    write_csv(project / "answers.csv", [("im07.png", "a")])
    assert cli(capsys, "import-labels", project / "answers.csv", "--images", project / "images",
               "--labels", project / "labels.csv")[0] == 0
    assert (project / "labels.csv").is_symlink() and read_labels(real) == {"im02.png": "a", "im03.png": "b", "im07.png": "a"}


# --------------------------------------------------------------------------- 2. outputs inside the images folder
def test_no_output_joins_the_images(project, capsys):
    err = refused(capsys, project, *query(project, out="images/batch.csv"))
    assert (f"the contact sheet '{project}/images/batch.png' (named after --out) would be inside --images "
            f"'{project}/images', where the next query would take it for an image to label ('batch.png')") in err
    (project / "alias").symlink_to(project / "images" / "sub")
    assert "('sub/b.png')" in refused(capsys, project, *query(project, out="alias/b.csv"))


def test_labels_and_batch_files_may_live_in_the_images_folder(project, capsys):
    """Only a file the scan would take for an image is refused: labels.csv, its history and a CSV are not images."""
    images = project / "images"
    (project / "labels.csv").rename(images / "labels.csv")
    (images / ".batches").mkdir()
    args = ["--images", images, "--labels", images / "labels.csv", "--budget", 3, *FAST]
    assert cli(capsys, "query", *args, "--out", images / ".batches" / "b1.csv")[0] == 0
    assert (images / "labels.queries.json").exists() and (images / ".batches" / "b1.png").exists()
    assert len(find_images(images)) == 12


# --------------------------------------------------------------------------- 3. one path normalisation
def test_can_store_agrees_with_its_rule_on_random_names():
    """Its shortcut for plain names gives what the rule gives: unchanged by normalise_path, no control character."""
    rng = np.random.default_rng(0)
    alphabet = list("ab_-.0/ \\\t") + ["é", "\udce9"]
    names = ["".join(rng.choice(alphabet, size=rng.integers(1, 9))) for _ in range(20_000)]
    names += ["a/b.png", "./a.png", "a//b.png", "a/./b.png", "a/../b.png", "a/.b.png", ".a/b.png", "a/", "-x/y_z.p-n.g"]
    rule = lambda n: normalise_path(n) == n and not any(unicodedata.category(c) in ("Cc", "Cs") for c in n)  # noqa: E731
    disagree = [n for n in names if can_store(n) != rule(n)]
    assert not disagree, disagree[:5]
    assert sum(map(can_store, names)) > 1000  # the shortcut's names are among them


def test_names_a_csv_would_change_are_left_out_with_a_warning(project, capsys):
    images = project / "images"
    odd = [*ODD_NAMES, os.fsdecode(b"latin1-\xe9.png")]
    for name in odd:
        Image.new("L", (8, 8), 7).save(os.path.join(images, name), format="PNG")
    kept = 'comma, "quoted".png'  # needs CSV quoting, comes back unchanged
    Image.new("L", (8, 8), 200).save(images / kept)
    assert not any(can_store(name) for name in odd) and can_store(kept)
    assert kept in find_images(images) and not set(odd) & set(find_images(images))

    (project / "labels.csv").unlink()
    code, text, err = cli(capsys, *query(project, "--budget", 13))  # every image but the odd ones
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("seqgcn: warning: left out image ")]
    assert len(warnings) == len(odd) and all(any(repr(name) in line for line in warnings) for name in odd), err
    picked = read_batch(project / "batch.csv")
    assert sorted(picked) == find_images(images)  # every image is in the batch, no odd one
    write_csv(project / "batch.csv", [(p, "a" if k % 2 else "b") for k, p in enumerate(picked)])
    code, text, err = cli(capsys, "import-labels", project / "batch.csv", "--images", images, "--labels", project / "labels.csv")
    assert code == 0 and "imported 13 label(s)" in text, err
    assert kept in read_labels(project / "labels.csv", images=set(find_images(images)))


def test_label_studio_tasks_keep_the_names(project, capsys):
    images = project / "images"
    Image.new("L", (8, 8), 200).save(images / 'comma, "quoted".png')
    code, _, err = cli(capsys, "query", "--images", images, "--labels", project / "labels.csv", "--budget", 11,
                       "--out", project / "b.csv", "--format", "label-studio", *FAST)
    assert code == 0, err
    tasks = json.loads((project / "b.tasks.json").read_text())
    for task in tasks:
        task["annotations"] = [{"id": 1, "result": [{"type": "choices", "value": {"choices": ["a"]}}]}]
    (project / "export.json").write_text(json.dumps(tasks))
    assert [a.path for a in read_label_studio_export(project / "export.json")] == read_batch(project / "b.csv")


# --------------------------------------------------------------------------- 4. all outputs or none
@pytest.fixture
def disk_fills(monkeypatch):
    """disk_fills(step, n): the n-th call (from 0) of os.fsync (writing) or os.replace (committing) fails with ENOSPC."""
    def arm(step: str, n: int):
        real, calls = getattr(os, step), []

        def failing(*args, **kw):
            calls.append(args)
            if len(calls) == n + 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args, **kw)

        monkeypatch.setattr(os, step, failing)
    return arm


LS = ["--format", "label-studio", "--classes", "a,b"]
OUTPUTS = ["labels.csv", "b.csv", "b.config.xml", "b.tasks.json", "b.png", "labels.queries.json"]  # in the order written


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("n", range(len(OUTPUTS)))
def test_a_full_disk_during_a_first_query_leaves_no_file(project, capsys, disk_fills, step, n):
    (project / "labels.csv").unlink()
    disk_fills(step, n)
    err = refused(capsys, project, *query(project, *LS, out="b.csv"))
    assert err == f"seqgcn: error: cannot write '{project / OUTPUTS[n]}': No space left on device"


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("n", range(len(OUTPUTS) - 1))
def test_a_full_disk_during_a_later_query_leaves_every_file_as_it_was(project, capsys, disk_fills, step, n):
    assert cli(capsys, *query(project, *LS, out="b.csv"))[0] == 0
    disk_fills(step, n)
    err = refused(capsys, project, *query(project, *LS, "--seed", 1, out="b.csv"))
    assert err == f"seqgcn: error: cannot write '{project / OUTPUTS[n + 1]}': No space left on device"


def test_import_labels_on_a_full_disk_keeps_labels_csv(project, capsys, disk_fills):
    write_csv(project / "answers.csv", [("im07.png", "a")])
    disk_fills("fsync", 0)
    err = refused(capsys, project, "import-labels", project / "answers.csv", "--images", project / "images",
                  "--labels", project / "labels.csv")
    assert err == f"seqgcn: error: cannot write '{project / 'labels.csv'}': No space left on device"


# --------------------------------------------------------------------------- select with stdout on a full disk
class FullStdout:
    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        pass

    def fileno(self):
        raise io.UnsupportedOperation("fileno")  # as a captured stdout


def select_args(tmp_path: Path) -> list:
    np.save(tmp_path / "f.npy", np.random.default_rng(0).random((2000, 3), dtype=np.float32))
    (tmp_path / "l.txt").write_text("0\n")
    return ["select", "--features", tmp_path / "f.npy", "--labelled", tmp_path / "l.txt", "--budget", 1000,
            "--method", "Random"]


def test_select_to_a_full_stdout_is_one_line(tmp_path, capsys, monkeypatch):
    argv = select_args(tmp_path)
    monkeypatch.setattr(sys, "stdout", FullStdout())
    code = main([str(a) for a in argv])
    assert code == 2
    assert capsys.readouterr().err == ("seqgcn: error: cannot write the selected indices to standard output: "
                                       "No space left on device\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_select_to_dev_full_is_one_line_in_a_real_process(tmp_path):
    argv = [str(a) for a in select_args(tmp_path)]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "seqgcn.cli", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "No space left on device" in done.stderr, done.stderr


def test_a_crlf_labels_file_stays_crlf_and_a_multiline_label_is_refused(tmp_path):
    from seqgcn.labelling.labels import append_labels, check_answers

    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"path,label\r\na.png,cat\r\n")
    append_labels(labels, [("b.png", "dog")])
    assert labels.read_bytes() == b"path,label\r\na.png,cat\r\nb.png,dog\r\n"
    with pytest.raises(ValueError, match=r"holds a control character \('do\\ng'\); a label is one line of text"):
        check_answers([Answer("c.png", "do\ng", "batch.csv line 2")], images={"c.png"}, labels={})
