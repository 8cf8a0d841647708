"""TorchLearner: one `Learner` for classification and regression (SPEC §5).

Data path (one code path for CPU and GPU): the whole train and test sets are
copied to the device once, at construction, in their stored dtype (uint8 images
stay uint8: 4× less memory and transfer). Each epoch draws a permutation from a
`torch.Generator` on the device, gathers the batch rows on the device, converts
them to float, applies *batched* augmentation (per-sample random crop with
padding 4 and horizontal flip, no per-sample Python) and normalises with the
dataset's per-channel mean/std. There is no DataLoader.

On CUDA with ``config.fast`` the model runs in channels_last with bf16 autocast
(and ``torch.compile`` with ``config.compile``); cuDNN autotuning is switched on
only while the learner runs. The CPU path is plain fp32, deterministic given
the seed, and is what the tests check.

Losses: cross-entropy (paper eq. 1); for regression the mean over points of
the squared Euclidean error (paper eq. 2),
``L = mean_n (1/J) sum_j ||y_hat_nj - y_nj||^2``.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from seqgcn.checks import InputError, resolve_device
from seqgcn.data.base import CLASSIFICATION, Dataset
from seqgcn.learners.config import LearnerConfig
from seqgcn.learners.nets import ARCHS, build_net
from seqgcn.learners.optim import SGD, Adam, MultiStepLR

CROP_PADDING = 4  # pixels of zero padding before the random crop (CIFAR protocol)


# ---------------------------------------------------------------- batched augmentation

def crop_batch(x: torch.Tensor, offsets: torch.Tensor, padding: int = CROP_PADDING) -> torch.Tensor:
    """Crop every image of a batch at its own offset from a zero-padded copy.

    Parameters
    ----------
    x : tensor, shape (n, c, h, w)
    offsets : long tensor, shape (n, 2)
        (row, column) of each crop's top-left corner in the padded image, in
        ``[0, 2 * padding]``; ``(padding, padding)`` returns the image unchanged.

    Returns
    -------
    tensor, shape (n, c, h, w)
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (n, c, h + 2p, w + 2p)
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (n, w)
    padded = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))  # (n, c, h, w + 2p)
    return padded.gather(3, cols[:, None, None, :].expand(n, c, h, w))  # (n, c, h, w)


