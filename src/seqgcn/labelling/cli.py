"""The labelling commands: ``seqgcn query``, ``seqgcn import-labels``, ``seqgcn labelstudio push|pull``.

Bad input ends with one line on stderr and exit code 2 (`seqgcn.cli.main` does
that for the ValueErrors raised here); every check runs before the first file is
written, and files are written through atomic renames.

Project history: next to ``labels.csv`` seqgcn keeps ``labels.queries.json``, one
record per query (batch file, method, picked paths, held-out accuracy, seconds),
which is how a query knows that the previous batch is still unanswered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from seqgcn._io import write_atomic


def add_labelling_commands(sub) -> None:
    """Add ``query``, ``import-labels`` and ``labelstudio`` to the `seqgcn` sub-command parsers `sub`."""
    _add_query_parser(sub)
    _add_import_parser(sub)
    _add_labelstudio_parser(sub)


# --------------------------------------------------------------------------- options shared by the commands
def _add_project_arguments(p, *, image_size: bool = False) -> None:
    p.add_argument("--images", required=True, metavar="DIR", help="the images folder (every PNG/JPEG/BMP/TIFF under it, recursively)")
    p.add_argument("--labels", required=True, metavar="labels.csv", help="CSV 'path,label' of the labels so far "
                   "(paths relative to DIR); created if missing, only ever appended to")
    if image_size:
        p.add_argument("--image-size", type=int, default=32, metavar="PX", help="side the images are resized to for the "
                       "learner (default 32: the CIFAR size the ResNet-18 and small CNN are built for)")


def _add_learner_arguments(p) -> None:
    """The learner options of `seqgcn run`, plus where to run, the seed and D_S; None = not given (`ExperimentConfig`'s default)."""
    from seqgcn.cli import add_learner_arguments, subset_arg
    from seqgcn.config import ExperimentConfig

    d = ExperimentConfig()
    add_learner_arguments(p, title="learner (as in seqgcn run)")
    g = p.add_argument_group("device, seed and candidates")
    g.add_argument("--device", choices=["cpu", "cuda", "auto"], help=f"where the learner and the sampler run (default {d.device})")
    g.add_argument("--seed", type=int, metavar="N", help=f"random seed (default {d.seed}); same inputs and seed, same batch")
    g.add_argument("--subset", type=subset_arg, metavar="N", help=f"size of the random candidate subset D_S, or 'all' (default {d.subset})")


# --------------------------------------------------------------------------- query
def _add_query_parser(sub) -> None:
    from seqgcn.samplers import available_samplers

    p = sub.add_parser("query", help="pick the next images of your folder to label",
                       description="Train the learner on the labelled images, pick the next batch with the sampler, and write "
                       "it for a person to label: a batch CSV, a contact sheet PNG and, with --format label-studio, "
                       "Label Studio tasks and labelling config.")
    _add_project_arguments(p, image_size=True)
    p.add_argument("--budget", required=True, type=int, metavar="B", help="images to pick")
    p.add_argument("--method", default="CoreGCN", metavar="M", help=f"sampler: one of {', '.join(available_samplers())} (default CoreGCN)")
    p.add_argument("--test-labels", metavar="test.csv", help="held-out labelled images ('path,label'): never picked or trained "
                   "on, used only to report the learner's accuracy")
    p.add_argument("--out", default="batch.csv", metavar="batch.csv", help="the batch CSV to write (default batch.csv); the "
                   "contact sheet goes next to it as <name>.png")
    p.add_argument("--format", choices=["csv", "label-studio"], default="csv", help="label-studio: also write "
                   "<name>.tasks.json and <name>.config.xml for Label Studio")
    p.add_argument("--classes", metavar="A,B,...", help="class names to offer in the Label Studio config besides those labelled so far")
    p.add_argument("--image-url", default="embed", metavar="PREFIX", help="how Label Studio tasks show the images: 'embed' "
                   "(default: PNG data URIs, no file server needed) or a URL prefix such as http://localhost:8000/")
    p.add_argument("--gcn-epochs", type=int, default=None, metavar="N", help="GCN training steps of the GCN samplers "
                   "(default: the sampler's own, 200 as in the reference code)")
    p.add_argument("--skip-unreadable", action="store_true", help="leave out (and list) images that cannot be decoded "
                   "instead of stopping")
    _add_learner_arguments(p)
    p.set_defaults(func=cmd_query)


def cmd_query(args) -> int:
    from seqgcn.config import ExperimentConfig
    from seqgcn.labelling.exports import batch_csv, contact_sheet, label_config, label_studio_tasks, tasks_json, write_png
    from seqgcn.labelling.query import run_query

    out = Path(args.out)
    sheet_path = out.with_suffix(".png")
    history_path = _history_path(args.labels)
    history = _read_history(history_path)
    _warn_pending(history, args.images, args.labels)
    # The learner options go through the same schema and checks as `seqgcn run` (type, range, 'all' for --subset).
    options = {k: getattr(args, k) for k in ("arch", "epochs", "batch_size", "device", "seed", "subset", "optimizer", "lr")}
    config = ExperimentConfig.from_dict({k: v for k, v in options.items() if v is not None}, source="command line")
    learner_config = config.learner_config("classification")
    progress = sys.stderr.isatty()
    result = run_query(args.images, args.labels, budget=args.budget, method=args.method, test_labels=args.test_labels,
                       image_size=args.image_size, subset=config.subset, seed=config.seed,
                       learner_config=_with_progress(learner_config, progress), device=config.device,
                       sampler_params={} if args.gcn_epochs is None else {"epochs": args.gcn_epochs},
                       skip_unreadable=args.skip_unreadable, progress=progress)
    for path in result.skipped:
        print(f"seqgcn: warning: skipped unreadable image {path!r}", file=sys.stderr)

    labelled_classes = set(_read_labels_quick(args.labels).values())
    files = {out: batch_csv(result.picked)}
    if args.format == "label-studio":
        extra = {c.strip() for c in (args.classes or "").split(",") if c.strip()}
        files[out.with_suffix(".config.xml")] = label_config(sorted(labelled_classes | extra))
        files[out.with_suffix(".tasks.json")] = tasks_json(label_studio_tasks(args.images, result.picked, image_url=args.image_url))
    sheet = contact_sheet(args.images, result.picked)
    record = {"round": len(history) + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "batch": str(out),
              "method": result.method, "first_round": result.first_round, "n_labelled": result.n_labelled,
              "n_classes": len(labelled_classes), "accuracy": result.accuracy,
              "seed": config.seed, "budget": args.budget, "seconds": result.seconds, "picked": result.picked}
    try:
        if not Path(args.labels).exists():
            write_atomic(Path(args.labels), "path,label\n")
        for path, text in files.items():
            write_atomic(path, text)
        write_png(sheet, sheet_path)
        write_atomic(history_path, json.dumps(history + [record], indent=1) + "\n")
    except OSError as exc:
        raise ValueError(f"cannot write the batch: {exc.strerror or exc} ({exc.filename})") from None

    how = "first round: " + result.method if result.first_round else f"method {result.method}"
    print(f"round {record['round']}: {result.n_labelled} labelled, {result.n_unlabelled} unlabelled"
          f"{f', {result.n_test} held out' if result.n_test else ''}; {how}")
    if result.accuracy is not None:
        print(f"held-out accuracy: {result.accuracy:.4f} ({result.n_test} images, learner trained on {result.n_labelled})")
    s = result.seconds
    print(f"seconds: load {s['load']:.1f}, train {s['train']:.1f}, features {s['features']:.1f}, select {s['select']:.1f}")
    print(f"picked {len(result.picked)} images: {out} (fill in the label column), contact sheet {sheet_path}")
    for path in files:
        if path != out:
            print(f"  {path}")
    print(f"then: seqgcn import-labels {out} --images {args.images} --labels {args.labels}")
    return 0


def _with_progress(config, progress: bool):
    import dataclasses

    return dataclasses.replace(config, progress=progress)


def _read_labels_quick(path) -> dict:
    from seqgcn.labelling.labels import read_labels

    return read_labels(path)


def _history_path(labels) -> Path:
    labels = Path(labels)
    return labels.with_name(labels.stem + ".queries.json")


def _read_history(path: Path) -> list:
    if not path.exists():
        return []
    try:
        history = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the query history {str(path)!r} ({exc}); delete it to start it afresh") from None
    if not isinstance(history, list):
        raise ValueError(f"query history {str(path)!r} is not a JSON list; delete it to start it afresh")
    return history


def _warn_pending(history: list, images, labels) -> None:
    """Warn when the previous batch still has images without a label."""
    if not history or not isinstance(history[-1], dict):
        return
    last = history[-1]
    have = _read_labels_quick(labels)
    missing = [p for p in last.get("picked", []) if p not in have]
    if missing:
        print(f"seqgcn: warning: {len(missing)} of the {len(last.get('picked', []))} images of the previous batch "
              f"{last.get('batch')!r} have no label yet (answers pending); import them first with: seqgcn import-labels "
              f"{last.get('batch')} --images {images} --labels {labels}", file=sys.stderr)


# --------------------------------------------------------------------------- import-labels
def _add_import_parser(sub) -> None:
    p = sub.add_parser("import-labels", help="add a person's answers to labels.csv",
                       description="Check every answer of a filled batch CSV or a Label Studio JSON export and append them "
                       "to labels.csv; nothing is written when any answer is refused.")
    p.add_argument("answers", metavar="ANSWERS", help="a filled batch CSV (path,label) or a Label Studio JSON export (.json)")
    _add_project_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="accept answers that change an existing label (the new row wins)")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from seqgcn.labelling.labels import read_answers

    return _import_answers(read_answers(args.answers), args, source=args.answers)


