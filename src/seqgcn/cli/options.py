"""The options that several commands share, defined once; every command module (`seqgcn.cli.*`) adds its own.

None as an option's default means "not given": the config (`ExperimentConfig`,
`LearnerConfig`), a preset or a config file decides, so each default lives in
one place and the help text only quotes it.
"""

from __future__ import annotations

import argparse
import os

from seqgcn.experiment.config import ExperimentConfig
from seqgcn.learners.config import LR_BY_OPTIMIZER

# sampler options set for a whole run or command: option dest -> the samplers' parameter name
SAMPLER_OPTIONS = {"gcn_epochs": "epochs", "normalization": "normalization", "margin_rule": "margin_rule", "margin": "margin"}
SAMPLER_OPTION_FLAGS = {"epochs": "--gcn-epochs", "normalization": "--normalization", "margin_rule": "--margin-rule",
                        "margin": "--margin"}


def subset_arg(text: str):
    """An integer, or "all" (kept as text: None would read as "not given" in `config_from_args`; `from_dict` maps it)."""
    if text.lower() in ("all", "none"):
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None



def device_arg(text: str) -> str:
    """cpu, cuda, cuda:N or auto (the same rule as the config's, `seqgcn.checks.check_device`)."""
    if text in ("cpu", "cuda", "auto") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")


def add_device_argument(group, default: str) -> None:
    group.add_argument("--device", type=device_arg, metavar="DEV", help=f"where the learner and the sampler run: cpu, cuda, "
                       f"cuda:N or auto (default {default})")


def add_learner_arguments(parser: argparse.ArgumentParser, *, title: str = "learner") -> None:
    """The learner options (`seqgcn run`, `seqgcn query`); None = not given, the config decides (`ExperimentConfig`)."""
    d = ExperimentConfig()
    sgd, adam = LR_BY_OPTIMIZER["sgd"], LR_BY_OPTIMIZER["adam"]
    learner = parser.add_argument_group(title)
    learner.add_argument("--arch", metavar="NAME", help=f"learner network: small_cnn, resnet18, vgg11, deepprior "
                         f"(default {d.arch}: small_cnn for images up to 16 px, deepprior for depth crops, else resnet18)")
    learner.add_argument("--epochs", type=int, metavar="N", help=f"learner epochs per cycle (default {d.epochs})")
    learner.add_argument("--batch-size", type=int, metavar="N", help=f"images per learner step (default {d.batch_size})")
    learner.add_argument("--optimizer", choices=["sgd", "adam"], help="learner optimiser (default: by task, "
                         "sgd for classification, adam for regression as the paper's DeepPrior)")
    learner.add_argument("--lr", type=float, metavar="X", help=f"initial learning rate (default: by optimiser, {sgd:g} for sgd, "
                         f"{adam:g} for adam)")


def add_query_learner_arguments(p) -> None:
    """The learner options of `seqgcn run`, plus where to run, the seed and D_S; None = not given (`ExperimentConfig`'s default)."""
    d = ExperimentConfig()
    add_learner_arguments(p, title="learner (as in seqgcn run)")
    g = p.add_argument_group("device, seed and candidates")
    add_device_argument(g, d.device)
    g.add_argument("--seed", type=int, metavar="N", help=f"random seed (default {d.seed}); same inputs and seed, same batch")
    g.add_argument("--threads", type=int, metavar="N", help=f"torch CPU threads (default {d.threads}); float sums, hence "
                   "the batch, depend on it: same inputs, seed and threads, same batch")
    g.add_argument("--subset", type=subset_arg, metavar="N", help=f"size of the random candidate subset D_S, or 'all' (default {d.subset})")


def add_sampler_arguments(parser, *, title: str = "sampler options (passed to the methods that take them)") -> None:
    """The GCN samplers' options; an option that none of the chosen methods takes is an error."""
    g = parser.add_argument_group(title)
    g.add_argument("--gcn-epochs", type=int, metavar="N", help="GCN training steps (default: the sampler's own, 200 as the "
                   "reference code)")
    g.add_argument("--normalization", choices=["column", "row"], help="GCN adjacency normalisation: 'column' (reference "
                   "code, default) or 'row' (paper eq. 4)")
    g.add_argument("--margin-rule", choices=["closest", "farthest"], help="UncertainGCN: pick scores closest to s_margin "
                   "(reference code, default) or farthest (paper eq. 7 literal)")
    g.add_argument("--margin", type=float, metavar="S", help="UncertainGCN's s_margin, a score in [0, 1] (default 0.1)")


def sampler_options(args) -> dict:
    """The sampler options given on the command line, under the samplers' parameter names."""
    return {param: getattr(args, dest) for dest, param in SAMPLER_OPTIONS.items() if getattr(args, dest, None) is not None}


def add_project_arguments(p, *, image_size: bool = False) -> None:
    p.add_argument("--images", required=True, metavar="DIR", help="the images folder (every PNG/JPEG/BMP/TIFF under it, recursively)")
    p.add_argument("--labels", required=True, metavar="labels.csv", help="CSV 'path,label' of the labels so far "
                   "(paths relative to DIR); created if missing, only ever appended to")
    if image_size:
        p.add_argument("--image-size", type=int, default=32, metavar="PX", help="side the images are resized to for the "
                       "learner (default 32: the CIFAR size the ResNet-18 and small CNN are built for)")




def add_server_arguments(p) -> None:
    p.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"), metavar="URL",
                   help="Label Studio address, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL)")
    p.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"), metavar="KEY",
                   help="access token (default: $LABEL_STUDIO_API_KEY)")
    p.add_argument("--project", default="seqgcn", metavar="TITLE", help="project title (default seqgcn)")
