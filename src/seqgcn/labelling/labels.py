"""Labels on disk: the project's ``labels.csv`` and the answers a person hands back.

``labels.csv`` is a plain CSV with the header ``path,label`` (path relative to
the images folder, ``/``-separated). seqgcn only ever appends to it, by
rewriting it whole through an atomic rename, so a reader never sees half a file.
A later row for the same image wins: that is how ``import-labels --overwrite``
records a correction without rewriting history.

Answers come as a filled batch CSV (``path,label``; other columns are ignored)
or as a Label Studio JSON export (every task's ``data.path`` and the single
choice of each of its non-cancelled annotations). `check_answers` refuses the
whole set when any one answer is wrong, so nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seqgcn.checks import InputError
from seqgcn.io import write_all

HEADER = ("path", "label")


@dataclass(frozen=True)
class Answer:
    """One label for one image, and where it was read (for error messages), e.g. ``"batch.csv line 3"``."""

    path: str
    label: str
    where: str


def normalise_path(text: str) -> str:
    """``./a\\b.png`` → ``a/b.png``: the form every path of a project is stored in.

    The one normalisation of image paths: the folder scan keeps only names it leaves
    unchanged (`can_store`), and every path read back (labels.csv, the batch CSV, a
    Label Studio export) goes through it, so a name found by the scan is found again.
    """
    text = text.strip().replace("\\", "/")
    return PurePosixPath(text).as_posix() if text else ""


def can_store(name: str) -> bool:
    """True when image path `name` (as the folder scan finds it) comes back unchanged from every file seqgcn writes.

    False for a name that `normalise_path` changes (a leading or trailing space, a
    backslash) and for one holding a control character (a newline, a tab) or a byte
    that is not UTF-8 (held by Python as a lone surrogate), which no CSV or JSON file
    written as UTF-8 can hold as it is.
    """
    if _PLAIN_NAME.fullmatch(name):  # the usual name, decided at a tenth of the cost: True by the rules below
        return True
    return normalise_path(name) == name and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)


# ASCII letters, digits, "_", "-", "." in "/"-separated parts, none empty or starting with ".": no space to
# strip, no backslash, no "." or ".." part nor "//" for PurePosixPath to fold, no control character
_PLAIN_NAME = re.compile(r"(?:[\w-][\w.-]*/)*[\w-][\w.-]*", re.ASCII)


# --------------------------------------------------------------------------- labels.csv
def read_labels(path, *, images: set | None = None, what: str = "labels file") -> dict:
    """``{image path: label}`` of a ``path,label`` CSV; a missing file is empty; a later row wins.

    Every path must be one of `images` (when given) and every label non-empty;
    otherwise ValueError naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return {}
    labels = {}
    for answer in _read_csv_rows(path, what=what, exact_header=True):
        _check_answer(answer, images)
        labels[answer.path] = answer.label
    return labels


def append_labels(path, rows) -> None:
    """Append `rows` of (path, label) to the labels CSV (created with its header if missing), atomically.

    A labels file that is a symlink keeps its link: the file it points to is the one rewritten.
    """
    path = Path(path)
    old = ""
    if path.exists():
        with open(path, newline="") as fh:  # keep the file's own line endings
            old = fh.read()
    ending = "\r\n" if "\r\n" in old.split("\n", 1)[0] + "\n" else "\n"  # a CRLF file stays CRLF
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=ending)
    if not old:
        writer.writerow(HEADER)
    elif not old.endswith(("\n", "\r")):
        buf.write(ending)
    writer.writerows(rows)
    write_all({path: old + buf.getvalue()})  # a failure: StorageError "cannot write 'PATH': ...", the file as it was


def csv_text(rows) -> str:
    """A ``path,label`` CSV of `rows` (header first)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- answers
def read_answers(path) -> list[Answer]:
    """Answers from a filled batch CSV, or a Label Studio JSON export when the name ends in ``.json``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"answers file {str(path)!r} does not exist")
    if path.suffix.lower() == ".json":
        return read_label_studio_export(path)
    return list(_read_csv_rows(path, what="answers file", exact_header=False))


def read_label_studio_export(path) -> list[Answer]:
    """Answers from a Label Studio JSON export ("JSON" format: a list of tasks with their annotations).

    Per task: the image is ``data.path`` (seqgcn puts it there when it makes the
    tasks); each annotation that was not cancelled must hold exactly one
    classification choice. Tasks without a finished annotation are left out.
    A malformed file is a ValueError naming the task and key.
    """
    path = Path(path)
    try:
        tasks = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON in {str(path)!r} line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from None
    return answers_from_tasks(tasks, source=str(path))


