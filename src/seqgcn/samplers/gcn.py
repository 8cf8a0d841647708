"""UncertainGCN and CoreGCN (paper §3.2, eq. 5–8): a 2-layer GCN told to separate labelled from unlabelled.

Nodes are the candidates D_S followed by the labelled items; their features are
L2-normalised and joined by the adjacency of eq. 4 (`seqgcn.graph.Adjacency`,
an operator: memory stays O(N·m)). The GCN (reference-code sizes)

    h = dropout(relu(A X W1 + b1))       (N, hidden)    X: (N, m) normalised features
    s = sigmoid(A h W2 + b2)             (N,)           1 = "looks labelled"

is trained for `epochs` full-batch Adam steps on eq. 6,

    L = −mean_{labelled} log s − λ · mean_{unlabelled} log(1 − s),

with log-sigmoid so that log(0) never happens. Since A X does not change across
epochs, it is computed once and the first layer costs one (N, m)·(m, hidden)
product per step. For the 2-layer GCN the gradients are written out by hand and
computed in blocks of rows (`two_layer_step`, tested equal to autograd); the
1- and 3-layer ablations use autograd. The number of CPU threads of the steps
is chosen by timing them (`seqgcn.samplers._threads.StepThreads`), so that a
core busy with other work slows a selection in proportion, not 10–20×.

UncertainGCN picks the candidates whose score is closest to s_margin
(reference code, ``margin_rule="closest"``). The paper's eq. 7 literally reads
argmax |s_margin − s|, available as ``margin_rule="farthest"``.
CoreGCN runs k-Center greedy (eq. 8) on a node embedding taken with dropout
off, labelled nodes as the initial centres. ``embedding="hidden+logit"`` (the
default, as the reference code, whose GCN returns ``cat(h, y)``) joins the
first-layer output h = relu(A X W1 + b1) (N, hidden) with the final pre-sigmoid
logit y (N, 1): hidden + 1 values per node. ``embedding="hidden"`` uses h alone
(the paper's text only says "GCN features"); with the same weights it agrees
with the reference picks on only about 30–50 % of items.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqgcn.checks import InputError, check_choice, check_positive_int, check_probability, resolve_device
from seqgcn.graph import KINDS, NORMALIZATIONS, Adjacency, l2_normalize
from seqgcn.samplers._threads import StepThreads
from seqgcn.samplers.base import FeatureSampler, Problem
from seqgcn.samplers.kcenter import k_center_greedy

MARGIN_RULES = ("closest", "farthest")
EMBEDDINGS = ("hidden+logit", "hidden")


def init_gcn_params(sizes: list[int], *, rng: np.random.Generator, device=None) -> list[torch.Tensor]:
    """Weights and biases of a stack of graph convolutions, e.g. sizes [m, 128, 1].

    As the reference code: every weight (in, out) and bias (out,) uniform in ±1/√out.
    Draw order (W1, b1, W2, b2, ...) is fixed, so the same generator state gives the same weights.
    """
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_out)
        w = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)  # (in, out)
        b = rng.uniform(-bound, bound, size=fan_out).astype(np.float32)  # (out,)
        params += [torch.from_numpy(t).to(device).requires_grad_() for t in (w, b)]
    return params


def dropout_masks(rng: np.random.Generator, n_nodes: int, hidden: int, count: int, keep: float, device=None) -> list[torch.Tensor]:
    """`count` inverted-dropout masks (n_nodes, hidden): 0, or 1/keep' with probability keep'.

    Entries are kept when a uniform 16-bit integer falls below round(keep·2¹⁶), so
    keep' = round(keep·2¹⁶)/2¹⁶ is within 8e-6 of `keep`; scaling by 1/keep' keeps the
    expectation exact. Drawn with numpy's PCG64: about 9× faster than torch's CPU
    generator for float masks, and 16-bit draws halve that again.
    """
    threshold = int(round(keep * 65536))
    scale = 65536.0 / threshold
    masks = []
    for _ in range(count):
        kept = rng.integers(0, 65536, size=(n_nodes, hidden), dtype=np.uint16) < threshold  # (N, hidden)
        masks.append(torch.from_numpy(np.multiply(kept, scale, dtype=np.float32)).to(device))
    return masks


def gcn_forward(ax: torch.Tensor, adj: Adjacency, params: list[torch.Tensor], masks: list[torch.Tensor] | None):
    """Logits (N,) and first-layer output (N, hidden) of the GCN.

    ax : (N, m) precomputed A @ X.  masks : one (N, hidden) dropout mask (already
    scaled by 1/(1−p)) per hidden layer, or None in evaluation mode.
    """
    n_layers = len(params) // 2
    h = torch.addmm(params[1], ax, params[0])  # (N, h1): A (X W1) + b1 = (A X) W1 + b1
    first = None
    for layer in range(1, n_layers):
        if masks is None:
            h = F.relu(h)
        else:  # relu then dropout as one product: the gradient of h·M is M·g, the same as relu's then dropout's
            with torch.no_grad():
                keep = torch.where(h > 0, masks[layer - 1], 0.0)  # (N, hidden)
            h = h * keep
        if first is None:
            first = h
        h = adj @ (h @ params[2 * layer]) + params[2 * layer + 1]  # (N, next)
    if first is None:  # a 1-layer GCN: its only layer is also its output
        first = h
    return h.squeeze(1), first  # (N,), (N, hidden)


def two_layer_step(ax: torch.Tensor, adj: Adjacency, adj_t: Adjacency, params: list[torch.Tensor], mask: torch.Tensor,
                   is_labelled: torch.Tensor, weight_unlabelled: float, *, block_rows: int = 4096) -> float:
    """Loss (eq. 6) of the 2-layer GCN and its gradients, written into ``p.grad``; returns the loss.

    The same numbers as `gcn_forward` + `gcn_loss` + autograd, computed by hand in
    blocks of rows so that the (N, hidden) intermediates stay in cache:

        P = A X W1 + b1,  H = relu(P)·M,  z = H w2,  y = A z + b2        forward
        g_y = ∂L/∂y,  g_z = Aᵀ g_y,  g_P = [H > 0]·(1/keep)·(g_z w2ᵀ)     backward
        ∂W1 = (A X)ᵀ g_P,  ∂b1 = Σ g_P,  ∂w2 = Hᵀ g_z,  ∂b2 = Σ g_y

    Only H is kept between the passes: H > 0 exactly where relu and the dropout
    mask both let a unit through, and there the mask equals 1/keep.
    """
    w1, b1, w2, b2 = (p.detach() for p in params)
    n = ax.shape[0]
    scale = float(mask.max()) if mask.numel() else 1.0  # 1/keep of the inverted-dropout mask
    with torch.no_grad():
        hidden = torch.empty(n, w1.shape[1], dtype=ax.dtype, device=ax.device)  # (N, hidden): H
        z = torch.empty(n, 1, dtype=ax.dtype, device=ax.device)  # (N, 1)
        for r in range(0, n, block_rows):
            rows = slice(r, r + block_rows)
            pre = torch.addmm(b1, ax[rows], w1)  # (B, hidden)
            h = torch.mul(pre, mask[rows], out=hidden[rows]).clamp_min_(0.0)  # (B, hidden): relu(P)·M, as M ≥ 0
            torch.mm(h, w2, out=z[rows])  # (B, 1)
        y = (adj @ z).squeeze(1) + b2  # (N,) logits

        n_lab = int(is_labelled.sum())
        n_unl = n - n_lab
        loss = gcn_loss(y, is_labelled, weight_unlabelled)
        s = torch.sigmoid(y)
        g_y = torch.where(is_labelled, (s - 1.0) / max(n_lab, 1), weight_unlabelled * s / max(n_unl, 1))  # (N,)
        g_z = adj_t @ g_y[:, None]  # (N, 1)

        g_w1 = torch.zeros_like(w1)
        g_b1 = torch.zeros_like(b1)
        g_w2 = hidden.T @ g_z  # (hidden, 1)
        w2_row = w2.T * scale  # (1, hidden)
        for r in range(0, n, block_rows):
            rows = slice(r, r + block_rows)
            g_pre = torch.where(hidden[rows] > 0, g_z[rows] * w2_row, 0.0)  # (B, hidden)
            g_w1.addmm_(ax[rows].T, g_pre)
            g_b1 += g_pre.sum(0)
    for p, g in zip(params, (g_w1, g_b1, g_w2, g_y.sum(0, keepdim=True))):
        p.grad = g
    return float(loss)


class Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as `torch.optim.Adam`.

    Written out because constructing `torch.optim.Adam` costs about a second on its
    first use in a process (it imports the compiler stack), more than 10 % of a
    whole selection at N = 11,000. The update follows torch's single-tensor CPU
    path step for step, so both give the same numbers.
    """

    def __init__(self, params: list[torch.Tensor], *, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.weight_decay, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        step_size = self.lr / (1 - beta1 ** self.steps)
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad.add(p, alpha=self.weight_decay) if self.weight_decay else p.grad
            m.lerp_(g, 1 - beta1)  # first moment
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # second moment
            p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-step_size)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def gcn_loss(logits: torch.Tensor, is_labelled: torch.Tensor, weight_unlabelled: float) -> torch.Tensor:
    """Eq. 6: −mean log s_L − λ·mean log(1 − s_U), computed on logits (s = sigmoid(logits))."""
    log_s = F.logsigmoid(logits[is_labelled])  # (N_L,)
    log_1ms = F.logsigmoid(-logits[~is_labelled])  # (N_U,)
    loss = -log_s.mean() if log_s.numel() else logits.new_zeros(())
    if log_1ms.numel():
        loss = loss - weight_unlabelled * log_1ms.mean()
    return loss


