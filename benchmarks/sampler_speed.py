"""GCN sampler speed: idle, beside a busy core, and against a dense N×N reference; plus the picks' independence of threads.

For UncertainGCN and CoreGCN at N = 11,000 nodes (10,000 candidates + 1,000
labelled, m = 512, 200 GCN steps, budget 1,000) it prints one table row each:

    idle s        one selection on the otherwise idle machine (median of --repeat runs)
    ÷ floor       idle s over the "GEMM floor": the first layer's two (N, m)·(m, 128) products of all
                  200 steps alone, blocked as seqgcn blocks them (`gemm_floor`), measured first in the same run
    busy s        the same beside one busy-loop process (``while True: pass``, started and killed here)
    busy ÷ idle   the slowdown a busy core causes
    dense s       the dense reference below, idle
    speed-up      dense ÷ idle
    same as dense share of picks the two implementations agree on

The dense reference is written here the straightforward way (as research code does
it): the N×N adjacency of eq. 4 built densely, A @ (X W1) every step, sigmoid then
log, autograd, `torch.optim.Adam`, torch's default threads. It draws its initial
weights and dropout masks from the same seeded generator sequence as seqgcn, so
both train the same network on the same masks.

Then it checks that the picks are identical with torch's thread count 1 and 2 and
the samplers' ``workers`` 1 and 2 (and beside the busy core), and that torch ops
run the way seqgcn relies on: with one intra-op thread, called from two Python
threads at once, each runs on one core (process CPU time ÷ wall time) and gives
the same bits as when run alone.

Every selection runs in a fresh subprocess (peak RSS is that process's own).
"Idle" means only as idle as the machine is: run it on an otherwise idle machine.

    python benchmarks/sampler_speed.py                       # the table above (about 8 minutes, mostly dense)
    python benchmarks/sampler_speed.py --no-dense            # idle vs busy core and the pick checks only
    python benchmarks/sampler_speed.py --quick               # N = 2,000, budget 200: a smoke test
    python benchmarks/sampler_speed.py --large 100000        # also seqgcn alone at N = 100,000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("UncertainGCN", "CoreGCN")


# --------------------------------------------------------------------------- data
def synthetic_features(n_items: int, dim: int, seed: int) -> np.ndarray:
    """Non-negative features like a ReLU network's: a mixture of 10 Gaussian clusters, then ReLU."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(10, dim)).astype(np.float32)  # (10, m)
    labels = rng.integers(0, 10, size=n_items)
    x = centres[labels] + rng.normal(0.0, 1.0, size=(n_items, dim)).astype(np.float32)  # (N, m)
    return np.maximum(x, 0.0, out=x)


