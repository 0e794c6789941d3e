"""Small helpers over tensors, batches and model state, shared by the locator, the snapshots and the artifacts.

A batch is any (nested) tuple/list/dict/dataclass of tensors; its samples run along the first dimension of the
tensors whose first dimension is the batch size. Nothing here syncs a device except where it reads values on the
rare (stopping) path."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.evidence import TensorStats

# -- tensors -------------------------------------------------------------------------------------------------

def tensor_stats(t: torch.Tensor) -> TensorStats:
    """Shape, dtype, NaN/Inf counts and the range of the finite values: a few numbers, never the values."""
    t = t.detach()
    stats = TensorStats(shape=list(t.shape), dtype=str(t.dtype).removeprefix("torch."))
    if t.numel() == 0:
        return stats
    if t.is_complex():
        t = torch.view_as_real(t)
    if t.is_floating_point():
        nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        values = t[torch.isfinite(t)] if nan or inf else t.reshape(-1)
    else:
        nan = inf = 0
        values = t.reshape(-1)
    values = values.double()
    stats.nan, stats.inf, stats.finite = nan, inf, not (nan or inf)
    if values.numel():
        lo, hi = float(values.min()), float(values.max())
        stats.min, stats.max, stats.abs_max = lo, hi, max(abs(lo), abs(hi))
        stats.mean = float(values.mean())
    return stats


def tensors(obj: Any, depth: int = 0) -> list[torch.Tensor]:
    """Every tensor in a (nested) tuple/list/dict/dataclass, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if depth > 5:
        return []
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors(v, depth + 1)]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in tensors(v, depth + 1)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in tensors(getattr(obj, f.name, None), depth + 1)]
    return []


def finite(ts: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in ts if t.is_floating_point() or t.is_complex())


def bad_rows(ts: list[torch.Tensor], n: int) -> list[int]:
    """Indices i < n such that row i of some floating tensor with first dimension n is not finite."""
    bad: torch.Tensor | None = None
    for t in ts:
        if t.dim() >= 1 and t.shape[0] == n and (t.is_floating_point() or t.is_complex()):
            rows = ~torch.isfinite(t.detach()).reshape(n, -1).all(dim=1) if t[0].numel() else None
            if rows is not None:
                bad = rows.cpu() if bad is None else bad | rows.cpu()
    return [] if bad is None else [int(i) for i in torch.nonzero(bad).flatten()]


# -- batches -------------------------------------------------------------------------------------------------

def batch_size(batch: Any) -> int | None:
    """The first dimension of the batch's first tensor (of at least one dimension)."""
    for t in tensors(batch):
        if t.dim() >= 1:
            return int(t.shape[0])
    return None


def take(batch: Any, indices: list[int], n: int) -> Any:
    """The sub-batch of `indices`: tensors whose first dimension is `n` are indexed, the rest kept."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() >= 1 and batch.shape[0] == n:
            return batch[torch.as_tensor(indices, dtype=torch.long, device=batch.device)]
        return batch
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(take(v, indices, n) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(take(v, indices, n) for v in batch)
    if isinstance(batch, Mapping):
        items = {k: take(v, indices, n) for k, v in batch.items()}
        rebuild: Any = type(batch)  # any Mapping subclass: whether a dict builds one is known only by trying
        try:
            return rebuild(items)
        except Exception:  # noqa: BLE001 - a mapping type that cannot be built from a dict: use a dict
            return items
    return batch


def to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, (list, tuple)):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_cpu(v) for k, v in obj.items()}
    return obj


# -- state ---------------------------------------------------------------------------------------------------

@contextmanager
def preserved(model: nn.Module) -> Iterator[list[Any]]:
    """Yields a list for hook handles; restores modes, grads and buffers and removes the hooks on exit."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    handles: list[Any] = []
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
        for p, g in grads:
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


@contextmanager
def forked_rng(model: nn.Module) -> Iterator[Callable[[], None]]:
    """Replays run on a fork of the RNG; the yielded function rewinds it to the state at entry."""
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        cpu = torch.get_rng_state()
        cuda = [torch.cuda.get_rng_state(d) for d in devices]

        def rewind() -> None:
            torch.set_rng_state(cpu)
            for d, s in zip(devices, cuda, strict=True):
                torch.cuda.set_rng_state(s, d)

        yield rewind


def scalar(loss: Any) -> torch.Tensor:
    t = loss if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
    return t if t.numel() == 1 else t.sum()


def coupled(model: nn.Module) -> bool:
    """True when a module mixes samples of the batch (BatchNorm and SyncBatchNorm in training mode)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


__all__ = ["bad_rows", "batch_size", "coupled", "finite", "forked_rng", "preserved", "scalar", "take", "tensor_stats",
           "tensors", "to_cpu"]
