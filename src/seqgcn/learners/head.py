"""HeadLearner: a light head trained on frozen embeddings (a `Learner`, for ``--encoder``).

The encoder (`seqgcn.learners.encoder`) runs once per image; each cycle only the
head is re-initialised and trained, full batch, in well under a second for
thousands of labelled items:

```
z      = (e - mean) / std                  # (n, d) embeddings standardised with the training rows' statistics
h      = relu(z @ W1 + b1)                  # (n, hidden), only when hidden > 0 (a small MLP)
logits = (h or z) @ W2 + b2                 # (n, n_outputs): logistic regression when hidden = 0
loss   = cross-entropy (classification, paper eq. 1) or mean per-point squared error (regression, eq. 2)
```

Adam on the full labelled set for `epochs` steps; weights drawn from a
`torch.Generator` seeded by `reset(seed)` (the global RNG is never touched), so the
same seed and data give the same head. `features` returns the frozen embeddings
(what every feature sampler reads); `probs` / `outputs` the head's softmax and
`dropout_passes` Monte-Carlo dropout before its last layer (for the samplers that
read the learner's outputs: Margin, Entropy, BADGE, BALD). A `Companion` (Learning
Loss) is trained alongside on the stages ``[z]`` (logistic) or ``[z, h]`` (MLP).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from seqgcn.checks import InputError, check_int, check_number, resolve_device
from seqgcn.data.base import CLASSIFICATION, Dataset
from seqgcn.learners.optim import Adam

MAX_HIDDEN = 65_536


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 0               # hidden units of the MLP; 0: logistic (linear) regression
    epochs: int = 200             # full-batch Adam steps per fit
    lr: float = 1e-2              # Adam learning rate
    weight_decay: float = 1e-4    # L2 penalty (Adam's weight_decay)
    device: str = "cpu"           # "cpu" | "cuda" | "cuda:N" | "auto"
    eval_batch_size: int = 8192   # rows per step for evaluation, probabilities, prediction

    def check(self) -> "HeadConfig":
        """Every field's type and range (one-line `InputError` at the first wrong one); returns self."""
        check_int(self.hidden, name="head hidden", low=0, high=MAX_HIDDEN)
        check_int(self.epochs, name="head epochs", low=1, high=1_000_000)
        check_int(self.eval_batch_size, name="head eval_batch_size", low=1, high=10**7)
        check_number(self.lr, name="head lr", what="a finite number > 0", ok=lambda v: v > 0)
        check_number(self.weight_decay, name="head weight_decay", what="a finite number >= 0", ok=lambda v: v >= 0)
        return self


