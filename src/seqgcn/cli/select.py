"""`seqgcn select`: a feature matrix and the labelled items in, the global indices to label next out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from seqgcn.cli.options import SAMPLER_OPTION_FLAGS, add_sampler_arguments, device_arg, sampler_options
from seqgcn.checks import InputError, check_features
from seqgcn.io import StorageError, write_output
from seqgcn.samplers import (FeatureSampler, LearnerOutputs, OutputSampler, build_sampler, check_method_options,
                             feature_samplers, output_samplers, sampler_class)
from seqgcn.samplers.base import check_probabilities

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NPY_MAGIC = b"\x93NUMPY"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "select",
        help="pick the next items to label from a feature matrix",
        description="Read features (an (N, m) .npy file, row i = item i) and the labelled items, "
        "and print the global indices of the items to label next, one per line.",
    )
    p.add_argument("--features", metavar="F.npy", help="(N, m) float array saved with numpy.save; row i is item i (for BADGE: "
                   "the layer before the classifier). Required except for the methods that read only --probs")
    p.add_argument("--probs", metavar="P.npy", help="(N, classes) class probabilities (softmax rows summing to 1) saved with "
                   f"numpy.save, row i = item i: what {', '.join(_probability_methods())} read")
    p.add_argument("--labelled", required=True, metavar="L.txt", help="text file of labelled item indices (0-based rows of F), one per line; may be empty for Random, CoreSet and FeatProp")
    p.add_argument("--budget", required=True, type=int, metavar="B", help="how many items to pick")
    p.add_argument("--method", default="CoreGCN", metavar="M", help=f"sampler: one of {', '.join(feature_samplers())} (features), "
                   f"{', '.join(_probability_methods())} (--probs), options allowed, e.g. 'UncertainGCN(layers=3)' "
                   "(default: CoreGCN; VAAL, LearningLoss and BALD need 'seqgcn run')")
    p.add_argument("--candidates", metavar="C.txt", help="only pick among these unlabelled indices (the random subset D_S), one per line; default: every unlabelled item")
    p.add_argument("--out", metavar="O.txt", help="write the selected indices here instead of stdout ('-': stdout). "
                   "A regular file is replaced atomically (through a symlink: the link's target is replaced, the link "
                   "stays); a named pipe or a device (/dev/stdout, /dev/null) is written through; one of the input "
                   "files or a directory is refused")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same selection")
    p.add_argument("--epochs", dest="gcn_epochs", type=int, default=None, help=argparse.SUPPRESS)  # older name of --gcn-epochs
    p.add_argument("--device", type=device_arg, default="cpu", metavar="DEV", help="where the sampler computes: cpu, cuda, "
                   "cuda:N or auto (default cpu)")
    p.add_argument("--diagnostics", action="store_true", help="print the GCN's training diagnostics to stderr")
    add_sampler_arguments(p)
    p.set_defaults(func=run)


def _probability_methods() -> list[str]:
    """The output samplers `select` can run from a probabilities file (not BALD: it needs dropout passes)."""
    return [m for m in output_samplers() if "passes" not in sampler_class(m).needs]


def _read_index_file(path: str, *, name: str) -> np.ndarray:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"{name} file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {name} file {path!r}: {exc}") from None
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            value = int(line)
        except ValueError:
            raise InputError(f"{name} file {path!r} line {lineno}: {line!r} is not an integer index") from None
        if not _INT64_MIN <= value <= _INT64_MAX:  # np.asarray(..., int64) would raise OverflowError
            raise InputError(f"{name} file {path!r} line {lineno}: index {value} is far too large to be a row of the features")
        values.append(value)
    return np.asarray(values, dtype=np.int64)


def _read_features(path: str, *, name: str = "features", shape: str = "(N, m)") -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            # Check the header first: on a non-.npy file numpy's own error advises enabling pickle.
            if fh.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                raise InputError(f"{name} file {path!r} is not a .npy file (no NumPy header); save the {shape} array with numpy.save")
            fh.seek(0)
            _check_npy_size(fh, path, name=name)
            return np.load(fh, allow_pickle=False)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name} file {path!r} does not exist") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {name} file {path!r} as a .npy array: {exc}") from None  # main makes it one line


def _read_probs(path: str, n_rows: int | None) -> np.ndarray:
    """The --probs file: (N, classes) probabilities, finite, each row in [0, 1] summing to 1, N = the features' rows."""
    probs = check_features(_read_features(path, name="probs", shape="(N, classes)"), name="probs")  # 2-D, finite, float32
    if n_rows is not None and len(probs) != n_rows:
        raise InputError(f"probs file {path!r} has {len(probs)} rows but the features file has {n_rows}; row i of both "
                         "must be item i")
    check_probabilities(probs, name=f"probs file {path!r}:")
    return probs


