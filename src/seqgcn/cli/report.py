"""`seqgcn report`: the table, AUBC and learning curve of finished runs, several runs of one protocol combined."""

from __future__ import annotations

from pathlib import Path

from seqgcn.experiment.results import combine_runs, plot, summarize_records
from seqgcn.experiment.rundir import COMBINED_CURVE, LEARNING_CURVE


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="table, AUBC and learning curve of finished runs",
        description="Print the mean ± std table and the AUBC of finished runs and redraw their learning curve. "
        "Several runs of the same protocol (e.g. with different methods) are combined into one table.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories holding results.json")
    p.add_argument("--plot", metavar="FILE.png", help="where to draw the learning curve (default: RUN_DIR/learning_curve.png "
                   "for one run, combined_learning_curve.png next to the first run for several)")
    p.set_defaults(func=run)


def report(run_dirs: list, plot_path=None) -> tuple[str, Path | None]:
    """(text, plot path): the table and AUBC of the combined runs, and their learning curve redrawn.

    `plot_path` defaults to the run's own learning curve for one run, and to the
    combined one next to the first run for several; an upper-bound run has none.
    """
    meta, records = combine_runs(run_dirs)
    _, text = summarize_records(meta, records)
    if meta["mode"] == "upper_bound":  # one record per trial: no curve
        return text, None
    first = Path(run_dirs[0])
    default = first / LEARNING_CURVE if len(run_dirs) == 1 else first.parent / COMBINED_CURVE
    plot_path = Path(plot_path) if plot_path else default
    plot(meta, records, plot_path)
    return text, plot_path


def run(args) -> int:
    text, plot_path = report(args.run_dirs, args.plot)
    print(text)
    if plot_path is not None:
        print(f"\nplot: {plot_path}")
    return 0
