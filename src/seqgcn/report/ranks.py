"""Ranks of methods over many trials: mean ranks, the Friedman test, the Nemenyi critical difference, win rates.

The input is a score table ``scores`` of shape ``(n_blocks, k)``: one row per
block (a trial of one setting; pooled over settings, a (trial, setting) pair),
one column per method, each cell one AUBC (`seqgcn.report.tables.aubc`).
Following Demšar (2006), "Statistical comparisons of classifiers over multiple
data sets", JMLR 7:1–30:

- Ranks: in each block the best method gets rank 1, the worst rank k; tied
  scores share the average of the ranks they span (1, 2.5, 2.5, 4). "Best" is
  the metric's direction, per block: the highest accuracy, the lowest error.
  The mean rank of method j is ``R̄_j = (1/N) Σ_i r_ij``.
- Friedman test, with the correction for ties that `scipy.stats.friedmanchisquare`
  applies (the statistic is equal to it; Demšar's eq. is the tie-free case)::

      χ²_F = [12 / (N k (k+1)) · Σ_j R_j² − 3 N (k+1)] / [1 − Σ_ties (t³ − t) / (N k (k² − 1))]

  with ``R_j = Σ_i r_ij`` and t the size of each group of tied scores in a
  block; p = P(χ²_{k−1} ≥ χ²_F). Unlike scipy's, it also runs for k = 2.
  Blocks that are all ties carry no information: with only those, χ²_F = 0, p = 1.
- Nemenyi critical difference: two methods differ significantly at level α
  when their mean ranks differ by at least ``CD = q_α · sqrt(k (k+1) / (6 N))``.
  q_0.05 for k ≤ 10 is Demšar's Table 5(a); otherwise (k > 10 or another α)
  it is the studentized range quantile with infinite degrees of freedom over
  √2, ``scipy.stats.studentized_range.ppf(1 − α, k, inf) / √2``, which agrees
  with the table to ±0.001 (the table prints 2.343 for 2.3437 and 2.949 for 2.9483).
- Win rate: ``W[i, j]`` = fraction of blocks where method i's score beats method
  j's, ties counting half; ``W[i, j] + W[j, i] = 1``; the diagonal is NaN.

Drawing (`plot_cd_diagram`, `plot_win_rates`) writes a PNG to a path or a file
object; as everywhere in `seqgcn.report`, no file names of a run directory.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from seqgcn.checks import InputError

# Demšar (2006), Table 5(a): critical values of the two-tailed Nemenyi test, α = 0.05, k = 2 … 10
DEMSAR_Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


@dataclass(frozen=True)
class Ranking:
    """Ranks of k methods over N blocks; what `rank_methods` returns. Arrays are in `methods` order."""

    methods: tuple            # (k,) method names
    scores: np.ndarray        # (N, k) the scores as given (AUBC, in the metric's unit)
    ranks: np.ndarray         # (N, k) 1 = best in the block, ties averaged
    mean_rank: np.ndarray     # (k,) mean over blocks
    win_rate: np.ndarray      # (k, k) W[i, j] = fraction of blocks where i beats j (ties half); diagonal NaN
    statistic: float          # Friedman χ²_F (tie-corrected)
    p_value: float            # P(χ²_{k−1} ≥ χ²_F)
    cd: float                 # Nemenyi critical difference at `alpha`, in rank units
    alpha: float              # significance level of `cd`

    @property
    def n_blocks(self) -> int:
        return int(self.ranks.shape[0])

    @property
    def order(self) -> np.ndarray:
        """Method positions sorted by mean rank, best first (a stable sort: equal mean ranks keep `methods` order)."""
        return np.argsort(self.mean_rank, kind="stable")

    def groups(self) -> list[tuple]:
        """Maximal sets of methods whose mean ranks all lie within less than CD of each other (the diagram's bars).

        Methods sorted by mean rank; a group is a run i..j with ``R̄_j − R̄_i < CD`` not inside a longer one;
        a method in no group with another one is significantly different from every other method.
        """
        order = self.order
        r = self.mean_rank[order]  # (k,) ascending
        spans, reach_before = [], 0
        for i in range(len(r)):
            j = int(np.searchsorted(r, r[i] + self.cd, side="left")) - 1  # last method within less than CD of i
            if j > i and j > reach_before:
                spans.append((i, j))
            reach_before = max(reach_before, j)
        return [tuple(self.methods[p] for p in order[i:j + 1]) for i, j in spans]


def block_ranks(scores, *, higher_is_better) -> np.ndarray:
    """Ranks (N, k) of a score table (N, k): 1 = best in each row, ties averaged.

    higher_is_better : bool, or (N,) bools, one per block (pooled settings may mix accuracy and error).
    """
    from scipy.stats import rankdata

    x = np.asarray(scores, dtype=np.float64)  # (N, k)
    better = np.broadcast_to(np.asarray(higher_is_better, dtype=bool), (x.shape[0],))  # (N,)
    oriented = np.where(better[:, None], -x, x)  # (N, k) lower is better in every row
    return rankdata(oriented, method="average", axis=1)  # (N, k)


def friedman(ranks) -> tuple[float, float]:
    """(χ²_F, p) of the Friedman test on a rank table (N, k) with ties averaged; see the module docstring."""
    from scipy.stats import chi2

    r = np.asarray(ranks, dtype=np.float64)  # (N, k)
    n, k = r.shape
    ties = 0.0
    for row in r:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts ** 3 - counts))
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0.0:  # every block all ties
        return 0.0, 1.0
    column_sums = r.sum(axis=0)  # (k,)
    statistic = (12.0 / (n * k * (k + 1)) * float(np.sum(column_sums ** 2)) - 3.0 * n * (k + 1)) / correction
    statistic = max(statistic, 0.0)  # −1e-15 from rounding is 0
    return float(statistic), float(chi2.sf(statistic, k - 1))


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_α of the Nemenyi test for k methods: Demšar's table for α = 0.05, k ≤ 10; else the studentized range / √2."""
    if alpha == 0.05 and k in DEMSAR_Q05:
        return DEMSAR_Q05[k]
    return studentized_q(k, alpha)


def studentized_q(k: int, alpha: float = 0.05) -> float:
    """``studentized_range.ppf(1 − α, k, ∞) / √2``: the value Demšar's table rounds to three decimals."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1.0 - alpha, k, np.inf)) / math.sqrt(2.0)


def critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi CD = q_α · sqrt(k (k+1) / (6 N)): mean ranks at least this far apart differ significantly."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def win_rates(ranks) -> np.ndarray:
    """W (k, k): W[i, j] = fraction of blocks where i ranks better than j, equal ranks (tied scores) counting half."""
    r = np.asarray(ranks, dtype=np.float64)  # (N, k)
    wins = (r[:, :, None] < r[:, None, :]).mean(axis=0)  # (k, k)
    ties = (r[:, :, None] == r[:, None, :]).mean(axis=0)  # (k, k)
    w = wins + 0.5 * ties
    np.fill_diagonal(w, np.nan)
    return w


def rank_methods(scores, methods, *, higher_is_better=True, alpha: float = 0.05) -> Ranking:
    """Rank k methods over N blocks: mean ranks, Friedman test, Nemenyi CD, win rates.

    scores : (N, k) one score (e.g. AUBC) per block and method, finite; N ≥ 2 blocks, k ≥ 2 methods.
    methods : k distinct names, the columns of `scores`.
    higher_is_better : bool, or (N,) bools (one direction per block).
    alpha : significance level of the critical difference, in (0, 1).
    """
    x = np.asarray(scores, dtype=np.float64)
    methods = tuple(str(m) for m in methods)
    if x.ndim != 2 or x.shape[1] != len(methods):
        raise InputError(f"scores must have shape (n_blocks, {len(methods)}) for {len(methods)} methods; got {x.shape}")
    if len(set(methods)) != len(methods):
        raise InputError(f"methods must be distinct; got {list(methods)}")
    if len(methods) < 2:
        raise InputError(f"ranks need at least two methods; got {list(methods)}")
    if x.shape[0] < 2:
        raise InputError(f"ranks need at least two blocks (trials); got {x.shape[0]}")
    if not np.isfinite(x).all():
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"score of {methods[j]!r} in block {i} is {x[i, j]}; every score must be finite")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha!r} must lie in (0, 1)")
    if np.ndim(higher_is_better) not in (0, 1) or np.size(higher_is_better) not in (1, x.shape[0]):
        raise InputError(f"higher_is_better must be one bool or {x.shape[0]} of them (one per block)")
    ranks = block_ranks(x, higher_is_better=higher_is_better)  # (N, k)
    statistic, p_value = friedman(ranks)
    return Ranking(methods=methods, scores=x, ranks=ranks, mean_rank=ranks.mean(axis=0), win_rate=win_rates(ranks),
                   statistic=statistic, p_value=p_value, cd=critical_difference(len(methods), x.shape[0], alpha),
                   alpha=alpha)


# --------------------------------------------------------------------------- text and CSV
def format_p(p: float) -> str:
    """A p-value for a person: 0.0123, 3.1e-05."""
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def ranking_text(ranking: Ranking, *, title: str, aubc: dict | None = None, scale: float = 1.0, digits: int = 2,
                 blocks: str = "trials") -> str:
    """Aligned text: one row per method, best mean rank first (AUBC mean ± std when `aubc` gives
    {method: (mean, std)}), then the Friedman p-value, the critical difference and the groups."""
    header = ["method"] + (["AUBC"] if aubc else []) + ["mean rank"]
    rows = []
    for p in ranking.order:
        m = ranking.methods[p]
        cells = [m]
        if aubc:
            mean, std = aubc[m]
            cells.append(f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}")
        rows.append(cells + [f"{ranking.mean_rank[p]:.2f}"])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]).rstrip()
             for r in [header] + rows]
    k, n = len(ranking.methods), ranking.n_blocks
    groups = ranking.groups()
    alone = [m for m in ranking.methods if not any(m in g for g in groups)]
    if groups:
        joined = "; ".join("{" + ", ".join(g) + "}" for g in groups)
        verdict = f"not significantly different: {joined}" + (f"; different from all others: {', '.join(alone)}" if alone else "")
    else:
        verdict = "every pair of methods differs significantly"
    return "\n".join([
        title, lines[0], "-" * len(lines[0]), *lines[1:], "-" * len(lines[0]),
        f"Friedman test over {n} {blocks} × {k} methods: chi2 = {ranking.statistic:.2f}, df = {k - 1}, "
        f"p = {format_p(ranking.p_value)}",
        f"Nemenyi critical difference (alpha = {ranking.alpha:g}): CD = {ranking.cd:.2f}; mean ranks at least CD "
        "apart differ significantly",
        verdict,
    ])


def ranking_csv(ranking: Ranking, *, setting: str, aubc: dict | None = None, metric_name: str = "", direction: str = "") -> str:
    """CSV: one header row, one row per method (best mean rank first); AUBC columns are empty without `aubc`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["setting", "method", "mean_rank", "aubc_mean", "aubc_std", "n_blocks", "n_methods", "friedman_chi2",
                     "friedman_p", "critical_difference", "alpha", "metric", "direction"])
    for p in ranking.order:
        m = ranking.methods[p]
        mean, std = aubc[m] if aubc else ("", "")
        writer.writerow([setting, m, repr(float(ranking.mean_rank[p])), mean, std, ranking.n_blocks, len(ranking.methods),
                         repr(ranking.statistic), repr(ranking.p_value), repr(ranking.cd), ranking.alpha, metric_name,
                         direction])
    return out.getvalue()


