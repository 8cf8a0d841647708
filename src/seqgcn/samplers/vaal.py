"""VAAL (Sinha, Ebrahimi, Darrell, ICCV 2019): a β-VAE and a discriminator played against each other.

Every cycle a new β-VAE and a new discriminator on the VAE's mean code ``mu``
are trained on the images of the labelled set L and of the candidates D_S:

    VAE   : MSE(x̂, x) (mean) + β · KL(q(z|x) ‖ N(0, I)) (summed), on a labelled and an
            unlabelled batch, + adversary_weight · [BCE(D(mu_L), 1) + BCE(D(mu_U), 1)]
    D     : BCE(D(mu_L), 1) + BCE(D(mu_U), 0)           (mu from the VAE, no gradient to it)

Adam (lr 5e-4) for both; each iteration is 2 VAE steps then 1 discriminator step,
each on fresh batches. The number of iterations is the reference's formula
(|L| + |D_S|) · passes / batch_size, batch 128, with passes = 100 as the
reference for images larger than 16×16. For the small images (the embedded
digits) the default is passes = 3: on a CPU each iteration of even the small
networks costs tens of milliseconds (per-operation overhead, not arithmetic), so
100 passes (~640 iterations per cycle at the digits protocol) would make VAAL
~30× slower than a CoreGCN selection; ``passes=100`` restores the reference
length. The candidates with the **lowest** D(mu) (most "unlabelled") are
picked, scored in eval mode.

Architecture, from the image side s (square images; reference sizes for s > 16):

    encoder  4 convs k4 s2 p1, 128→256→512→1024 channels, BN + ReLU, no bias; the
             last kernel is 3 when its input side is odd (28×28: 28→14→7→3→2);
             flatten → fc_mu, fc_logvar, z = 32
    decoder  Linear(z → 1024·t·t), t = ⌈s / 8⌉; 3 transposed convs k4 s2 p1
             1024→512→256→128, BN + ReLU; ConvTranspose(128 → c, k1), no output
             activation; the output (8t × 8t) is centre-cropped to s × s (28 from 32)
    D        Linear(z→512) ReLU Linear(512→512) ReLU Linear(512→1) sigmoid

For small images (s ≤ 16, the embedded 8×8 digits) the same design is scaled
down, because 1024 channels on a 2×2 map of an 8×8 digit would be ~20 M
parameters learning from a few hundred images: 2 convs 32→64 (8→4→2), z = 16,
decoder Linear(z → 64·t·t), t = ⌈s / 2⌉, one transposed conv 64→32, then
ConvTranspose(32 → c, k1); D hidden width 128.

Differences from the reference code (docs/samplers.md): loaders are shuffled
(the reference never shuffles, so every cycle sees the same batch order), and
scoring runs in eval mode (the reference scores with BatchNorm in train mode, so
an item's score depends on its batch). Images are scaled to [0, 1] (uint8) and
standardised per channel with the mean/std of L ∪ D_S.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from seqgcn.checks import MAX_STEPS, MAX_WIDTH, InputError, check_int, resolve_device
from seqgcn.learners.optim import Adam
from seqgcn.samplers.base import ImageSampler, Problem, check_option_number, top_scores

SMALL_SIDE = 16  # images up to this side get the scaled-down architecture
PASSES = {"reference": 100, "small": 3}  # default passes over L ∪ D_S per cycle, by architecture


def vaal_sizes(side: int) -> dict:
    """Encoder channels, code size z and discriminator width for images of side `side` (see the module docstring)."""
    if side <= SMALL_SIDE:
        return {"channels": (32, 64), "z": 16, "hidden": 128}
    return {"channels": (128, 256, 512, 1024), "z": 32, "hidden": 512}


class VAE(nn.Module):
    """β-VAE of the module docstring; ``forward(x, eps) -> (reconstruction, mu, logvar)``."""

    def __init__(self, in_channels: int, side: int, channels: tuple, z: int):
        super().__init__()
        layers, c_in, s = [], in_channels, side
        for i, c in enumerate(channels):
            k = 3 if i == len(channels) - 1 and s % 2 == 1 else 4
            layers += [nn.Conv2d(c_in, c, k, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            s = (s + 2 - k) // 2 + 1
            c_in = c
        self.encoder = nn.Sequential(*layers)
        flat = channels[-1] * s * s
        self.fc_mu, self.fc_logvar = nn.Linear(flat, z), nn.Linear(flat, z)
        n_up = len(channels) - 1
        self.t = math.ceil(side / 2 ** n_up)
        self.fc_dec = nn.Linear(z, channels[-1] * self.t * self.t)
        up = []
        for c_hi, c_lo in zip(channels[::-1], channels[::-1][1:]):
            up += [nn.ConvTranspose2d(c_hi, c_lo, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_lo), nn.ReLU(inplace=True)]
        up.append(nn.ConvTranspose2d(channels[0], in_channels, 1))
        self.decoder = nn.Sequential(*up)
        self.side, self.top = side, channels[-1]

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        h = self.encoder(x).flatten(1)  # (b, flat)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)  # (b, z)
        code = mu + eps * torch.exp(0.5 * logvar)  # (b, z) reparameterised sample
        y = self.decoder(self.fc_dec(code).view(-1, self.top, self.t, self.t))  # (b, c, 2^n_up·t, 2^n_up·t)
        off = (y.shape[-1] - self.side) // 2
        return y[..., off:off + self.side, off:off + self.side], mu, logvar  # (b, c, s, s)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_mu(self.encoder(x).flatten(1))  # (b, z)


def discriminator(z: int, hidden: int) -> nn.Module:
    """Linear(z→hidden) ReLU Linear(hidden→hidden) ReLU Linear(hidden→1); returns logits (sigmoid applied by the loss)."""
    return nn.Sequential(nn.Linear(z, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def vae_loss(x, recon, mu, logvar, beta: float) -> torch.Tensor:
    """MSE reconstruction (mean) + β · KL to N(0, I) (summed over batch and code), as the reference code."""
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.mse_loss(recon, x) + beta * kl


class VAAL(ImageSampler):
    """Variational adversarial active learning; `select(images, labelled, budget, candidates=...)`.

    images : (n_items, c, s, s) uint8 or float, row i = global item i (only the
    rows of L and D_S are read).

    Parameters (keyword-only)
    ----------
    iterations : int or None, default None
        Training iterations; None: (|L| + |D_S|) · passes / batch_size (reference formula).
    passes : int or None, default None
        The formula's passes; None: 100 (the reference) for images larger than 16×16, 3 for smaller ones.
    batch_size : int, default 128  images per labelled and per unlabelled batch
    beta : float, default 1.0      KL weight
    adversary_weight : float, default 1.0
    lr : float, default 5e-4       Adam, VAE and discriminator
    seed : int                     weights, batches and the reparameterisation noise
    device : {"cpu", "cuda", "auto"}
    progress : bool                a bar over the iterations

    After `select`: ``scores_`` (D(mu) of the candidates, in candidate order) and ``diagnostics_``.
    """

    name = "VAAL"

    def __init__(self, *, iterations: int | None = None, passes: int | None = None, batch_size: int = 128, beta: float = 1.0,
                 adversary_weight: float = 1.0, lr: float = 5e-4, seed: int = 0, device: str = "cpu", progress: bool = False):
        self.iterations = iterations
        self.passes = passes
        self.batch_size = batch_size
        self.beta = beta
        self.adversary_weight = adversary_weight
        self.lr = lr
        self.seed = seed
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        if self.iterations is not None:
            check_int(self.iterations, name="iterations", high=MAX_STEPS)
        if self.passes is not None:
            check_int(self.passes, name="passes", high=MAX_STEPS)
        check_int(self.batch_size, name="batch_size", high=MAX_WIDTH)
        check_option_number(self.beta, name="beta", reference=1.0)
        check_option_number(self.adversary_weight, name="adversary_weight", reference=1.0)
        check_option_number(self.lr, name="lr", positive=True, reference=5e-4)

    def _n_items(self, images) -> int:
        self._check_params()
        shape = np.shape(images)
        if len(shape) != 4 or shape[2] != shape[3] or shape[0] == 0:
            raise InputError(f"VAAL reads square images of shape (n_items, channels, side, side); got shape {shape}")
        return int(shape[0])

    def n_iterations(self, n_labelled: int, n_candidates: int, side: int) -> int:
        """`iterations`, or the reference formula (n_labelled + n_candidates) · passes // batch_size (at least 1)."""
        if self.iterations is not None:
            return int(self.iterations)
        passes = self.passes if self.passes is not None else PASSES["small" if side <= SMALL_SIDE else "reference"]
        return max(1, (n_labelled + n_candidates) * passes // self.batch_size)

    def _select_from(self, images, problem: Problem) -> np.ndarray:
        start = time.perf_counter()
        dev = resolve_device(self.device)
        lab, cand = problem.labelled, problem.candidates
        x_lab, x_cand = _standardise(np.asarray(images[lab]), np.asarray(images[cand]), dev)  # (n_L, c, s, s), (n_U, c, s, s)
        c, side = x_cand.shape[1], x_cand.shape[2]
        sizes = vaal_sizes(side)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(self.seed))  # CPU only: CUDA generators stay untouched
            vae = VAE(c, side, sizes["channels"], sizes["z"]).to(dev)
            disc = discriminator(sizes["z"], sizes["hidden"]).to(dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(self.seed))
        n_iter = self.n_iterations(lab.size, cand.size, side)
        if lab.size:
            self._train(vae, disc, x_lab, x_cand, n_iter, gen)
        vae.eval()
        disc.eval()
        with torch.no_grad():
            scores = torch.cat([torch.sigmoid(disc(vae.encode_mean(x_cand[i:i + 1024]))).squeeze(1)
                                for i in range(0, len(x_cand), 1024)]).cpu().numpy()  # (n_candidates,)
        self.scores_ = scores
        self.diagnostics_ = {"iterations": n_iter, "score_mean": float(scores.mean()), "vaal_seconds": time.perf_counter() - start}
        return top_scores(problem, scores, highest=False)

    def _train(self, vae, disc, x_lab, x_cand, n_iter: int, gen: torch.Generator) -> None:
        opt_vae = Adam(vae.parameters(), lr=self.lr)
        opt_d = Adam(disc.parameters(), lr=self.lr)
        lab_batches, cand_batches = _shuffled_batches(len(x_lab), self.batch_size, gen), _shuffled_batches(len(x_cand), self.batch_size, gen)
        z = vae.fc_mu.out_features
        vae.train()
        disc.train()
        for _ in tqdm(range(n_iter), desc=f"VAAL on {len(x_lab) + len(x_cand):,} images", unit="it", disable=not self.progress, leave=False):
            for _ in range(2):  # VAE steps
                xl, xu = x_lab[next(lab_batches)], x_cand[next(cand_batches)]
                rl, mu_l, lv_l = vae(xl, torch.randn(len(xl), z, generator=gen, device=xl.device))
                ru, mu_u, lv_u = vae(xu, torch.randn(len(xu), z, generator=gen, device=xu.device))
                d_l, d_u = disc(mu_l).squeeze(1), disc(mu_u).squeeze(1)  # logits (b,)
                adversary = F.binary_cross_entropy_with_logits(d_l, torch.ones_like(d_l)) + \
                    F.binary_cross_entropy_with_logits(d_u, torch.ones_like(d_u))
                loss = vae_loss(xl, rl, mu_l, lv_l, self.beta) + vae_loss(xu, ru, mu_u, lv_u, self.beta) + self.adversary_weight * adversary
                opt_vae.zero_grad()
                loss.backward()
                opt_vae.step()
            xl, xu = x_lab[next(lab_batches)], x_cand[next(cand_batches)]  # discriminator step
            with torch.no_grad():
                mu_l, mu_u = vae.encode_mean(xl), vae.encode_mean(xu)
            d_l, d_u = disc(mu_l).squeeze(1), disc(mu_u).squeeze(1)
            loss_d = F.binary_cross_entropy_with_logits(d_l, torch.ones_like(d_l)) + \
                F.binary_cross_entropy_with_logits(d_u, torch.zeros_like(d_u))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()


def _standardise(x_lab: np.ndarray, x_cand: np.ndarray, dev: torch.device):
    """Float tensors on `dev`: uint8 scaled to [0, 1], then per-channel (x − mean) / std over L ∪ D_S."""
    def to_tensor(a):
        t = torch.from_numpy(np.ascontiguousarray(a)).to(dev).float()
        return t / 255.0 if a.dtype == np.uint8 else t

    lab, cand = to_tensor(x_lab), to_tensor(x_cand)
    both = torch.cat([lab, cand])  # (n, c, s, s)
    mean = both.mean(dim=(0, 2, 3), keepdim=True)
    std = both.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (lab - mean) / std, (cand - mean) / std


def _shuffled_batches(n: int, batch_size: int, gen: torch.Generator):
    """Endless stream of index batches (≤ batch_size) over range(n), reshuffled every pass (the reference never shuffles)."""
    while True:
        perm = torch.randperm(n, generator=gen, device=gen.device)
        for lo in range(0, n, batch_size):
            yield perm[lo:lo + batch_size]
