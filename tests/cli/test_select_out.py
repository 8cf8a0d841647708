"""`seqgcn select --out` keeps what is at the path (issue 11, item 4).

An input is never overwritten; a pipe or device is written through; a regular file
is replaced atomically; a symlink keeps pointing where it did and its target is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from seqgcn.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def inputs(tmp_path):
    np.save(tmp_path / "f.npy", np.random.default_rng(1).random((30, 4), dtype=np.float32))
    (tmp_path / "l.txt").write_text("0\n1\n2\n")
    (tmp_path / "c.txt").write_text("5\n6\n7\n8\n9\n")
    return tmp_path


def argv(d: Path, out, *extra) -> list[str]:
    return ["select", "--features", str(d / "f.npy"), "--labelled", str(d / "l.txt"), "--budget", "3",
            "--method", "Random", "--candidates", str(d / "c.txt"), "--out", str(out), *extra]


def picks_on_stdout(d: Path, capsys) -> str:
    assert main(argv(d, "-")) == 0
    text = capsys.readouterr().out
    assert len(text.split()) == 3 and set(map(int, text.split())) <= {5, 6, 7, 8, 9}
    return text


@pytest.mark.parametrize("option, name", [("--features", "f.npy"), ("--labelled", "l.txt"), ("--candidates", "c.txt")])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dotted path"])
def test_an_input_is_refused_and_left_intact(inputs, capsys, option, name, how):
    target = inputs / name
    before = target.read_bytes()
    if how == "same path":
        out = target
    elif how == "dotted path":
        out = f"{inputs}/./{name}"  # a string: pathlib would drop the "."
    else:
        out = inputs / f"alias-{name}"
        (os.symlink if how == "symlink" else os.link)(target, out)
    assert main(argv(inputs, out)) == 2
    err = capsys.readouterr().err
    assert err == (f"seqgcn: error: --out '{out}' is the {option} file '{target}'; writing there would destroy it; "
                   "choose another --out\n")
    assert target.read_bytes() == before


def test_dash_is_stdout_and_a_regular_file_is_replaced(inputs, capsys):
    expected = picks_on_stdout(inputs, capsys)
    out = inputs / "o.txt"
    out.write_text("old content that is longer than the picks\n" * 3)
    inode = out.stat().st_ino
    assert main(argv(inputs, out)) == 0
    assert out.read_text() == expected and out.stat().st_ino != inode  # a new file renamed over the old one
    assert not [p for p in inputs.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_keeps_pointing_at_its_target_which_is_replaced(inputs, capsys, tmp_path_factory):
    expected = picks_on_stdout(inputs, capsys)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    target = elsewhere / "real.txt"
    target.write_text("old\n")
    link = inputs / "link.txt"
    link.symlink_to(target)
    assert main(argv(inputs, link)) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == expected
    dangling = inputs / "dangling.txt"
    dangling.symlink_to(elsewhere / "new.txt")  # like a shell's `>`: the target is created
    assert main(argv(inputs, dangling)) == 0
    assert dangling.is_symlink() and (elsewhere / "new.txt").read_text() == expected


def test_a_named_pipe_is_written_through(inputs, capsys):
    expected = picks_on_stdout(inputs, capsys)
    fifo = inputs / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    try:
        assert main(argv(inputs, fifo)) == 0
    finally:
        reader.join(timeout=30)
    assert got == [expected]
    assert fifo.exists() and not fifo.is_file()  # still a pipe


def test_dev_null_stays_a_device_and_dev_full_is_a_one_line_disk_full_error(inputs, capsys):
    assert main(argv(inputs, "/dev/null")) == 0
    assert Path("/dev/null").is_char_device()
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    assert main(argv(inputs, "/dev/full")) == 2
    assert capsys.readouterr().err == "seqgcn: error: cannot write '/dev/full': No space left on device\n"


def test_dev_stdout_writes_into_the_shells_redirect(inputs, capsys):
    expected = picks_on_stdout(inputs, capsys)
    redirect = inputs / "redirect.txt"
    with open(redirect, "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "seqgcn.cli", *argv(inputs, "/dev/stdout")], stdout=fh,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # a real process: the indices, nothing else
    assert redirect.read_text() == expected and Path("/dev/stdout").is_symlink()
