"""The learners' networks. Every `forward(x)` returns ``(output, features)``.

``output`` is ``(n, n_outputs)`` (class logits or regression targets) and
``features`` is the penultimate vector ``(n, feature_dim)`` that the samplers
build their graph on (SPEC §2, §5). Each network has a ``feature_dim`` attribute,
and ``forward_stages(x)`` returning ``(output, features, [stage outputs])`` with
the stages' channel counts in ``stage_channels`` (Learning Loss reads them).

- `SmallCNN` — a few 3×3 conv blocks for the embedded 8×8 / 16×16 digits; its
  three blocks are its stages.
- `ResNet18` — the CIFAR variant used by the paper (3×3 stem, stride 1, no
  max-pool), 512-d features; ``in_channels=1`` for FashionMNIST.
  `ResNet18.forward_stages` also returns the four stage outputs (Learning Loss).
- `VGG11` — VGG-11 with BatchNorm (paper supp. B.4), 512-d features; the
  outputs of its five max-pools are its stages.
- `DeepPrior` — Oberweger et al. 2015 hand-pose regression CNN on 128×128 depth
  crops, 1024-d features; its three convolutions are its stages.

Weights are created by `build_net`, which takes the seed explicitly and leaves
the global RNG state as it found it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from seqgcn.checks import InputError

VGG11_CONFIG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _run_collecting(body: nn.Sequential, x: torch.Tensor, stage_type: type) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run `body` on x; also return the output of every layer of type `stage_type` (the network's stages)."""
    stages, h = [], x
    for layer in body:
        h = layer(h)
        if isinstance(layer, stage_type):
            stages.append(h)
    return h, stages


class SmallCNN(nn.Module):
    """Three 3×3 conv+BN+ReLU blocks, global average pooling, a linear head.

    Sized for the embedded digits: the first block runs at full resolution,
    then 2× max-pools bring the side down to 4 (one pool at 8×8, two at 16×16)
    before the wider blocks, so an 8×8 digit costs ~0.7 M multiply-adds and the
    net trains to > 95 % test accuracy in seconds on a CPU.

    Parameters
    ----------
    in_channels : int
    n_outputs : int
        Classes (logits) or regression targets.
    image_size : int
        Side of the (square) input; decides how many 2× poolings are used (at most 2).
    width : int
        Channels of the first block (the second has ``2 * width``).
    feature_dim : int
        Channels of the last block = size of the feature vector.
    """

    def __init__(self, in_channels: int = 1, n_outputs: int = 10, image_size: int = 8, *,
                 width: int = 16, feature_dim: int = 128):
        super().__init__()
        n_pools, side = 0, int(image_size)
        while side > 4 and n_pools < 2:
            side, n_pools = side // 2, n_pools + 1
        pools = [nn.MaxPool2d(2) for _ in range(n_pools)]
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, width),
            *pools[:1],
            _conv_bn_relu(width, 2 * width),
            *pools[1:],
            _conv_bn_relu(2 * width, feature_dim),
        )
        self.head = nn.Linear(feature_dim, n_outputs)
        self.feature_dim = feature_dim
        self.stage_channels = (width, 2 * width, feature_dim)

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(output, features, [block1, block2, block3])``; each block's output after its ReLU."""
        h, stages = _run_collecting(self.body, x, nn.Sequential)  # the conv blocks (pools are not stages)
        feat = h.mean(dim=(2, 3))  # (n, feature_dim)
        return self.head(feat), feat, stages  # (n, n_outputs), (n, feature_dim), 3 × (n, c_k, s_k, s_k)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (n, feature_dim, s, s), s = side after pooling
        feat = h.mean(dim=(2, 3))  # (n, feature_dim)
        return self.head(feat), feat  # (n, n_outputs), (n, feature_dim)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convs with BN, identity or 1×1-conv shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18, CIFAR variant: 3×3 stem with stride 1, no max-pool.

    BasicBlocks [2, 2, 2, 2] with widths 64-128-256-512 (strides 1, 2, 2, 2),
    global average pooling, 512-d features, a linear head. At 32×32 the four
    stage outputs are (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4).
    """

    def __init__(self, in_channels: int = 3, n_outputs: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        stages, c_in = [], 64
        for width, stride in zip(widths, strides, strict=True):
            stages.append(nn.Sequential(BasicBlock(c_in, width, stride), BasicBlock(width, width, 1)))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(512, n_outputs)
        self.feature_dim = 512
        self.stage_channels = widths

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(output, features, [stage1, stage2, stage3, stage4])`` — the stages feed Learning Loss."""
        h = self.stem(x)  # (n, 64, H, W)
        outs = []
        for stage in self.stages:
            h = stage(h)
            outs.append(h)
        feat = h.mean(dim=(2, 3))  # (n, 512)
        return self.head(feat), feat, outs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, feat, _ = self.forward_stages(x)
        return out, feat  # (n, n_outputs), (n, 512)


