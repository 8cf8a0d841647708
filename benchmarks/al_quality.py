"""Active-learning quality of every method: learning curves and AUBC, on the embedded digits or rotated digits.

Runs the default protocol of `seqgcn run` (seed set 40, budget 40, D_S 500,
8 cycles) with 5 trials and every method of the paper — Random, CoreSet,
FeatProp, VAAL, LearningLoss, UncertainGCN, CoreGCN, UncertainDiscriminator —
on the embedded digits (classification, accuracy) or on ``rotated_digits``
(regression of the rotation, mean error; every method applies to it: the
feature samplers read the regressor's features, VAAL the images, Learning Loss
the per-item squared error). It prints the per-cycle mean ± std table and the
AUBC of each method (area under the learning curve over labelled items, divided
by the x-range; see `seqgcn.report.tables`), with its gap to Random; the run directory
holds results.csv/json, summary.txt and learning_curve.png.

    python benchmarks/al_quality.py                                  # digits, 5 trials, all eight methods
    python benchmarks/al_quality.py --dataset rotated_digits
    python benchmarks/al_quality.py --trials 3 --methods Random UncertainGCN "UncertainGCN(adjacency=eye)"
    python benchmarks/al_quality.py --normalization row --gcn-epochs 100 --subset 300 --epochs 30

Every option maps onto an `ExperimentConfig` field; the run directory (default
runs/al_quality-<timestamp>) holds results.csv/json, summary.txt and the plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time


METHODS = ("Random", "CoreSet", "FeatProp", "VAAL", "LearningLoss", "UncertainGCN", "CoreGCN", "UncertainDiscriminator")


def main(argv=None) -> int:
    from seqgcn.experiment import ExperimentConfig, run_experiment

    d = ExperimentConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["digits", "rotated_digits"], default="digits", help="embedded dataset (default digits)")
    p.add_argument("--trials", type=int, default=5, help="independent trials (default 5)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"samplers, variants allowed (default: {' '.join(METHODS)})")
    p.add_argument("--out", help="run directory (default runs/al_quality-<timestamp>)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"base seed (default {d.seed})")
    p.add_argument("--cycles", type=int, default=d.cycles)
    p.add_argument("--seed-size", type=int, default=d.seed_size)
    p.add_argument("--budget", type=int, default=d.budget)
    p.add_argument("--subset", type=int, default=d.subset, help="size of D_S (0: the whole unlabelled pool)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="learner epochs per cycle")
    p.add_argument("--gcn-epochs", type=int, default=None, help="GCN training steps (sampler default: 200)")
    p.add_argument("--normalization", choices=["column", "row"], default=None, help="adjacency normalisation")
    p.add_argument("--margin-rule", choices=["closest", "farthest"], default=None, help="UncertainGCN selection rule")
    p.add_argument("--margin", type=float, default=None, help="UncertainGCN s_margin (sampler default: 0.1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--save-features", action="store_true", help="keep the views for `seqgcn plot tsne RUN_DIR`")
    args = p.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # a script may set process state; the library never does
    config = dataclasses.replace(
        d, dataset=args.dataset, save_features=args.save_features, trials=args.trials, methods=tuple(args.methods), seed=args.seed, cycles=args.cycles,
        seed_size=args.seed_size, budget=args.budget, subset=args.subset or None, epochs=args.epochs,
        gcn_epochs=args.gcn_epochs, normalization=args.normalization, margin_rule=args.margin_rule,
        margin=args.margin,
    )
    out = args.out or f"runs/al_quality-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    start = time.perf_counter()
    result = run_experiment(config, out, progress=True)
    seconds = time.perf_counter() - start

    changed = {k: v for k, v in config.to_dict().items() if v != d.to_dict()[k]}
    print(f"{args.dataset} active learning, {config.trials} trials; settings changed from the default: {changed or 'none'}")
    print(result.table)
    print()
    scale = 100.0 if result.metric_name == "accuracy" else 1.0
    better = 1.0 if result.higher_is_better else -1.0
    random = result.summary.get("Random")
    ranked = sorted(result.summary.items(), key=lambda kv: -better * kv[1]["aubc_mean"])  # best first
    width = max(len(m) for m in result.summary)
    for rank, (method, s) in enumerate(ranked, 1):
        gap = f"  ({scale * (s['aubc_mean'] - random['aubc_mean']):+.2f} vs Random)" if random and method != "Random" else ""
        print(f"{rank}. AUBC {method:>{width}}: {scale * s['aubc_mean']:.2f} ± {scale * s['aubc_std']:.2f}{gap}")
    print(f"(ranked best first; {result.metric_name}, {'higher' if result.higher_is_better else 'lower'} is better)")
    print(f"\n{seconds:.0f} s; results in {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
