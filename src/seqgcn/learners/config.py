"""LearnerConfig: every knob of a learner, with the paper's defaults where it has them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LearnerConfig:
    arch: str = "auto"            # "auto" | "small_cnn" | "resnet18" | "vgg11" | "deepprior"; auto picks by dataset
    epochs: int = 200             # training epochs per cycle (paper: 200)
    batch_size: int = 128         # images per step (paper: 128)
    optimizer: str = "sgd"        # "sgd" (classification, paper) | "adam" (DeepPrior, paper)
    lr: float = 0.1               # initial learning rate (paper: 0.1 SGD; 1e-3 Adam)
    momentum: float = 0.9         # SGD momentum
    weight_decay: float = 5e-4    # L2 penalty
    milestones: tuple = (160,)    # epochs after which lr is multiplied by `gamma` (paper: ÷10 after 160)
    gamma: float = 0.1            # lr decay factor at each milestone
    augment: str = "auto"         # "auto" | "none" | "crop_flip" (random crop w/ padding 4 + h-flip) | "crop"
    device: str = "auto"          # "cpu" | "cuda" | "auto" (cuda when available)
    fast: bool = True             # on CUDA: channels_last + bf16 autocast (no effect on CPU)
    compile: bool = False         # torch.compile the model (CUDA only)
    eval_batch_size: int = 1024   # images per step for evaluation / feature extraction
    progress: bool = False        # show a per-epoch progress bar
    feature_dim: int = 128        # small_cnn feature width (resnet18 / vgg11: 512, deepprior: 1024, fixed)