class _GCNSampler(FeatureSampler):
    """Shared by UncertainGCN and CoreGCN: builds the graph, trains the GCN, keeps diagnostics."""

    needs_labelled = True
    scale_invariance = "rows"  # nodes are L2-normalised rows: a positive factor per row changes nothing

    def __init__(
        self,
        *,
        hidden: int = 128,
        layers: int = 2,
        dropout: float = 0.3,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        epochs: int = 200,
        weight_unlabelled: float = 1.2,
        normalization: str = "column",
        adjacency: str = "cosine",
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ):
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.weight_unlabelled = weight_unlabelled
        self.normalization = normalization
        self.adjacency = adjacency
        self.seed = seed
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_positive_int(self.hidden, name="hidden")
        check_positive_int(self.layers, name="layers")
        check_positive_int(self.epochs, name="epochs")
        check_probability(self.dropout, name="dropout")
        check_choice(self.normalization, NORMALIZATIONS, name="normalization")
        check_choice(self.adjacency, KINDS, name="adjacency")
        if self.lr <= 0 or self.weight_decay < 0 or self.weight_unlabelled < 0:
            raise InputError(
                f"lr={self.lr} must be > 0, weight_decay={self.weight_decay} and weight_unlabelled={self.weight_unlabelled} >= 0"
            )

    def fit_graph(self, problem: Problem):
        """Train the GCN on the graph of candidates + labelled; return (nodes, logits, first-layer output).

        nodes : (N,) global indices, candidates first.  logits : (N,) pre-sigmoid
        (scores = sigmoid(logits), 1 = "looks labelled").  first-layer : (N, hidden)
        after ReLU, dropout off.  Also sets `self.diagnostics_`.
        """
        start = time.perf_counter()
        device = resolve_device(self.device)
        nodes = np.concatenate([problem.candidates, problem.labelled])  # (N,)
        n_cand = problem.candidates.size
        rng = np.random.default_rng(self.seed)  # weights first, then one set of dropout masks per step

        x = torch.from_numpy(problem.features[nodes]).to(device)  # (N, m)
        v = l2_normalize(x)  # (N, m)
        del x
        adj = Adjacency(v, normalization=self.normalization, kind=self.adjacency)
        ax = adj @ v  # (N, m), constant across epochs
        is_labelled = torch.zeros(nodes.size, dtype=torch.bool, device=device)
        is_labelled[n_cand:] = True

        sizes = [v.shape[1]] + [self.hidden] * (self.layers - 1) + [1]
        params = init_gcn_params(sizes, rng=rng, device=device)
        opt = Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        keep = 1.0 - self.dropout
        adj_t = adj.transpose()
        no_dropout = [torch.ones(nodes.size, self.hidden, device=device)] if self.dropout == 0 and self.layers == 2 else None
        steps = tqdm(range(self.epochs), desc=f"{self.name} GCN on {nodes.size:,} nodes", unit="step",
                     disable=not self.progress, leave=False)

        def train_step() -> float:
            masks = dropout_masks(rng, nodes.size, self.hidden, self.layers - 1, keep, device) if self.dropout > 0 else no_dropout
            opt.zero_grad()
            if self.layers == 2:  # the paper's GCN: hand-written gradients, blocked for cache
                loss = two_layer_step(ax, adj, adj_t, params, masks[0], is_labelled, self.weight_unlabelled)
            else:  # ablations with 1 or 3 layers
                logits, _ = gcn_forward(ax, adj, params, masks)
                loss_t = gcn_loss(logits, is_labelled, self.weight_unlabelled)
                loss_t.backward()
                loss = float(loss_t.detach())
            opt.step()
            return loss

        with StepThreads(device) as threads:  # as many CPU threads as are fast now (see samplers/_threads.py)
            for _ in steps:
                loss = threads.run(train_step)

        with torch.no_grad():
            logits, first = gcn_forward(ax, adj, params, None)
            scores = torch.sigmoid(logits)  # (N,)
            eval_loss = float(gcn_loss(logits, is_labelled, self.weight_unlabelled))
            predicted = scores > 0.5
        self.diagnostics_ = {
            "final_train_loss": loss,
            "eval_loss": eval_loss,
            "mean_score_labelled": float(scores[is_labelled].mean()),
            "mean_score_unlabelled": float(scores[~is_labelled].mean()),
            "discrimination_accuracy": float((predicted == is_labelled).float().mean()),
            "n_nodes": int(nodes.size),
            "gcn_seconds": time.perf_counter() - start,
            "cpu_threads": threads.chosen[-1],  # the thread count of the last training step
        }
        return nodes, logits, first


