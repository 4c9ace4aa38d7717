"""Adam (Kingma & Ba, 2015) for the few tensors of a registration, with in-place updates.

The maths is ``torch.optim.Adam``'s (betas 0.9/0.999, eps 1e-8, bias correction, no weight decay).
It exists because ``torch.optim.Optimizer.step`` imports ``torch._dynamo`` on its first call,
which costs about 2 s of CPU per process: more than a third of a fast registration. It also
skips the generic optimiser's per-step bookkeeping, which matters at the coarse pyramid levels,
where one iteration takes a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["Adam"]


class Adam:
    """Adam over groups of tensors, each group with its own step size.

    Args:
        groups: one sequence of leaf tensors (``requires_grad=True``) per group.
        lrs: step size per group (change ``lrs[i]`` between steps for a schedule).
        betas: decay rates of the first and second moment estimates.
        eps: added to the root of the second moment.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[torch.Tensor]],
        lrs: Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if len(groups) != len(lrs):
            raise ValueError(f"need one step size per group, got {len(groups)} groups and {len(lrs)} step sizes")
        self.groups = [list(group) for group in groups]
        self.lrs = [float(lr) for lr in lrs]
        self.betas, self.eps = betas, eps
        self.steps = 0
        self._first = [[torch.zeros_like(p) for p in group] for group in self.groups]
        self._second = [[torch.zeros_like(p) for p in group] for group in self.groups]

    def zero_grad(self) -> None:
        """Drop the gradients (the next backward pass allocates fresh ones)."""
        for group in self.groups:
            for parameter in group:
                parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every tensor that has a gradient."""
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1**self.steps
        root_correction2 = math.sqrt(1.0 - beta2**self.steps)
        for group, firsts, seconds, lr in zip(self.groups, self._first, self._second, self.lrs, strict=True):
            for parameter, first, second in zip(group, firsts, seconds, strict=True):
                grad = parameter.grad
                if grad is None:
                    continue
                first.lerp_(grad, 1.0 - beta1)
                second.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denominator = second.sqrt().div_(root_correction2).add_(self.eps)
                parameter.addcdiv_(first, denominator, value=-lr / correction1)