class VGG11(nn.Module):
    """VGG-11 with BatchNorm, adapted to 32×32 inputs (paper supp. B.4).

    Config ``[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M]``: at 32×32
    the last pool leaves (512, 1, 1), flattened to the 512-d feature vector, and
    one linear layer gives the output. Pools use ``ceil_mode`` so 28×28 inputs
    also reach 1×1; a final global average pool covers larger inputs.
    """

    def __init__(self, in_channels: int = 3, n_outputs: int = 10):
        super().__init__()
        layers, c_in = [], in_channels
        for item in VGG11_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers.append(_conv_bn_relu(c_in, item))
                c_in = item
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(512, n_outputs)
        self.feature_dim = 512
        self.stage_channels = tuple(c for c, nxt in zip(VGG11_CONFIG, VGG11_CONFIG[1:]) if nxt == "M")  # 64 … 512

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(output, features, [pool1, …, pool5])``: the output of each max-pool."""
        h, stages = _run_collecting(self.body, x, nn.MaxPool2d)
        feat = h.mean(dim=(2, 3))  # (n, 512)
        return self.head(feat), feat, stages

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.body(x).mean(dim=(2, 3))  # (n, 512)
        return self.head(feat), feat


class DeepPrior(nn.Module):
    """DeepPrior-style hand-pose regressor (Oberweger, Wohlhart, Lepetit 2015).

    conv 5×5 (8) → ReLU → max-pool 4 → conv 5×5 (8) → ReLU → max-pool 2 →
    conv 3×3 (8) → ReLU → FC 1024 → ReLU → dropout → FC 1024 → ReLU → dropout →
    FC ``n_outputs`` (3·J joint coordinates). The second 1024-d vector (after
    ReLU, before dropout) is the feature. The paper's PCA "prior" bottleneck is
    folded into the last linear layer.

    Parameters
    ----------
    n_outputs : int
    in_size : int
        Side of the square depth crop (128 in the paper); must be at least 8.
    in_channels : int
    dropout : float
        Dropout probability after each FC layer (0.3 as in DeepPrior).
    """

    def __init__(self, n_outputs: int, in_size: int = 128, *, in_channels: int = 1, dropout: float = 0.3):
        super().__init__()
        if in_size < 8:
            raise InputError(f"in_size={in_size} must be at least 8 (the conv stack pools by 8)")
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(4),
            nn.Conv2d(8, 8, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
        )
        side = in_size // 4 // 2
        self.fc1 = nn.Linear(8 * side * side, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.head = nn.Linear(1024, n_outputs)
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = 1024
        self.stage_channels = (8, 8, 8)

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(output, features, [conv1, conv2, conv3])``: each convolution's output after its ReLU."""
        h, stages = _run_collecting(self.body, x, nn.ReLU)
        out, feat = self._head(h)
        return out, feat, stages

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._head(self.body(x))

    def _head(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = h.flatten(1)  # (n, 8 * (in_size // 8) ** 2)
        h = self.dropout(F.relu(self.fc1(h)))  # (n, 1024)
        feat = F.relu(self.fc2(h))  # (n, 1024)
        return self.head(self.dropout(feat)), feat  # (n, n_outputs), (n, 1024)


ARCHS = ("small_cnn", "resnet18", "vgg11", "deepprior")


def build_net(arch: str, *, in_channels: int, n_outputs: int, image_size: int, seed: int,
              feature_dim: int = 128) -> nn.Module:
    """Build network `arch` with weights drawn from `seed` (PyTorch's default init).

    The global CPU RNG is seeded inside `torch.random.fork_rng`, so the caller's
    RNG state is unchanged and the same seed always gives the same weights, on
    any device the module is later moved to. `feature_dim` only applies to
    ``small_cnn``; `image_size` is the input side (square images).
    """
    if arch not in ARCHS:
        raise InputError(f"arch={arch!r} is not a known network; known: {', '.join(ARCHS)}")
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))  # CPU only: CUDA generators stay untouched
        if arch == "small_cnn":
            return SmallCNN(in_channels, n_outputs, image_size, feature_dim=feature_dim)
        if arch == "resnet18":
            return ResNet18(in_channels, n_outputs)
        if arch == "vgg11":
            return VGG11(in_channels, n_outputs)
        return DeepPrior(n_outputs, image_size, in_channels=in_channels)
