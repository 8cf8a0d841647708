"""`seqgcn import-labels`: a person's answers (a filled batch CSV or a Label Studio export) appended to labels.csv."""

from __future__ import annotations

from pathlib import Path

from seqgcn.cli.options import add_project_arguments
from seqgcn.labelling.images import find_images
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
    return import_answers(read_answers(args.answers), args, source=args.answers)


def import_answers(answers, args, *, source: str) -> int:
    """Check `answers` against the folder and labels.csv, append them, print the class counts (also `labelstudio pull`)."""
    images = set(find_images(args.images))
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