# --------------------------------------------------------------------------- drawing
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # set here, not at import: a headless backend only when a plot is made
    import matplotlib.pyplot as plt

    return plt


def plot_cd_diagram(ranking: Ranking, path, *, title: str = "") -> None:
    """Save a critical-difference diagram (as drawn in Demšar 2006) as PNG.

    The axis carries mean ranks, 1 (best) on the left; each method hangs from its mean
    rank, the better half labelled on the left, the other half on the right; a thick
    bar joins each group of methods not significantly different (`Ranking.groups`);
    the CD is drawn to scale above the axis.
    """
    plt = _pyplot()
    k = len(ranking.methods)
    order = ranking.order
    groups = ranking.groups()
    positions = {m: float(ranking.mean_rank[p]) for m, p in zip(ranking.methods, range(k), strict=True)}
    half = (k + 1) // 2
    bar_step, label_step = 0.13, 0.3
    first_label = 0.25 + bar_step * len(groups) + 0.1
    depth = first_label + label_step * max(half, k - half)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.8 * k), 1.2 + 0.6 * depth), dpi=120)
    try:
        lo, hi = 1.0, float(k)
        ax.plot([lo, hi], [0, 0], color="black", linewidth=1)
        for tick in np.arange(lo, hi + 0.01, 0.5):
            whole = float(tick).is_integer()
            ax.plot([tick, tick], [0, 0.08 if whole else 0.04], color="black", linewidth=1)
            if whole:
                ax.text(tick, 0.12, f"{int(tick)}", ha="center", va="bottom", fontsize=9)
        cd_y = 0.45
        ax.plot([lo, lo + ranking.cd], [cd_y, cd_y], color="black", linewidth=1.5)
        for end in (lo, lo + ranking.cd):
            ax.plot([end, end], [cd_y - 0.04, cd_y + 0.04], color="black", linewidth=1.5)
        ax.text(lo + ranking.cd / 2, cd_y + 0.06, f"CD = {ranking.cd:.2f}", ha="center", va="bottom", fontsize=9)
        left_x, right_x = lo - 0.3, hi + 0.3
        for slot, p in enumerate(order):
            name, r = ranking.methods[p], float(ranking.mean_rank[p])
            on_left = slot < half
            line = slot if on_left else k - 1 - slot  # outermost lines for the best and the worst
            y = -(first_label + label_step * line)
            end = left_x if on_left else right_x
            ax.plot([r, r, end], [0, y, y], color="black", linewidth=0.8)
            ax.text(end + (-0.05 if on_left else 0.05), y, f"{name} ({r:.2f})", ha="right" if on_left else "left",
                    va="center", fontsize=9)
        for i, group in enumerate(groups):
            y = -(0.25 + bar_step * i)
            xs = [positions[m] for m in group]
            ax.plot([min(xs) - 0.03, max(xs) + 0.03], [y, y], color="black", linewidth=3.5, solid_capstyle="butt")
        ax.set_xlim(left_x - 0.05, right_x + 0.05)
        ax.set_ylim(-(depth + 0.1), cd_y + 0.35)
        ax.axis("off")
        caption = (f"mean rank over {ranking.n_blocks} blocks (1 = best), Friedman p = {format_p(ranking.p_value)}\n"
                   f"bars join methods not significantly different (Nemenyi, alpha = {ranking.alpha:g})")
        ax.set_title(f"{title}\n{caption}" if title else caption, fontsize=9)
        fig.savefig(path, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_win_rates(ranking: Ranking, path, *, title: str = "") -> None:
    """Save the pairwise win-rate matrix as PNG: cell (row i, column j) = fraction of blocks where i beats j
    (ties half), methods in mean-rank order, best first."""
    plt = _pyplot()
    order = ranking.order
    names = [ranking.methods[p] for p in order]
    w = ranking.win_rate[np.ix_(order, order)]  # (k, k)
    k = len(names)
    size = max(4.5, 1.2 + 0.75 * k)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=120)
    try:
        image = ax.imshow(np.ma.masked_invalid(w), vmin=0.0, vmax=1.0, cmap="RdBu")
        for i in range(k):
            for j in range(k):
                text = "–" if i == j else f"{w[i, j]:.2f}"
                dark = i != j and abs(w[i, j] - 0.5) > 0.3
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
        ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=9)
        ax.set_yticks(range(k), names, fontsize=9)
        ax.set_xlabel("… against this method")
        ax.set_ylabel("fraction of blocks this method wins …")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="win rate (ties count half)")
        caption = f"pairwise win rate over {ranking.n_blocks} blocks"
        ax.set_title(f"{title}\n{caption}" if title else caption, fontsize=10)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