def answers_from_tasks(tasks, *, source: str) -> list[Answer]:
    """The `Answer`s in a list of Label Studio task dicts (see `read_label_studio_export`)."""
    if not isinstance(tasks, list):
        raise InputError(f"{source}: expected a JSON list of tasks (Label Studio's JSON export), got {type(tasks).__name__}")
    answers = []
    for i, task in enumerate(tasks):
        where = f"{source} task {task.get('id', f'#{i}') if isinstance(task, dict) else f'#{i}'}"
        if not isinstance(task, dict):
            raise InputError(f"{where}: expected an object, got {type(task).__name__}")
        data = task.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise InputError(f"{where}: key 'data.path' is missing; seqgcn reads the image path from it "
                             "(tasks made by `seqgcn query --format label-studio` or `seqgcn labelstudio push` have it)")
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise InputError(f"{where}: key 'annotations' must be a list, got {type(annotations).__name__}")
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise InputError(f"{where}: key 'annotations' holds a {type(annotation).__name__}, expected objects")
            if annotation.get("was_cancelled"):
                continue
            label = _single_choice(annotation, f"{where} annotation {annotation.get('id', '?')}")
            answers.append(Answer(normalise_path(data["path"]), label, f"{where} annotation {annotation.get('id', '?')}"))
    return answers


def check_answers(answers, *, images: set, labels: dict, overwrite: bool = False) -> tuple[list, int]:
    """Validate every answer against the project; return (new rows to append, answers already on file).

    Refused (ValueError, nothing to append): a path that is not an image of the
    project, an empty label or one holding a control character (a newline), the same image answered twice with different labels
    (the message names both places), an image already labelled differently
    (unless `overwrite`).
    """
    seen: dict[str, Answer] = {}
    for answer in answers:
        _check_answer(answer, images)
        first = seen.setdefault(answer.path, answer)
        if first.label != answer.label:
            raise InputError(f"image {answer.path!r} is answered twice with different labels: {first.label!r} "
                             f"({first.where}) and {answer.label!r} ({answer.where})")
    rows, unchanged = [], 0
    for path, answer in seen.items():
        old = labels.get(path)
        if old == answer.label:
            unchanged += 1
            continue
        if old is not None and not overwrite:
            raise InputError(f"image {path!r} is already labelled {old!r}, but {answer.where} says {answer.label!r}; "
                             "pass --overwrite to replace the label")
        rows.append((path, answer.label))
    return rows, unchanged


def class_counts(labels: dict) -> list[tuple[str, int]]:
    """(class, count) pairs, classes sorted."""
    return sorted(Counter(labels.values()).items())


# --------------------------------------------------------------------------- helpers
def _read_csv_rows(path: Path, *, what: str, exact_header: bool):
    """Yield an `Answer` per data row of a ``path,label`` CSV; malformed rows are a ValueError naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet may add a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
        if (tuple(header) != HEADER) if exact_header else not set(HEADER) <= set(header):
            want = "exactly" if exact_header else "at least the columns"
            raise InputError(f"{what} {str(path)!r} line 1: header is {','.join(header)!r}, expected {want} 'path,label'")
        at_path, at_label = header.index("path"), header.index("label")
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise InputError(f"{what} {str(path)!r} line {reader.line_num}: {len(row)} fields, "
                                 f"expected {len(header)} ({','.join(header)})")
            yield Answer(normalise_path(row[at_path]), row[at_label].strip(), f"{path.name} line {reader.line_num}")
    except csv.Error as exc:
        raise InputError(f"malformed CSV {what} {str(path)!r} line {reader.line_num}: {exc}") from None


def _check_answer(answer: Answer, images: set | None) -> None:
    if not answer.path:
        raise InputError(f"{answer.where}: the path is empty")
    if images is not None and answer.path not in images:
        raise InputError(f"{answer.where}: image {answer.path!r} does not exist in the images folder "
                         "(paths are relative to --images)")
    if not answer.label:
        raise InputError(f"{answer.where}: the label of {answer.path!r} is empty; fill it in or delete the row")
    if any(ord(c) < 32 or ord(c) == 127 for c in answer.label):  # a newline or a tab: a class name no one meant
        raise InputError(f"{answer.where}: the label of {answer.path!r} holds a control character "
                         f"({answer.label!r}); a label is one line of text")


def _single_choice(annotation: dict, where: str) -> str:
    result = annotation.get("result")
    if not isinstance(result, list):
        raise InputError(f"{where}: key 'result' must be a list of regions")
    choices = [c for r in result if isinstance(r, dict) and r.get("type") == "choices"
               for c in (r.get("value") or {}).get("choices", [])]
    if len(choices) != 1 or not isinstance(choices[0], str):
        raise InputError(f"{where}: key 'result' holds {len(choices)} classification choices, expected exactly 1")
    return choices[0].strip()
