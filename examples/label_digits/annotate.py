"""The stand-in for a person: fill the label column of a batch CSV from the hidden true labels.

    python annotate.py data/batch.csv --hidden data/hidden_labels.csv
"""

from __future__ import annotations

import argparse
import csv


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", help="batch CSV written by seqgcn query (filled in place)")
    parser.add_argument("--hidden", required=True, help="path,label CSV of the true labels")
    args = parser.parse_args(argv)
    with open(args.hidden, newline="") as fh:
        truth = {row["path"]: row["label"] for row in csv.DictReader(fh)}
    with open(args.batch, newline="") as fh:
        batch = list(csv.DictReader(fh))
    with open(args.batch, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows((row["path"], truth[row["path"]]) for row in batch)
    print(f"labelled {len(batch)} images in {args.batch}")


if __name__ == "__main__":
    main()
