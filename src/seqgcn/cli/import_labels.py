"""`seqgcn import-labels`: a person's answers (a filled batch CSV or a Label Studio export) appended to labels.csv.

Also the checks every labelling command runs before any work (`project_images`, `check_writes`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from seqgcn.checks import InputError
from seqgcn.cli.options import add_project_arguments
from seqgcn.io import check_outputs
from seqgcn.labelling.images import scan_images, scan_name
from seqgcn.labelling.labels import append_labels, check_answers, class_counts, read_answers, read_labels


def add_parser(sub) -> None:
    p = sub.add_parser("import-labels", help="add a person's answers to labels.csv",
                       description="Check every answer of a filled batch CSV or a Label Studio JSON export and append them "
                       "to labels.csv; nothing is written when any answer is refused.")
    p.add_argument("answers", metavar="ANSWERS", help="a filled batch CSV (path,label) or a Label Studio JSON export (.json)")
    add_project_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="accept answers that change an existing label (the new row wins)")
    p.set_defaults(func=run)


def run(args) -> int:
    answers = read_answers(args.answers)
    paths = project_images(args.images)
    check_writes(args.images, paths, [(args.labels, f"--labels {args.labels!r}", "--labels")],
                 [(args.answers, f"the answers file {args.answers!r}")])
    return import_answers(answers, args, paths=paths, source=args.answers)


def import_answers(answers, args, *, paths, source: str) -> int:
    """Check `answers` against the images `paths` and labels.csv, append them, print the class counts (also `labelstudio pull`).

    The caller has run `check_writes` on ``args.labels``.
    """
    images = set(paths)
    labels = read_labels(args.labels, images=images)
    rows, unchanged = check_answers(answers, images=images, labels=labels, overwrite=args.overwrite)
    if rows or not Path(args.labels).exists():
        append_labels(args.labels, rows)
    labels.update(rows)
    print(f"imported {len(rows)} label(s) from {source} into {args.labels}"
          f"{f' ({unchanged} already there)' if unchanged else ''}; {len(labels)} labelled images:")
    for name, count in class_counts(labels):
        print(f"  {name}: {count}")
    return 0


def project_images(folder) -> list[str]:
    """The images of `folder` (`scan_images`), with one warning on stderr per image file left out for its name."""
    paths, refused = scan_images(folder)
    for rel in refused:
        print(f"seqgcn: warning: left out image {rel!r}: its name would not come back unchanged from a CSV file "
              "(a leading or trailing space, a backslash, a control character or a byte that is not UTF-8); "
              "rename it to label it", file=sys.stderr)
    return paths


def check_writes(folder, paths, outputs, inputs=()) -> None:
    """Refuse, before any work, outputs that would destroy a file or join the images (one line, `InputError`).

    folder, paths : the images folder and its images (`project_images`), which are inputs too
    outputs, inputs : as `seqgcn.io.check_outputs`: ``(path, what, option)`` and ``(path, what)``

    Refused: an output that is a folder, the same file as an input (an image included) or
    as another output, or a file the next scan of `folder` would take for an image to label
    (e.g. the contact sheet of ``--out images/batch.csv``).
    """
    check_outputs(outputs, [*inputs, *((os.path.join(folder, p), f"image {p!r} of --images") for p in paths)])
    for path, what, option in outputs:
        rel = scan_name(folder, path)
        if rel is not None:
            raise InputError(f"{what} would be inside --images {str(folder)!r}, where the next query would take it for "
                             f"an image to label ({rel!r}); choose another {option}, outside the images folder")
