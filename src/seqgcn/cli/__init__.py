"""The command line, the only argparse code in seqgcn: one module per command, shared options in `options`.

    seqgcn select          features in, indices out                    (cli/select.py)
    seqgcn embed           a folder's images through a frozen encoder  (cli/embed.py)
    seqgcn run             trials × methods × cycles                   (cli/run.py)
    seqgcn report          tables and curves of finished runs          (cli/report.py)
    seqgcn plot tsne       what each sampler saw and picked            (cli/plot.py)
    seqgcn query           the next images of a folder to label        (cli/query.py)
    seqgcn import-labels   a person's answers into labels.csv          (cli/import_labels.py)
    seqgcn labelstudio     push a batch to Label Studio, pull answers, (cli/labelstudio.py)
                           or serve as its ML backend

Bad input ends with one line on stderr, ``seqgcn: error: ...``, and exit code 2;
nothing is written in that case. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from seqgcn import __version__
from seqgcn.checks import InputError
from seqgcn.cli import embed, import_labels, labelstudio, plot, query, report, run, select
from seqgcn.experiment.runners import JobFailed
from seqgcn.io import StorageError

EXIT_USAGE = 2


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; keep the one-line contract instead."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"seqgcn: error: {message} (see '{self.prog} --help')\n")


MAX_MESSAGE = 1000  # characters of an error message shown (a huge config value must not flood the terminal)


def _fail(message: str) -> int:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE:,} more characters)"
    print(f"seqgcn: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="seqgcn",
        description="Deep active learning with Sequential Graph Convolutional Networks (Caramalau et al., CVPR 2021).",
    )
    parser.add_argument("--version", action="version", version=f"seqgcn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (select, embed, run, report, plot, query, import_labels, labelstudio):
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    # InputError: bad input; StorageError: disk full, read-only, no permission; FloatingPointError: training
    # diverged (lr too high). Any other exception is a bug: it keeps its traceback.
    except (InputError, StorageError, FloatingPointError) as exc:
        return _fail(" ".join(str(exc).split()))  # the one-line contract holds for any message
    except JobFailed as exc:  # a worker kept dying: not a usage error; the finished cycles are checkpointed
        print(f"seqgcn: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("seqgcn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
