"""One `seqgcn query` round on a folder of synthetic images: time per phase and peak memory.

Makes ``--n-images`` colour PNGs of ``--size``×``--size`` pixels in a temporary folder
(10 classes of noisy coloured blobs), labels ``--labelled`` of them, and runs one
query round with the default learner and ``--method`` (CoreGCN), reporting the
split between loading (find + decode), training, features and selection, and the
process's peak resident memory. Targets (issue 9): 2,000 images of 32×32 on 2 CPU
cores in ≤ 60 s; on 10,000 images, peak memory O(images × image size).

    python benchmarks/query_speed.py                       # 2,000 images, 32×32
    python benchmarks/query_speed.py --n-images 10000      # the memory check
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seqgcn.experiment import ExperimentConfig
from seqgcn.labelling.labels import append_labels
from seqgcn.labelling.query import run_query


def make_folder(root: Path, n: int, size: int, seed: int = 0) -> dict:
    """`n` PNGs in 10 classes (a coloured blob whose hue and place depend on the class); returns path → class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    labels = {}
    for k in range(n):
        c = int(rng.integers(10))
        cy, cx = 0.3 + 0.4 * (c % 3) / 2, 0.3 + 0.4 * (c // 3) / 3
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)[..., None]  # (size, size, 1)
        colour = np.array([(c * 37) % 256, (c * 91) % 256, (c * 53) % 256])
        image = np.clip(blob * colour + rng.normal(0, 25, (size, size, 3)) + 30, 0, 255).astype(np.uint8)
        rel = f"d{k // 1000}/img_{k:05d}.png"
        (root / rel).parent.mkdir(exist_ok=True)
        Image.fromarray(image).save(root / rel)
        labels[rel] = str(c)
    return labels


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32, help="side of the images on disk and of --image-size")
    parser.add_argument("--labelled", type=int, default=200, help="images labelled before the round")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--method", default="CoreGCN")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is for 2 CPU cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        t = time.perf_counter()
        truth = make_folder(root, args.n_images, args.size)
        print(f"made {args.n_images} images of {args.size}x{args.size} in {time.perf_counter() - t:.1f} s (not timed below)")
        labels = Path(tmp) / "labels.csv"
        append_labels(labels, sorted(truth.items())[:: args.n_images // args.labelled][: args.labelled])
        config = ExperimentConfig().learner_config("classification")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        result = run_query(root, labels, budget=args.budget, method=args.method, image_size=args.size,
                           subset=ExperimentConfig().subset, learner_config=config)
        total = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    s = result.seconds
    pixels_mib = args.n_images * 3 * args.size * args.size / 2**20
    print(f"{args.method}, {result.n_labelled} labelled, {args.n_images} images, {torch.get_num_threads()} threads, "
          f"learner {config.arch} {config.epochs} epochs")
    print(f"total {total:.1f} s: load {s['load']:.1f}, train {s['train']:.1f}, features {s['features']:.1f}, "
          f"select {s['select']:.1f}")
    print(f"peak RSS {peak:.0f} MiB (before the round {rss_before:.0f} MiB); the decoded images are {pixels_mib:.1f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
