"""`seqgcn plot tsne RUN_DIR`: t-SNE maps of what each sampler saw and picked (a run made with --save-features)."""

from __future__ import annotations

from pathlib import Path

from seqgcn.experiment.rundir import TSNE, check_writable, load_views, run_methods
from seqgcn.io import write_atomic
from seqgcn.report.tsne import plot_tsne


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw views of a finished run (t-SNE of what each sampler picked)")
    kinds = p.add_subparsers(dest="plot_kind", metavar="KIND", required=True)
    t = kinds.add_parser("tsne", help="t-SNE grid: one panel per method and cycle (needs a run made with --save-features)",
                         description="Embed the features each sampler saw with t-SNE; mark labelled, candidate and newly selected items.")
    t.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made with --save-features")
    t.add_argument("--cycles", nargs="+", type=int, metavar="C", help="selecting cycles to draw (default: all saved)")
    t.add_argument("--methods", nargs="+", metavar="M", help="methods to draw, as labelled in the run (default: all saved)")
    t.add_argument("--trial", type=int, default=0, help="which trial (default 0)")
    t.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default 30)")
    t.add_argument("--seed", type=int, default=0, help="t-SNE seed (default 0)")
    t.add_argument("--out", metavar="PNG", help=f"output file (default RUN_DIR/{TSNE})")
    t.set_defaults(func=run)


def run(args) -> int:
    views = load_views(args.run_dir, trial=args.trial)
    path = Path(args.out) if args.out is not None else Path(args.run_dir) / TSNE
    check_writable(path)  # t-SNE takes a while: a full disk or a read-only folder is one line now, not after it
    png = plot_tsne(views, run_methods=run_methods(args.run_dir), cycles=args.cycles, methods=args.methods,
                    trial=args.trial, perplexity=args.perplexity, seed=args.seed)
    write_atomic(path, png)
    print(path)
    return 0
