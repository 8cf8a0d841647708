"""Time and peak memory of every strong baseline at N = 11,000 and 100,000 (m = 512, budget 1,000), beside CoreSet
and UncertainGCN measured in the same run; plus exact k-NN through seqgcn's blocks, faiss and scikit-learn.

Each selection runs in a fresh subprocess on random data of the real shape: features from 10 Gaussian clusters
(N, 512) float32, the first 1,000 rows labelled, probabilities the softmax of a noisy linear read-out (N, 10),
BALD's 20 dropout passes (20, N, 10). The subprocess makes its data, resets its peak-RSS mark
(/proc/self/clear_refs), selects, and reports the selection's wall time and its peak RSS above the RSS before it
("peak MB"; BALD's passes are made before the mark, as the target excludes them). torch uses --threads threads.

    python benchmarks/baselines_speed.py                          # N = 11,000 and 100,000
    python benchmarks/baselines_speed.py --sizes 11000 --methods Margin BADGE
    python benchmarks/baselines_speed.py --quick                  # N = 3,000, budget 200: a smoke test

UncertainGCN's graph is N × N as an operator, so its time grows with N²; it runs only at N ≤ --gcn-up-to
(default 11,000; at 100,000 it would take about 15 minutes here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

METHODS = ["LeastConfidence", "Margin", "Entropy", "BALD", "BADGE", "TypiClust", "ProbCover", "CoreSet", "UncertainGCN"]
CHILD = r"""
import json, sys, time
import numpy as np, torch
n, m, budget, method, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
torch.set_num_threads(threads)
from seqgcn.samplers import LearnerOutputs, OutputSampler, get_sampler
rng = np.random.default_rng(0)
centres = rng.normal(size=(10, m)).astype(np.float32)
classes = rng.integers(0, 10, size=n)
x = centres[classes] + rng.normal(scale=0.8, size=(n, m)).astype(np.float32)  # (n, m)
logits = x @ centres.T / np.sqrt(m) * 3 + rng.normal(size=(n, 10)).astype(np.float32)  # (n, 10)
probs = np.exp(logits - logits.max(1, keepdims=True)); probs /= probs.sum(1, keepdims=True)
labelled = np.arange(1000)
sampler = get_sampler(method, seed=0)
source = x
if isinstance(sampler, OutputSampler):
    passes = None
    if "passes" in sampler.needs:
        passes = np.stack([probs[rng.permutation(n)] for _ in range(20)]).astype(np.float32)  # (20, n, 10)
    source = LearnerOutputs(features=x if "features" in sampler.needs else None,
                            probs=probs.astype(np.float32) if "probs" in sampler.needs else None, passes=passes)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # resets VmHWM to the current RSS
t = time.perf_counter()
picked = sampler.select(source, labelled, budget)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_mb": status("VmHWM:") - before, "picked": int(len(set(picked.tolist())))}))
"""

KNN_CHILD = r"""
import json, sys, time
import numpy as np, torch
n, m, k, threads = int(sys.argv[1]), int(sys.argv[2]), 20, int(sys.argv[3])
torch.set_num_threads(threads)
x = np.random.default_rng(1).normal(size=(n, m)).astype(np.float32)
out = {}
from seqgcn.samplers.neighbours import mean_knn_sq_distance
t = time.perf_counter(); ours = mean_knn_sq_distance(x, k); out["seqgcn blocks (torch)"] = time.perf_counter() - t
try:
    import faiss
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter(); index = faiss.IndexFlatL2(m); index.add(x); d, _ = index.search(x, k + 1)
    out["faiss IndexFlatL2"] = time.perf_counter() - t
    out["faiss max rel. diff"] = float(np.max(np.abs(d[:, 1:].mean(1) - ours) / ours))
except ImportError:
    out["faiss IndexFlatL2"] = None
from sklearn.neighbors import NearestNeighbors
t = time.perf_counter(); NearestNeighbors(n_neighbors=k + 1, n_jobs=threads).fit(x).kneighbors(x)
out["scikit-learn NearestNeighbors"] = time.perf_counter() - t
print(json.dumps(out))
"""


def run_child(code: str, *args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args[-1])}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[11000, 100000])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gcn-up-to", type=int, default=11000)
    parser.add_argument("--knn-size", type=int, default=11000, help="N of the k-NN comparison (0: skip it)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.budget, args.knn_size = [3000], 200, 3000
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}, "
          f"m = {args.dim}, budget = {args.budget}, {time.strftime('%Y-%m-%d')}")
    print(f"{'method':<16}" + "".join(f"{f'N={n:,} s':>14}{'peak MB':>10}" for n in args.sizes))
    started = time.perf_counter()
    for method in args.methods:
        cells = []
        for n in args.sizes:
            if method == "UncertainGCN" and n > args.gcn_up_to:
                cells.append(f"{'(skipped)':>14}{'':>10}")
                continue
            got = run_child(CHILD, n, args.dim, args.budget, method, args.threads)
            if "error" in got:
                cells.append(f"{'error':>14}{'':>10}")
                print(f"  {method} at N={n}: {got['error']}", file=sys.stderr)
            else:
                cells.append(f"{got['seconds']:>14.2f}{got['peak_mb']:>10.0f}")
        print(f"{method:<16}" + "".join(cells), flush=True)
    if args.knn_size:
        print(f"\nexact k-NN (k = 20) of every row, N = {args.knn_size:,}, m = {args.dim}, seconds:")
        for name, value in run_child(KNN_CHILD, args.knn_size, args.dim, args.threads).items():
            print(f"  {name:<32} {'not installed' if value is None else f'{value:.3g}'}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
