"""`seqgcn report`: the table, AUBC and learning curve of finished runs, several runs of one protocol combined.

`seqgcn report --ranks`: instead, each run is one setting, its methods ranked by AUBC per trial (`ranks_report`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.experiment.results import combine_runs, display, plot, read_finished_run, summarize_records
from seqgcn.experiment.rundir import CD_DIAGRAM, COMBINED_CURVE, LEARNING_CURVE, POOLED, RANKS_CSV, WIN_RATES
from seqgcn.io import write_atomic
from seqgcn.report.ranks import plot_cd_diagram, plot_win_rates, rank_methods, ranking_csv, ranking_text
from seqgcn.report.tables import curves, direction_text, summarize


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
    p.add_argument("--ranks", action="store_true", help="instead: rank the methods of each run (one run = one setting) "
                   "by AUBC per trial: mean ranks, Friedman test, Nemenyi critical difference (alpha 0.05), ranks.csv, "
                   "a critical-difference diagram and a win-rate matrix; several runs are also pooled (trial × setting "
                   "as blocks)")
    p.add_argument("--out", metavar="DIR", help="with --ranks: write the files into DIR (default: each run's into its "
                   "run dir, the pooled ones next to the first run)")
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
    if args.ranks:
        if args.plot is not None:
            raise InputError("--plot does not apply with --ranks (no learning curve is drawn); --out DIR says where "
                             "the ranks files go")
        text, _ = ranks_report(args.run_dirs, args.out)
        print(text)
        return 0
    if args.out is not None:
        raise InputError("--out applies only with --ranks; the learning curve goes to --plot FILE.png")
    text, plot_path = report(args.run_dirs, args.plot)
    print(text)
    if plot_path is not None:
        print(f"\nplot: {plot_path}")
    return 0


# --------------------------------------------------------------------------- seqgcn report --ranks


def read_setting(run_dir) -> dict:
    """One setting for `ranks_report`: the AUBC of every (trial, method) of a finished active-learning run.

    Returns {"run_dir", "meta", "methods" (k,), "scores" (n_trials, k) AUBC per trial and method, "aubc"
    {method: (mean, std)}}. A run that is not finished, an upper-bound run, one method or one trial: InputError.
    """
    meta = read_finished_run(run_dir)
    if meta["mode"] == "upper_bound":
        raise InputError(f"run dir {str(run_dir)!r} is an upper-bound run (one metric per trial, no learning curve); "
                         "ranks compare the AUBC of active-learning runs")
    summary = summarize(meta["records"])
    methods = list(summary)
    if len(methods) < 2:
        raise InputError(f"run dir {str(run_dir)!r} holds one method ({', '.join(methods) or 'none'}); ranks compare at "
                         "least two: run it with more --methods")
    trials = {m: c["trials"] for m, c in curves(meta["records"]).items()}
    if any(t != trials[methods[0]] for t in trials.values()):
        raise InputError(f"run dir {str(run_dir)!r}: its methods ran different trials "
                         f"({'; '.join(f'{m}: {t}' for m, t in trials.items())}); ranks need every method in every trial")
    if len(trials[methods[0]]) < 2:
        raise InputError(f"run dir {str(run_dir)!r} holds one trial; ranks need at least two: run it with --trials 2 or more")
    scores = np.array([summary[m]["aubc_per_trial"] for m in methods], dtype=np.float64).T  # (n_trials, k)
    aubc = {m: (summary[m]["aubc_mean"], summary[m]["aubc_std"]) for m in methods}
    return {"run_dir": Path(run_dir), "meta": meta, "methods": methods, "scores": scores, "aubc": aubc}


def _setting_names(run_dirs) -> list[str]:
    """The name of each setting: its run dir's name, "-2", "-3" appended where two run dirs have the same name."""
    names, seen = [], {}
    for d in run_dirs:
        base = Path(d).resolve().name or "run"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def _write_ranking(ranking, folder: Path, prefix: str, *, csv_text: str, title: str) -> list[Path]:
    """ranks.csv, cd_diagram.png and win_rates.png of `ranking` in `folder`, names prefixed by `prefix` (may be "")."""
    paths = [folder / f"{prefix}{name}" for name in (RANKS_CSV, CD_DIAGRAM, WIN_RATES)]
    write_atomic(paths[0], csv_text)
    for draw, path in zip((plot_cd_diagram, plot_win_rates), paths[1:], strict=True):
        png = io.BytesIO()
        draw(ranking, png, title=title)
        write_atomic(path, png.getvalue())
    return paths


