"""Make a folder of PNG images from scikit-learn's bundled digits, as if they were your own photos.

Writes, under the output folder (default: ``data/`` next to this script, which git ignores):

- ``images/digit_0000.png`` ... one 8×8 grey PNG per digit, no label anywhere in the name;
- ``test.csv``: ``path,label`` of a held-out quarter of them (a small labelled set kept for checking, as a
  practitioner would keep one);
- ``hidden_labels.csv``: the true label of every other image. A real user would not have this file: here
  it stands in for the person who looks at each picked image and says which digit it is (``annotate.py``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from seqgcn.data.digits import load_digits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("data")), help="output folder (default: data/ here)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    digits = load_digits(test_fraction=0.25, split_seed=0)  # fixed stratified split
    rows = {"train": [], "test": []}
    x = np.concatenate([digits.x_train, digits.x_test])[:, 0]  # (1797, 8, 8) uint8
    y = np.concatenate([digits.y_train, digits.y_test])
    split = ["train"] * digits.n_train + ["test"] * digits.n_test
    order = np.random.default_rng(0).permutation(len(x))  # file names say nothing about the split or the class
    for k, i in enumerate(order):
        name = f"images/digit_{k:04d}.png"
        Image.fromarray(x[i]).save(out / name)
        rows[split[i]].append((name.removeprefix("images/"), str(y[i])))
    for file, key in (("hidden_labels.csv", "train"), ("test.csv", "test")):
        with open(out / file, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label"])
            writer.writerows(sorted(rows[key]))
    print(f"{len(x)} images in {out / 'images'}; {len(rows['test'])} held out in {out / 'test.csv'}")


if __name__ == "__main__":
    main()
