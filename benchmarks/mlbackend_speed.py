"""`seqgcn labelstudio serve`: the time of one retrain + reselect, and of /predict for 1,000 tasks while one runs.

Makes --images synthetic 32×32 PNGs (10 classes: a colour each, plus noise) in a
temporary folder, labels --labelled of them, and runs the backend as the CLI does
(`MLBackend` behind the Starlette app on uvicorn, on a localhost port), with
``--arch small_cnn`` and the other learner and sampler settings at their defaults
(30 epochs, CoreGCN with 200 GCN steps, D_S of 500) and --threads torch threads (default 1, as serve).
It prints:

    retrain        wall time of each retrain and its split: load (scan, decode), train, features, select, predict
    /predict       seconds per POST of --tasks tasks (urllib, a new connection each, one a second), idle and while
                   a retrain runs

    python benchmarks/mlbackend_speed.py                     # 2,000 images, 200 labelled, 1 thread (serve's default; ~40 s)
    python benchmarks/mlbackend_speed.py --threads 2         # both cores for the learner
    python benchmarks/mlbackend_speed.py --images 500 --labelled 50   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seqgcn.experiment.config import ExperimentConfig
from seqgcn.labelling.labels import csv_text
from seqgcn.labelling.mlbackend import MLBackend, ServeConfig, listen, make_app


def make_project(root: Path, n: int, labelled: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(10, 3))
    paths, rows = [], []
    (root / "images").mkdir()
    for k in range(n):
        c = k % 10
        pixels = np.clip(colours[c] + rng.normal(0, 40, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        rel = f"{c}/{k:05d}.png"
        (root / "images" / str(c)).mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / rel)
        paths.append(rel)
        if k < labelled:
            rows.append((rel, f"class{c}"))
    (root / "labels.csv").write_text(csv_text(rows))
    return sorted(paths)


def post(url: str, body: bytes, n_tasks: int) -> float:
    """Seconds of one POST of the pre-encoded `body` (the client's own JSON encoding is not counted)."""
    t = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    seconds = time.perf_counter() - t
    assert len(answer["results"]) == n_tasks and "result" in answer["results"][0]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--labelled", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import uvicorn

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_project(root, args.images, args.labelled)
        config = ExperimentConfig.from_dict({"arch": "small_cnn", "threads": args.threads}, source="benchmark")
        backend = MLBackend(ServeConfig(
            images=str(root / "images"), labels=str(root / "labels.csv"), budget=args.budget,
            query=dict(image_size=32, subset=config.subset, seed=0, learner_config=config.learner_config("classification"),
                       threads=config.threads)))
        sock = listen("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/predict"
        server = uvicorn.Server(uvicorn.Config(make_app(backend), log_level="warning"))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()

        splits = []
        t = time.perf_counter()
        backend.start()
        backend.wait()
        splits.append(("first (at start)", time.perf_counter() - t, backend.health()["last_retrain_seconds"]))
        body = json.dumps({"tasks": [{"id": i, "data": {"path": p}} for i, p in enumerate(paths[-args.tasks:])]}).encode()
        idle = [post(url, body, args.tasks) for _ in range(5)]
        busy = []
        t = time.perf_counter()
        backend.retrain()
        while backend.health()["state"] == "training":
            busy.append(post(url, body, args.tasks))
            time.sleep(1.0)  # Label Studio asks when a person opens tasks, not in a busy loop
        backend.wait()
        splits.append(("second (on answers)", time.perf_counter() - t, backend.health()["last_retrain_seconds"]))
        server.should_exit = True

    print(f"# {args.images} images of 32x32, {args.labelled} labelled, small_cnn, CoreGCN, budget {args.budget}, "
          f"{args.threads} torch threads; torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print("| retrain | wall s | load | train | features | select | predict |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, s in splits:
        print(f"| {name} | {wall:.1f} | {s['load']:.1f} | {s['train']:.1f} | {s['features']:.1f} | {s['select']:.1f} | "
              f"{s.get('predict', 0):.2f} |")
    print()
    print(f"| /predict, {args.tasks} tasks | POSTs | median s | max s |")
    print("|---|---|---|---|")
    for name, times in (("idle", idle), ("while a retrain runs", busy)):
        if times:
            print(f"| {name} | {len(times)} | {statistics.median(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
