"""LearnerConfig: every knob of a learner, and the one set of learner defaults.

The defaults are those of `seqgcn run` with no options (a fast CPU run on the
embedded digits); `seqgcn.experiment.config.ExperimentConfig` takes its learner
defaults from here, and the paper's protocols (ResNet-18, 200 epochs, SGD 0.1,
lr ÷10 after epoch 160) are presets (`seqgcn.experiment.presets`). Settings that
depend on the task are chosen by `for_task`: SGD lr 0.05 for classification,
Adam lr 1e-3 for regression (the paper's DeepPrior).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from seqgcn.checks import InputError, check_choice, check_device, check_int, check_number, is_int
from seqgcn.learners.nets import ARCHS

AUGMENTS = ("auto", "none", "crop", "crop_flip")
OPTIMIZERS = ("sgd", "adam")

OPTIMIZER_BY_TASK = {"classification": "sgd", "regression": "adam"}  # regression: DeepPrior, paper §4.2
LR_BY_OPTIMIZER = {"sgd": 0.05, "adam": 1e-3}  # sgd: the digits demo's (paper CIFAR: 0.1, a preset); adam: the paper's DeepPrior


@dataclass(frozen=True)
class LearnerConfig:
    arch: str = "auto"            # "auto" | "small_cnn" | "resnet18" | "vgg11" | "deepprior"; auto picks by dataset
    epochs: int = 30              # training epochs per cycle (paper: 200, see the presets)
    batch_size: int = 32          # images per step (paper: 128)
    optimizer: str = "sgd"        # "sgd" (classification) | "adam" (DeepPrior); see `for_task`
    lr: float = LR_BY_OPTIMIZER["sgd"]  # initial learning rate
    momentum: float = 0.9         # SGD momentum
    weight_decay: float = 5e-4    # L2 penalty
    milestones: tuple | None = None  # epochs after which lr is multiplied by `gamma` (None: at 80 % of `epochs`, the paper's 160/200)
    gamma: float = 0.1            # lr decay factor at each milestone
    augment: str = "auto"         # "auto" | "none" | "crop_flip" (random crop w/ padding 4 + h-flip) | "crop"
    device: str = "cpu"           # "cpu" | "cuda" | "cuda:N" | "auto" (cuda when available)
    fast: bool = True             # on CUDA: channels_last + bf16 autocast (no effect on CPU)
    compile: bool = False         # torch.compile the model (CUDA only)
    eval_batch_size: int = 1024   # images per step for evaluation / feature extraction
    progress: bool = False        # show a per-epoch progress bar
    feature_dim: int = 128        # small_cnn feature width (resnet18 / vgg11: 512, deepprior: 1024, fixed)

    def resolved_milestones(self) -> tuple:
        """`milestones`, or (0.8 × epochs,) when None: the paper decays lr ÷10 after epoch 160 of 200."""
        return tuple(self.milestones) if self.milestones is not None else (max(1, round(0.8 * self.epochs)),)

    def check(self) -> "LearnerConfig":
        """Every field's type and range (one-line `InputError` at the first wrong one); returns self."""
        check_choice(self.arch, ("auto", *ARCHS), name="arch")
        for name in ("epochs", "batch_size", "eval_batch_size", "feature_dim"):
            check_int(getattr(self, name), name=name, low=1, high=MAX_COUNT)
        check_choice(self.optimizer, OPTIMIZERS, name="optimizer")
        check_number(self.lr, name="lr", what="a finite number > 0", ok=lambda v: v > 0)
        check_number(self.momentum, name="momentum", what="a number in [0, 1)", ok=lambda v: 0 <= v < 1)
        check_number(self.weight_decay, name="weight_decay", what="a finite number >= 0", ok=lambda v: v >= 0)
        check_milestones(self.milestones)
        check_number(self.gamma, name="gamma", what="a number in (0, 1] (the lr is multiplied by it at each milestone)",
                     ok=lambda v: 0 < v <= 1)
        check_choice(self.augment, AUGMENTS, name="augment")
        check_device(self.device)
        return self

    @classmethod
    def for_task(cls, task: str, *, optimizer: str | None = None, lr: float | None = None, **settings) -> "LearnerConfig":
        """The config for a dataset of `task`; `optimizer` and `lr` left at None are chosen by the task, here only."""
        optimizer = optimizer if optimizer is not None else OPTIMIZER_BY_TASK.get(task, "sgd")
        lr = lr if lr is not None else LR_BY_OPTIMIZER.get(optimizer, LR_BY_OPTIMIZER["sgd"])
        return dataclasses.replace(cls(), optimizer=optimizer, lr=lr, **settings)


MAX_COUNT = 10**7  # epochs, batch sizes, widths: anything larger is a typo, refused at once instead of running for days


def check_milestones(milestones) -> None:
    """None, or epochs (positive integers, increasing); one at or past `epochs` never fires, as in MultiStepLR."""
    if milestones is None:
        return
    want = "a list of increasing positive integers (epochs after which the lr is multiplied by gamma), e.g. [160]"
    shown = list(milestones) if isinstance(milestones, tuple) else milestones
    if not isinstance(milestones, tuple) or not all(is_int(m) and m >= 1 for m in milestones) \
            or any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise InputError(f"milestones={shown!r} must be {want}")
