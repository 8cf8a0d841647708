"""The optimisers seqgcn trains with: SGD, Adam and a MultiStepLR schedule, written out.

Each computes what torch.optim's single-tensor path (its CPU default) computes, op for op, so
the numbers are the same (tests/learners/test_optim.py). Why not torch.optim itself: the first
`torch.optim.Optimizer` a process builds imports torch._dynamo, 2.3–2.7 s on the project's 2-core
CPU (torch 2.13.0+cpu, measured 2026-12-02), more than a cycle of training on the digits; every
job's worker process, every Ray worker and every `seqgcn query` round would pay it.

The learner's network, the Learning Loss module, VAAL's VAE and discriminator, the GCN and the
head on frozen embeddings all train with these.
"""

from __future__ import annotations

from collections import Counter

import torch


class _Optimizer:
    """Parameters, a learning rate `lr` (a plain float the schedule changes), ``zero_grad``."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = float(lr)

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, torch's default)."""
        for p in self.params:
            p.grad = None

    def _with_grads(self, grads) -> tuple[list, list, list]:
        """(positions, parameters, gradients) of the parameters that have a gradient (default: their ``.grad``)."""
        grads = [p.grad for p in self.params] if grads is None else list(grads)
        at = [i for i, g in enumerate(grads) if g is not None]
        return at, [self.params[i] for i in at], [grads[i] for i in at]


class SGD(_Optimizer):
    """SGD with momentum (no dampening, not Nesterov) and L2 weight decay added to the gradient, as
    ``torch.optim.SGD(params, lr, momentum, weight_decay)``; the first step's buffer is the gradient itself.

    One `torch._foreach_*` op per step of the update, as torch's multi-tensor path: on a GPU a kernel
    for all parameters at once; on the CPU the same per-tensor ops as its single-tensor path.
    """

    def __init__(self, params, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.buffers: list = [None] * len(self.params)

    @torch.no_grad()
    def step(self, grads=None) -> None:
        """One update from `grads` (one per parameter, None skips one; default: each parameter's ``.grad``)."""
        at, params, grads = self._with_grads(grads)
        if not params:
            return
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            bufs = [self.buffers[i] for i in at]
            old = [k for k, b in enumerate(bufs) if b is not None]
            if old:
                torch._foreach_mul_([bufs[k] for k in old], self.momentum)
                torch._foreach_add_([bufs[k] for k in old], [grads[k] for k in old])
            for k, i in enumerate(at):
                if bufs[k] is None:  # the first step: the gradient itself
                    self.buffers[i] = bufs[k] = grads[k].detach().clone()
            grads = bufs
        torch._foreach_add_(params, grads, alpha=-self.lr)


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as ``torch.optim.Adam(params, lr,
    weight_decay=...)`` (betas 0.9, 0.999, eps 1e-8); `torch._foreach_*` ops as `SGD`.

    One step count for all parameters (the bias corrections); torch keeps one per parameter, which
    differs only when some parameters have no gradient in some steps, as never in seqgcn's training.
    """

    def __init__(self, params, *, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self, grads=None) -> None:
        """One update from `grads` (one per parameter, None skips one; default: each parameter's ``.grad``)."""
        at, params, grads = self._with_grads(grads)
        if not params:
            return
        beta1, beta2 = self.betas
        self.steps += 1
        m, v = [self.exp_avg[i] for i in at], [self.exp_avg_sq[i] for i in at]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_lerp_(m, grads, 1 - beta1)  # first moment
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)  # second moment
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, (1 - beta2 ** self.steps) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, value=-self.lr / (1 - beta1 ** self.steps))


class MultiStepLR:
    """``torch.optim.lr_scheduler.MultiStepLR``: after the epochs listed in `milestones` (repeats count), the
    optimiser's lr is multiplied by `gamma`; call ``step()`` at the end of each epoch."""

    def __init__(self, optimizer: _Optimizer, milestones, gamma: float):
        self.optimizer, self.gamma = optimizer, gamma
        self.milestones = Counter(int(m) for m in milestones)
        self.epoch = -1
        self.step()  # epoch 0, as torch's constructor steps once (a milestone 0 applies at once)

    def step(self) -> None:
        self.epoch += 1
        if self.epoch in self.milestones:  # the lr so far times gamma^count, as torch's chained form computes it
            self.optimizer.lr = self.optimizer.lr * self.gamma ** self.milestones[self.epoch]