def _import_answers(answers, args, *, source: str) -> int:
    from seqgcn.labelling.images import find_images
    from seqgcn.labelling.labels import append_labels, check_answers, class_counts, read_labels

    images = set(find_images(args.images))
    labels = read_labels(args.labels, images=images)
    rows, unchanged = check_answers(answers, images=images, labels=labels, overwrite=args.overwrite)
    if rows or not Path(args.labels).exists():
        append_labels(args.labels, rows)
    labels.update(rows)
    print(f"imported {len(rows)} label(s) from {source} into {args.labels}"
          f"{f' ({unchanged} already there)' if unchanged else ''}; {len(labels)} labelled images:")
    for name, count in class_counts(labels):
        print(f"  {name}: {count}")
    return 0


# --------------------------------------------------------------------------- labelstudio
def _add_labelstudio_parser(sub) -> None:
    p = sub.add_parser("labelstudio", help="send a batch to a running Label Studio, or fetch its annotations",
                       description="Talk to a running Label Studio server (needs: pip install seqgcn[labelstudio]).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    push = verbs.add_parser("push", help="create or update a project with a batch")
    push.add_argument("batch", metavar="BATCH.csv", help="the batch CSV written by seqgcn query")
    _add_server_arguments(push)
    _add_project_arguments(push)
    push.add_argument("--classes", metavar="A,B,...", help="class names to offer besides those labelled so far")
    push.add_argument("--image-url", default="embed", metavar="PREFIX", help="'embed' (default: PNG data URIs) or a URL prefix")
    push.set_defaults(func=cmd_push)

    pull = verbs.add_parser("pull", help="import a project's finished annotations into labels.csv")
    _add_server_arguments(pull)
    _add_project_arguments(pull)
    pull.add_argument("--overwrite", action="store_true", help="accept answers that change an existing label")
    pull.set_defaults(func=cmd_pull)


def _add_server_arguments(p) -> None:
    p.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"), metavar="URL",
                   help="Label Studio address, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL)")
    p.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"), metavar="KEY",
                   help="access token (default: $LABEL_STUDIO_API_KEY)")
    p.add_argument("--project", default="seqgcn", metavar="TITLE", help="project title (default seqgcn)")


