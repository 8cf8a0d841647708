"""`seqgcn query`: pick the next images of a folder for a person to label; write the batch, a contact sheet, the history.

Before any work the outputs are checked (`check_writes`): none may be a file the query
reads, another output, a folder or a file the next scan of --images would take for an
image, and an existing --out is replaced only when every answer in it is in labels.csv.
After the work they are written together (`seqgcn.io.write_all`): all of them, or none.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from seqgcn.checks import InputError
from seqgcn.cli.embed import add_encoder_arguments, encoder_from_args, head_config_from_args, refuse_cnn_options
from seqgcn.cli.import_labels import check_writes, project_images
from seqgcn.cli.options import (SAMPLER_OPTION_FLAGS, add_project_arguments, add_query_learner_arguments,
                                add_sampler_arguments, sampler_options)
from seqgcn.experiment.config import ExperimentConfig
from seqgcn.io import write_all
from seqgcn.labelling.exports import batch_csv, contact_sheet, label_config, label_studio_tasks, png_bytes, tasks_json
from seqgcn.labelling.history import history_path, pending_warning, read_history
from seqgcn.labelling.labels import csv_text, read_answers, read_labels
from seqgcn.labelling.query import run_query
from seqgcn.samplers import build_sampler, check_method_options, query_samplers, sampler_class


def add_parser(sub) -> None:
    p = sub.add_parser("query", help="pick the next images of your folder to label",
                       description="Train the learner on the labelled images, pick the next batch with the sampler, and write "
                       "it for a person to label: a batch CSV, a contact sheet PNG and, with --format label-studio, "
                       "Label Studio tasks and labelling config.")
    add_project_arguments(p, image_size=True)
    p.add_argument("--budget", required=True, type=int, metavar="B", help="images to pick")
    p.add_argument("--method", default="CoreGCN", metavar="M", help=f"sampler: one of {', '.join(query_samplers())}, options "
                   "allowed (default CoreGCN)")
    p.add_argument("--test-labels", metavar="test.csv", help="held-out labelled images ('path,label'): never picked or trained "
                   "on, used only to report the learner's accuracy")
    p.add_argument("--out", default="batch.csv", metavar="batch.csv", help="the batch CSV to write (default batch.csv); the "
                   "contact sheet goes next to it as <name>.png. Refused when one of these is a file the query reads, or "
                   "would land among the images; an existing batch only when all its answers are imported")
    p.add_argument("--format", choices=["csv", "label-studio"], default="csv", help="label-studio: also write "
                   "<name>.tasks.json and <name>.config.xml for Label Studio")
    p.add_argument("--classes", metavar="A,B,...", help="class names to offer in the Label Studio config besides those labelled so far")
    p.add_argument("--image-url", default="embed", metavar="PREFIX", help="how Label Studio tasks show the images: 'embed' "
                   "(default: PNG data URIs, no file server needed) or a URL prefix such as http://localhost:8000/")
    p.add_argument("--skip-unreadable", action="store_true", help="leave out (and list) images that cannot be decoded "
                   "instead of stopping")
    add_query_learner_arguments(p)
    add_encoder_arguments(p)
    add_sampler_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    kind = sampler_class(args.method)  # unknown name -> one line, before any work
    if kind.name not in query_samplers():
        raise InputError(f"{kind.name} reads {kind.reads}, so 'seqgcn query' cannot run it; choose one of "
                         f"{', '.join(query_samplers())}")
    options = sampler_options(args)
    check_method_options([args.method], options, labels=SAMPLER_OPTION_FLAGS)
    build_sampler(args.method, options=options)  # bad option values -> one line, before any work
    out, labels = Path(args.out), Path(args.labels)
    names = output_names(out, labels, label_studio=args.format == "label-studio")
    check_writes(args.images, project_images(args.images), *_reads_and_writes(args, names))
    _check_answers_imported(out, labels, args.images)
    history = read_history(names["history"])
    warning = pending_warning(history, args.images, args.labels)
    if warning:
        print(f"seqgcn: warning: {warning}", file=sys.stderr)
    # The learner options go through the same schema and checks as `seqgcn run` (type, range, 'all' for --subset).
    given = {k: getattr(args, k) for k in ("arch", "epochs", "batch_size", "device", "seed", "threads", "subset",
                                           "optimizer", "lr")}
    config = ExperimentConfig.from_dict({k: v for k, v in given.items() if v is not None}, source="command line")
    learner_config = config.learner_config("classification")
    if args.encoder is not None:
        refuse_cnn_options(args)
    encoder = encoder_from_args(args, threads=config.threads)  # a bad file: one line, before any image is read
    head_config = head_config_from_args(args, device=config.device) if encoder is not None else None
    progress = sys.stderr.isatty()
    result = run_query(args.images, args.labels, budget=args.budget, method=args.method, test_labels=args.test_labels,
                       image_size=args.image_size, subset=config.subset, seed=config.seed,
                       learner_config=dataclasses.replace(learner_config, progress=progress), device=config.device,
                       sampler_params=options, threads=config.threads,
                       skip_unreadable=args.skip_unreadable, progress=progress, encoder=encoder,
                       head_config=head_config)
    for path in result.skipped:
        print(f"seqgcn: warning: skipped unreadable image {path!r}", file=sys.stderr)

    labelled_classes = set(read_labels(args.labels).values())
    record = {"round": len(history) + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "batch": str(out),
              "method": result.method, "first_round": result.first_round, "n_labelled": result.n_labelled,
              "n_classes": len(labelled_classes), "accuracy": result.accuracy,
              "seed": config.seed, "budget": args.budget, "seconds": result.seconds, "picked": result.picked}
    if encoder is not None:
        record["encoder"] = {**encoder.describe(), "encoded": result.encoded, "head": dataclasses.asdict(head_config)}
    files = {}
    if not labels.exists():
        files[labels] = csv_text([])
    files[out] = batch_csv(result.picked)
    if args.format == "label-studio":
        extra = {c.strip() for c in (args.classes or "").split(",") if c.strip()}
        files[names["config"]] = label_config(sorted(labelled_classes | extra))
        files[names["tasks"]] = tasks_json(label_studio_tasks(args.images, result.picked, image_url=args.image_url))
    files[names["sheet"]] = png_bytes(contact_sheet(args.images, result.picked))
    files[names["history"]] = json.dumps(history + [record], indent=1) + "\n"
    write_all(files)  # all of them or, on a full disk, none

    how = "first round: " + result.method if result.first_round else f"method {result.method}"
    print(f"round {record['round']}: {result.n_labelled} labelled, {result.n_unlabelled} unlabelled"
          f"{f', {result.n_test} held out' if result.n_test else ''}; {how}")
    if result.accuracy is not None:
        print(f"held-out accuracy: {result.accuracy:.4f} ({result.n_test} images, learner trained on {result.n_labelled})")
    s = result.seconds
    print(f"seconds: load {s['load']:.1f}, train {s['train']:.1f}, features {s['features']:.1f}, select {s['select']:.1f}")
    if encoder is not None:
        print(f"encoder {encoder.path.name}: {result.encoded} image(s) encoded this round, the others from the cache")
    print(f"picked {len(result.picked)} images: {out} (fill in the label column), contact sheet {names['sheet']}")
    for key in ("tasks", "config"):
        if key in names:
            print(f"  {names[key]}")
    print(f"then: seqgcn import-labels {out} --images {args.images} --labels {args.labels}")
    return 0


def output_names(out: Path, labels: Path, *, label_studio: bool) -> dict:
    """The files a query writes besides the batch CSV `out`: "sheet", "history" and, for Label Studio, "tasks", "config"."""
    names = {"sheet": out.with_suffix(".png"), "history": history_path(labels)}
    if label_studio:
        names.update(tasks=out.with_suffix(".tasks.json"), config=out.with_suffix(".config.xml"))
    return names


def _reads_and_writes(args, names: dict) -> tuple[list, list]:
    """(outputs, inputs) of a query for `check_writes`; labels.csv is an output when the query creates it."""
    out, labels = str(args.out), str(args.labels)
    outputs = [(names["history"], f"the query history {str(names['history'])!r} (named after --labels)", "--labels"),
               (out, f"--out {out!r}", "--out"),
               (names["sheet"], f"the contact sheet {str(names['sheet'])!r} (named after --out)", "--out")]
    for key, what in (("tasks", "the Label Studio tasks"), ("config", "the Label Studio config")):
        if key in names:
            outputs.append((names[key], f"{what} {str(names[key])!r} (named after --out)", "--out"))
    inputs = [(args.test_labels, f"the --test-labels file {args.test_labels!r}")] if args.test_labels else []
    if Path(labels).exists():
        inputs.append((labels, f"the --labels file {labels!r}"))
    else:
        outputs.insert(0, (labels, f"--labels {labels!r} (created empty)", "--labels"))
    return outputs, inputs


def _check_answers_imported(out: Path, labels: Path, images) -> None:
    """Replace an existing --out only when it is a batch CSV whose answers are all in labels.csv already."""
    if not out.is_file() or out.stat().st_size == 0:
        return
    try:
        answers = read_answers(out)
    except InputError:
        raise InputError(f"--out {str(out)!r} exists and is not a batch CSV (path,label) that a query would replace; "
                         "choose another --out") from None
    have = read_labels(labels)
    pending = [a for a in answers if a.label and have.get(a.path) != a.label]
    if pending:
        raise InputError(f"--out {str(out)!r} holds {len(pending)} answer(s) that are not in {str(labels)!r} yet (e.g. "
                         f"{pending[0].path!r}); import them first (seqgcn import-labels {out} --images {images} "
                         f"--labels {labels}) or choose another --out")