def split(n_items: int, n_labelled: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    perm = rng.permutation(n_items)
    return np.sort(perm[:n_labelled]), np.sort(perm[n_labelled:])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# --------------------------------------------------------------------------- the dense reference
def dense_reference(features, labelled, candidates, budget, *, method, seed, normalization, epochs=200, hidden=128,
                    dropout=0.3, lr=1e-3, weight_decay=5e-4, lam=1.2, margin=0.1):
    """The same algorithm with a dense (N, N) adjacency, recomputing A @ (X W1) every step."""
    import torch

    from seqgcn.samplers.gcn import dropout_masks, init_gcn_params

    nodes = np.concatenate([candidates, labelled])
    n, n_cand = nodes.size, candidates.size
    x = torch.from_numpy(features[nodes])
    x = x / x.norm(dim=1, keepdim=True)  # (N, m)
    eye = torch.eye(n)
    s = x @ x.T - eye  # (N, N)
    if normalization == "row":
        adj = s / s.sum(1, keepdim=True) + eye
    else:
        adj = s / s.sum(0, keepdim=True) + eye
    del s
    rng = np.random.default_rng(seed)
    w1, b1, w2, b2 = init_gcn_params([x.shape[1], hidden, 1], rng=rng)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=lr, weight_decay=weight_decay)

    def forward(mask):
        h = torch.relu(adj @ (x @ w1) + b1)  # (N, hidden)
        feat = h if mask is None else h * mask
        return (adj @ (feat @ w2) + b2).squeeze(1), h  # (N,) logits, (N, hidden)

    for _ in range(epochs):
        (mask,) = dropout_masks(rng, n, hidden, 1, 1.0 - dropout)
        scores = torch.sigmoid(forward(mask)[0])  # (N,)
        loss = -torch.log(scores[n_cand:].clamp_min(1e-12)).mean() - lam * torch.log((1 - scores[:n_cand]).clamp_min(1e-12)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits, h = forward(None)
    if method == "UncertainGCN":
        gap = (torch.sigmoid(logits[:n_cand]) - margin).abs().numpy()
        return nodes[np.argsort(gap, kind="stable")[:budget]]
    # CoreGCN: k-center greedy on cat(h, logit) with a full (n_candidates, n_labelled) distance matrix, as research code does
    emb = torch.cat([h, logits[:, None]], dim=1)  # (N, hidden + 1)
    emb_c, emb_l = emb[:n_cand], emb[n_cand:]
    min_dist = torch.cdist(emb_c, emb_l).min(1).values
    picked = []
    for _ in range(budget):
        j = int(torch.argmax(min_dist))
        picked.append(j)
        min_dist = torch.minimum(min_dist, torch.cdist(emb_c, emb_c[j:j + 1]).squeeze(1))
    return nodes[np.array(picked)]


# --------------------------------------------------------------------------- the products no implementation avoids
def gemm_floor(n: int, dim: int, *, steps: int = 200, hidden: int = 128) -> None:
    """The two (N, m)·(m, hidden)-sized products of every GCN training step, and nothing else.

    The first layer's forward (A X) W1 and its weight gradient (A X)ᵀ G: 2·N·m·hidden
    multiply-adds each, per step; with A X precomputed they are the bulk of seqgcn's
    step. Run here the way seqgcn runs them (`seqgcn.graph.RowBlocks`: blocks of
    1,024 rows, one intra-op thread each, the default worker count), on random data:
    a floor for the sampler's time on this machine.
    """
    import torch

    from seqgcn.graph import RowBlocks

    g = torch.Generator().manual_seed(0)
    ax, w = torch.rand(n, dim, generator=g), torch.rand(dim, hidden, generator=g)  # (N, m), (m, hidden)
    grad = torch.rand(n, hidden, generator=g)  # (N, hidden)
    h = torch.empty(n, hidden)
    with RowBlocks(n) as blocks:
        for _ in range(steps):
            blocks.map(lambda _, rows: torch.mm(ax[rows], w, out=h[rows]))
            blocks.sum(blocks.map(lambda _, rows: ax[rows].T @ grad[rows]))  # (m, hidden)
    return None


# --------------------------------------------------------------------------- one run, in its own process
def worker(args) -> None:
    import torch

    from seqgcn import get_sampler

    if args.threads:
        torch.set_num_threads(args.threads)  # a script may set process state; the library never does for long
    features = synthetic_features(args.n_items, args.dim, args.seed)
    labelled, candidates = split(args.n_items, args.n_labelled, args.seed)
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    if args.impl == "floor":
        gemm_floor(args.n_items, args.dim)
        picked, workers = np.arange(args.budget), None  # no picks: only the time counts
    elif args.impl == "seqgcn":
        options = {"workers": args.workers} if args.workers else {}
        sampler = get_sampler(args.method, seed=args.seed, normalization=args.normalization, **options)
        picked = sampler.select(features, labelled, args.budget, candidates=candidates)
        workers = sampler.diagnostics_.get("workers")  # absent before seqgcn ran in blocks
    else:
        picked = dense_reference(features, labelled, candidates, args.budget, method=args.method, seed=args.seed,
                                 normalization=args.normalization)
        workers = None
    seconds = time.perf_counter() - start
    np.save(args.picks, picked)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss_before,
                      "torch_threads": torch.get_num_threads(), "workers": workers}))


