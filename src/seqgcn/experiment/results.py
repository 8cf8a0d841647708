"""The run's files, assembled from its job files; finished runs read back and combined (`seqgcn report`).

Files of a finished run directory:

- ``config.json``: provenance (written first): config, resolved learner settings,
  versions, dataset, seeds.
- ``results.json``: the same provenance plus every record, the summary and the
  seed set of every trial.
- ``results.csv``: plain CSV, one header row, one row per (trial, method, cycle)
  in job order; ``selected`` holds the picked global indices separated by spaces.
  `pandas.read_csv(path)` and `csv.DictReader` read it with their defaults.
- ``summary.txt``: the mean ± std table and the AUBC per method.
- ``learning_curve.png`` (not for an upper-bound run: one record per trial).

`seqgcn report` combines finished runs of the same protocol (the config without
`PER_RUN_KEYS`, e.g. two runs with different methods) into one table and plot.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from pathlib import Path

import numpy as np

import torch

from seqgcn import __version__
from seqgcn.checks import InputError
from seqgcn.experiment.config import ExperimentConfig, config_diff, fields_as_json, one_line
from seqgcn.experiment.jobs import Job, derive_seed, json_default, read_job
from seqgcn.experiment.rundir import CONFIG, LEARNING_CURVE, RESULTS, RESULTS_CSV, SUMMARY
from seqgcn.io import write_atomic
from seqgcn.report.curves import plot_learning_curves
from seqgcn.report.tables import direction_text, summarize, summarize_upper_bound, summary_table, upper_bound_table
CSV_COLUMNS = ["method", "trial", "cycle", "n_labelled", "metric", "train_seconds", "eval_seconds", "features_seconds",
               "select_seconds", "learner_seed", "candidates_seed", "sampler_seed"]
UPPER_BOUND_CSV_COLUMNS = ["method", "trial", "n_labelled", "metric", "train_seconds", "eval_seconds", "learner_seed"]
# config keys that may differ between runs `seqgcn report` combines: they do not change a method's results
PER_RUN_KEYS = ("methods", "device", "data_dir", "pool_data_dir", "save_features")


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=json_default) + "\n")


def provenance(config: ExperimentConfig, dataset, learner, learner_config) -> dict:
    """config.json's content: what decides the results and what produced them."""
    derivation = "derive_seed(base, purpose, *keys): SeedSequence(base, spawn_key=[crc32(purpose), keys...]); "
    if config.upper_bound:
        seeds = {"base": config.seed,
                 "upper_bound": {str(t): derive_seed(config.seed, "upper_bound", t) for t in range(config.trials)},
                 "derivation": derivation + "purpose: upper_bound(trial), the learner's weights and shuffling"}
    else:
        seeds = {"base": config.seed,
                 "seed_set": {str(t): derive_seed(config.seed, "seed_set", t) for t in range(config.trials)},
                 "derivation": derivation + "purposes: seed_set(trial), learner(trial, cycle), candidates(trial, method, "
                               "cycle), sampler(trial, method, cycle); per-cycle seeds are in each record"}
    return {
        "config": config.to_dict(),
        "mode": "upper_bound" if config.upper_bound else "active_learning",
        "learner": fields_as_json(learner_config),
        "seqgcn_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "dataset": {"name": dataset.name, "task": dataset.task, "n_train": dataset.n_train, "n_test": dataset.n_test,
                    "n_classes": dataset.n_classes, "info": dataset.info},
        "metric_name": learner.metric_name,
        "higher_is_better": bool(learner.higher_is_better),
        "seeds": seeds,
        **({"encoder": {**learner.encoder.describe(), "head": fields_as_json(learner.config)}}
           if getattr(learner, "encoder", None) is not None else {}),  # --encoder: the learner is a head on its embeddings
    }


def assemble_records(run_dir, jobs: list[Job], config: ExperimentConfig) -> list[dict]:
    """Every record of the run, read from the job files in job order; every job must be done."""
    records = []
    for job in jobs:
        ckpt = read_job(run_dir, job, config)
        if ckpt is None or not ckpt["done"]:
            raise InputError(f"job trial {job.trial} {job.method!r} of {str(run_dir)!r} has not finished; "
                             f"continue it with seqgcn run --resume {run_dir}")
        records.extend(ckpt["records"])
    return records


def display(metric_name: str) -> tuple[float, str]:
    """Accuracy is shown in percent; other metrics in their own unit."""
    return (100.0, f"{metric_name} (%)") if "accuracy" in metric_name.lower() else (1.0, metric_name)


