"""VAAL's selection time against CoreGCN's at the digits protocol (issue 7 target: VAAL ≤ 3× CoreGCN).

Per labelled-set size of the default `seqgcn run` protocol (40, 120, 200, 320
labelled; D_S = 500 candidates), times one selection of each method on the
embedded digits: VAAL on the images (default length: 3 passes for 8×8 images,
or `--passes`), CoreGCN on 128-d ReLU features (its default 200 GCN steps).
Prints the median over `--repeats` seeds and the ratio.

    python benchmarks/vaal_cost.py --threads 2
    python benchmarks/vaal_cost.py --passes 100        # the reference length
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from seqgcn.data.registry import load_dataset
from seqgcn.samplers import get_sampler


def timed(sampler, source, labelled, candidates, budget) -> float:
    start = time.perf_counter()
    sampler.select(source, labelled, budget, candidates=candidates)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labelled", nargs="+", type=int, default=[40, 120, 200, 320], help="labelled-set sizes")
    p.add_argument("--subset", type=int, default=500, help="|D_S| (default 500)")
    p.add_argument("--budget", type=int, default=40)
    p.add_argument("--passes", type=int, default=None, help="VAAL passes (default: VAAL's own, 3 for 8×8 images)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    ds = load_dataset("digits")
    rng = np.random.default_rng(0)
    features = np.maximum(rng.normal(size=(ds.n_train, 128)), 0).astype(np.float32)  # ReLU-like learner features
    vaal_name = "VAAL" if args.passes is None else f"VAAL(passes={args.passes})"
    timed(get_sampler(vaal_name), ds.x_train, np.arange(40), np.arange(40, 140), 10)  # warm-up (kernel set-up)
    timed(get_sampler("CoreGCN"), features, np.arange(40), np.arange(40, 140), 10)
    print(f"{'labelled':>8} {'VAAL iters':>10} {'VAAL s':>8} {'CoreGCN s':>9} {'ratio':>6}")
    for n_lab in args.labelled:
        vaal, gcn, iters = [], [], 0
        for seed in range(args.repeats):
            perm = np.random.default_rng(seed).permutation(ds.n_train)
            labelled, candidates = np.sort(perm[:n_lab]), np.sort(perm[n_lab:n_lab + args.subset])
            sampler = get_sampler(vaal_name, seed=seed)
            vaal.append(timed(sampler, ds.x_train, labelled, candidates, args.budget))
            iters = sampler.diagnostics_["iterations"]
            gcn.append(timed(get_sampler("CoreGCN", seed=seed), features, labelled, candidates, args.budget))
        v, g = float(np.median(vaal)), float(np.median(gcn))
        print(f"{n_lab:>8} {iters:>10} {v:>8.3f} {g:>9.3f} {v / g:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