def ranks_report(run_dirs: list, out=None) -> tuple[str, list[Path]]:
    """(text, files): per run (one setting), the methods ranked by AUBC per trial; with several runs, also pooled.

    Per setting: AUBC mean ± std and mean rank per method (rank 1 = best AUBC of a trial, in the metric's
    direction; ties averaged), the Friedman test, the Nemenyi critical difference (alpha 0.05) and the groups
    of methods not significantly different (`seqgcn.report.ranks`). Pooled: every (trial, setting) is one
    block, ranked in its own setting's direction, over the methods every setting ran. Files: ranks.csv,
    cd_diagram.png and win_rates.png in each run dir (the pooled ones prefixed "pooled_" next to the first
    run), or all in `out`, prefixed by the setting's name. Every run is read and checked before anything is written.
    """
    if len({Path(d).resolve() for d in run_dirs}) != len(run_dirs):
        raise InputError("a run dir is given twice; each setting counts once")
    settings = [read_setting(d) for d in run_dirs]
    names = _setting_names(run_dirs)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {str(out_dir)!r} cannot be created: {exc.strerror or exc}") from None
    rankings = []
    for setting in settings:  # e.g. a NaN AUBC (a diverged run) fails here, before any file is written
        try:
            rankings.append(rank_methods(setting["scores"], setting["methods"],
                                         higher_is_better=setting["meta"]["higher_is_better"]))
        except InputError as exc:
            raise InputError(f"run dir {str(setting['run_dir'])!r}: {exc}") from None
    texts, files = [], []
    for setting, name, ranking in zip(settings, names, rankings, strict=True):
        meta = setting["meta"]
        scale, label = display(meta["metric_name"])
        direction = direction_text(meta["higher_is_better"])
        where = name if str(setting["run_dir"]) == name else f"{name} ({setting['run_dir']})"
        title = (f"ranks of {where}: {meta['dataset']['name']}, AUBC of {label} per trial "
                 f"({direction}), rank 1 = best")
        text = ranking_text(ranking, title=title, aubc=setting["aubc"], scale=scale)
        csv_text = ranking_csv(ranking, setting=name, aubc=setting["aubc"], metric_name=meta["metric_name"],
                               direction=direction)
        folder, prefix = (setting["run_dir"], "") if out_dir is None else (out_dir, f"{name}_")
        paths = _write_ranking(ranking, folder, prefix, csv_text=csv_text, title=f"{name}: AUBC of {label}, {direction}")
        files += paths
        texts.append(text + "\nfiles: " + ", ".join(map(str, paths)))
    if len(settings) > 1:
        texts.append(_pooled(settings, names, out_dir, files))
    return "\n\n".join(texts), files


def _pooled(settings: list, names: list, out_dir, files: list) -> str:
    """The pooled ranking's text (its files appended to `files`): blocks = (trial, setting), common methods only."""
    common = [m for m in settings[0]["methods"] if all(m in s["methods"] for s in settings)]
    left_out = sorted({m for s in settings for m in s["methods"]} - set(common))
    if len(common) < 2:
        return (f"no pooled ranks: the {len(settings)} settings share {len(common)} method(s) "
                f"({', '.join(common) or 'none'}); pooling needs at least two")
    scores = np.vstack([s["scores"][:, [s["methods"].index(m) for m in common]] for s in settings])  # (Σ trials, k)
    better = np.concatenate([np.full(len(s["scores"]), bool(s["meta"]["higher_is_better"])) for s in settings])
    ranking = rank_methods(scores, common, higher_is_better=better)
    title = (f"ranks pooled over {len(settings)} settings ({', '.join(names)}): {ranking.n_blocks} blocks = trial × "
             "setting, each ranked by AUBC in its own setting's direction, rank 1 = best"
             + (f"; left out (not in every setting): {', '.join(left_out)}" if left_out else ""))
    text = ranking_text(ranking, title=title, blocks="blocks (trial × setting)")
    csv_text = ranking_csv(ranking, setting=POOLED)
    folder = out_dir if out_dir is not None else settings[0]["run_dir"].parent
    paths = _write_ranking(ranking, folder, f"{POOLED}_", csv_text=csv_text,
                           title=f"pooled over {len(settings)} settings (trial × setting)")
    files += paths
    return text + "\nfiles: " + ", ".join(map(str, paths))