def summarize_records(meta: dict, records: list) -> tuple[dict, str]:
    """(summary, text): the mean ± std table and AUBC lines (or the upper-bound table) of `records`."""
    scale, label = display(meta["metric_name"])
    style = {"metric_name": label, "higher_is_better": meta["higher_is_better"], "scale": scale}
    if meta["mode"] == "upper_bound":
        return summarize_upper_bound(records), upper_bound_table(records, **style)
    summary = summarize(records)
    note = (f"AUBC: area under the learning curve over labelled items, divided by their range (the curve's mean "
            f"height), mean ± std over trials; {direction_text(meta['higher_is_better'])}")
    return summary, f"{summary_table(records, **style)}\n{note}"


def plot(meta: dict, records: list, path: Path) -> None:
    """The learning curves of `records`, drawn in memory, then written like every other file (atomically)."""
    scale, label = display(meta["metric_name"])
    png = io.BytesIO()
    plot_learning_curves(records, png, scale=scale, metric_name=f"{label}, {direction_text(meta['higher_is_better'])}",
                         title=f"{meta['dataset']['name']}: {label} vs labelled items")
    write_atomic(path, png.getvalue())


def csv_text(records: list, *, upper_bound: bool) -> str:
    """results.csv: one header row, then one row per record; extra numeric fields after the fixed columns."""
    base = UPPER_BOUND_CSV_COLUMNS if upper_bound else CSV_COLUMNS
    skip = {"selected", "cycle"} if upper_bound else {"selected"}  # an upper bound has one cycle; selected goes last
    extra = sorted({k for r in records for k in r} - set(base) - skip)
    columns = base + extra + ([] if upper_bound else ["selected"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow([" ".join(map(str, r.get(c, ""))) if c == "selected" else r.get(c, "") for c in columns])
    return out.getvalue()


def write_results(run_dir: Path, meta: dict, records: list, *, seed_sets: dict | None = None) -> tuple[dict, str, dict]:
    """Write results.json, results.csv, summary.txt and the plot; return (summary, text, paths)."""
    upper_bound = meta["mode"] == "upper_bound"
    summary, text = summarize_records(meta, records)
    names = (RESULTS, RESULTS_CSV, SUMMARY) + (() if upper_bound else (LEARNING_CURVE,))
    paths = {name: run_dir / name for name in names}
    write_json(paths[RESULTS], {**meta, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "records": records,
                                "summary": summary, **({"seed_sets": seed_sets} if seed_sets is not None else {})})
    write_atomic(paths[RESULTS_CSV], csv_text(records, upper_bound=upper_bound))
    write_atomic(paths[SUMMARY], f"{text}\n")
    if not upper_bound:
        plot(meta, records, paths[LEARNING_CURVE])
    return summary, text, paths


# --------------------------------------------------------------------------- seqgcn report
def read_finished_run(run_dir) -> dict:
    """The results.json of a finished run (one-line errors for anything else)."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        hint = f"continue it with seqgcn run --resume {run_dir}" if (Path(run_dir) / CONFIG).is_file() else \
            "is it a seqgcn run directory?"
        raise InputError(f"run dir {str(run_dir)!r} holds no {RESULTS} (not finished); {hint}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {one_line(exc)}") from None
    needed = ("config", "records", "metric_name", "higher_is_better", "mode", "dataset")
    missing = [k for k in needed if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise InputError(f"{str(path)!r} is not a seqgcn results file (missing: {', '.join(missing)})")
    return meta


def combine_runs(run_dirs: list) -> tuple[dict, list]:
    """(meta of the first run, records of all): runs must share the protocol and not repeat a method."""
    metas = [read_finished_run(d) for d in run_dirs]
    first = metas[0]
    protocol = {k: v for k, v in first["config"].items() if k not in PER_RUN_KEYS}
    records, owner = [], {}
    for run_dir, meta in zip(run_dirs, metas, strict=True):
        other = {k: v for k, v in meta["config"].items() if k not in PER_RUN_KEYS}
        if other != protocol:
            raise InputError(f"cannot combine {str(run_dirs[0])!r} and {str(run_dir)!r}: their protocols differ "
                             f"({config_diff(protocol, other, labels=('first run', 'this run'))})")
        for method in dict.fromkeys(r["method"] for r in meta["records"]):
            if method in owner:
                raise InputError(f"method {method!r} is in both {str(owner[method])!r} and {str(run_dir)!r}; "
                                 "report each run on its own")
            owner[method] = run_dir
        records.extend(meta["records"])
    return first, records
