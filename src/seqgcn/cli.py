"""Command line: `seqgcn select` (features in, indices out), `seqgcn run` (the full cycle), `seqgcn report`;
`seqgcn plot tsne` (`seqgcn.plots`) and the labelling commands (`seqgcn.labelling.cli`) add their own parsers.

Bad input ends with one line on stderr, `seqgcn: error: ...`, and exit code 2;
nothing is written in that case.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from seqgcn._io import StorageError, write_output

EXIT_USAGE = 2
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NPY_MAGIC = b"\x93NUMPY"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; keep the one-line contract instead."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"seqgcn: error: {message} (see '{self.prog} --help')\n")


def _fail(message: str) -> int:
    print(f"seqgcn: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# --------------------------------------------------------------------------- select
def _add_select_parser(sub) -> None:
    from seqgcn.samplers import available_samplers, sampler_needs

    p = sub.add_parser(
        "select",
        help="pick the next items to label from a feature matrix",
        description="Read features (an (N, m) .npy file, row i = item i) and the labelled items, "
        "and print the global indices of the items to label next, one per line.",
    )
    p.add_argument("--features", required=True, metavar="F.npy", help="(N, m) float array saved with numpy.save; row i is item i")
    p.add_argument("--labelled", required=True, metavar="L.txt", help="text file of labelled item indices (0-based rows of F), one per line; may be empty for Random, CoreSet and FeatProp")
    p.add_argument("--budget", required=True, type=int, metavar="B", help="how many items to pick")
    feature_samplers = [m for m in available_samplers() if sampler_needs(m) == "features"]
    p.add_argument("--method", default="CoreGCN", metavar="M", help=f"sampler: one of {', '.join(feature_samplers)}, options "
                   "allowed, e.g. 'UncertainGCN(layers=3)' (default: CoreGCN; VAAL and LearningLoss need 'seqgcn run')")
    p.add_argument("--candidates", metavar="C.txt", help="only pick among these unlabelled indices (the random subset D_S), one per line; default: every unlabelled item")
    p.add_argument("--out", metavar="O.txt", help="write the selected indices here instead of stdout ('-': stdout). "
                   "A regular file is replaced atomically (through a symlink: the link's target is replaced, the link "
                   "stays); a named pipe or a device (/dev/stdout, /dev/null) is written through; one of the input "
                   "files or a directory is refused")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same selection")
    p.add_argument("--normalization", choices=["column", "row"], default=None, help="GCN adjacency normalisation: 'column' (reference code, default) or 'row' (paper eq. 4)")
    p.add_argument("--margin-rule", choices=["closest", "farthest"], default=None, help="UncertainGCN: pick scores closest to s_margin (reference code, default) or farthest (paper eq. 7 literal)")
    p.add_argument("--epochs", type=int, default=None, help="GCN training steps (default 200)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where the sampler computes (default cpu)")
    p.add_argument("--diagnostics", action="store_true", help="print the GCN's training diagnostics to stderr")
    p.set_defaults(func=_cmd_select)


def _read_index_file(path: str, *, name: str) -> np.ndarray:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CLIError(f"{name} file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {name} file {path!r}: {exc}") from None
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            value = int(line)
        except ValueError:
            raise CLIError(f"{name} file {path!r} line {lineno}: {line!r} is not an integer index") from None
        if not _INT64_MIN <= value <= _INT64_MAX:  # np.asarray(..., int64) would raise OverflowError
            raise CLIError(f"{name} file {path!r} line {lineno}: index {value} is far too large to be a row of the features")
        values.append(value)
    return np.asarray(values, dtype=np.int64)


def _read_features(path: str) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            # Check the header first: on a non-.npy file numpy's own error advises enabling pickle.
            if fh.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                raise CLIError(f"features file {path!r} is not a .npy file (no NumPy header); save the (N, m) array with numpy.save")
            fh.seek(0)
            _check_npy_size(fh, path)
            return np.load(fh, allow_pickle=False)
    except FileNotFoundError:
        raise CLIError(f"features file {path!r} does not exist") from None
    except (OSError, ValueError, EOFError) as exc:
        raise CLIError(f"cannot read features file {path!r} as a .npy array: {exc}") from None  # main makes it one line


def _check_out(args) -> None:
    """Refuse an --out that is a directory or one of the (regular) input files, which writing would destroy."""
    if not args.out or args.out == "-":
        return
    if os.path.isdir(args.out):
        raise CLIError(f"--out {args.out!r} is a directory; give a file path")
    inputs = {"--features": args.features, "--labelled": args.labelled, "--candidates": args.candidates}
    for option, given in inputs.items():
        if given and os.path.isfile(given) and os.path.exists(args.out) and os.path.samefile(given, args.out):
            raise CLIError(f"--out {args.out!r} is the {option} file {given!r}; writing there would destroy it; "
                           "choose another --out")


def _check_npy_size(fh, path: str) -> None:
    """Refuse a .npy whose header claims more data than the file holds (numpy would try to allocate it all first).

    Reads the header only and leaves `fh` at the start; a stream that cannot seek is left to numpy.
    """
    if not fh.seekable():
        return
    fmt = np.lib.format
    reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(fh))
    if reader is None:  # format 3.0 (utf-8 field names): left to numpy
        fh.seek(0)
        return
    shape, _, dtype = reader(fh)
    if dtype.hasobject:  # np.load refuses it (allow_pickle=False) with its own one-line message
        fh.seek(0)
        return
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = os.fstat(fh.fileno()).st_size - fh.tell()
    fh.seek(0)
    if claimed > held:
        raise CLIError(f"features file {path!r} is truncated or corrupt: its header claims shape {shape} of {dtype} "
                       f"({claimed} bytes) but the file holds {held} bytes of data")


def _cmd_select(args) -> int:
    from seqgcn.samplers import get_sampler

    _check_out(args)  # before any work: a bad --out fails fast
    features = _read_features(args.features)
    labelled = _read_index_file(args.labelled, name="labelled")
    candidates = _read_index_file(args.candidates, name="candidates") if args.candidates else None
    if not 0 <= args.seed <= _INT64_MAX:  # otherwise each sampler fails differently (or not at all)
        raise CLIError(f"--seed={args.seed} must be an integer in [0, {_INT64_MAX}]")
    params = {"seed": args.seed}
    gcn_only = {"normalization": args.normalization, "margin_rule": args.margin_rule, "epochs": args.epochs}
    method = args.method
    sampler = get_sampler(method)  # validates the name before any work
    needs = getattr(sampler, "needs", "features")
    if needs != "features":
        what = "the training images" if needs == "images" else "the learner's internals (it trains alongside the learner)"
        raise CLIError(f"{sampler.name} reads {what}, not features, so 'seqgcn select' cannot run it; "
                       f"use 'seqgcn run --methods {sampler.name}' (add --dataset NAME for your data)")
    for key, value in gcn_only.items():
        if value is not None:
            if not hasattr(sampler, key):
                raise CLIError(f"--{key.replace('_', '-')} does not apply to method {sampler.name}")
            params[key] = value
    if hasattr(sampler, "device"):
        params["device"] = args.device
    if hasattr(sampler, "progress"):
        params["progress"] = sys.stderr.isatty()  # a bar over the GCN's steps, only for a person watching
    sampler = get_sampler(method, **params)
    picked = sampler.select(features, labelled, args.budget, candidates=candidates)
    text = "".join(f"{i}\n" for i in picked)
    if args.out and args.out != "-":
        write_output(args.out, text)
    else:
        sys.stdout.write(text)
    if args.diagnostics and getattr(sampler, "diagnostics_", None):
        for key, value in sampler.diagnostics_.items():
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- run
_CONFIG_OPTIONS = ("preset", "dataset", "data_dir", "pool_dataset", "pool_data_dir", "upper_bound", "methods", "trials",
                   "cycles", "seed_size", "budget", "subset", "arch", "epochs", "batch_size", "optimizer", "lr", "device",
                   "seed", "save_features")


def subset_arg(text: str):
    """An integer, or "all" (kept as text: None would read as "not given" in `config_from_args`; `from_dict` maps it)."""
    if text.lower() in ("all", "none"):
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None


def add_learner_arguments(parser: argparse.ArgumentParser, *, title: str = "learner") -> None:
    """The learner options (`seqgcn run`, `seqgcn query`); None = not given, the config decides (`ExperimentConfig`)."""
    from seqgcn.config import LR_BY_OPTIMIZER, ExperimentConfig

    d = ExperimentConfig()
    sgd, adam = LR_BY_OPTIMIZER["sgd"], LR_BY_OPTIMIZER["adam"]
    learner = parser.add_argument_group(title)
    learner.add_argument("--arch", metavar="NAME", help=f"learner network: small_cnn, resnet18, vgg11, deepprior "
                         f"(default {d.arch}: small_cnn for images up to 16 px, deepprior for depth crops, else resnet18)")
    learner.add_argument("--epochs", type=int, metavar="N", help=f"learner epochs per cycle (default {d.epochs})")
    learner.add_argument("--batch-size", type=int, metavar="N", help=f"images per learner step (default {d.batch_size})")
    learner.add_argument("--optimizer", choices=["sgd", "adam"], help="learner optimiser (default: by task, "
                         "sgd for classification, adam for regression as the paper's DeepPrior)")
    learner.add_argument("--lr", type=float, metavar="X", help=f"initial learning rate (default: by optimiser, {sgd:g} for sgd, "
                         f"{adam:g} for adam)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `seqgcn run`; None = not given (the preset, the config file or the default decides)."""
    from seqgcn.config import ExperimentConfig
    from seqgcn.presets import available_presets

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
    proto.add_argument("--device", choices=["cpu", "cuda", "auto"], help=f"where the learner and the sampler run (default {d.device})")
    proto.add_argument("--seed", type=int, metavar="N", help=f"base random seed (default {d.seed}); same seed, same results")

    add_learner_arguments(parser)

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
    backend.add_argument("--backend", choices=["local", "ray"], default="local", help="local: one job after another in "
                         "this process (default); ray: each job a Ray task (pip install 'seqgcn[ray]')")
    backend.add_argument("--cpus-per-job", type=float, metavar="X", help="ray: CPUs per job; torch uses as many "
                         "threads (default 1)")
    backend.add_argument("--gpus-per-job", type=float, metavar="X", help="ray: GPUs per job, fractions share a GPU "
                         "(default 1 with --device cuda, else 0)")
    backend.add_argument("--ray-address", metavar="ADDR", help="ray: join this cluster (HOST:PORT or 'auto'); default: "
                         "start a local Ray instance for the run. The run dir and --data-dir must be on storage every "
                         "node reads and writes under the same path")


