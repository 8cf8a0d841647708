"""`--encoder` speed: the first pass over a folder, a later query round on cached embeddings, a from-scratch round.

Makes ``--n-images`` random colour PNGs of 32×32 in a temporary folder and exports
encoders with random weights (no pretrained weights exist offline; the times depend
on a network's cost, not on its weights): a small CNN to ONNX and to ``.pt2``, and
the CIFAR ResNet-18 (a real backbone's cost) to ONNX. Then, for each encoder, every
row in a fresh process (its own peak RSS):

    reference      the encoder's own batched inference on the same images, already decoded
                   (`Encoder.embed`, batches of 256, the same threads): what the first pass is compared with
    first pass     `seqgcn query --encoder` on the unlabelled folder: hash, decode and encode every image into
                   the cache next to labels.csv, k-Center on the embeddings, write batch + contact sheet
    later round    `seqgcn query --encoder` with --labelled random labels (10 classes): embeddings from the
                   cache, head trained, CoreGCN picks, batch + contact sheet written
    from scratch   the same round without --encoder: images decoded, the CNN learner (--arch small_cnn,
                   30 epochs) trained from scratch, CoreGCN on its features

"encode s" is the query's "load" phase (find + hash + decode + encode, or read the
cache); "total s" the whole command in the process, writing included. Targets
(issue 18): later round ≤ 10 s at 10,000 images on 2 cores; first pass
≤ 1.2 × reference.

    python benchmarks/encoder_speed.py                     # 10,000 images, three encoders (about 10 minutes)
    python benchmarks/encoder_speed.py --n-images 2000     # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- the fixtures
def make_folder(root: Path, n: int, seed: int = 0) -> list[str]:
    """`n` PNGs of uniform random 32×32 RGB noise, 1,000 per subfolder; their relative paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        rel = f"d{k // 1000}/img_{k:05d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / rel)
        paths.append(rel)
    return paths