def run_one(impl, method, n_items, a, *, threads=0, workers=0, tag="") -> dict:
    """One selection in a fresh subprocess: its seconds, peak RSS and picks."""
    picks = Path(a.tmp) / f"sampler_speed-{impl}-{method}-{n_items}-{threads}-{workers}{tag}.npy"
    cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--method", method, "--n-items", str(n_items),
           "--n-labelled", str(a.n_labelled), "--budget", str(a.budget), "--dim", str(a.dim), "--seed", str(a.seed),
           "--normalization", a.normalization, "--picks", str(picks), "--threads", str(threads), "--workers", str(workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(impl=impl, method=method, n_items=n_items, picks=np.load(picks))
    return result


def beside_busy_core(fn):
    """fn() while one busy-loop process (started and killed here) keeps a core busy."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach full speed
        return fn()
    finally:
        hog.kill()
        hog.wait()


def median_run(impl, method, n, a, repeat, **kwargs) -> dict:
    runs = [run_one(impl, method, n, a, **kwargs) for _ in range(repeat)]
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    best["all_seconds"] = [r["seconds"] for r in runs]
    return best


# --------------------------------------------------------------------------- torch ops from two Python threads
def check_torch_threads(seconds: float = 1.5) -> dict:
    """CPU ÷ wall time while 1 or 2 Python threads run (1024, 512)·(512, 128) products with one intra-op thread,
    and whether each thread's results equal those computed alone."""
    import threading

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = torch.rand(8, 1024, 512, generator=g), torch.rand(512, 128, generator=g)
        alone = [a[i] @ b for i in range(8)]  # (1024, 128) each, computed by the calling thread
        result = {}
        for n_threads in (1, 2):
            same = []
            stop = time.perf_counter() + seconds

            def loop() -> None:
                torch.set_num_threads(1)  # a new thread's own OpenMP setting, as seqgcn's workers set it
                while time.perf_counter() < stop:
                    same.append(all(torch.equal(a[i] @ b, alone[i]) for i in range(8)))

            threads = [threading.Thread(target=loop) for _ in range(n_threads)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            result[n_threads] = {"cpu_per_wall": (time.process_time() - cpu0) / (time.perf_counter() - wall0),
                                 "identical": all(same), "rounds": len(same)}
        return result
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- the table
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", default="seqgcn", help=argparse.SUPPRESS)
    p.add_argument("--picks", help=argparse.SUPPRESS)
    p.add_argument("--method", default="UncertainGCN", help=argparse.SUPPRESS)
    p.add_argument("--n-items", type=int, default=11_000, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=11_000, help="N, candidates + labelled (default 11,000)")
    p.add_argument("--n-labelled", type=int, default=1_000, help="labelled items (default 1,000)")
    p.add_argument("--budget", type=int, default=1_000, help="items to select (default 1,000)")
    p.add_argument("--dim", type=int, default=512, help="feature dimension m (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalization", default="column", choices=["column", "row"], help="adjacency normalisation for both implementations")
    p.add_argument("--repeat", type=int, default=1, help="seqgcn runs per cell; the median is shown (default 1)")
    p.add_argument("--no-dense", action="store_true", help="skip the dense reference (most of the run time)")
    p.add_argument("--large", type=int, nargs="*", default=[], help="N also run with seqgcn alone, idle (e.g. 100000)")
    p.add_argument("--quick", action="store_true", help="smoke test: N = 2,000, labelled 200, budget 200")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--tmp", default="/tmp", help="where the workers leave their picks")
    a = p.parse_args()
    if a.worker:
        return worker(a)
    if a.quick:
        a.size, a.n_labelled, a.budget = 2_000, 200, 200

    import torch

    import seqgcn

    n = a.size
    print(f"seqgcn {seqgcn.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"N = {n:,} (labelled {a.n_labelled:,}), m = {a.dim}, budget {a.budget:,}, normalization {a.normalization}; "
          f"200 GCN steps, hidden 128; median of {a.repeat} run(s) per seqgcn cell\n", flush=True)

    floor = run_one("floor", "GEMM", n, a)
    print(f"  GEMM floor (the 200 steps' first-layer products alone, as seqgcn blocks them): {floor['seconds']:.2f} s",
          flush=True)
    rows, runs = [], []
    for method in METHODS:
        idle = median_run("seqgcn", method, n, a, a.repeat)
        busy = beside_busy_core(lambda: median_run("seqgcn", method, n, a, a.repeat, tag="-busy"))
        dense = None if a.no_dense else run_one("dense", method, n, a)
        agree = float("nan") if dense is None else len(np.intersect1d(idle["picks"], dense["picks"])) / a.budget
        row = {"method": method, "n_items": n, "idle_s": idle["seconds"], "idle_runs_s": idle["all_seconds"],
               "busy_s": busy["seconds"], "busy_runs_s": busy["all_seconds"], "busy_over_idle": busy["seconds"] / idle["seconds"],
               "dense_s": dense["seconds"] if dense else None, "speedup": dense["seconds"] / idle["seconds"] if dense else None,
               "seqgcn_peak_mb": idle["peak_rss_mb"], "dense_peak_mb": dense["peak_rss_mb"] if dense else None,
               "same_as_dense": agree, "same_picks_busy": bool(np.array_equal(idle["picks"], busy["picks"])),
               "workers": idle["workers"], "gemm_floor_s": floor["seconds"], "idle_over_floor": idle["seconds"] / floor["seconds"]}
        rows.append(row)
        runs += [idle, busy] + ([dense] if dense else [])
        print(f"  {method}: idle {idle['seconds']:.2f} s, beside a busy core {busy['seconds']:.2f} s"
              + (f", dense {dense['seconds']:.1f} s" if dense else ""), flush=True)

    header = (f"{'method':<13} {'N':>7} {'idle s':>7} {'÷ floor':>7} {'busy s':>7} {'busy÷idle':>9} {'dense s':>8} "
              f"{'speed-up':>8} {'seqgcn MB':>9} {'dense MB':>8} {'same as dense':>13}")
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        dense = "—" if r["dense_s"] is None else f"{r['dense_s']:.1f}"
        speedup = "—" if r["speedup"] is None else f"{r['speedup']:.1f}×"
        dense_mb = "—" if r["dense_peak_mb"] is None else f"{r['dense_peak_mb']:.0f}"
        agree = "—" if r["same_as_dense"] != r["same_as_dense"] else f"{100 * r['same_as_dense']:.1f} %"
        print(f"{r['method']:<13} {r['n_items']:>7,} {r['idle_s']:>7.2f} {r['idle_over_floor']:>6.2f}× {r['busy_s']:>7.2f} "
              f"{r['busy_over_idle']:>8.2f}× {dense:>8} "
              f"{speedup:>8} {r['seqgcn_peak_mb']:>9.0f} {dense_mb:>8} {agree:>13}")

    print("\nPicks with torch threads × workers (each a fresh process), against threads 2 × workers 2 idle:")
    identity = {}
    for r, method in zip(rows, METHODS):
        reference = next(x for x in runs if x["method"] == method and x["impl"] == "seqgcn")["picks"]
        same = {"busy core": r["same_picks_busy"]}
        for threads, workers in ((1, 1), (1, 2), (2, 1), (2, 2)):
            same[f"threads {threads}, workers {workers}"] = bool(np.array_equal(
                run_one("seqgcn", method, n, a, threads=threads, workers=workers, tag="-check")["picks"], reference))
        identity[method] = same
        print(f"  {method}: " + ", ".join(f"{k} {'same' if v else 'DIFFERENT'}" for k, v in same.items()), flush=True)

    threads_check = check_torch_threads()
    print("\nTorch ops with one intra-op thread, called from Python threads at once ((1024, 512)·(512, 128) products):")
    for count, c in threads_check.items():
        print(f"  {count} Python thread(s): CPU ÷ wall {c['cpu_per_wall']:.2f}, results "
              f"{'bit-identical to' if c['identical'] else 'DIFFERENT from'} the same products computed alone ({c['rounds']} rounds)")

    large = []
    for n_large in a.large:
        for method in METHODS:
            r = run_one("seqgcn", method, n_large, a)
            large.append({"method": method, "n_items": n_large, "seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"]})
            print(f"  {method} at N = {n_large:,}: {r['seconds']:.2f} s, peak {r['peak_rss_mb']:.0f} MB", flush=True)

    if a.json:
        for r in runs:
            r.pop("picks", None)
        Path(a.json).write_text(json.dumps({"table": rows, "pick_identity": identity, "torch_threads_check": threads_check,
                                            "large": large, "runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