def flip_batch(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of `x` (n, c, h, w) where the bool `mask` (n,) is True."""
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """Random crop (``"crop"``), crop + horizontal flip with p = 0.5 (``"crop_flip"``) or nothing (``"none"``)."""
    n = x.shape[0]
    if kind in ("crop", "crop_flip"):
        offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=x.device)  # (n, 2)
        x = crop_batch(x, offsets, padding)
    if kind == "crop_flip":
        mask = torch.rand(n, generator=generator, device=x.device) < 0.5  # (n,)
        x = flip_batch(x, mask)
    return x


# ---------------------------------------------------------------- choices made from config + dataset

def resolve_arch(arch: str, dataset: Dataset) -> str:
    """``"auto"``: small_cnn for sides ≤ 16, deepprior for regression with side ≥ 64, else resnet18."""
    if arch != "auto":
        if arch not in ARCHS:
            raise InputError(f"arch={arch!r} is not known; known: auto, {', '.join(ARCHS)}")
        return arch
    side = max(dataset.image_size)
    if side <= 16:
        return "small_cnn"
    if dataset.task != CLASSIFICATION and side >= 64:
        return "deepprior"
    return "resnet18"


def resolve_augment(augment: str, dataset: Dataset) -> str:
    """``"auto"``: crop_flip for 32×32 RGB classification (CIFAR, SVHN protocol), none otherwise.

    Digits and hands keep their orientation: a mirrored digit or hand is another label.
    """
    if augment != "auto":
        return augment
    rgb32 = dataset.channels == 3 and dataset.image_size == (32, 32)
    return "crop_flip" if dataset.task == CLASSIFICATION and rgb32 else "none"


# ---------------------------------------------------------------- the learner

class TorchLearner:
    """A PyTorch network trained on the labelled rows of `dataset` (implements `Learner`).

    Parameters
    ----------
    dataset : Dataset
        Its train and test images are copied to ``config.device`` once, here.
    config : LearnerConfig, optional
        Architecture, optimiser, schedule, augmentation, device (defaults: the paper's).
    seed : int
        Seed of the initial weights (`reset` is called with it).

    Attributes
    ----------
    metric_name : str
        ``"accuracy"`` (fraction in [0, 1]) or ``"mean [joint ]error (unit)"``.
    higher_is_better : bool
    arch, augment : str
        The resolved choices (never ``"auto"``).
    device : torch.device
    feature_dim : int
        Width of `features`.
    model : torch.nn.Module
        The current network; ``model(x)`` returns ``(output, features)``.
    """

    def __init__(self, dataset: Dataset, config: LearnerConfig | None = None, *, seed: int = 0):
        config = LearnerConfig() if config is None else config
        config.check()
        self.dataset, self.config = dataset, config
        self.arch = resolve_arch(config.arch, dataset)
        self.device = resolve_device(config.device)
        self.augment = resolve_augment(config.augment, dataset)
        self.fast = bool(config.fast) and self.device.type == "cuda"
        self.task = dataset.task
        if self.task == CLASSIFICATION:
            if not dataset.n_classes or dataset.n_classes < 2:
                raise InputError(f"a classification dataset needs n_classes >= 2; got {dataset.n_classes!r}")
            self.metric_name, self.higher_is_better = "accuracy", True
        else:
            if dataset.n_targets % dataset.point_dim:
                raise InputError(
                    f"point_dim={dataset.point_dim} does not divide the {dataset.n_targets} regression targets"
                )
            joint = "joint " if dataset.point_dim == 3 else ""
            unit = f" ({dataset.metric_unit})" if dataset.metric_unit else ""
            self.metric_name, self.higher_is_better = f"mean {joint}error{unit}", False
        if self.arch == "deepprior" and dataset.image_size[0] != dataset.image_size[1]:
            raise InputError(f"arch='deepprior' needs square crops; got image size {dataset.image_size}")
        # The data lives on the device from here on: (n, c, h, w) uint8 or float32.
        self._x_train = self._to_device(dataset.x_train)
        self._x_test = self._to_device(dataset.x_test)
        y_dtype = torch.long if self.task == CLASSIFICATION else torch.float32
        self._y_test = torch.as_tensor(np.asarray(dataset.y_test), dtype=y_dtype, device=self.device)
        self._mean = torch.tensor(dataset.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(dataset.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.reset(seed)

    # ------------------------------------------------------------ Learner protocol

    def reset(self, seed: int) -> None:
        """Rebuild the network from `seed` (same seed → identical weights); the optimiser is created by `fit`."""
        self.seed, self._n_fits = int(seed), 0
        net = build_net(
            self.arch,
            in_channels=self.dataset.channels,
            n_outputs=self.dataset.n_targets,
            image_size=max(self.dataset.image_size),
            seed=self.seed,
            feature_dim=self.config.feature_dim,
        ).to(self.device)
        if self.fast:
            net = net.to(memory_format=torch.channels_last)
        self.model = net
        self.feature_dim = int(net.feature_dim)
        use_compile = self.config.compile and self.device.type == "cuda"
        self._train_model = torch.compile(net) if use_compile else net

    def fit(self, indices, targets, *, epochs: int | None = None, companion=None) -> dict:
        """Train on training rows `indices` (global) with the oracle's `targets`.

        Runs the config's schedule (optimiser and MultiStepLR created afresh) for
        `epochs` (default ``config.epochs``), continuing from the current weights.
        With a `companion` (`seqgcn.learners.base.Companion`, e.g. Learning Loss)
        its module is built on the network's stages and trained in the same steps,
        with its own optimiser of the same kind, settings and schedule; the step's
        loss is ``mean(per-item loss) + companion.loss(module(pooled stages), per-item loss)``.

        Returns
        -------
        dict
            ``loss`` (mean training loss of the last epoch), ``epochs``, ``steps``,
            ``images`` (images seen), ``seconds`` (wall time, device synchronised).
        """
        rows = self._check_rows(indices, name="indices")
        if rows.size == 0:
            raise InputError("indices is empty: fit needs at least one labelled training row")
        y = self._check_targets(targets, len(rows))
        epochs = self.config.epochs if epochs is None else epochs
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise InputError(f"epochs={epochs!r} must be a positive integer")
        cfg, dev, n = self.config, self.device, len(rows)
        rows_dev = torch.as_tensor(rows, device=dev)  # (n,) global row of each labelled item
        y_dev = torch.as_tensor(y, device=dev)  # (n,) or (n, n_targets)
        n_batches = math.ceil(n / cfg.batch_size)  # near-equal batches, none of size 1 unless n is tiny
        opt = self._make_optimizer(self.model.parameters())
        sched = MultiStepLR(opt, cfg.resolved_milestones(), cfg.gamma)
        module = companion_opt = companion_sched = None
        if companion is not None:
            module = companion.build(tuple(self.model.stage_channels)).to(dev)
            module.train()
            companion_opt = self._make_optimizer(module.parameters())
            companion_sched = MultiStepLR(companion_opt, cfg.resolved_milestones(), cfg.gamma)
        fit_seed = int(np.random.SeedSequence([self.seed, self._n_fits]).generate_state(1)[0])
        gen = torch.Generator(device=dev)
        gen.manual_seed(fit_seed)
        self._n_fits += 1

        start = time.perf_counter()
        with self._seeded_global_rng(fit_seed), self._cudnn_autotune():
            bar = tqdm(range(int(epochs)), desc=f"fit {self.arch} on {n}", unit="epoch", disable=not cfg.progress)
            self.model.train()  # nothing in the loop switches to eval mode
            for epoch in bar:
                total = torch.zeros((), device=dev)
                detach = companion is not None and companion.detach_inputs(epoch, int(epochs))
                perm = torch.randperm(n, generator=gen, device=dev)  # (n,)
                order, y_order = rows_dev[perm], y_dev[perm]  # shuffled global rows and their targets
                for rb, yb in zip(torch.tensor_split(order, n_batches), torch.tensor_split(y_order, n_batches), strict=True):
                    xb = self._prepare(self._x_train[rb], augment=True, generator=gen)  # (b, c, h, w)
                    with self._autocast():
                        if companion is None:
                            out, _ = self._train_model(xb)  # (b, n_outputs)
                            loss = self._loss(out, yb).mean()
                        else:
                            out, _, stages = self.model.forward_stages(xb)
                            item_losses = self._loss(out, yb)  # (b,)
                            pooled = [s.float().mean(dim=(2, 3)) for s in stages]  # [(b, c_k)]
                            predicted = module([p.detach() for p in pooled] if detach else pooled)  # (b,)
                            loss = item_losses.mean() + companion.loss(predicted, item_losses)
                    opt.zero_grad()
                    if companion_opt is not None:
                        companion_opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if companion_opt is not None:
                        companion_opt.step()
                    total += loss.detach().float() * rb.shape[0]
                sched.step()
                if companion_sched is not None:
                    companion_sched.step()
                if cfg.progress:
                    bar.set_postfix(loss=f"{total.item() / n:.4f}")
            final = float(total.item()) / n  # one host sync per fit (per epoch with a progress bar)
        seconds = time.perf_counter() - start
        if not math.isfinite(final):
            raise FloatingPointError(
                f"training diverged: last-epoch loss is {final}; lower lr (now {cfg.lr}) or check the targets"
            )
        return {"loss": final, "epochs": int(epochs), "steps": int(epochs) * n_batches,
                "images": int(epochs) * n, "seconds": seconds}

    def evaluate(self) -> float:
        """Test accuracy (fraction in [0, 1]) or mean per-point Euclidean error in `metric_unit`."""
        return self.evaluate_all()[self.metric_name]

    def evaluate_all(self) -> dict:
        """The metric, plus for regression the MSE per coordinate in squared metric units (key ``"mse"``)."""
        out, _ = self._infer(self._x_test)  # (n_test, n_outputs)
        if self.task == CLASSIFICATION:
            return {self.metric_name: float((out.argmax(1) == self._y_test).float().mean())}
        diff = (out - self._y_test) * self.dataset.target_scale  # (n_test, n_targets)
        per_point = diff.view(len(diff), -1, self.dataset.point_dim).norm(dim=2)  # (n_test, n_points)
        return {self.metric_name: float(per_point.mean()), "mse": float(diff.pow(2).mean())}

    def features(self, indices) -> np.ndarray:
        """(len(indices), feature_dim) float32 penultimate features of training rows; eval mode, no augmentation."""
        rows = self._check_rows(indices, name="indices", unique=False)
        if rows.size == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        _, feat = self._infer(self._x_train, torch.as_tensor(rows, device=self.device))
        return feat.cpu().numpy()

    def outputs(self, indices, *, features: bool = True, probs: bool = True) -> dict:
        """One eval pass over training rows: ``{"features": (n, feature_dim), "probs": (n, n_classes)}`` float32.

        probs is the softmax (classification only); ask only for what is needed.
        """
        rows = self._check_rows(indices, name="indices", unique=False)
        if probs and self.task != CLASSIFICATION:
            raise InputError("class probabilities exist only for a classifier; this learner is a regressor")
        out, feat = self._infer(self._x_train, torch.as_tensor(rows, device=self.device))
        result = {}
        if features:
            result["features"] = feat.cpu().numpy()
        if probs:
            result["probs"] = torch.softmax(out, dim=1).cpu().numpy()
        return result

    @torch.no_grad()
    def dropout_passes(self, indices, *, passes: int, dropout: float, seed: int) -> np.ndarray:
        """(passes, n, n_outputs) float32 outputs of Monte-Carlo dropout passes over training rows (BALD).

        The penultimate features are computed once in eval mode; each pass drops each feature with
        probability `dropout` (the survivors scaled by 1 / (1 − dropout)) and applies the final linear
        layer: dropout before the last layer, only in these passes. Softmax for a classifier, the
        predicted targets for a regressor. Masks come from a CPU generator seeded with `seed`.
        """
        rows = self._check_rows(indices, name="indices", unique=False)
        _, feat = self._infer(self._x_train, torch.as_tensor(rows, device=self.device))  # (n, d)
        generator = torch.Generator().manual_seed(int(seed) % 2**63)
        keep = 1.0 - float(dropout)
        out = []
        for _ in range(int(passes)):
            mask = torch.bernoulli(torch.full(feat.shape, keep), generator=generator).to(feat.device)  # (n, d)
            logits = self.model.head(feat * mask / keep).float()  # (n, n_outputs)
            out.append(torch.softmax(logits, dim=1) if self.task == CLASSIFICATION else logits)
        return torch.stack(out).cpu().numpy()

    @torch.no_grad()
    def stage_features(self, indices) -> list[np.ndarray]:
        """Globally average-pooled stage outputs ``[(len(indices), c_k)]`` float32 of training rows, eval mode."""
        rows = torch.as_tensor(self._check_rows(indices, name="indices", unique=False), device=self.device)
        self.model.eval()
        parts = []
        for lo in range(0, len(rows), self.config.eval_batch_size):
            xb = self._prepare(self._x_train[rows[lo:lo + self.config.eval_batch_size]], augment=False)
            with self._autocast():
                _, _, stages = self.model.forward_stages(xb)
            parts.append([s.float().mean(dim=(2, 3)) for s in stages])  # [(b, c_k)]
        if not parts:
            return [np.zeros((0, c), dtype=np.float32) for c in self.model.stage_channels]
        return [torch.cat(column).cpu().numpy() for column in zip(*parts, strict=True)]

    def predict(self, x) -> np.ndarray:
        """Class labels (n,) int64 or regression targets (n, n_targets) float32 for images `x` (n, c, h, w).

        uint8 images are scaled to [0, 1] before normalisation; other dtypes are used as float32 as they are.
        """
        x = np.asarray(x)
        want = (self.dataset.channels, *self.dataset.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InputError(f"x must have shape (n, {want[0]}, {want[1]}, {want[2]}) like the dataset; got {x.shape}")
        out, _ = self._infer(self._to_device(x))
        if self.task == CLASSIFICATION:
            return out.argmax(1).cpu().numpy().astype(np.int64)
        return out.cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------ internals

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x)
        if x.dtype != np.uint8:
            x = x.astype(np.float32, copy=False)
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def _prepare(self, xb: torch.Tensor, *, augment: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Raw rows (b, c, h, w) uint8/float32 → augmented, normalised float32 network input."""
        x = xb.float()
        if xb.dtype == torch.uint8:
            x = x.mul_(1.0 / 255.0)  # (b, c, h, w) in [0, 1]
        if augment and self.augment != "none":
            x = augment_batch(x, self.augment, generator)  # padding is black, as in torchvision's RandomCrop
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last) if self.fast else x

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-item loss (b,); its mean is the training loss."""
        if self.task == CLASSIFICATION:
            return F.cross_entropy(out, y, reduction="none")  # eq. 1
        d = self.dataset.point_dim
        diff = (out.float() - y).view(len(y), -1, d)  # (b, n_points, point_dim)
        return diff.pow(2).sum(dim=2).mean(dim=1)  # eq. 2: mean over points of squared error

    @torch.no_grad()
    def _infer(self, source: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (n, n_outputs) and features (n, feature_dim), float32, of `source[rows]` in eval mode."""
        self.model.eval()
        n = len(source) if rows is None else len(rows)
        outs, feats = [], []
        with self._cudnn_autotune():
            for lo in range(0, n, self.config.eval_batch_size):
                hi = min(lo + self.config.eval_batch_size, n)
                xb = source[lo:hi] if rows is None else source[rows[lo:hi]]
                with self._autocast():
                    out, feat = self.model(self._prepare(xb, augment=False))
                outs.append(out.float())
                feats.append(feat.float())
        return torch.cat(outs), torch.cat(feats)

    def _make_optimizer(self, params) -> SGD | Adam:
        cfg = self.config
        if cfg.optimizer == "sgd":
            return SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _autocast(self):
        if self.fast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _cudnn_autotune(self):
        """cudnn.benchmark on while the learner runs on CUDA; the previous value is restored."""
        if self.device.type != "cuda":
            yield
            return
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = previous

    @contextlib.contextmanager
    def _seeded_global_rng(self, seed: int):
        """Seed the global generators that modules such as dropout draw from; restore them afterwards."""
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            with torch.random.fork_rng(devices=[index]), torch.cuda.device(index):
                torch.default_generator.manual_seed(seed)
                torch.cuda.manual_seed(seed)
                yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                yield

    def _check_rows(self, indices, *, name: str, unique: bool = True) -> np.ndarray:
        """Global training-row indices as int64 (n,); booleans masks are accepted."""
        arr = np.asarray(indices)
        n_train = self.dataset.n_train
        if arr.dtype == bool:
            if arr.shape != (n_train,):
                raise InputError(f"{name} as a boolean mask must have shape ({n_train},); got {arr.shape}")
            return np.flatnonzero(arr)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"{name} must be a 1-D array of integer training-row indices; got {arr.dtype} {arr.shape}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_train:
            raise InputError(f"{name} holds index {lo if lo < 0 else hi}, outside [0, {n_train - 1}] "
                             f"(the training set has {n_train} rows)")
        if unique and np.unique(arr).size != arr.size:
            raise InputError(f"{name} holds repeated indices; each labelled row may appear only once")
        return arr.astype(np.int64, copy=False)

    def _check_targets(self, targets, n: int) -> np.ndarray:
        y = np.asarray(targets)
        if self.task == CLASSIFICATION:
            if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
                raise InputError(f"targets must be {n} integer class labels, shape ({n},); got {y.dtype} {y.shape}")
            if y.min() < 0 or y.max() >= self.dataset.n_classes:
                raise InputError(f"targets hold label {y.min() if y.min() < 0 else y.max()}, "
                                 f"outside [0, {self.dataset.n_classes - 1}]")
            return y.astype(np.int64, copy=False)
        k = self.dataset.n_targets
        if y.ndim == 1 and k == 1:
            y = y[:, None]
        if y.shape != (n, k):
            raise InputError(f"targets must have shape ({n}, {k}) (one row per index); got {y.shape}")
        y = y.astype(np.float32, copy=False)
        if not np.isfinite(y).all():
            raise InputError("targets contain NaN or inf")
        return y
