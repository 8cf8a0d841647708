"""`seqgcn labelstudio push|pull|serve`: a batch to a running Label Studio server, its finished annotations back,
or seqgcn as that server's ML backend (pre-labels, the labelling order, retraining as answers arrive)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

from seqgcn.checks import InputError
from seqgcn.cli.embed import add_encoder_arguments, encoder_from_args, head_config_from_args, refuse_cnn_options
from seqgcn.cli.import_labels import check_writes, import_answers, project_images
from seqgcn.cli.options import (SAMPLER_OPTION_FLAGS, add_project_arguments, add_query_learner_arguments,
                                add_sampler_arguments, add_server_arguments, sampler_options)
from seqgcn.experiment.config import ExperimentConfig
from seqgcn.labelling import labelstudio
from seqgcn.labelling.exports import label_config, label_studio_tasks
from seqgcn.labelling.labels import read_answers, read_labels
from seqgcn.samplers import build_sampler, check_method_options, query_samplers, sampler_class


def add_parser(sub) -> None:
    p = sub.add_parser("labelstudio", help="send a batch to a running Label Studio, or fetch its annotations",
                       description="Talk to a running Label Studio server (push, pull need: pip install seqgcn[labelstudio]), "
                       "or be its ML backend (serve needs: pip install seqgcn[serve]).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    push = verbs.add_parser("push", help="create or update a project with a batch")
    push.add_argument("batch", metavar="BATCH.csv", help="the batch CSV written by seqgcn query")
    add_server_arguments(push)
    add_project_arguments(push)
    push.add_argument("--classes", metavar="A,B,...", help="class names to offer besides those labelled so far")
    push.add_argument("--image-url", default="embed", metavar="PREFIX", help="'embed' (default: PNG data URIs) or a URL prefix")
    push.set_defaults(func=cmd_push)

    pull = verbs.add_parser("pull", help="import a project's finished annotations into labels.csv")
    add_server_arguments(pull)
    add_project_arguments(pull)
    pull.add_argument("--overwrite", action="store_true", help="accept answers that change an existing label")
    pull.set_defaults(func=cmd_pull)

    serve = verbs.add_parser("serve", help="be Label Studio's ML backend: pre-labels, the labelling order, retraining",
                             description="Answer Label Studio's ML-backend protocol (/health, /setup, /predict, /webhook): "
                             "each task gets the learner's class as a pre-label and a score that, sorted ascending, lists "
                             "the sampler's next batch first; answers go into labels.csv as they arrive and every K of them "
                             "start a retrain in the background. labels.csv is the only state: kill and restart at will.")
    add_project_arguments(serve, image_size=True)
    serve.add_argument("--budget", type=int, default=10, metavar="B", help="images per batch (default 10)")
    serve.add_argument("--method", default="CoreGCN", metavar="M", help=f"sampler: one of {', '.join(query_samplers())} "
                       "(default CoreGCN)")
    serve.add_argument("--retrain-every", type=int, default=10, metavar="K", help="new answers that start a retrain and a "
                       "new selection (default 10)")
    serve.add_argument("--overwrite", action="store_true", help="accept answers that change an existing label (the new "
                       "row wins); without it such an answer is refused and listed on /health")
    web = serve.add_argument_group("web server")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=9090, help="port (default 9090)")
    web.add_argument("--basic-auth", default=os.environ.get("SEQGCN_BASIC_AUTH"), metavar="USER:PASSWORD",
                     help="require HTTP basic authentication, as set in Label Studio's model connection "
                     "(default: $SEQGCN_BASIC_AUTH, else none)")
    web.add_argument("--max-body-mb", type=float, default=8.0, metavar="MB", help="largest request body accepted, MiB "
                     "(default 8; tasks that embed their images need more)")
    sync = serve.add_argument_group("keeping the project on the newest model (optional; needs seqgcn[labelstudio])",
                                    "With --url and --api-key, each retrain sets project TITLE's model version to the new "
                                    "model's, so that the Data Manager's Prediction score column and the pre-labels follow it, "
                                    "and at start the answers given while the server was down are read from the project.")
    add_server_arguments(sync)
    add_query_learner_arguments(serve)
    add_encoder_arguments(serve)
    add_sampler_arguments(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_push(args) -> int:
    """Writes no local file: the batch and labels.csv are only read."""
    images = set(project_images(args.images))
    batch = [a.path for a in read_answers(args.batch)]
    unknown = [p for p in batch if p not in images]
    if unknown:
        raise InputError(f"batch {args.batch!r} names image {unknown[0]!r}, which is not in {args.images!r}")
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
    """The answers are fetched, then the folder and labels.csv checked (`check_writes`), then labels.csv written."""
    client = labelstudio.connect(args.url, args.api_key)
    answers = labelstudio.pull(client, args.project)
    paths = project_images(args.images)
    check_writes(args.images, paths, [(args.labels, f"--labels {args.labels!r}", "--labels")])
    return import_answers(answers, args, paths=paths, source=f"Label Studio project {args.project!r}")


def cmd_serve(args) -> int:
    """Every option, the folder and labels.csv are checked, and the port bound, before the server starts."""
    from seqgcn.labelling import mlbackend

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError(f"seqgcn labelstudio serve needs Starlette and uvicorn: {mlbackend.INSTALL_HINT}") from None
    kind = sampler_class(args.method)
    if kind.name not in query_samplers():
        raise InputError(f"{kind.name} reads {kind.reads}; choose one of {', '.join(query_samplers())}")
    options = sampler_options(args)
    check_method_options([args.method], options, labels=SAMPLER_OPTION_FLAGS)
    build_sampler(args.method, options=options)
    for name, value in (("--budget", args.budget), ("--retrain-every", args.retrain_every)):
        if value < 1:
            raise InputError(f"{name}={value} must be a positive integer")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port={args.port} must be in 0..65535")
    if not args.max_body_mb > 0:
        raise InputError(f"--max-body-mb={args.max_body_mb} must be a number > 0")
    basic_auth = mlbackend.parse_basic_auth(args.basic_auth)
    given = {k: getattr(args, k) for k in ("arch", "epochs", "batch_size", "device", "seed", "threads", "subset",
                                           "optimizer", "lr")}
    config = ExperimentConfig.from_dict({k: v for k, v in given.items() if v is not None}, source="command line")
    if config.subset is not None and config.subset < args.budget:
        raise InputError(f"--subset={config.subset} must be at least --budget={args.budget} (or 'all')")
    paths = project_images(args.images)
    check_writes(args.images, paths, [(args.labels, f"--labels {args.labels!r}", "--labels")])
    read_labels(args.labels, images=set(paths))  # a broken labels.csv: one line now, not a failed retrain later
    learner_config = dataclasses.replace(config.learner_config("classification"), progress=False)
    if args.encoder is not None:
        refuse_cnn_options(args)
    encoder = encoder_from_args(args, threads=config.threads)  # a bad file: one line, before the server listens
    head_config = head_config_from_args(args, device=config.device) if encoder is not None else None
    sock = mlbackend.listen(args.host, args.port)  # a port in use: one line, before any work
    host, port = sock.getsockname()[:2]
    on_model, missed = None, []
    if args.url or args.api_key:
        on_model = mlbackend.sync_project(args.url, args.api_key, args.project)  # both needed; SDK missing: one line
        try:  # answers given while the server was down (Label Studio does not retry a webhook)
            missed = labelstudio.pull(labelstudio.connect(args.url, args.api_key), args.project)
        except InputError as exc:
            print(f"seqgcn: warning: no catch-up with Label Studio's answers: {' '.join(str(exc).split())}", file=sys.stderr)
    backend = mlbackend.MLBackend(mlbackend.ServeConfig(
        images=args.images, labels=args.labels, budget=args.budget, method=args.method, retrain_every=args.retrain_every,
        overwrite=args.overwrite, query=dict(image_size=args.image_size, subset=config.subset, seed=config.seed,
                                             learner_config=learner_config, sampler_params=options, device=config.device,
                                             threads=config.threads, encoder=encoder, head_config=head_config)),
        on_model=on_model)
    if basic_auth is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"seqgcn: warning: listening on {args.host} without --basic-auth: anyone who reaches this port can add "
              "labels", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s seqgcn serve: %(message)s", stream=sys.stderr)
    print(f"seqgcn ML backend on http://{host}:{port} for {args.images} ({len(paths)} images), labels {args.labels}; "
          "connect it in Label Studio under Settings > Model; Ctrl-C stops", flush=True)
    mlbackend.serve(backend, sock, basic_auth=basic_auth, max_body=int(args.max_body_mb * 2**20), missed=missed)
    return 0
