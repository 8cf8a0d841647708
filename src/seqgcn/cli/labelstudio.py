"""`seqgcn labelstudio push|pull`: a batch to a running Label Studio server, its finished annotations back."""

from __future__ import annotations

from seqgcn.checks import InputError
from seqgcn.cli.import_labels import check_writes, import_answers, project_images
from seqgcn.cli.options import add_project_arguments, add_server_arguments
from seqgcn.labelling import labelstudio
from seqgcn.labelling.exports import label_config, label_studio_tasks
from seqgcn.labelling.labels import read_answers, read_labels


def add_parser(sub) -> None:
    p = sub.add_parser("labelstudio", help="send a batch to a running Label Studio, or fetch its annotations",
                       description="Talk to a running Label Studio server (needs: pip install seqgcn[labelstudio]).")
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
