"""Compare the baselines over many trials: every method × N trials × three settings, then their ranks.

Settings, all on the embedded data (no files to download):

    digits_low       digits, seed set 10, budget 10          classification, accuracy (higher is better)
    digits           digits, seed set 40, budget 40          the default protocol of `seqgcn run`
    rotated_digits   rotated digits, seed set 40, budget 40  regression of the rotation angle, mean error in
                                                              degrees (lower is better)

Each setting is one `seqgcn run` (`run_experiment`) into OUT/<setting>; then
`seqgcn report --ranks` over the three prints, per setting, AUBC mean ± std and
the mean rank of each method (ranked per trial by AUBC), the Friedman p-value and
the Nemenyi critical difference, and the same pooled over the settings (trial ×
setting as blocks). Files: OUT/<setting>/ranks.csv, cd_diagram.png, win_rates.png
and OUT/pooled_ranks.csv, pooled_cd_diagram.png, pooled_win_rates.png, next to
each run's results.csv, summary.txt and learning_curve.png.

Methods: by default every registered sampler that can pick for the setting's
task (`seqgcn.samplers.methods_for_task`): all of them for digits; for rotated
digits those that accept a regression learner (the samplers that need class
probabilities, e.g. Entropy or BADGE, are left out). The pooled ranks then
cover the methods every setting ran, and say which were left out.

    python benchmarks/compare_baselines.py                              # every method × 10 trials × 3 settings
    python benchmarks/compare_baselines.py --trials 2 --cycles 2 --epochs 1 --methods Random CoreSet   # a smoke test

An OUT/<setting> that already holds a run of the same config is continued
(`--resume`), a finished one only re-read: rerunning after an interruption redoes
only the unfinished jobs. The other protocol values are `ExperimentConfig`'s
defaults (D_S 500 candidates, 8 cycles, the small CNN).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SETTINGS = {  # name: (the dataset's task, ExperimentConfig fields of the setting)
    "digits_low": ("classification", {"dataset": "digits", "seed_size": 10, "budget": 10}),
    "digits": ("classification", {"dataset": "digits", "seed_size": 40, "budget": 40}),
    "rotated_digits": ("regression", {"dataset": "rotated_digits", "seed_size": 40, "budget": 40}),
}


def main(argv=None) -> int:
    from seqgcn.checks import InputError

    try:
        return compare(argv)
    except InputError as exc:  # a bad option or a run dir of another config: one line, as `seqgcn` does
        print(f"compare_baselines: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def compare(argv=None) -> int:
    """Run the settings, then `seqgcn report --ranks` on them; print the total wall time."""
    from seqgcn.checks import InputError
    from seqgcn.cli import main as seqgcn_main
    from seqgcn.experiment import ExperimentConfig, LocalRunner, run_experiment
    from seqgcn.experiment.rundir import CONFIG
    from seqgcn.samplers import methods_for_task, sampler_class

    d = ExperimentConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", metavar="M", help="samplers, variants allowed (default: every registered one "
                   "that can pick for the setting's task)")
    p.add_argument("--trials", type=int, default=10, help="independent trials per setting (default 10)")
    p.add_argument("--cycles", type=int, default=d.cycles, help=f"learner trainings per trial (default {d.cycles})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"learner epochs per cycle (default {d.epochs})")
    p.add_argument("--gcn-epochs", type=int, default=None, help="GCN training steps (default: the samplers' own, 200); "
                   "only with a GCN method")
    p.add_argument("--workers", type=int, default=None, help="jobs run at once, one process each (default: one per core)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"base seed (default {d.seed})")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                   help="which settings to run (default all three)")
    p.add_argument("--out", help="folder of the run dirs (default runs/compare_baselines-<timestamp>)")
    args = p.parse_args(argv)

    out = Path(args.out or f"runs/compare_baselines-{time.strftime('%Y%m%d-%H%M%S')}")
    runner = LocalRunner(workers=args.workers)
    configs, skipped = {}, {}
    for name in args.settings:  # every config checked before the first run starts
        task, protocol = SETTINGS[name]
        applicable = methods_for_task(task)
        methods = [m for m in args.methods or applicable if sampler_class(m).name in applicable]
        skipped[name] = [m for m in args.methods or [] if m not in methods]
        if len(methods) < 2:
            raise InputError(f"setting {name} ({task}): ranks need at least two methods that can pick for {task}; "
                             f"of --methods only {methods or 'none'} can ({', '.join(applicable)} could)")
        fields = {**protocol, "methods": methods, "trials": args.trials, "cycles": args.cycles, "epochs": args.epochs,
                  "seed": args.seed}
        if args.gcn_epochs is not None:
            fields["gcn_epochs"] = args.gcn_epochs
        configs[name] = ExperimentConfig.from_dict(fields, source=f"setting {name}")

    start = time.perf_counter()
    run_dirs = []
    for name, config in configs.items():
        run_dir = out / name
        resume = (run_dir / CONFIG).is_file()
        notes = ([f"continuing the run in {run_dir}"] if resume else []) + \
            ([f"left out (cannot pick for {SETTINGS[name][0]}): {', '.join(skipped[name])}"] if skipped[name] else [])
        print(f"== {name}: {config.dataset}, seed set {config.seed_size}, budget {config.budget}, {config.trials} trials "
              f"× {len(config.methods)} methods ({', '.join(config.methods)}) × {config.cycles} cycles"
              + "".join(f"; {n}" for n in notes), flush=True)
        began = time.perf_counter()
        result = run_experiment(config, run_dir, resume=resume, progress=True, runner=runner)
        print(result.table)
        print(f"({time.perf_counter() - began:.0f} s; {run_dir})\n", flush=True)
        run_dirs.append(run_dir)

    code = seqgcn_main(["report", "--ranks", *map(str, run_dirs)])
    print(f"\ntotal wall time: {time.perf_counter() - start:.1f} s ({len(run_dirs)} settings, results in {out})")
    return code


if __name__ == "__main__":
    sys.exit(main())
