"""`seqgcn run`: an experiment (trials × methods × cycles) from a preset, a config file and options."""

from __future__ import annotations

import argparse
import sys
import time

from seqgcn.checks import InputError
from seqgcn.cli.embed import add_encoder_arguments, refuse_cnn_options
from seqgcn.cli.options import SAMPLER_OPTIONS, add_device_argument, add_learner_arguments, add_sampler_arguments, subset_arg
from seqgcn.experiment import run_experiment
from seqgcn.experiment.config import ExperimentConfig, load_config_file, merge_options
from seqgcn.experiment.presets import available_presets
from seqgcn.experiment.rundir import LEARNING_CURVE, RESULTS_CSV, check_resume_config, read_run_config
from seqgcn.experiment.runners import LocalRunner, RayRunner, import_ray

_CONFIG_OPTIONS = ("preset", "dataset", "data_dir", "pool_dataset", "pool_data_dir", "upper_bound", "methods", "trials",
                   "cycles", "seed_size", "budget", "subset", "arch", "epochs", "batch_size", "optimizer", "lr", "device",
                   "seed", "threads", "save_features", "encoder", "encoder_input_size", "encoder_channel_order",
                   "encoder_mean", "encoder_std", "head_hidden")



def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `seqgcn run`; None = not given (the preset, the config file or the default decides)."""
    d = ExperimentConfig()
    proto = parser.add_argument_group("protocol (each default below can be changed by --preset or --config)")
    proto.add_argument("--preset", metavar="NAME", help=f"start from a paper protocol: {', '.join(available_presets())} "
                       "(settings of SPEC §6); --config and the other options override its values")
    proto.add_argument("--dataset", metavar="NAME", help=f"dataset name: digits, rotated_digits (regression), cifar10, cifar100, "
                       f"fashionmnist, svhn, icvl, folder (default {d.dataset}: embedded, no files needed)")
    proto.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files (with --backend ray: "
                       "readable under this path on every node)")
    proto.add_argument("--methods", nargs="+", metavar="M", help=f"samplers to compare; a name may carry options, e.g. "
                       f"\"UncertainGCN(adjacency=eye)\" (default: {' '.join(d.methods)})")
    proto.add_argument("--trials", type=int, metavar="N", help=f"independent trials, each with its own seed set (default {d.trials})")
    proto.add_argument("--cycles", type=int, metavar="N", help=f"learner trainings per trial; the last one only evaluates (default {d.cycles})")
    proto.add_argument("--seed-size", type=int, metavar="N", help=f"items in the random seed set (default {d.seed_size})")
    proto.add_argument("--budget", type=int, metavar="N", help=f"items labelled per cycle (default {d.budget})")
    proto.add_argument("--subset", type=subset_arg, metavar="N", help=f"size of the random candidate subset D_S, or 'all' (default {d.subset})")
    add_device_argument(proto, d.device)
    proto.add_argument("--threads", type=int, metavar="N", help=f"torch CPU threads of each job (default {d.threads}); "
                       "part of the config: float sums, hence results, depend on it")
    proto.add_argument("--seed", type=int, metavar="N", help=f"base random seed (default {d.seed}); same seed, same results")

    add_learner_arguments(parser)
    add_encoder_arguments(parser, head_steps=False, batch=False)
    add_sampler_arguments(parser)

    pool = parser.add_argument_group("synthetic pool (paper §4.3)")
    pool.add_argument("--pool-dataset", metavar="NAME", help="draw the candidates only from this dataset (e.g. folder: "
                      "synthetic images); the seed set comes from --dataset and the test set is --dataset's")
    pool.add_argument("--pool-data-dir", metavar="DIR", help="folder holding the pool dataset's files")

    mode = parser.add_argument_group("mode and files")
    mode.add_argument("--upper-bound", action="store_true", default=None, help="instead of active learning, train the "
                      "learner once per trial on the whole training set (real + pool with --pool-dataset) and report "
                      "the test metric, mean ± std over trials")
    mode.add_argument("--out", metavar="DIR", help="run directory (default: a new runs/<timestamp>-<dataset>)")
    mode.add_argument("--save-features", action="store_true", default=None, help="save, per trial, method and cycle, the "
                      "features the sampler saw and the labelled / candidate / selected items (RUN_DIR/features/*.npz, "
                      "compressed) for `seqgcn plot tsne RUN_DIR`")
    mode.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run: only its unfinished jobs, "
                      "each from its last checkpointed cycle")
    mode.add_argument("--config", metavar="FILE", help="YAML or TOML file with the same options (dashes or underscores); "
                      "command-line options override it; it may also set the other ExperimentConfig fields "
                      "(momentum, weight_decay, milestones, ...) and `preset`")

    backend = parser.add_argument_group("backend (how the (trial, method) jobs run; the results do not depend on it)")
    backend.add_argument("--backend", choices=["local", "ray"], default="local", help="local: worker processes on this "
                         "machine (default); ray: each job a Ray task (pip install 'seqgcn[ray]')")
    backend.add_argument("--workers", type=int, metavar="N", help="local: jobs run at once, one process each (default: "
                         "CPU cores // --threads; 1 runs them in this process)")
    backend.add_argument("--cpus-per-job", type=float, metavar="X", help="ray: CPUs reserved per job (default: --threads; "
                         "torch uses --threads threads whatever is reserved)")
    backend.add_argument("--gpus-per-job", type=float, metavar="X", help="ray: GPUs per job, fractions share a GPU "
                         "(default 1 with --device cuda, else 0)")
    backend.add_argument("--ray-address", metavar="ADDR", help="ray: join this cluster (HOST:PORT or 'auto'); default: "
                         "start a local Ray instance for the run. The run dir and --data-dir must be on storage every "
                         "node reads and writes under the same path")


def config_from_args(args):
    """(ExperimentConfig, output dir) from the parsed options: default < stored (resume) < config file < command line."""
    given = {k: getattr(args, k) for k in _CONFIG_OPTIONS if getattr(args, k, None) is not None}
    given.update({k: getattr(args, k) for k in SAMPLER_OPTIONS if getattr(args, k, None) is not None})
    file_values = load_config_file(args.config) if args.config else {}
    if args.resume is not None and args.out is not None:
        raise InputError("give either --resume RUN_DIR or --out DIR, not both: a resumed run writes into RUN_DIR")
    stored = read_run_config(args.resume) if args.resume is not None else None
    config, out = merge_options(file_values, given, config_file=args.config, stored=stored, out=args.out)
    if args.resume is None:
        return config, out
    check_resume_config(args.resume, config)
    return config, args.resume


def runner_from_args(args):
    """The backend of `seqgcn run`: LocalRunner, or RayRunner with the --*-per-job and --ray-address options."""
    ray_only = {"--cpus-per-job": ("cpus_per_job", args.cpus_per_job), "--gpus-per-job": ("gpus_per_job", args.gpus_per_job),
                "--ray-address": ("address", args.ray_address)}
    given = {option: (name, value) for option, (name, value) in ray_only.items() if value is not None}
    if args.backend == "local":
        if given:
            raise InputError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --backend ray")
        return LocalRunner(workers=args.workers)
    if args.workers is not None:
        raise InputError("--workers applies only to --backend local (with ray, --cpus-per-job and the cluster decide)")
    import_ray()  # not installed -> one line naming the extra
    return RayRunner(**dict(given.values()))


def run(args) -> int:
    """`seqgcn run`: run (or resume) an experiment, print the table and where the files are."""
    if args.encoder is not None:  # the head's steps and rate are its own (`HeadConfig`)
        refuse_cnn_options(args, ("arch", "batch_size", "optimizer", "epochs", "lr"))
    config, out = config_from_args(args)
    runner = runner_from_args(args)
    start = time.perf_counter()
    result = run_experiment(config, out, resume=args.resume is not None, progress=True, runner=runner)
    print(result.table)
    print(f"\nresults: {result.paths[RESULTS_CSV]}")
    if LEARNING_CURVE in result.paths:  # an upper-bound run has no learning curve
        print(f"plot:    {result.paths[LEARNING_CURVE]}")
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an active-learning experiment (default: the embedded digits)",
        description="Run the paper's cycle: train the learner, build the graph, train the GCN, "
        "select, label, repeat; over several methods and trials.",
    )
    add_run_arguments(p)
    p.set_defaults(func=run)
