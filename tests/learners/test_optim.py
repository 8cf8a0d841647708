"""seqgcn's SGD, Adam and MultiStepLR compute what torch.optim computes (its CPU path), to the bit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import seqgcn
from seqgcn.learners.optim import SGD, Adam, MultiStepLR


def _params(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 3, generator=g, requires_grad=True), torch.randn(3, generator=g, requires_grad=True),
            torch.randn(2, generator=g, requires_grad=True)]  # the last never gets a gradient


def _loss(params, x, target):
    return ((x @ params[0] + params[1] - target) ** 2).sum()


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_steps_and_schedule_equal_torch_optim(kind):
    ours, ref = _params(0), _params(0)
    g = torch.Generator().manual_seed(1)
    x, target = torch.randn(5, 6, generator=g), torch.randn(5, 3, generator=g)
    milestones, gamma = [4, 9, 9], 0.1  # a repeated milestone counts twice
    if kind == "sgd":
        opt = SGD(ours, lr=0.05, momentum=0.9, weight_decay=5e-4)
        torch_opt = torch.optim.SGD(ref, lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=False)
    else:
        opt = Adam(ours, lr=0.05, weight_decay=5e-4)
        torch_opt = torch.optim.Adam(ref, lr=0.05, weight_decay=5e-4, foreach=False)
    sched = MultiStepLR(opt, milestones, gamma)
    torch_sched = torch.optim.lr_scheduler.MultiStepLR(torch_opt, milestones=milestones, gamma=gamma)
    for epoch in range(14):
        for _ in range(2):
            opt.zero_grad()
            _loss(ours, x, target).backward()
            opt.step()
            torch_opt.zero_grad()
            _loss(ref, x, target).backward()
            torch_opt.step()
        sched.step()
        torch_sched.step()
        assert opt.lr == torch_opt.param_groups[0]["lr"], epoch
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    assert opt.lr == pytest.approx(0.05 * gamma ** 3) and not torch.equal(ours[0], _params(0)[0])
    assert torch.equal(ours[2], _params(0)[2])  # no gradient, no update (weight decay included)


def test_gradients_can_be_passed_instead_of_grad():
    ours, ref = _params(2), _params(2)
    x, target = torch.randn(5, 6), torch.randn(5, 3)
    opt, twin = Adam(ours, lr=0.01, weight_decay=1e-3), Adam(ref, lr=0.01, weight_decay=1e-3)
    for _ in range(5):
        opt.step([*torch.autograd.grad(_loss(ours, x, target), ours[:2]), None])
        twin.zero_grad()
        _loss(ref, x, target).backward()
        twin.step()
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_no_module_builds_a_torch_optim_optimizer():
    """torch.optim's first optimiser of a process imports torch._dynamo (seconds): seqgcn trains with its own."""
    used = []
    for path in Path(seqgcn.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "optim" and getattr(node.value, "id", None) == "torch":
                used.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
                if any(n == "torch.optim" or n.startswith("torch.optim.") for n in names):
                    used.append(f"{path.name}:{node.lineno}")
    assert not used, used
