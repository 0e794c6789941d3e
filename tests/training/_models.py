"""Tiny models, data and a training loop shared by the training-guard tests (keep stable: others import it).

Everything is small enough to train hundreds of steps in well under a second on 2 CPU threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


def regression_data(n: int = 1024, d: int = 8, noise: float = 0.1, seed: int = 0) -> Batch:
    """X ~ N(0, 1), y = X·w + noise, w ~ N(0, 1): a healthy regression problem."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    return x, x @ w + noise * torch.randn(n, 1, generator=g)


def blobs(n: int = 1024, d: int = 4, separation: float = 3.0, seed: int = 0) -> Batch:
    """Two Gaussian blobs (labels 0/1, int64), `separation` apart along every axis; they overlap a little."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, d, generator=g) + separation * (y[:, None].float() - 0.5)
    return x, y


def mlp(d_in: int, d_out: int, hidden: int = 32, depth: int = 2, act: type[nn.Module] = nn.ReLU,
        seed: int = 0) -> nn.Sequential:
    """Linear → act, `depth` times, then a Linear head."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, d_out))


def loader(data: Batch, steps: int, batch_size: int = 32, seed: int = 0) -> Iterator[Batch]:
    """`steps` minibatches sampled with replacement, reproducibly."""
    x, y = data
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=g)
        yield x[idx], y[idx]


def train(guard: Any, model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator[Batch],
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, zero_grad: bool = True,
          set_to_none: bool = True, mutate: Callable[[int, Batch], Batch] | None = None) -> int:
    """The usual loop with `guard.step` in place of `optimizer.step`; `mutate(step, batch)` plants faults
    (steps count from 1). Returns the number of steps run."""
    step = 0
    for step, batch in enumerate(batches, 1):
        x, y = mutate(step, batch) if mutate is not None else batch
        if zero_grad:
            optimizer.zero_grad(set_to_none=set_to_none)
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        guard.step(loss, batch=(x, y), predictions=out, targets=y)
    return step


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(out, y)


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


def compute_loss_for(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                     ) -> Callable[[nn.Module, Batch], torch.Tensor]:
    """The `compute_loss(model, batch)` the guard's locator replays."""
    return lambda model, batch: loss_fn(model(batch[0]), batch[1])


class GradAmplifier(nn.Module):
    """Identity forward; backward multiplies the gradient by `factor` (a layer whose backward blows up)."""

    def __init__(self) -> None:
        super().__init__()
        self.factor = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Amplify.apply(x, self.factor)


class _Amplify(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None
