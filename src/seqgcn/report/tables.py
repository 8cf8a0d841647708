"""Tables and AUBC from per-cycle records.

A record is a dict with at least ``method``, ``trial``, ``cycle``, ``n_labelled``
and ``metric`` (one row of results.csv).

AUBC (area under the budget curve) of one trial's learning curve
``(n_0, m_0), …, (n_C, m_C)`` (labelled items, metric) is the trapezoid area
divided by the x-range, i.e. the curve's mean height over the labelled counts::

    AUBC = Σ_c (n_{c+1} − n_c)·(m_c + m_{c+1}) / 2  /  (n_C − n_0)

It is in the metric's unit (accuracy curves give an AUBC in [0, 1]); a single
point gives its metric. The table reports its mean ± std over trials. It is
computed the same way for every metric, so it keeps the metric's direction: for
an error metric (regression, e.g. mean error in degrees or mm) a lower AUBC is
better. Standard deviations are over trials, with ddof=1 (0 when there is one trial).

Upper-bound records (one per trial, the learner trained on the whole training
set) have their own summary: `summarize_upper_bound` and `upper_bound_table`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def aubc(n_labelled, metric) -> float:
    """Area under the learning curve, normalised by the x-range (trapezoid rule); see the module docstring."""
    x = np.asarray(n_labelled, dtype=np.float64)  # (n_cycles,)
    y = np.asarray(metric, dtype=np.float64)  # (n_cycles,)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"n_labelled and metric must be 1-D of the same non-zero length; got shapes {x.shape} and {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x[-1] == x[0]:
        return float(y.mean())
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def curves(records) -> dict[str, dict]:
    """Per method: x = labelled counts per cycle (from trial order), and metric values (n_trials, n_cycles)."""
    by_method: dict[str, dict[int, dict[int, tuple[int, float]]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        by_method[r["method"]][int(r["trial"])][int(r["cycle"])] = (int(r["n_labelled"]), float(r["metric"]))
    out = {}
    for method, trials in by_method.items():
        cycles = sorted(set.intersection(*(set(c) for c in trials.values())))  # cycles every trial reached
        first = trials[min(trials)]
        x = np.array([first[c][0] for c in cycles], dtype=np.int64)  # (n_cycles,)
        y = np.array([[trials[t][c][1] for c in cycles] for t in sorted(trials)], dtype=np.float64)  # (n_trials, n_cycles)
        out[method] = {"cycles": cycles, "n_labelled": x, "metric": y, "trials": sorted(trials)}
    return out


def direction_text(higher_is_better: bool) -> str:
    """How to read a metric: "higher is better" or "lower is better"."""
    return "higher is better" if higher_is_better else "lower is better"


def _aligned_line(cells, widths) -> str:
    """Table row: cells right-aligned to `widths`, two spaces apart."""
    return "  ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()


def _std(values: np.ndarray, axis=0) -> np.ndarray:
    return values.std(axis=axis, ddof=1) if values.shape[axis] > 1 else np.zeros(np.delete(values.shape, axis))


def summarize(records) -> dict[str, dict]:
    """Per method: n_labelled, mean and std per cycle, AUBC per trial, AUBC mean and std."""
    out = {}
    for method, c in curves(records).items():
        per_trial = np.array([aubc(c["n_labelled"], row) for row in c["metric"]])  # (n_trials,)
        out[method] = {
            "n_labelled": c["n_labelled"].tolist(),
            "mean": c["metric"].mean(axis=0).tolist(),
            "std": _std(c["metric"]).tolist(),
            "n_trials": len(c["trials"]),
            "aubc_per_trial": per_trial.tolist(),
            "aubc_mean": float(per_trial.mean()),
            "aubc_std": float(_std(per_trial[:, None])[0]),
        }
    return out


def summary_table(records, *, metric_name: str = "metric", higher_is_better: bool = True, scale: float = 1.0, digits: int = 2) -> str:
    """Aligned text table: one row per cycle (labelled items), one column per method, mean ± std; then AUBC.

    `scale` multiplies every value (e.g. 100 to print accuracy in %).
    """
    summary = summarize(records)
    methods = list(summary)
    if not methods:
        return "(no results)"
    fmt = f"{{:.{digits}f}} ± {{:.{digits}f}}"
    cycles = max(len(s["mean"]) for s in summary.values())
    header = ["cycle", "labelled"] + methods
    rows = []
    for c in range(cycles):
        ref = next(s for s in summary.values() if len(s["n_labelled"]) > c)
        row = [str(c), str(ref["n_labelled"][c])]
        for m in methods:
            s = summary[m]
            row.append(fmt.format(s["mean"][c] * scale, s["std"][c] * scale) if c < len(s["mean"]) else "-")
        rows.append(row)
    rows.append(["AUBC", ""] + [fmt.format(summary[m]["aubc_mean"] * scale, summary[m]["aubc_std"] * scale) for m in methods])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    header_line, *lines = (_aligned_line(r, widths) for r in [header] + rows)
    trials = sorted({s["n_trials"] for s in summary.values()})
    title = f"{metric_name}, mean ± std over {'/'.join(map(str, trials))} trial(s); {direction_text(higher_is_better)}"
    rule = "-" * len(header_line)
    return "\n".join([title, header_line, rule, *lines[:-1], rule, lines[-1]])


def summarize_upper_bound(records) -> dict:
    """Metric of upper-bound records (one per trial): per trial, mean and std over trials, training-set size."""
    rows = sorted(records, key=lambda r: int(r["trial"]))
    values = np.array([float(r["metric"]) for r in rows], dtype=np.float64)  # (n_trials,)
    if values.size == 0:
        return {"n_trials": 0, "per_trial": [], "mean": float("nan"), "std": float("nan"), "n_labelled": 0}
    return {
        "n_trials": int(values.size),
        "per_trial": values.tolist(),
        "mean": float(values.mean()),
        "std": float(_std(values[:, None])[0]),
        "n_labelled": int(rows[0]["n_labelled"]),
    }


def upper_bound_table(records, *, metric_name: str = "metric", higher_is_better: bool = True, scale: float = 1.0,
                      digits: int = 2) -> str:
    """Text table of upper-bound records: one row per trial (metric, training seconds), then mean ± std."""
    s = summarize_upper_bound(records)
    if not s["n_trials"]:
        return "(no results)"
    rows = sorted(records, key=lambda r: int(r["trial"]))
    header = ["trial", metric_name, "train s"]
    body = [[str(r["trial"]), f"{float(r['metric']) * scale:.{digits}f}", f"{float(r.get('train_seconds', 0.0)):.1f}"]
            for r in rows]
    total = ["mean", f"{s['mean'] * scale:.{digits}f} ± {s['std'] * scale:.{digits}f}", ""]
    widths = [max(len(row[i]) for row in [header] + body + [total]) for i in range(len(header))]
    header_line, *lines = (_aligned_line(r, widths) for r in [header] + body + [total])
    title = (f"upper bound: {metric_name} after training on the whole training set ({s['n_labelled']} items), "
             f"mean ± std over {s['n_trials']} trial(s); {direction_text(higher_is_better)}")
    rule = "-" * len(header_line)
    return "\n".join([title, header_line, rule, *lines[:-1], rule, lines[-1]])