def config_from_args(args):
    """(ExperimentConfig, output dir) from the parsed options: default < stored (resume) < config file < command line."""
    from seqgcn.config import load_config_file, merge_options

    given = {k: getattr(args, k) for k in _CONFIG_OPTIONS if getattr(args, k, None) is not None}
    file_values = load_config_file(args.config) if args.config else {}
    return merge_options(file_values, given, config_file=args.config, resume=args.resume, out=args.out)


def runner_from_args(args):
    """The backend of `seqgcn run`: LocalRunner, or RayRunner with the --*-per-job and --ray-address options."""
    from seqgcn.runner import LocalRunner, RayRunner, import_ray

    ray_only = {"--cpus-per-job": ("cpus_per_job", args.cpus_per_job), "--gpus-per-job": ("gpus_per_job", args.gpus_per_job),
                "--ray-address": ("address", args.ray_address)}
    given = {option: (name, value) for option, (name, value) in ray_only.items() if value is not None}
    if args.backend == "local":
        if given:
            raise CLIError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --backend ray")
        return LocalRunner()
    import_ray()  # not installed -> one line naming the extra
    return RayRunner(**dict(given.values()))


def _cmd_run(args) -> int:
    """`seqgcn run`: run (or resume) an experiment, print the table and where the files are."""
    import time

    from seqgcn.experiment import run_experiment

    config, out = config_from_args(args)
    runner = runner_from_args(args)
    start = time.perf_counter()
    result = run_experiment(config, out, resume=args.resume is not None, progress=True, runner=runner)
    print(result.table)
    print(f"\nresults: {result.paths['results.csv']}")
    if "learning_curve.png" in result.paths:  # an upper-bound run has no learning curve
        print(f"plot:    {result.paths['learning_curve.png']}")
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


