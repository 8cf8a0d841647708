"""Learning Loss (Yoo & Kweon, CVPR 2019): predict each item's loss, label the highest.

A loss-prediction module reads the learner's intermediate stages (ResNet-18's
four; the small CNN's three blocks; VGG-11's five pools; DeepPrior's three
convolutions), each globally average-pooled:

    h_k = relu(W_k · GAP(stage_k) + b_k)        (b, hidden)      per stage k
    p   = w · [h_1, …, h_K] + c                 (b,)             the predicted loss

It is trained jointly with the learner (`TorchLearner.fit(..., companion=...)`)
on the learner's per-item losses ℓ with the ranking loss of the reference code:
the batch is paired as (i, B−1−i) for i < B//2 (an odd batch leaves its middle
item out), and

    L_rank = mean_i max(0, margin − sign_ij · (p_i − p_j)),   sign_ij = +1 if ℓ_i > ℓ_j else −1

with ℓ detached, margin 1.0; the step loss is mean(ℓ) + weight · L_rank
(weight 1.0). From epoch ⌊detach_fraction · epochs⌋ + 1 on (0-based; 121 of
200 with the default 0.6, as the reference's ``epoch > 120``) the module's
inputs are detached, so the ranking loss no longer shapes the learner. The
module has its own optimiser of the learner's kind, settings and schedule.

Selection: the `budget` candidates with the highest predicted loss, scored in
eval mode. Regression learners work too (ℓ is the per-item squared error).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqgcn.checks import MAX_WIDTH, InputError, InputTypeError, check_int
from seqgcn.samplers.base import LearnerSampler, Problem, check_option_number, top_scores


class LossPredictionModule(nn.Module):
    """Per stage GAP → Linear(c_k, hidden) → ReLU; concatenated (K·hidden) → Linear(1). Input: pooled stages."""

    def __init__(self, stage_channels, hidden: int = 128):
        super().__init__()
        self.stage_fcs = nn.ModuleList(nn.Linear(int(c), hidden) for c in stage_channels)
        self.out = nn.Linear(hidden * len(stage_channels), 1)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        h = torch.cat([F.relu(fc(p)) for fc, p in zip(self.stage_fcs, pooled, strict=True)], dim=1)  # (b, K·hidden)
        return self.out(h).squeeze(1)  # (b,)


def ranking_loss(predicted: torch.Tensor, item_losses: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """Pairwise hinge loss of the reference code on (i, B−1−i), i < B//2; 0 for a batch of one.

    predicted, item_losses : (B,). The true losses are detached here.
    """
    half = predicted.shape[0] // 2
    if half == 0:
        return predicted.sum() * 0.0  # keeps the graph: backward() still works
    diff_p = (predicted - predicted.flip(0))[:half]  # (half,) p_i − p_{B−1−i}
    diff_l = (item_losses - item_losses.flip(0)).detach()[:half]  # (half,)
    sign = torch.where(diff_l > 0, 1.0, -1.0).to(diff_p.dtype)  # +1 where item i's true loss is larger
    return torch.clamp(margin - sign * diff_p, min=0.0).mean()


class LearningLoss(LearnerSampler):
    """Pick the candidates with the highest predicted loss (Yoo & Kweon 2019); see the module docstring.

    Use: build it, train the learner with ``learner.fit(indices, targets,
    companion=sampler)``, then ``sampler.select(learner, labelled, budget,
    candidates=...)``. `seqgcn.loop.ActiveLearner.step` does this.

    Parameters (keyword-only)
    ----------
    ranking_margin : float, default 1.0
        Ranking-loss margin (named apart from UncertainGCN's ``margin``, which a run's ``--margin`` sets).
    weight : float, default 1.0      weight of the ranking loss in the step loss
    detach_fraction : float, default 0.6
        Inputs are detached after this fraction of the epochs (reference: 120 of 200).
    hidden : int, default 128        width of each stage's FC layer
    seed : int                       initial weights of the module
    device : str                     ignored (the module lives on the learner's device)

    Attributes set by a run: ``module_`` (after `fit`), ``scores_`` (predicted
    losses of the candidates after `select`), ``diagnostics_``.
    """

    name = "LearningLoss"

    def __init__(self, *, ranking_margin: float = 1.0, weight: float = 1.0, detach_fraction: float = 0.6, hidden: int = 128,
                 seed: int = 0, device: str = "cpu"):
        self.ranking_margin = ranking_margin
        self.weight = weight
        self.detach_fraction = detach_fraction
        self.hidden = hidden
        self.seed = seed
        self.device = device

    def _check_params(self) -> None:
        check_int(self.hidden, name="hidden", high=MAX_WIDTH)
        check_option_number(self.ranking_margin, name="ranking_margin", reference=1.0)
        check_option_number(self.weight, name="weight", reference=1.0)
        check_option_number(self.detach_fraction, name="detach_fraction", high=1.0, reference=0.6)

    # -- the Companion hook (seqgcn.learners.base.Companion) --------------------
    def build(self, stage_channels: tuple) -> nn.Module:
        """A fresh loss-prediction module on `stage_channels`, weights from `seed`; kept as ``module_``."""
        self._check_params()
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(self.seed))  # CPU only: CUDA generators stay untouched
            self.module_ = LossPredictionModule(stage_channels, self.hidden)
        return self.module_

    def detach_inputs(self, epoch: int, epochs: int) -> bool:
        """True from epoch ⌊detach_fraction · epochs⌋ + 1 (0-based) on: 121 … 199 of 200."""
        return epoch > int(self.detach_fraction * epochs)

    def loss(self, predicted: torch.Tensor, item_losses: torch.Tensor) -> torch.Tensor:
        return self.weight * ranking_loss(predicted, item_losses, margin=self.ranking_margin)

    # -- selection -------------------------------------------------------------
    def _n_items(self, learner) -> int:
        if not hasattr(learner, "stage_features"):
            raise InputTypeError(f"LearningLoss selects from a learner with stage_features(); got {type(learner).__name__}")
        return int(learner.dataset.n_train)

    def _select_from(self, learner, problem: Problem) -> np.ndarray:
        module = getattr(self, "module_", None)
        if module is None:
            raise InputError("LearningLoss has no trained module: train the learner with fit(..., companion=sampler) first")
        pooled = learner.stage_features(problem.candidates)  # [(n_candidates, c_k)]
        param = next(module.parameters())
        module.eval()
        with torch.no_grad():
            scores = module([torch.as_tensor(p, device=param.device) for p in pooled]).float().cpu().numpy()  # (n_candidates,)
        self.scores_ = scores
        self.diagnostics_ = {"predicted_loss_mean": float(scores.mean()), "predicted_loss_std": float(scores.std())}
        return top_scores(problem, scores, highest=True)
