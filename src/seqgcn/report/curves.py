"""Learning curves: the mean metric per method against labelled items, with a ±std band over trials."""

from __future__ import annotations

from seqgcn.report.tables import _std, curves


def plot_learning_curves(records, path, *, title: str = "", metric_name: str = "metric", scale: float = 1.0) -> None:
    """Save a PNG: per method, the mean metric vs labelled items with a ±std band over trials."""
    import matplotlib

    matplotlib.use("Agg")  # set here, not at import: a headless backend only when a plot is made
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        for method, c in curves(records).items():
            x = c["n_labelled"]
            mean = c["metric"].mean(axis=0) * scale  # (n_cycles,)
            std = _std(c["metric"]) * scale  # (n_cycles,)
            (ln,) = ax.plot(x, mean, marker="o", markersize=3, label=f"{method} (n={len(c['trials'])})")
            ax.fill_between(x, mean - std, mean + std, color=ln.get_color(), alpha=0.18, linewidth=0)
        ax.set_xlabel("labelled items")
        ax.set_ylabel(metric_name)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
