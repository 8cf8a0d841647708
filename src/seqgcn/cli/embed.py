"""`seqgcn embed`: a folder's images through a frozen encoder, to an (N, d) .npy that `seqgcn select` reads.

Writes, together (`seqgcn.io.write_all`): ``--out emb.npy`` (row i = image i), the
paths CSV ``emb.paths.csv`` (``index,path``: which image row i is) and, with an
existing ``--labels``, ``emb.labelled.txt`` (the labelled images' rows, select's
``--labelled``). Embeddings are cached per image next to --labels (else next to
--out), so a second run, or `seqgcn query --encoder` on the same labels, reuses them.

Also home of the ``--encoder`` options that `seqgcn query` and `seqgcn run` share.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from seqgcn.checks import InputError
from seqgcn.cli.import_labels import check_writes, project_images
from seqgcn.io import write_all
from seqgcn.labelling.embeddings import cache_folder, embed_images
from seqgcn.labelling.labels import read_labels
from seqgcn.learners.encoder import CHANNEL_ORDERS, load_encoder
from seqgcn.learners.head import HeadConfig


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="embed a folder's images with a frozen encoder (for seqgcn select)",
                       description="Run a frozen pretrained encoder (ONNX or torch.export .pt2) over every image of a "
                       "folder and write the (N, d) embeddings as .npy with a paths CSV (row i = image i), for "
                       "'seqgcn select --features'. Embeddings are cached per image: a rerun only encodes new images.")
    p.add_argument("--images", required=True, metavar="DIR", help="the images folder (every PNG/JPEG/BMP/TIFF under it, "
                   "recursively)")
    p.add_argument("--out", required=True, metavar="emb.npy", help="the embeddings to write; the paths CSV goes next to it "
                   "as <name>.paths.csv")
    p.add_argument("--labels", metavar="labels.csv", help="the project's labels: the cache is shared with 'seqgcn query "
                   "--encoder' next to it, and <name>.labelled.txt lists the labelled rows for select's --labelled")
    p.add_argument("--skip-unreadable", action="store_true", help="leave out (and list) images that cannot be decoded "
                   "instead of stopping")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads of the encoder (default 1)")
    add_encoder_arguments(p, required=True, head=False)
    p.set_defaults(func=run)


def add_encoder_arguments(parser, *, required: bool = False, head: bool = True, head_steps: bool = True,
                          batch: bool = True) -> None:
    """``--encoder`` and how images are prepared for it; with `head`, the head learner's width (and, with
    `head_steps`, a note that --epochs and --lr set its steps); with `batch`, --encoder-batch-size."""
    g = parser.add_argument_group("frozen encoder (defaults: the model file's metadata, then its input shape, then "
                                  "ImageNet's RGB mean and std)")
    g.add_argument("--encoder", required=required, metavar="FILE", help="a pretrained encoder: an ONNX model (.onnx, "
                   "needs pip install 'seqgcn[encoder]') or a torch.export program (.pt2). Its embeddings are the "
                   "features" + (" and a light head is the learner" if head else "") + "; nothing is downloaded")
    g.add_argument("--encoder-input-size", type=int, metavar="PX", help="side the images are resized to for the encoder")
    g.add_argument("--encoder-channel-order", choices=CHANNEL_ORDERS, help="channel order the encoder expects")
    g.add_argument("--encoder-mean", type=_floats, metavar="M[,M,M]", help="per-channel mean subtracted, [0, 1] units")
    g.add_argument("--encoder-std", type=_floats, metavar="S[,S,S]", help="per-channel std divided by, [0, 1] units")
    if batch:
        g.add_argument("--encoder-batch-size", type=int, default=256, metavar="N", help="images per encoder pass "
                       "(default 256; memory is bounded by one batch)")
    if head:
        d = HeadConfig()
        steps = (f"; --epochs and --lr set its Adam steps (default {d.epochs}) and rate (default {d.lr:g})" if head_steps
                 else f"; trained with {d.epochs} full-batch Adam steps, lr {d.lr:g}")
        g.add_argument("--head-hidden", type=int, metavar="N", help=f"with --encoder: hidden units of the head, 0 for "
                       f"logistic regression (default {d.hidden}){steps}")


def encoder_from_args(args, *, threads: int = 1):
    """The `Encoder` the options name (None without --encoder); a bad file or setting is one line."""
    if getattr(args, "encoder", None) is None:
        for name in ("encoder_input_size", "encoder_channel_order", "encoder_mean", "encoder_std"):
            if getattr(args, name, None) is not None:
                raise InputError(f"--{name.replace('_', '-')} applies only with --encoder FILE")
        if getattr(args, "head_hidden", None) is not None:
            raise InputError("--head-hidden applies only with --encoder FILE")
        return None
    return load_encoder(args.encoder, input_size=args.encoder_input_size, channel_order=args.encoder_channel_order,
                        mean=args.encoder_mean, std=args.encoder_std, batch_size=args.encoder_batch_size,
                        threads=threads)


def head_config_from_args(args, *, device: str = "cpu") -> HeadConfig:
    """The head's settings: --head-hidden, and --epochs / --lr when given (they mean the head's with --encoder)."""
    given = {"hidden": getattr(args, "head_hidden", None), "epochs": getattr(args, "epochs", None),
             "lr": getattr(args, "lr", None)}
    return HeadConfig(**{k: v for k, v in given.items() if v is not None}, device=device).check()


def refuse_cnn_options(args, names=("arch", "batch_size", "optimizer")) -> None:
    """With --encoder the learner is the head: the CNN's own options would silently do nothing, so they are refused."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise InputError(f"--{name.replace('_', '-')} sets the CNN learner, which --encoder replaces by a head on the "
                             "embeddings (full-batch Adam); drop it, or use --head-hidden, --epochs, --lr")