def cmd_push(args) -> int:
    from seqgcn.labelling import labelstudio
    from seqgcn.labelling.exports import label_config, label_studio_tasks
    from seqgcn.labelling.images import find_images
    from seqgcn.labelling.labels import read_answers, read_labels

    images = set(find_images(args.images))
    batch = [a.path for a in read_answers(args.batch)]
    unknown = [p for p in batch if p not in images]
    if unknown:
        raise ValueError(f"batch {args.batch!r} names image {unknown[0]!r}, which is not in {args.images!r}")
    classes = set(read_labels(args.labels, images=images).values())
    classes |= {c.strip() for c in (args.classes or "").split(",") if c.strip()}
    label_config(sorted(classes))  # no class at all: ask for --classes before connecting
    tasks = label_studio_tasks(args.images, batch, image_url=args.image_url)
    client = labelstudio.connect(args.url, args.api_key)
    project_id, added, classes = labelstudio.push(client, args.project, tasks, classes)
    print(f"Label Studio project {args.project!r} (id {project_id}) at {args.url}: {added} new task(s), "
          f"{len(batch) - added} already there; classes: {', '.join(sorted(classes))}")
    return 0


def cmd_pull(args) -> int:
    from seqgcn.labelling import labelstudio

    client = labelstudio.connect(args.url, args.api_key)
    answers = labelstudio.pull(client, args.project)
    return _import_answers(answers, args, source=f"Label Studio project {args.project!r}")