def _check_out(args) -> None:
    """Refuse an --out that is a directory or one of the (regular) input files, which writing would destroy."""
    if not args.out or args.out == "-":
        return
    if os.path.isdir(args.out):
        raise InputError(f"--out {args.out!r} is a directory; give a file path")
    inputs = {"--features": args.features, "--probs": args.probs, "--labelled": args.labelled, "--candidates": args.candidates}
    for option, given in inputs.items():
        if given and os.path.isfile(given) and os.path.exists(args.out) and os.path.samefile(given, args.out):
            raise InputError(f"--out {args.out!r} is the {option} file {given!r}; writing there would destroy it; "
                           "choose another --out")


def _check_npy_size(fh, path: str, *, name: str = "features") -> None:
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
        raise InputError(f"{name} file {path!r} is truncated or corrupt: its header claims shape {shape} of {dtype} "
                       f"({claimed} bytes) but the file holds {held} bytes of data")


def _write_stdout(text: str) -> None:
    """Print the picks; a stdout that cannot take them (a full disk, a closed pipe) is a `StorageError`, one line.

    The unwritten rest is sent to /dev/null, so that Python's own flush at exit does not fail a second time
    with a traceback.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        try:
            fd = sys.stdout.fileno()
        except (OSError, ValueError):  # no file descriptor (e.g. a captured stdout)
            fd = None
        if fd is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        raise StorageError(exc.errno, f"cannot write the selected indices to standard output: {exc.strerror or exc}") from None


def run(args) -> int:
    _check_out(args)  # before any work: a bad --out fails fast
    kind = sampler_class(args.method)  # an unknown name fails before any file is read
    reads_probs = issubclass(kind, OutputSampler) and kind.name in _probability_methods()
    if not (issubclass(kind, FeatureSampler) or reads_probs):
        raise InputError(f"{kind.name} reads {kind.reads}, so 'seqgcn select' cannot run it; "
                       f"use 'seqgcn run --methods {kind.name}' (add --dataset NAME for your data)")
    if reads_probs and not args.probs:
        raise InputError(f"{kind.name} reads class probabilities: give --probs P.npy (N × classes, rows summing to 1)")
    if args.probs and not reads_probs:
        raise InputError(f"--probs is read by {', '.join(_probability_methods())} only; {kind.name} reads features")
    needs_features = not reads_probs or "features" in kind.needs
    if needs_features and not args.features:
        raise InputError(f"{kind.name} reads features: give --features F.npy" + (" (the layer before the classifier)" if reads_probs else ""))
    if not 0 <= args.seed <= _INT64_MAX:  # otherwise each sampler fails differently (or not at all)
        raise InputError(f"--seed={args.seed} must be an integer in [0, {_INT64_MAX}]")
    options = sampler_options(args)
    check_method_options([args.method], options, labels=SAMPLER_OPTION_FLAGS)
    sampler = build_sampler(args.method, seed=args.seed, device=args.device, options=options,
                            progress=sys.stderr.isatty())  # a bar over the GCN's steps, only for a person watching
    features = _read_features(args.features) if args.features else None
    labelled = _read_index_file(args.labelled, name="labelled")
    candidates = _read_index_file(args.candidates, name="candidates") if args.candidates else None
    if reads_probs:
        if features is not None:
            features = check_features(features)
        probs = _read_probs(args.probs, None if features is None else len(features))
        outputs = LearnerOutputs(features=features if "features" in kind.needs else None, probs=probs)
        picked = sampler.select(outputs, labelled, args.budget, candidates=candidates)
    else:
        picked = sampler.select(features, labelled, args.budget, candidates=candidates)
    text = "".join(f"{i}\n" for i in picked)
    if args.out and args.out != "-":
        write_output(args.out, text)
    else:
        _write_stdout(text)
    if args.diagnostics and getattr(sampler, "diagnostics_", None):
        for key, value in sampler.diagnostics_.items():
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}", file=sys.stderr)
    return 0
