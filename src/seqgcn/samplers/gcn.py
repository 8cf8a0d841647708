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
computed in blocks of rows (`TwoLayerStep`, tested equal to autograd); the
1- and 3-layer ablations use autograd.

The picks do not depend on the machine's thread count or load. The whole
selection runs in a `seqgcn.graph.RowBlocks`: every torch op on one intra-op
thread (so each has one order of float sums), parallel over fixed blocks of
`seqgcn.graph.BLOCK_ROWS` rows that a few threads (``workers``) take one at a
time, each block writing its own rows or returning its own partial sum, the
partial sums added in block order. A thread that shares its core with another
process runs fewer blocks; no number changes. Each step's dropout mask comes
from a fixed stretch of the generator's stream (`DropoutStream`), so it too is the
same whichever thread draws it and when.

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
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqgcn.checks import (MAX_DEPTH, MAX_STEPS, MAX_WIDTH, InputError, check_choice, check_int, check_positive_int,
                           check_probability, resolve_device)
from seqgcn.graph import BLOCK_ROWS, KINDS, NORMALIZATIONS, Adjacency, RowBlocks, l2_normalize
from seqgcn.learners.optim import Adam
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

    Drawn as `DropoutStream` draws them (see there): the same masks, here in one
    piece. Used by the 1- and 3-layer ablations, tests and benchmarks.
    """
    stream = DropoutStream(rng, n_nodes, hidden, keep)
    every = slice(0, n_nodes)
    return [stream.next()[every].to(device) for _ in range(count)]


class DropoutStream:
    """Inverted-dropout masks (n_nodes, hidden) from `rng`, one per training step, drawable block by block.

    A unit is kept when a uniform 16-bit integer falls below round(keep·2¹⁶), so
    keep' = round(keep·2¹⁶)/2¹⁶ is within 8e-6 of `keep`; kept units are scaled by
    1/keep', which keeps the expectation exact (0 < keep' requires keep > 2⁻¹⁷).
    The integers of a step are the 16-bit pieces (little end first) of the next
    ⌈n_nodes·hidden/4⌉ 64-bit outputs of rng's PCG64, row after row; on a
    little-endian machine the same as ``rng.integers(0, 2**16, (n_nodes, hidden),
    dtype=np.uint16)`` when n_nodes·hidden is a multiple of 4 (it was drawn so before).

    `next()` reserves a step's outputs (rng moves past them at once) and returns
    its `StepMask`; ``mask[rows]`` draws those rows from their fixed offset in the
    stream (PCG64.advance), on whichever thread asks, in any order: each block of
    a step is drawn where it is used, in parallel, and the masks never depend on
    the order. numpy's PCG64, 16-bit draws: several times faster than torch's CPU
    generator for a float mask.
    """

    def __init__(self, rng: np.random.Generator, n_nodes: int, hidden: int, keep: float):
        self.bit_generator = rng.bit_generator  # a PCG64 (np.random.default_rng's), which has `advance`
        self.n_nodes, self.hidden = n_nodes, hidden
        self.threshold = int(round(keep * 65536))  # ≥ 1: the sampler refuses a dropout this would round to 0
        self.scale = 65536.0 / self.threshold  # 1/keep'
        self.words = -(-n_nodes * hidden // 4)  # 64-bit outputs per step
        self._local = threading.local()  # one generator per thread, re-positioned for each block

    def next(self) -> "StepMask":
        """The next step's mask (drawn later, by rows or whole)."""
        state = self.bit_generator.state
        self.bit_generator.advance(self.words)
        return StepMask(self, state)

    def bits(self, state: dict, rows: slice) -> np.ndarray:
        """The 16-bit integers of rows `rows` of the step starting at generator `state`: (B·hidden,) uint16."""
        gen = getattr(self._local, "gen", None)
        if gen is None:
            gen = self._local.gen = type(self.bit_generator)(0)
        first = rows.start * self.hidden  # position of the rows' first 16-bit draw in the step
        count = (rows.stop - rows.start) * self.hidden
        gen.state = state
        gen.advance(first // 4)
        return gen.random_raw(-(-(first % 4 + count) // 4)).view(np.uint16)[first % 4: first % 4 + count]

    def mask(self, bits: np.ndarray, out: np.ndarray | None = None) -> torch.Tensor:
        """The (B, hidden) float32 mask of `bits`, 0 or 1/keep', written into `out` when given (then shared)."""
        kept = bits.reshape(-1, self.hidden) < self.threshold  # (B, hidden)
        return torch.from_numpy(np.multiply(kept, np.float32(self.scale), out=out, dtype=np.float32))


class StepMask:
    """One step's dropout mask, (n_nodes, hidden): ``mask[rows]`` draws those rows (see `DropoutStream`).

    `draw_all` draws the whole step's integers at once, e.g. on a thread that would
    otherwise wait; ``ready`` may hold the Future of that call, which rows then await.
    """

    def __init__(self, stream: DropoutStream, state: dict):
        self.stream, self.state = stream, state
        self.scale = stream.scale
        self.shape = (stream.n_nodes, stream.hidden)
        self.whole = None  # (n_nodes·hidden,) uint16, once drawn by `draw_all`
        self.ready = None  # the Future of a `draw_all` running on another thread

    def draw_all(self) -> None:
        self.whole = self.stream.bits(self.state, slice(0, self.shape[0]))

    def __getitem__(self, rows: slice) -> torch.Tensor:
        return self.rows(rows)

    def rows(self, rows: slice, *, out: np.ndarray | None = None) -> torch.Tensor:
        """``self[rows]``, (B, hidden); drawn into the first B rows of `out` (float32) when given."""
        if self.ready is not None:
            self.ready.result()
        hidden = self.shape[1]
        if self.whole is not None:
            bits = self.whole[rows.start * hidden: rows.stop * hidden]
        else:
            bits = self.stream.bits(self.state, rows)
        return self.stream.mask(bits, None if out is None else out[: rows.stop - rows.start])


def gcn_forward(ax: torch.Tensor, adj: Adjacency, params: list[torch.Tensor], masks: list[torch.Tensor] | None, *,
                blocks: RowBlocks | None = None):
    """Logits (N,) and first-layer output (N, hidden) of the GCN.

    ax : (N, m) precomputed A @ X.  masks : one (N, hidden) dropout mask (already
    scaled by 1/(1−p)) per hidden layer, or None in evaluation mode.
    blocks : a `RowBlocks` to compute the first layer's product in (no autograd then).
    """
    n_layers = len(params) // 2
    if blocks is None:
        h = torch.addmm(params[1], ax, params[0])  # (N, h1): A (X W1) + b1 = (A X) W1 + b1
    else:
        w, b = params[0].detach(), params[1].detach()
        h = torch.empty(ax.shape[0], w.shape[1], dtype=ax.dtype, device=ax.device)  # (N, h1)
        blocks.map(lambda _, rows: torch.addmm(b, ax[rows], w, out=h[rows]))
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


def two_layer_step(ax: torch.Tensor, adj: Adjacency, adj_t: Adjacency, params: list[torch.Tensor], mask,
                   is_labelled: torch.Tensor, weight_unlabelled: float, *, block_rows: int = BLOCK_ROWS) -> float:
    """One `TwoLayerStep` on the calling thread, in blocks of `block_rows`: loss (eq. 6), gradients into ``p.grad``."""
    with RowBlocks(ax.shape[0], workers=1, device=ax.device, block_rows=block_rows) as blocks:
        step = TwoLayerStep(ax, adj, adj_t, is_labelled, weight_unlabelled, hidden=params[0].shape[1], blocks=blocks)
        return step(params, mask)


class TwoLayerStep:
    """Loss (eq. 6) of the 2-layer GCN and its gradients, by hand, in blocks of rows; buffers kept across steps.

    ``step(params, mask, next_mask=None)`` writes the gradients into ``p.grad`` and
    returns the loss: the same numbers as `gcn_forward` + `gcn_loss` + autograd up
    to float rounding. With M the dropout mask (0 or s = 1/keep'):

        P = A X W1 + b1,  H = relu(P)·M,  z = H w2,  y = A z + b2         forward
        g_y = ∂L/∂y,  g_z = Aᵀ g_y,  Q = [H > 0]·g_z  (N, hidden)          backward
        ∂W1 = ((A X)ᵀ Q)·(s w2)ᵀ,  ∂b1 = (1ᵀ Q)·(s w2)ᵀ,  ∂w2 = Hᵀ g_z,  ∂b2 = 1ᵀ g_y

    (∂L/∂P = [H > 0]·s·(g_z w2ᵀ): H > 0 exactly where relu and the mask both let a
    unit through, and there M = s.) Three passes over `blocks` (a `RowBlocks`):
    (1) P, H, z and each block's share of the sum over N in A z; (2) y, g_y and
    their share of the sum in Aᵀ g_y; (3) g_z, Q and each block's partial
    gradients. Partial sums are added in block order, so no number depends on
    which thread ran which block. Every buffer is allocated once, in the
    constructor: fresh multi-megabyte buffers each step cost page faults.

    ax : (N, m) A X.  adj, adj_t : A and Aᵀ.  is_labelled : (N,) bool.
    mask (per call) : (N, hidden) float tensor, 0 or s (as `dropout_masks` draws it),
        or a `StepMask` (its rows drawn where they are used).
    next_mask (per call) : the next step's `StepMask`, or None. With more than one
        worker, one of them draws it whole while the calling thread adds up this
        step's partial gradients and runs the optimizer (it would otherwise wait).
    """

    def __init__(self, ax: torch.Tensor, adj: Adjacency, adj_t: Adjacency, is_labelled: torch.Tensor,
                 weight_unlabelled: float, *, hidden: int, blocks: RowBlocks):
        self.ax, self.adj, self.adj_t, self.blocks = ax, adj, adj_t, blocks
        self.is_labelled, self.weight_unlabelled = is_labelled, weight_unlabelled
        self.n_lab = int(is_labelled.sum())
        n, m, k = ax.shape[0], ax.shape[1], len(blocks.slices)
        new = dict(dtype=ax.dtype, device=ax.device)
        self.h = torch.empty(n, hidden, **new)  # (N, hidden): H
        self.z, self.y, self.g_y = (torch.empty(n, 1, **new) for _ in range(3))  # (N, 1) each
        self.scratch = threading.local()  # per thread: a block's Q and mask rows, reused while still in cache
        self.part_w1 = torch.empty(k, hidden, m, **new)  # (blocks, hidden, m): Qᵀ (A X) per block (faster than (A X)ᵀ Q)
        self.part_b1 = torch.empty(k, hidden, **new)  # (blocks, hidden)
        self.part_w2 = torch.empty(k, hidden, 1, **new)  # (blocks, hidden, 1)
        self.part_b2 = torch.empty(k, 1, **new)  # (blocks, 1)

    def __call__(self, params: list[torch.Tensor], mask, *, next_mask=None) -> float:
        w1, b1, w2, b2 = (p.detach() for p in params)
        ax, adj, adj_t, blocks = self.ax, self.adj, self.adj_t, self.blocks
        n = ax.shape[0]
        n_lab, n_unl = self.n_lab, n - self.n_lab
        lab = self.is_labelled[:, None]  # (N, 1)
        drawn = isinstance(mask, StepMask)
        scale = mask.scale if drawn else (float(mask.max()) if mask.numel() else 1.0)
        with torch.no_grad():
            def forward(i: int, rows: slice):
                m = mask.rows(rows, out=self._buffers()[1]) if drawn else mask[rows]  # (B, hidden)
                h = torch.addmm(b1, ax[rows], w1, out=self.h[rows])  # (B, hidden): P
                h.mul_(m.to(h.device)).clamp_min_(0.0)  # (B, hidden): relu(P)·M, as M ≥ 0
                z = torch.mm(h, w2, out=self.z[rows])  # (B, 1)
                return adj.reduce_rows(rows, z)

            u = blocks.sum(blocks.map(forward))

            def logits(i: int, rows: slice):
                y = torch.add(adj.apply_rows(rows, self.z[rows], u), b2, out=self.y[rows])  # (B, 1)
                s = torch.sigmoid(y)
                g_y = torch.where(lab[rows], (s - 1.0) / max(n_lab, 1), self.weight_unlabelled * s / max(n_unl, 1),
                                  out=self.g_y[rows])  # (B, 1)
                return adj_t.reduce_rows(rows, g_y)

            t = blocks.sum(blocks.map(logits))
            loss = gcn_loss(self.y[:, 0], self.is_labelled, self.weight_unlabelled)

            def backward(i: int, rows: slice) -> None:
                g_y = self.g_y[rows]  # (B, 1)
                g_z = adj_t.apply_rows(rows, g_y, t)  # (B, 1)
                h = self.h[rows]  # (B, hidden)
                q = torch.sign(h, out=self._buffers()[0][: h.shape[0]]).mul_(g_z)  # (B, hidden): [H > 0]·g_z, as H ≥ 0
                torch.mm(q.T, ax[rows], out=self.part_w1[i])  # (hidden, m)
                torch.sum(q, 0, out=self.part_b1[i])  # (hidden,)
                torch.mm(h.T, g_z, out=self.part_w2[i])  # (hidden, 1)
                torch.sum(g_y, 0, out=self.part_b2[i])  # (1,)

            blocks.map(backward)
            if isinstance(next_mask, StepMask) and blocks.workers > 1:  # a worker would wait for the sums and Adam
                next_mask.ready = blocks.submit(next_mask.draw_all)
            w2_row = w2.T * scale  # (1, hidden): s w2ᵀ
            grads = (blocks.sum(self.part_w1).T.mul_(w2_row).contiguous(), blocks.sum(self.part_b1).mul_(w2_row[0]),
                     blocks.sum(self.part_w2), blocks.sum(self.part_b2))
        for p, g in zip(params, grads):
            p.grad = g
        return float(loss)

    def _buffers(self) -> tuple[torch.Tensor, np.ndarray]:
        """This thread's (block_rows, hidden) buffers for Q (tensor) and the mask rows (float32 array)."""
        if not hasattr(self.scratch, "q"):
            rows, hidden = max(r.stop - r.start for r in self.blocks.slices), self.h.shape[1]
            self.scratch.q = torch.empty(rows, hidden, dtype=self.h.dtype, device=self.h.device)
            self.scratch.mask = np.empty((rows, hidden), dtype=np.float32)
        return self.scratch.q, self.scratch.mask


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
        workers: int | None = None,
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
        self.workers = workers

    def _check_params(self) -> None:
        check_int(self.hidden, name="hidden", high=MAX_WIDTH)
        check_int(self.layers, name="layers", high=MAX_DEPTH)
        check_int(self.epochs, name="epochs", high=MAX_STEPS)
        check_probability(self.dropout, name="dropout")
        if round((1.0 - self.dropout) * 65536) < 1:  # DropoutStream keeps round((1 − dropout)·2¹⁶) units in 2¹⁶
            raise InputError(f"dropout={self.dropout!r} keeps no unit: the masks keep round((1 − dropout)·2¹⁶) in 2¹⁶, "
                             f"so dropout must be in [0, 1 − 2⁻¹⁷) = [0, {1 - 2 ** -17!r})")
        if self.workers is not None:
            check_positive_int(self.workers, name="workers")
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

        with RowBlocks(nodes.size, workers=self.workers, device=device) as blocks:  # one intra-op thread from here on
            x = torch.from_numpy(problem.features[nodes]).to(device)  # (N, m)
            v = l2_normalize(x)  # (N, m)
            del x
            adj = Adjacency(v, normalization=self.normalization, kind=self.adjacency)
            ax = adj.matmul(v, blocks)  # (N, m), constant across epochs
            adj_t = adj.transpose()
            is_labelled = torch.zeros(nodes.size, dtype=torch.bool, device=device)
            is_labelled[n_cand:] = True

            sizes = [v.shape[1]] + [self.hidden] * (self.layers - 1) + [1]
            params = init_gcn_params(sizes, rng=rng, device=device)
            opt = Adam(params, lr=self.lr, weight_decay=self.weight_decay)
            keep = 1.0 - self.dropout
            stream = DropoutStream(rng, nodes.size, self.hidden, keep) if self.dropout > 0 and self.layers == 2 else None
            no_dropout = torch.ones(nodes.size, self.hidden, device=device) if self.dropout == 0 and self.layers == 2 else None
            steps = tqdm(range(self.epochs), desc=f"{self.name} GCN on {nodes.size:,} nodes", unit="step",
                         disable=not self.progress, leave=False)
            two_layer = TwoLayerStep(ax, adj, adj_t, is_labelled, self.weight_unlabelled, hidden=self.hidden,
                                     blocks=blocks) if self.layers == 2 else None
            mask = stream.next() if stream is not None else no_dropout
            for _ in steps:
                opt.zero_grad()
                if two_layer is not None:  # the paper's GCN: hand-written gradients, in blocks of rows
                    next_mask = stream.next() if stream is not None else no_dropout
                    loss = two_layer(params, mask, next_mask=next_mask)
                    mask = next_mask
                else:  # ablations with 1 or 3 layers
                    masks = (dropout_masks(rng, nodes.size, self.hidden, self.layers - 1, keep, device)
                             if self.dropout > 0 else None)
                    logits, _ = gcn_forward(ax, adj, params, masks)
                    loss_t = gcn_loss(logits, is_labelled, self.weight_unlabelled)
                    loss_t.backward()
                    loss = float(loss_t.detach())
                opt.step()

            with torch.no_grad():
                logits, first = gcn_forward(ax, adj, params, None, blocks=blocks)
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
                    "workers": blocks.workers,  # threads that ran the blocks of rows: they set the speed, not the result
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