class UncertainGCN(_GCNSampler):
    """Uncertainty sampling on GCN scores (paper eq. 7).

    Parameters (all keyword-only; defaults from the reference code)
    ----------
    margin : float, default 0.1
        s_margin. Scores near 0 mean "looks unlabelled".
    margin_rule : {"closest", "farthest"}, default "closest"
        "closest" picks the candidates with the smallest |s_margin − s| (reference
        code); "farthest" the largest, as eq. 7 / Algorithm 1 literally read.
    hidden : int, default 128      (paper text: 512)
    layers : int, default 2        (ablation: 1 or 3)
    dropout : float, default 0.3
    lr, weight_decay : Adam, 1e-3 and 5e-4
    epochs : int, default 200      full-batch training steps
    weight_unlabelled : float, default 1.2   λ of eq. 6
    normalization : {"column", "row"}, default "column"
        Adjacency normalisation: reference code (columns) or paper text (rows).
        The default follows the reference code, whose numbers the paper reports.
    adjacency : {"cosine", "eye", "ones"}, default "cosine"   (ablations: Eye, Ones)
    seed : int       weights and dropout masks; same seed, same selection.
    device : {"cpu", "cuda", "auto"}
    progress : bool  show a progress bar over the GCN's training steps (stderr)

    After `select`, ``diagnostics_`` holds the final loss, the mean score of
    labelled and unlabelled nodes and the labelled/unlabelled accuracy.
    """

    name = "UncertainGCN"

    def __init__(self, *, margin: float = 0.1, margin_rule: str = "closest", **gcn_params):
        super().__init__(**gcn_params)
        self.margin = margin
        self.margin_rule = margin_rule

    def _check_params(self) -> None:
        super()._check_params()
        check_choice(self.margin_rule, MARGIN_RULES, name="margin_rule")
        check_probability(self.margin, name="margin", high_inclusive=True)

    def _select(self, problem: Problem) -> np.ndarray:
        nodes, logits, _ = self.fit_graph(problem)
        n_cand = problem.candidates.size
        gap = (torch.sigmoid(logits[:n_cand]) - self.margin).abs().cpu().numpy()  # (n_candidates,)
        order = np.argsort(gap if self.margin_rule == "closest" else -gap, kind="stable")
        return nodes[order[: problem.budget]]


