"""Qualitative views (paper Fig. 5–6): what each sampler saw and picked, as t-SNE maps.

A run with ``save_features`` (``seqgcn run --save-features``) keeps, per trial,
method and selecting cycle, one compressed file ``RUN_DIR/features/<name>.npz``
(`save_view`) with

    method      the method's label (a 0-d string array)
    trial, cycle
    nodes       (N,) global indices of D_S ∪ L, candidates first
    features    (N, d) the learner's features of those rows (what a feature sampler reads)
    labelled    (n_L,) global, before the selection
    candidates  (n_S,) global, D_S
    selected    (budget,) global, the items picked in this cycle
    truth       (N,) or (N, k) the true targets of the nodes (simulation only; absent otherwise)

``seqgcn plot tsne RUN_DIR --cycles 1 4 [--methods A B]`` embeds each file's
features with scikit-learn's t-SNE and draws a grid: one row per method, one
column per cycle; unlabelled candidates as small dots, labelled items as squares,
newly selected items as stars with a black edge, coloured by true class for
classification (and in three fixed colours otherwise).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
from pathlib import Path

import numpy as np

FEATURES_DIR = "features"


def view_path(run_dir, *, trial: int, method: str, cycle: int) -> Path:
    """``RUN_DIR/features/t<trial>-c<cycle>-<method slug>-<hash>.npz`` (the hash keeps variant labels apart)."""
    slug = re.sub(r"[^A-Za-z0-9=.-]+", "_", method).strip("_")
    digest = hashlib.sha1(method.encode()).hexdigest()[:8]
    return Path(run_dir) / FEATURES_DIR / f"t{trial}-c{cycle}-{slug}-{digest}.npz"


def save_view(run_dir, view: dict, *, trial: int, method: str, cycle: int) -> Path:
    """Write one view (`seqgcn.loop.ActiveLearner.last_view`) compressed and atomically; return its path."""
    path = view_path(run_dir, trial=trial, method=method, cycle=cycle)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez_compressed(tmp, method=np.array(method), trial=np.array(trial), cycle=np.array(cycle), **view)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_views(run_dir, *, trial: int = 0) -> dict[tuple[str, int], dict]:
    """The saved views of `trial`: {(method, cycle): arrays}. ValueError when there are none."""
    folder = Path(run_dir) / FEATURES_DIR
    views = {}
    for path in sorted(folder.glob(f"t{int(trial)}-c*.npz")):
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        views[(str(arrays.pop("method")), int(arrays.pop("cycle")))] = arrays
    if not views:
        raise ValueError(f"no saved features for trial {trial} in {str(folder)!r}; run with --save-features first")
    return views


def plot_tsne(run_dir, out=None, *, cycles=None, methods=None, trial: int = 0, perplexity: float = 30.0, seed: int = 0) -> Path:
    """Draw the t-SNE grid of a run's saved views; return the PNG's path (default RUN_DIR/tsne.png).

    cycles / methods : which to draw (default: every saved one, methods in run order).
    Unknown cycles or methods are a ValueError naming the saved ones.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from sklearn.manifold import TSNE

    views = load_views(run_dir, trial=trial)
    saved_methods = _run_order(run_dir, {m for m, _ in views})
    saved_cycles = sorted({c for _, c in views})
    methods = list(methods) if methods else saved_methods
    cycles = [int(c) for c in cycles] if cycles else saved_cycles
    for name, asked, saved in (("method", methods, saved_methods), ("cycle", cycles, saved_cycles)):
        missing = [a for a in asked if a not in saved]
        if missing:
            raise ValueError(f"no saved features for {name} {missing[0]!r} (trial {trial}); saved: {', '.join(map(str, saved))}")

    fig, axes = plt.subplots(len(methods), len(cycles), figsize=(max(3.6 * len(cycles), 5.0), 3.4 * len(methods)), dpi=110, squeeze=False)
    classes = None
    try:
        for row, method in enumerate(methods):
            for col, cycle in enumerate(cycles):
                ax = axes[row][col]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{method}, cycle {cycle}", fontsize="small")
                view = views.get((method, cycle))
                if view is None:
                    ax.text(0.5, 0.5, "not saved", ha="center", va="center", transform=ax.transAxes)
                    continue
                classes = _draw_panel(ax, view, TSNE, perplexity=perplexity, seed=seed) or classes
        handles = [Line2D([], [], marker=".", linestyle="", color="grey", label="unlabelled candidate"),
                   Line2D([], [], marker="s", linestyle="", color="grey", markeredgecolor="black", label="labelled"),
                   Line2D([], [], marker="*", linestyle="", color="grey", markeredgecolor="black", markersize=11, label="newly selected")]
        if classes is not None:
            handles += [Line2D([], [], marker="o", linestyle="", color=plt.cm.tab10(c % 10), label=f"class {c}") for c in classes]
        ncol = min(len(handles), 3 * len(cycles))  # about 1.2 inches per entry
        fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize="small", frameon=False)
        legend_inches = 0.25 * math.ceil(len(handles) / ncol) + 0.15
        fig.suptitle(f"t-SNE of learner features, trial {trial}", fontsize="medium")
        fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 0.97))
        path = Path(out) if out is not None else Path(run_dir) / "tsne.png"
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
        try:
            fig.savefig(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return path


def _run_order(run_dir, methods: set) -> list:
    """`methods` in the order of the run's config (RUN_DIR/config.json), others after them, alphabetically."""
    import json

    try:
        stored = json.loads((Path(run_dir) / "config.json").read_text())
        order = list(stored.get("config", stored).get("methods", []))
    except (OSError, ValueError, AttributeError):
        order = []
    return [m for m in order if m in methods] + sorted(methods - set(order))


def _draw_panel(ax, view: dict, tsne_cls, *, perplexity: float, seed: int):
    """Embed one view and scatter it; return the sorted class labels drawn (None for regression)."""
    import matplotlib.pyplot as plt

    nodes, feats = view["nodes"], view["features"].astype(np.float32)
    perplexity = min(perplexity, max(1.0, (len(nodes) - 1) / 3))  # t-SNE needs perplexity < n
    xy = tsne_cls(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)  # (N, 2)
    is_lab, is_sel = np.isin(nodes, view["labelled"]), np.isin(nodes, view["selected"])
    is_cand = ~is_lab & ~is_sel
    truth = view.get("truth")
    by_class = truth is not None and truth.ndim == 1 and np.issubdtype(truth.dtype, np.integer)
    colours = plt.cm.tab10(truth % 10) if by_class else None

    def colour(mask, fixed):
        return colours[mask] if by_class else fixed

    ax.scatter(*xy[is_cand].T, s=12, alpha=0.55, c=colour(is_cand, "lightgrey"), marker=".", linewidths=0)
    ax.scatter(*xy[is_lab].T, s=16, c=colour(is_lab, "tab:blue"), marker="s", edgecolors="black", linewidths=0.4)
    ax.scatter(*xy[is_sel].T, s=70, c=colour(is_sel, "tab:red"), marker="*", edgecolors="black", linewidths=0.6)
    return sorted(int(c) for c in np.unique(truth)) if by_class else None


# --------------------------------------------------------------------------- CLI
def add_plot_parser(sub) -> None:
    """`seqgcn plot tsne RUN_DIR ...` (the one hook in cli.build_parser)."""
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
    t.add_argument("--out", metavar="PNG", help="output file (default RUN_DIR/tsne.png)")
    t.set_defaults(func=_cmd_tsne)


def _cmd_tsne(args: argparse.Namespace) -> int:
    path = plot_tsne(args.run_dir, args.out, cycles=args.cycles, methods=args.methods, trial=args.trial,
                     perplexity=args.perplexity, seed=args.seed)
    print(path)
    return 0
