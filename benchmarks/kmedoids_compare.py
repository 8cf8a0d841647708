"""FeatProp's k-Medoids: the hand-written alternating one against FasterPAM (package `kmedoids`).

Both start from the same k-means++ medoids on the same points: FeatProp's
propagated, L2-normalised features (X' = A² V over the eq. 4 graph) of synthetic
clustered data, |D_S| candidates, budget k. For each size it prints the total
distance of the points to their nearest medoid (the objective both minimise;
lower is better) and the wall time, over `--repeats` seeds.

    python benchmarks/kmedoids_compare.py                      # |D_S| = 500 (k 40) and 10,000 (k 1,000)
    python benchmarks/kmedoids_compare.py --sizes 500 --repeats 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from seqgcn.graph import Adjacency, l2_normalize
from seqgcn.samplers.featprop import fasterpam_medoids, k_medoids, total_distance

BUDGET = {500: 40, 10_000: 1_000}  # the digits protocol (D_S 500, b 40) and CIFAR-10's (D_S 10,000, b 1,000)


def propagated_points(n: int, dim: int, seed: int) -> torch.Tensor:
    """FeatProp's points for n synthetic items: 20 Gaussian clusters, ReLU'd, normalised, propagated twice."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(20, size=n)] + 0.7 * rng.normal(size=(n, dim))  # (n, dim)
    v = l2_normalize(torch.from_numpy(np.maximum(x, 0.0).astype(np.float32)))  # like post-ReLU learner features
    adj = Adjacency(v, normalization="column")
    return (adj @ (adj @ v)).contiguous()  # (n, dim)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[500, 10_000], help="|D_S| values (default 500 10000)")
    p.add_argument("--dim", type=int, default=128, help="feature width (default 128, the small CNN's)")
    p.add_argument("--repeats", type=int, default=3, help="seeds per size (default 3)")
    p.add_argument("--iterations", type=int, default=10, help="alternations of the hand-written k-Medoids (FeatProp default 10)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    warm = propagated_points(100, args.dim, 0)  # first calls pay imports (kmedoids: seconds) and kernel set-up
    fasterpam_medoids(warm, 5, rng=np.random.default_rng(0))
    k_medoids(warm, 5, iterations=2, rng=np.random.default_rng(0))
    print(f"{'|D_S|':>7} {'k':>6} {'method':>10} {'total distance':>16} {'seconds':>9}")
    for n in args.sizes:
        k = BUDGET.get(n, max(1, n // 10))
        results = {"alternate": ([], []), "fasterpam": ([], [])}
        for seed in range(args.repeats):
            points = propagated_points(n, args.dim, seed)
            for name, run in (("alternate", lambda r: k_medoids(points, k, iterations=args.iterations, rng=r)),
                              ("fasterpam", lambda r: fasterpam_medoids(points, k, rng=r))):
                start = time.perf_counter()
                medoids = run(np.random.default_rng(seed))
                seconds = time.perf_counter() - start
                results[name][0].append(total_distance(points, medoids))
                results[name][1].append(seconds)
        for name, (objective, seconds) in results.items():
            print(f"{n:>7} {k:>6} {name:>10} {np.mean(objective):>16.3f} {np.mean(seconds):>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
