"""Helpers for the --encoder tests (no tests here): a small CNN exported to ONNX and .pt2, and image folders.

No pretrained weights exist offline, so the encoder is a random small CNN; what the
tests check is the plumbing (formats, metadata, cache, errors), not embedding quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


class TinyCNN(nn.Module):
    """Two conv blocks and global average pooling: (n, 3, s, s) -> (n, 16); `maps=True` keeps (n, 16, h, w)."""

    def __init__(self, maps: bool = False, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.maps = maps

    def forward(self, x):
        h = self.body(x)  # (n, 16, s/2, s/2)
        return h if self.maps else h.mean(dim=(2, 3))


class Not2D(nn.Module):
    """Outputs (n, 2, 4, 4, 1): not (n, d) even after pooling."""

    def forward(self, x):
        return x[:, :2, :4, :4, None]


def export_pt2(net: nn.Module, path, *, size: int = 32, dynamic_batch: bool = True, metadata: dict | None = None):
    example = (torch.zeros(2, 3, size, size),)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    program = torch.export.export(net.eval(), example, dynamic_shapes=shapes)
    extra = {"seqgcn.json": json.dumps(metadata)} if metadata else None
    torch.export.save(program, str(path), extra_files=extra)
    return path


def export_onnx(net: nn.Module, path, *, size: int = 32, metadata: dict | None = None):
    onnx = pytest.importorskip("onnx")
    torch.onnx.export(net.eval(), (torch.zeros(2, 3, size, size),), str(path), dynamo=False, input_names=["images"],
                      dynamic_axes={"images": {0: "batch"}})
    if metadata:
        model = onnx.load(str(path))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.save(model, str(path))
    return path


def colour_folder(root, n_per_class: int = 10, *, size: int = 32, seed: int = 0) -> dict:
    """PNG images of three colours with noise, under root/<colour>/; returns {relative path: colour}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for colour, rgb in COLOURS.items():
        (root / colour).mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            noise = rng.integers(-25, 26, (size, size, 3))
            pixels = np.clip(np.asarray(rgb) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / colour / f"{k:03d}.png")
            truth[f"{colour}/{k:03d}.png"] = colour
    return truth