def _add_run_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an active-learning experiment (default: the embedded digits)",
        description="Run the paper's cycle: train the learner, build the graph, train the GCN, "
        "select, label, repeat; over several methods and trials.",
    )
    add_run_arguments(p)
    p.set_defaults(func=_cmd_run)


# --------------------------------------------------------------------------- report
def _add_report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="table, AUBC and learning curve of finished runs",
        description="Print the mean ± std table and the AUBC of finished runs and redraw their learning curve. "
        "Several runs of the same protocol (e.g. with different methods) are combined into one table.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories holding results.json")
    p.add_argument("--plot", metavar="FILE.png", help="where to draw the learning curve (default: RUN_DIR/learning_curve.png "
                   "for one run, combined_learning_curve.png next to the first run for several)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from seqgcn.results import report

    text, plot_path = report(args.run_dirs, args.plot)
    print(text)
    if plot_path is not None:
        print(f"\nplot: {plot_path}")
    return 0


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from seqgcn import __version__
    from seqgcn.labelling.cli import add_labelling_commands
    from seqgcn.plots import add_plot_parser

    parser = _OneLineParser(
        prog="seqgcn",
        description="Deep active learning with Sequential Graph Convolutional Networks (Caramalau et al., CVPR 2021).",
    )
    parser.add_argument("--version", action="version", version=f"seqgcn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_select_parser(sub)
    _add_run_parser(sub)
    _add_report_parser(sub)
    add_plot_parser(sub)  # plot tsne (seqgcn.plots)
    add_labelling_commands(sub)  # query, import-labels, labelstudio (seqgcn.labelling.cli)
    return parser


def main(argv=None) -> int:
    from seqgcn.runner import JobFailed

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    # StorageError: disk full, read-only, no permission; FloatingPointError: training diverged (lr too high)
    except (CLIError, ValueError, TypeError, StorageError, FloatingPointError) as exc:
        return _fail(" ".join(str(exc).split()))  # the one-line contract holds for any message
    except JobFailed as exc:  # a worker kept dying: not a usage error; the finished cycles are checkpointed
        print(f"seqgcn: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("seqgcn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
