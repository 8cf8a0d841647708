"""Sampler speed and memory: seqgcn's operator GCN against a dense N×N reference.

The reference is written here the straightforward way (as research code does it):
the N×N adjacency of eq. 4 is built densely, the first layer computes A @ (X W)
every step, scores go through sigmoid then log. It draws its initial weights and
dropout masks from the same seeded generator sequence as seqgcn, so both train
the same network on the same masks and should pick (almost) the same items.

Every measurement runs in a fresh subprocess, so "peak RSS" is that run's own
high-water mark (it includes the Python interpreter, torch and the features).

    python benchmarks/sampler_speed.py                 # N = 11,000 (both) and N = 100,000 (seqgcn)
    python benchmarks/sampler_speed.py --quick         # small sizes, a smoke test
    python benchmarks/sampler_speed.py --contention    # idle vs beside a CPU hog, per thread policy

--contention times one seqgcn selection (UncertainGCN and CoreGCN, N = 5,500 by
default, or the first of --sizes) twice per thread policy: idle, then while
`--hogs` busy-loop processes (plain `while True: pass` subprocesses, started and
killed by this script) compete for the cores. It prints idle seconds, loaded
seconds and loaded ÷ idle for each policy:

    adaptive  seqgcn's default: thread count chosen by timing the steps (samplers/_threads.py)
    all       every step with all of torch's threads (seqgcn before the fix)
    one       every step with one thread

"Idle" means only as idle as the machine is: run it on an otherwise idle
machine for numbers to report.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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
        return torch.sigmoid(adj @ (feat @ w2) + b2).squeeze(1), h  # (N,), (N, hidden)

    for _ in range(epochs):
        (mask,) = dropout_masks(rng, n, hidden, 1, 1.0 - dropout)
        scores, _ = forward(mask)
        loss = -torch.log(scores[n_cand:].clamp_min(1e-12)).mean() - lam * torch.log((1 - scores[:n_cand]).clamp_min(1e-12)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores, h = forward(None)
    if method == "UncertainGCN":
        gap = (scores[:n_cand] - margin).abs().numpy()
        return nodes[np.argsort(gap, kind="stable")[:budget]]
    # CoreGCN: k-center greedy with a full (n_candidates, n_labelled) distance matrix, as research code does
    emb_c, emb_l = h[:n_cand], h[n_cand:]
    min_dist = torch.cdist(emb_c, emb_l).min(1).values
    picked = []
    for _ in range(budget):
        j = int(torch.argmax(min_dist))
        picked.append(j)
        min_dist = torch.minimum(min_dist, torch.cdist(emb_c, emb_c[j:j + 1]).squeeze(1))
    return nodes[np.array(picked)]


# --------------------------------------------------------------------------- one run, in its own process
def worker(args) -> None:
    import torch

    from seqgcn import get_sampler

    torch.set_num_threads(args.threads) if args.threads else None
    if args.policy != "adaptive":  # the old behaviours, for --contention: a fixed thread count for every step
        import seqgcn.samplers._threads as step_threads

        fixed = torch.get_num_threads() if args.policy == "all" else 1
        torch.set_num_threads(fixed)
        init = step_threads.StepThreads.__init__

        def fixed_init(self, device="cpu", **kwargs):
            init(self, device, **kwargs)
            self.options = [fixed]

        step_threads.StepThreads.__init__ = fixed_init
    features = synthetic_features(args.n_items, args.dim, args.seed)
    labelled, candidates = split(args.n_items, args.n_labelled, args.seed)
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    if args.impl == "seqgcn":
        sampler = get_sampler(args.method, seed=args.seed, normalization=args.normalization)
        picked = sampler.select(features, labelled, args.budget, candidates=candidates)
    else:
        picked = dense_reference(features, labelled, candidates, args.budget, method=args.method, seed=args.seed,
                                 normalization=args.normalization)
    seconds = time.perf_counter() - start
    np.save(args.picks, picked)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss_before}))


def run_one(impl, method, n_items, a, policy="adaptive") -> dict:
    picks = Path(a.tmp) / f"{impl}-{method}-{n_items}.npy"
    cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--method", method, "--n-items", str(n_items),
           "--n-labelled", str(a.n_labelled), "--budget", str(a.budget), "--dim", str(a.dim), "--seed", str(a.seed),
           "--normalization", a.normalization, "--picks", str(picks), "--policy", policy]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(impl=impl, method=method, n_items=n_items, picks=np.load(picks))
    return result


def contention(a) -> None:
    """Idle and loaded time of one selection per method and thread policy; see the module docstring."""
    import os

    n = a.sizes[0] if a.sizes != [11_000] else 5_500
    print(f"{os.cpu_count()} CPUs; N = {n:,}, labelled {a.n_labelled}, budget {a.budget}; {a.hogs} hog process(es) when loaded\n")
    header = f"{'method':<13} {'policy':<9} {'idle s':>8} {'loaded s':>9} {'loaded/idle':>12}"
    print(header)
    print("-" * len(header))
    table = []
    for method in a.methods:
        for policy in a.policies:
            idle = run_one("seqgcn", method, n, a, policy)["seconds"]
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.hogs)]
            try:
                time.sleep(0.5)  # let the hogs reach full speed
                loaded = run_one("seqgcn", method, n, a, policy)["seconds"]
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            table.append({"method": method, "policy": policy, "n_items": n, "idle_s": idle, "loaded_s": loaded, "ratio": loaded / idle})
            print(f"{method:<13} {policy:<9} {idle:>8.2f} {loaded:>9.2f} {loaded / idle:>11.2f}×", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"contention": table, "hogs": a.hogs}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", default="seqgcn", help=argparse.SUPPRESS)
    p.add_argument("--picks", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--method", default="UncertainGCN", help=argparse.SUPPRESS)
    p.add_argument("--n-items", type=int, default=11_000, help=argparse.SUPPRESS)
    p.add_argument("--n-labelled", type=int, default=1_000, help="labelled items (default 1,000)")
    p.add_argument("--budget", type=int, default=1_000, help="items to select (default 1,000)")
    p.add_argument("--dim", type=int, default=512, help="feature dimension m (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalization", default="column", choices=["column", "row"], help="adjacency normalisation for both implementations")
    p.add_argument("--sizes", type=int, nargs="+", default=[11_000], help="N compared against the dense reference (default 11,000)")
    p.add_argument("--large", type=int, nargs="*", default=[100_000], help="N run with seqgcn alone (default 100,000)")
    p.add_argument("--quick", action="store_true", help="smoke test: N = 2,000 and 20,000, budget 200")
    p.add_argument("--contention", action="store_true", help="idle vs beside CPU hogs, per thread policy (see above)")
    p.add_argument("--hogs", type=int, default=1, help="busy-loop processes for --contention (default 1)")
    p.add_argument("--policies", nargs="+", default=["adaptive", "all", "one"], choices=["adaptive", "all", "one"],
                   help="thread policies compared by --contention")
    p.add_argument("--methods", nargs="+", default=["UncertainGCN", "CoreGCN"], help="methods timed by --contention")
    p.add_argument("--policy", default="adaptive", help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--tmp", default="/tmp", help="where the workers leave their picks")
    a = p.parse_args()
    if a.worker:
        return worker(a)
    if a.quick:
        a.sizes, a.large, a.n_labelled, a.budget = [2_000], [20_000], 200, 200
    if a.contention:
        return contention(a)

    import torch

    import seqgcn

    print(f"seqgcn {seqgcn.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"features: synthetic non-negative, m = {a.dim}; labelled {a.n_labelled}; budget {a.budget}; "
          f"normalization {a.normalization}; 200 GCN steps, hidden 128\n")
    rows, table = [], []
    for n in a.sizes:
        for method in ("UncertainGCN", "CoreGCN"):
            ours = run_one("seqgcn", method, n, a)
            ref = run_one("dense", method, n, a)
            agree = len(np.intersect1d(ours["picks"], ref["picks"])) / a.budget
            table.append((method, n, ours["seconds"], ref["seconds"], ref["seconds"] / ours["seconds"],
                          ours["peak_rss_mb"], ref["peak_rss_mb"], agree))
            rows += [ours, ref]
    for n in a.large:
        for method in ("UncertainGCN", "CoreGCN"):
            ours = run_one("seqgcn", method, n, a)
            table.append((method, n, ours["seconds"], float("nan"), float("nan"), ours["peak_rss_mb"], float("nan"), float("nan")))
            rows.append(ours)

    header = f"{'method':<13} {'N':>8} {'seqgcn s':>9} {'dense s':>9} {'speed-up':>9} {'seqgcn MB':>10} {'dense MB':>9} {'same picks':>10}"
    print(header)
    print("-" * len(header))
    for method, n, ts, td, ratio, ms, md, agree in table:
        fmt = lambda v, f: "—" if v != v else format(v, f)  # noqa: E731  (NaN → dash)
        print(f"{method:<13} {n:>8,} {ts:>9.2f} {fmt(td, '9.2f'):>9} {fmt(ratio, '8.1f') + '×' if ratio == ratio else '—':>9} "
              f"{ms:>10.0f} {fmt(md, '9.0f'):>9} {fmt(agree * 100 if agree == agree else agree, '9.1f') + '%' if agree == agree else '—':>10}")
    print("\npeak RSS is the whole process (interpreter + torch + features), measured per run in a fresh subprocess.")
    if a.json:
        for r in rows:
            r.pop("picks")
        Path(a.json).write_text(json.dumps({"table": [dict(zip(["method", "n_items", "seqgcn_s", "dense_s", "speedup", "seqgcn_peak_mb", "dense_peak_mb", "agreement"], t)) for t in table], "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