def export_model(name: str, fmt: str, folder: Path) -> Path:
    """`name` with random weights, exported as `fmt` (onnx | pt2) with a dynamic batch.

    small    : 3 conv blocks 32-64-128 with BN, two 2× max-pools, global average pooling: 128-d, ~10 MFLOP per image
    resnet18 : seqgcn's CIFAR ResNet-18 up to its pooled features: 512-d, ~0.56 GFLOP per 32×32 image
    """
    import torch
    from torch import nn

    from seqgcn.learners.nets import ResNet18

    torch.manual_seed(0)
    if name == "small":
        block = lambda c_in, c_out: [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]  # noqa: E731
        net = nn.Sequential(*block(3, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2), *block(64, 128),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten())
    else:
        class Features(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = ResNet18(in_channels=3, n_outputs=10)

            def forward(self, x):
                return self.net(x)[1]  # (n, 512): the pooled features, not the logits

        net = Features()
    net.eval()
    example = (torch.zeros(2, 3, 32, 32),)
    path = folder / f"{name}.{fmt}"
    if fmt == "pt2":
        program = torch.export.export(net, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(path))
    else:
        torch.onnx.export(net, example, str(path), dynamo=False, input_names=["images"],
                          dynamic_axes={"images": {0: "batch"}})
    return path


# --------------------------------------------------------------------------- one row, in a child process
def child(phase: str, options: dict) -> dict:
    import torch

    torch.set_num_threads(options["threads"])
    if phase == "reference":
        from seqgcn.labelling.images import load_images
        from seqgcn.learners.encoder import load_encoder

        encoder = load_encoder(options["model"], threads=options["threads"])
        pixels = load_images(options["images"], size=32).pixels  # (n, 3, 32, 32), not timed
        start = time.perf_counter()
        encoder.embed(pixels)
        return {"total": time.perf_counter() - start, "rss_mb": _peak_mb()}
    from seqgcn.cli import main

    argv = ["query", "--images", options["images"], "--labels", options["labels"], "--budget", "100",
            "--out", options["out"], "--threads", str(options["threads"]), *options["extra"]]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        code = main(argv)
        total = time.perf_counter() - start
    assert code == 0, f"seqgcn {' '.join(argv)} exited {code}"
    record = json.loads(Path(options["labels"]).with_suffix(".queries.json").read_text())[-1]
    return {"total": total, "phases": record["seconds"], "encoded": record.get("encoder", {}).get("encoded"),
            "method": record["method"], "rss_mb": _peak_mb()}


def _peak_mb() -> float:
    """This process's peak resident memory, MiB: VmHWM (Linux), which unlike ru_maxrss does not carry the parent's
    peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, bytes on macOS


def run_child(phase: str, options: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", phase, json.dumps(options)], capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{phase} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the table
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=10_000)
    parser.add_argument("--labelled", type=int, default=1_000, help="random labels of the later rounds (10 classes)")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (seqgcn query's default: 1)")
    parser.add_argument("--encoders", nargs="+", default=["small:onnx", "small:pt2", "resnet18:onnx"],
                        help="MODEL:FORMAT pairs, MODEL small or resnet18, FORMAT onnx or pt2")
    parser.add_argument("--repeat", type=int, default=1,
                        help="reference + first pass pairs per encoder (the machine's noise is ±10 %%: the ratio's "
                             "median over pairs is printed at the end)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return

    import torch

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        paths = make_folder(tmp / "images", args.n_images)
        print(f"# {args.n_images} random 32×32 PNGs in {time.perf_counter() - start:.0f} s")
        rng = np.random.default_rng(1)
        labelled = rng.choice(len(paths), size=args.labelled, replace=False)
        answers = [(paths[i], f"c{rng.integers(10)}") for i in labelled]
        base = {"images": str(tmp / "images"), "threads": args.threads}
        for pair in args.encoders:
            name, fmt = pair.split(":")
            tag = f"{name} {fmt}"
            model = {"model": str(export_model(name, fmt, tmp))}
            for r in range(args.repeat):  # pairs, one after the other: each first pass beside its own reference
                labels = tmp / f"labels-{name}-{fmt}-{r}.csv"  # a new labels.csv: a new, empty cache beside it
                ref = run_child("reference", {**base, **model})
                rows.append({"format": tag, "row": "reference (inference only)", **ref})
                first = run_child("query", {**base, "labels": str(labels), "out": str(tmp / f"b1-{name}-{fmt}-{r}.csv"),
                                            "extra": ["--encoder", model["model"]]})
                rows.append({"format": tag, "row": "first pass (query, cold start)", **first,
                             "ratio": first["phases"]["load"] / ref["total"]})
            with open(labels, "w", newline="") as fh:  # replaces the empty labels.csv: 1,000 answers
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["path", "label"])
                writer.writerows(answers)
            later = run_child("query", {**base, "labels": str(labels), "out": str(tmp / f"b2-{name}-{fmt}.csv"),
                                        "extra": ["--encoder", model["model"]]})
            rows.append({"format": tag, "row": "later round (query, cached)", **later})
        scratch = run_child("query", {**base, "labels": str(labels), "out": str(tmp / "b3.csv"),
                                      "extra": ["--arch", "small_cnn"]})
        rows.append({"format": "-", "row": "from scratch (query, small_cnn 30 epochs)", **scratch})

    print(f"\n{args.n_images} images of 32×32, {args.labelled} labelled in the later rounds, budget 100, "
          f"CoreGCN (subset 500), threads {args.threads}\n")
    print("| encoder | row | encode s | train s | features s | select s | total s | peak MB | first ÷ reference |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p = r.get("phases", {})
        cell = lambda key: f"{p[key]:.2f}" if key in p else "-"  # noqa: E731
        ratio = f"**{r['ratio']:.2f}×**" if "ratio" in r else "-"
        print(f"| {r['format']} | {r['row']} | {cell('load')} | {cell('train')} | {cell('features')} | "
              f"{cell('select')} | {r['total']:.2f} | {r['rss_mb']:.0f} | {ratio} |")
    for tag in dict.fromkeys(r["format"] for r in rows if "ratio" in r):
        ratios = [r["ratio"] for r in rows if r["format"] == tag and "ratio" in r]
        print(f"\n{tag}: first ÷ reference over {len(ratios)} pairs: median {np.median(ratios):.2f}×, "
              f"range {min(ratios):.2f}–{max(ratios):.2f}×, {sum(x <= 1.2 for x in ratios)} of {len(ratios)} ≤ 1.2×")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