class CoreGCN(_GCNSampler):
    """k-Center greedy on the GCN's node embeddings (paper eq. 8).

    Same GCN parameters as `UncertainGCN` (hidden 128, dropout 0.3, 200 Adam
    steps, λ = 1.2, column normalisation by default). After training, every
    node gets an embedding (dropout off); with the labelled nodes as initial
    centres, the candidate farthest from its nearest centre is added, `budget`
    times, using a running min-distance vector.

    embedding : {"hidden+logit", "hidden"}, default "hidden+logit"
        "hidden+logit": the first-layer output h (after ReLU, (N, hidden)) joined
        with the final pre-sigmoid logit (N, 1), hidden + 1 values per node, as the
        reference code (its GCN returns cat(h, y)). "hidden": h alone. With
        ``layers=1`` the only layer's output is the logit, and both mean the logit.
    """

    name = "CoreGCN"

    def __init__(self, *, embedding: str = "hidden+logit", **gcn_params):
        super().__init__(**gcn_params)
        self.embedding = embedding

    def _check_params(self) -> None:
        super()._check_params()
        check_choice(self.embedding, EMBEDDINGS, name="embedding")

    def _select(self, problem: Problem) -> np.ndarray:
        nodes, logits, first = self.fit_graph(problem)
        n_cand = problem.candidates.size
        if self.embedding == "hidden+logit" and self.layers > 1:
            emb = torch.cat([first, logits[:, None]], dim=1)  # (N, hidden + 1), the reference code's cat(h, y)
        else:
            emb = first  # (N, hidden)
        pos = k_center_greedy(emb[:n_cand], emb[n_cand:], problem.budget)
        return nodes[pos]


class UncertainDiscriminator(UncertainGCN):
    """Ablation of paper §4.1: the GCN replaced by 2 dense layers (UncertainGCN with A = I)."""

    name = "UncertainDiscriminator"

    def __init__(self, **params):
        params.setdefault("adjacency", "eye")
        super().__init__(**params)
