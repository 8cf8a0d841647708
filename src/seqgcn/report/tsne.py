"""Qualitative views (paper Fig. 5–6): what each sampler saw and picked, as t-SNE maps.

A run with ``save_features`` (``seqgcn run --save-features``) keeps, per trial,
method and selecting cycle, one view (`seqgcn.experiment.rundir.save_view`):

    method      the method's label (a 0-d string array)
    trial, cycle
    nodes       (N,) global indices of D_S ∪ L, candidates first
    features    (N, d) the learner's features of those rows (what a feature sampler reads)
    labelled    (n_L,) global, before the selection
    candidates  (n_S,) global, D_S
    selected    (budget,) global, the items picked in this cycle
    truth       (N,) or (N, k) the true targets of the nodes (simulation only; absent otherwise)

`plot_tsne` (``seqgcn plot tsne RUN_DIR --cycles 1 4 [--methods A B]``) embeds each view's
features with scikit-learn's t-SNE and draws a grid: one row per method, one
column per cycle; unlabelled candidates as small dots, labelled items as squares,
newly selected items as stars with a black edge, coloured by true class for
classification (and in three fixed colours otherwise).
"""

from __future__ import annotations

import io
import math

import numpy as np

from seqgcn.checks import InputError

def plot_tsne(views: dict, *, run_methods=(), cycles=None, methods=None, trial: int = 0, perplexity: float = 30.0,
              seed: int = 0) -> bytes:
    """The t-SNE grid of saved views {(method, cycle): arrays} as PNG bytes.

    run_methods : the run's method order (methods saved but not in it follow, alphabetically).
    cycles / methods : which to draw (default: every saved one, methods in run order).
    Unknown cycles or methods are an InputError naming the saved ones.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from sklearn.manifold import TSNE

    saved = {m for m, _ in views}
    saved_methods = [m for m in run_methods if m in saved] + sorted(saved - set(run_methods))
    saved_cycles = sorted({c for _, c in views})
    methods = list(methods) if methods else saved_methods
    cycles = [int(c) for c in cycles] if cycles else saved_cycles
    for name, asked, saved in (("method", methods, saved_methods), ("cycle", cycles, saved_cycles)):
        missing = [a for a in asked if a not in saved]
        if missing:
            raise InputError(f"no saved features for {name} {missing[0]!r} (trial {trial}); saved: {', '.join(map(str, saved))}")

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
        png = io.BytesIO()
        fig.savefig(png, format="png")
    finally:
        plt.close(fig)
    return png.getvalue()


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