class HeadLearner:
    """Logistic regression or a small MLP on frozen embeddings (implements `seqgcn.learners.Learner`).

    Parameters
    ----------
    train : (n_train, d) float embeddings; row i = global item i
    test : (n_test, d) float embeddings of the held-out items (may have no rows)
    test_targets : (n_test,) int labels or (n_test, n_outputs) float targets
    n_outputs : classes, or regression targets
    task : "classification" | "regression"
    config : HeadConfig
    seed : the initial weights' seed (`reset` is called with it)
    point_dim, target_scale, metric_unit : regression metric, as in `seqgcn.data.Dataset`
    dataset : the image `Dataset` the embeddings come from, when there is one (samplers that read
        the images, such as VAAL, find them there)
    encoder : the `Encoder` that made the embeddings; `predict` then also takes images

    Attributes
    ----------
    metric_name, higher_is_better : as for `TorchLearner`
    feature_dim : d, the width of `features`
    """

    def __init__(self, train, test, test_targets, *, n_outputs: int, task: str = CLASSIFICATION,
                 config: HeadConfig | None = None, seed: int = 0, point_dim: int = 1, target_scale: float = 1.0,
                 metric_unit: str = "", dataset: Dataset | None = None, encoder=None):
        self.config = (HeadConfig() if config is None else config).check()
        self.device = resolve_device(self.config.device)
        train, test = _embeddings(train, "train"), _embeddings(test, "test", allow_empty=True)
        if test.shape[1] != train.shape[1]:
            raise InputError(f"test embeddings have width {test.shape[1]}, train embeddings {train.shape[1]}")
        if len(test_targets) != len(test):
            raise InputError(f"{len(test_targets)} test targets for {len(test)} test embeddings")
        self.task, self.n_outputs = task, int(n_outputs)
        if task == CLASSIFICATION:
            if self.n_outputs < 2:
                raise InputError(f"a classification head needs n_outputs >= 2 classes; got {n_outputs!r}")
            self.metric_name, self.higher_is_better = "accuracy", True
        else:
            joint = "joint " if point_dim == 3 else ""
            unit = f" ({metric_unit})" if metric_unit else ""
            self.metric_name, self.higher_is_better = f"mean {joint}error{unit}", False
        self.point_dim, self.target_scale = int(point_dim), float(target_scale)
        self.dataset, self.encoder = dataset, encoder
        self.feature_dim = int(train.shape[1])
        self.arch = "logistic" if self.config.hidden == 0 else f"mlp{self.config.hidden}"
        self._raw = train  # (n_train, d) float32, what `features` returns
        mean = train.mean(axis=0, dtype=np.float64)  # (d,)
        std = train.std(axis=0, dtype=np.float64)  # (d,)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(np.where(std > 1e-12, std, 1.0), dtype=torch.float32, device=self.device)
        self._train = self._standardise(torch.from_numpy(train).to(self.device))  # (n_train, d)
        self._test = self._standardise(torch.from_numpy(test).to(self.device))  # (n_test, d)
        y_dtype = torch.long if task == CLASSIFICATION else torch.float32
        self._y_test = torch.as_tensor(np.asarray(test_targets), dtype=y_dtype, device=self.device)
        self.reset(seed)

    @classmethod
    def from_dataset(cls, dataset: Dataset, encoder, config: HeadConfig | None = None, *, seed: int = 0,
                     progress: bool = False) -> "HeadLearner":
        """Embed `dataset`'s train and test images once with `encoder`, and build the head on them."""
        train = encoder.embed(dataset.x_train, progress=progress)  # (n_train, d)
        test = encoder.embed(dataset.x_test, progress=progress) if dataset.n_test else np.zeros((0, encoder.dim), np.float32)
        return cls(train, test, dataset.y_test, n_outputs=dataset.n_targets, task=dataset.task, config=config, seed=seed,
                   point_dim=dataset.point_dim, target_scale=dataset.target_scale, metric_unit=dataset.metric_unit,
                   dataset=dataset, encoder=encoder)

    # ------------------------------------------------------------ Learner protocol
    def reset(self, seed: int) -> None:
        """Draw fresh weights from `seed` (same seed → identical weights)."""
        self.seed = int(seed)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(self.seed)
        d, k, hidden = self.feature_dim, self.n_outputs, self.config.hidden
        widths = [d, hidden, k] if hidden else [d, k]
        self._params = []
        for w_in, w_out in zip(widths, widths[1:]):
            bound = 1.0 / math.sqrt(w_in)  # torch.nn.Linear's default init
            w = (torch.rand(w_in, w_out, generator=gen) * 2 - 1) * bound  # (w_in, w_out)
            b = (torch.rand(w_out, generator=gen) * 2 - 1) * bound  # (w_out,)
            self._params += [w.to(self.device).requires_grad_(), b.to(self.device).requires_grad_()]
        self.stage_channels = (d, hidden) if hidden else (d,)

    def fit(self, indices, targets, *, companion=None) -> dict:
        """Train the head on rows `indices` (global) with `targets`, full batch, `config.epochs` Adam steps.

        Returns ``loss`` (final training loss), ``epochs``, ``steps``, ``seconds``.
        """
        rows = self._rows(indices, unique=True)
        if rows.size == 0:
            raise InputError("indices is empty: fit needs at least one labelled item")
        y = self._targets(targets, len(rows))
        cfg = self.config
        z = self._train[torch.as_tensor(rows, device=self.device)]  # (n, d)
        module, params = None, list(self._params)
        if companion is not None:
            module = companion.build(tuple(self.stage_channels)).to(self.device)
            module.train()
            params += [p for p in module.parameters() if p.requires_grad]
        adam = Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        start = time.perf_counter()
        for epoch in range(cfg.epochs):
            out, stages = self._forward(z)  # (n, n_outputs)
            item_losses = self._loss(out, y)  # (n,)
            loss = item_losses.mean()
            if module is not None:
                detach = companion.detach_inputs(epoch, cfg.epochs)
                loss = loss + companion.loss(module([s.detach() for s in stages] if detach else stages), item_losses)
            adam.step(torch.autograd.grad(loss, params))
        final = float(loss.detach())
        if not math.isfinite(final):
            raise FloatingPointError(f"training the head diverged: final loss is {final}; lower the head's lr "
                                     f"(now {cfg.lr})")
        return {"loss": final, "epochs": cfg.epochs, "steps": cfg.epochs, "images": cfg.epochs * len(rows),
                "seconds": time.perf_counter() - start}

    def evaluate(self) -> float:
        """Test accuracy in [0, 1], or mean per-point Euclidean error in metric units; NaN without test items."""
        if len(self._test) == 0:
            return float("nan")
        out = self._outputs(self._test)  # (n_test, n_outputs)
        if self.task == CLASSIFICATION:
            return float((out.argmax(1) == self._y_test).float().mean())
        diff = (out - self._y_test) * self.target_scale  # (n_test, n_targets)
        return float(diff.view(len(diff), -1, self.point_dim).norm(dim=2).mean())

    def features(self, indices) -> np.ndarray:
        """(len(indices), d) float32: the frozen embeddings of rows `indices`, as the encoder gave them."""
        return self._raw[self._rows(indices)]

    def probs(self, indices) -> np.ndarray:
        """(len(indices), n_classes) float32 softmax of the head on rows `indices` (classification only)."""
        if self.task != CLASSIFICATION:
            raise InputError("probs() needs a classification head; this one regresses")
        rows = torch.as_tensor(self._rows(indices), device=self.device)
        return torch.softmax(self._outputs(self._train[rows]), dim=1).cpu().numpy().astype(np.float32)

    def outputs(self, indices, *, features: bool = True, probs: bool = True) -> dict:
        """``{"features": (n, d) embeddings, "probs": (n, n_classes) softmax}`` float32 of rows `indices`."""
        result = {}
        if features:
            result["features"] = self.features(indices)
        if probs:
            result["probs"] = self.probs(indices)
        return result

    @torch.no_grad()
    def dropout_passes(self, indices, *, passes: int, dropout: float, seed: int) -> np.ndarray:
        """(passes, n, n_outputs) float32 Monte-Carlo dropout passes (BALD): the input of the last layer (z, or h
        for an MLP) loses each value with probability `dropout`, survivors scaled by 1 / (1 − dropout); softmax for
        a classifier. Masks from a CPU generator seeded with `seed`."""
        rows = torch.as_tensor(self._rows(indices), device=self.device)
        _, stages = self._forward(self._train[rows])
        last = stages[-1]  # (n, d) or (n, hidden): what the last layer reads
        w, b = self._params[-2:]
        generator = torch.Generator().manual_seed(int(seed) % 2**63)
        keep = 1.0 - float(dropout)
        out = []
        for _ in range(int(passes)):
            mask = torch.bernoulli(torch.full(last.shape, keep), generator=generator).to(last.device)  # (n, c)
            logits = (last * mask / keep) @ w + b  # (n, n_outputs)
            out.append(torch.softmax(logits, dim=1) if self.task == CLASSIFICATION else logits)
        return torch.stack(out).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def stage_features(self, indices) -> list[np.ndarray]:
        """``[(len(indices), c_k)]`` float32: the standardised embeddings and, for an MLP, its hidden layer."""
        rows = torch.as_tensor(self._rows(indices), device=self.device)
        _, stages = self._forward(self._train[rows])
        return [s.cpu().numpy() for s in stages]

    def predict(self, x) -> np.ndarray:
        """Class labels (n,) int64 or targets (n, n_outputs) float32 for embeddings (n, d) or, with an encoder, images."""
        x = np.asarray(x)
        if x.ndim == 4 and self.encoder is not None:
            x = self.encoder.embed(x)  # (n, d)
        if x.ndim != 2 or x.shape[1] != self.feature_dim:
            what = " or images (n, c, h, w)" if self.encoder is not None else ""
            raise InputError(f"x must be embeddings (n, {self.feature_dim}){what}; got shape {x.shape}")
        out = self._outputs(self._standardise(torch.from_numpy(x.astype(np.float32)).to(self.device)))
        if self.task == CLASSIFICATION:
            return out.argmax(1).cpu().numpy().astype(np.int64)
        return out.cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------ internals
    def _standardise(self, e: torch.Tensor) -> torch.Tensor:
        return (e - self._mean) / self._std  # (n, d)

    def _forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(outputs (n, n_outputs), stages [z] or [z, h])."""
        if self.config.hidden:
            w1, b1, w2, b2 = self._params
            h = F.relu(z @ w1 + b1)  # (n, hidden)
            return h @ w2 + b2, [z, h]
        w, b = self._params
        return z @ w + b, [z]

    @torch.no_grad()
    def _outputs(self, z: torch.Tensor) -> torch.Tensor:
        step = self.config.eval_batch_size
        parts = [self._forward(z[lo:lo + step])[0] for lo in range(0, len(z), step)]
        return torch.cat(parts) if parts else torch.zeros((0, self.n_outputs), device=self.device)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-item loss (n,)."""
        if self.task == CLASSIFICATION:
            return F.cross_entropy(out, y, reduction="none")
        diff = (out - y).view(len(y), -1, self.point_dim)  # (n, n_points, point_dim)
        return diff.pow(2).sum(dim=2).mean(dim=1)

    def _rows(self, indices, *, unique: bool = False) -> np.ndarray:
        arr = np.asarray(indices)
        n = len(self._raw)
        if arr.dtype == bool and arr.shape == (n,):
            return np.flatnonzero(arr)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"indices must be a 1-D array of integer item indices; got {arr.dtype} {arr.shape}")
        if arr.min() < 0 or arr.max() >= n:
            raise InputError(f"indices hold {arr.min() if arr.min() < 0 else arr.max()}, outside [0, {n - 1}]")
        if unique and np.unique(arr).size != arr.size:
            raise InputError("indices holds repeated indices; each labelled item may appear only once")
        return arr.astype(np.int64, copy=False)

    def _targets(self, targets, n: int) -> torch.Tensor:
        y = np.asarray(targets)
        if self.task == CLASSIFICATION:
            if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= self.n_outputs:
                raise InputError(f"targets must be {n} integer labels in [0, {self.n_outputs - 1}]; got {y.dtype} {y.shape}")
            return torch.as_tensor(y, dtype=torch.long, device=self.device)
        y = y.reshape(n, -1) if y.size == n * self.n_outputs else y
        if y.shape != (n, self.n_outputs) or not np.isfinite(y).all():
            raise InputError(f"targets must be finite, shape ({n}, {self.n_outputs}); got {y.shape}")
        return torch.as_tensor(y, dtype=torch.float32, device=self.device)


def _embeddings(x, name: str, *, allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or (arr.shape[0] == 0 and not allow_empty) or arr.shape[1] == 0:
        raise InputError(f"{name} embeddings must be a 2-D array (n, d); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} embeddings contain NaN or inf; the encoder's output is not usable")
    return np.ascontiguousarray(arr)