def run(args) -> int:
    if isinstance(args.threads, bool) or args.threads < 1:
        raise InputError(f"--threads={args.threads} must be a positive integer")
    encoder = encoder_from_args(args, threads=args.threads)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise InputError(f"--out {args.out!r} must end in .npy (numpy.save's format, which 'seqgcn select' reads)")
    names = {"paths": out.with_suffix(".paths.csv"), "labelled": out.with_suffix(".labelled.txt")}
    labels = Path(args.labels) if args.labels else None
    paths = project_images(args.images)
    outputs = [(out, f"--out {args.out!r}", "--out"),
               (names["paths"], f"the paths CSV {str(names['paths'])!r} (named after --out)", "--out")]
    if labels is not None and labels.exists():
        outputs.append((names["labelled"], f"the labelled rows {str(names['labelled'])!r} (named after --out)", "--out"))
    inputs = [(labels, f"the --labels file {args.labels!r}")] if labels is not None and labels.exists() else []
    check_writes(args.images, paths, outputs, inputs)
    known = read_labels(labels, images=set(paths)) if labels is not None else {}

    cache = cache_folder(labels if labels is not None else out, encoder)
    result = embed_images(args.images, paths, encoder, cache, skip_unreadable=args.skip_unreadable,
                          progress=sys.stderr.isatty())
    for path in result.skipped:
        print(f"seqgcn: warning: skipped unreadable image {path!r}", file=sys.stderr)
    buffer = io.BytesIO()
    np.save(buffer, result.embeddings, allow_pickle=False)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "path"])
    writer.writerows(enumerate(result.paths))
    files = {out: buffer.getvalue(), names["paths"]: text.getvalue()}
    index = result.index()
    if len(outputs) == 3:
        files[names["labelled"]] = "".join(f"{i}\n" for i in sorted(index[p] for p in known if p in index))
    write_all(files)
    n, d = result.embeddings.shape
    s = result.seconds
    print(f"embedded {n} images to {d}-d ({result.encoded} new to the encoder, the others from the cache "
          f"{str(cache)!r}): {out}, rows named in {names['paths']}")
    if names["labelled"] in files:
        print(f"labelled rows: {names['labelled']} ({len(known)} labels)")
    print(f"seconds: {s['total']:.1f} (of which the encoder and its cache writes {s['encode']:.1f})")
    print(f"then: seqgcn select --features {out} --labelled "
          f"{names['labelled'] if names['labelled'] in files else 'L.txt'} --budget B")
    return 0


def _floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 0.485,0.456,0.406; "
                                         f"got {text!r}") from None
