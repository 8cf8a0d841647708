"""Protocol presets: the paper's settings per benchmark (SPEC §6), as ExperimentConfig fields.

`--preset cifar10` fills these in; a config file and command-line options still
override any of them. Values the paper does not state are marked "ours".
"""

from __future__ import annotations

from seqgcn.checks import InputError

_CLASSIFICATION = {
    "methods": ("Random", "CoreSet", "UncertainGCN", "CoreGCN"),
    "trials": 5,
    "cycles": 10,
    "subset": 10_000,         # D_S
    "arch": "resnet18",
    "epochs": 200,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "milestones": (160,),     # lr ÷ 10 after epoch 160
    "gamma": 0.1,
}

PRESETS: dict[str, dict] = {
    "cifar10": {**_CLASSIFICATION, "dataset": "cifar10", "seed_size": 1_000, "budget": 1_000, "augment": "crop_flip"},
    "cifar100": {**_CLASSIFICATION, "dataset": "cifar100", "seed_size": 2_000, "budget": 2_000, "augment": "crop_flip"},
    # 1-channel ResNet-18 ("auto" picks it from the data); crop with padding 4 as for CIFAR, no flip (ours)
    "fashionmnist": {**_CLASSIFICATION, "dataset": "fashionmnist", "seed_size": 1_000, "budget": 1_000, "augment": "crop"},
    # house numbers: a flipped digit is another symbol, so crop only (ours)
    "svhn": {**_CLASSIFICATION, "dataset": "svhn", "seed_size": 1_000, "budget": 1_000, "augment": "crop"},
    # regression, paper §4.2: budget 100, D_S = 10 % of the 16,004 training frames, Adam 1e-3, batch 128
    "icvl": {
        "dataset": "icvl",
        "methods": ("Random", "CoreSet", "UncertainGCN", "CoreGCN"),
        "trials": 5,
        "cycles": 10,          # ours
        "seed_size": 100,      # ours: the paper starts from one budget's worth
        "budget": 100,
        "subset": 1_600,       # 10 % of the training set
        "arch": "deepprior",
        "epochs": 100,         # ours
        "batch_size": 128,
        "optimizer": "adam",
        "lr": 1e-3,
        "momentum": 0.9,
        "weight_decay": 0.0,   # ours
        "milestones": (),
        "gamma": 0.1,
        "augment": "none",
    },
}


def available_presets() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> dict:
    """The ExperimentConfig fields of preset `name`."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
