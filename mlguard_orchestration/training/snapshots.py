"""Weights that work: rolling snapshots of the model, and on a stop the newest one whose forward pass is finite.

"The last good weights" must mean weights a user can keep training from or serve. The weights just before a
failing step are not enough: when a learning rate is too high, the damaging update is often the one BEFORE the
step that went non-finite — its weights are finite yet give Inf on the very batch. So:

- Snapshots of the parameters and floating buffers (BatchNorm statistics) are taken every `snapshot_every` steps
  and on early-warning signals (a loss spike, a gradient burst, a high update ratio), by copying into buffers
  allocated once (`torch._foreach_copy_`, on the parameters' device, or offloaded to pinned CPU memory with
  non-blocking copies). The initial weights are kept as the last resort; the newest snapshot taken before the
  latest early warning is pinned, so a burst of warnings cannot rotate the last quiet state away.
- On a stop, candidates are tried newest first — the weights as they are (the bad update was skipped or undone),
  then the snapshots — and the first whose weights are finite and whose forward pass (`compute_loss`) on the recent
  batches, the failing one included, is finite is restored. Without `compute_loss`, or under torch.distributed
  (ranks see different batches and must agree without a collective on the stop path), finite weights are the test.

The verification replays run under `batches.preserved` (modes, grads and buffers restored) and a forked RNG."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.batches import forked_rng, preserved

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    step: int
    tensors: list[torch.Tensor]
    pinned: bool = False


@dataclass(frozen=True)
class Restored:
    """What a stop restored: the step the weights are from and how they were checked."""

    step: int
    verified: str  # 'forward' (finite loss on the recent batches) or 'weights' (finite weights only)
    tried: int  # candidates tried before this one
    batches: int  # batches the forward pass was checked on


class Snapshots:
    """A ring of `keep` snapshots, the initial weights and at most one pinned snapshot."""

    def __init__(self, model: nn.Module, keep: int, device: str | None = None) -> None:
        self.model = model
        self.tensors = [p for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
        self.keep = keep
        self.device = torch.device(device) if device is not None else None
        self.ring: list[Snapshot] = []
        self.initial = self._copy(0, None)
        self.pinned: Snapshot | None = None
        self.taken = 1

    def _copy(self, step: int, reuse: Snapshot | None) -> Snapshot:
        src = [t.detach() for t in self.tensors]
        if reuse is None:
            dst = [torch.empty_like(t, device=self.device or t.device,
                                    pin_memory=(self.device is not None and self.device.type == "cpu"
                                                and t.device.type == "cuda")) for t in src]
            reuse = Snapshot(step, dst)
        with torch.no_grad():
            torch._foreach_copy_(reuse.tensors, src, non_blocking=True)
        reuse.step = step
        return reuse

    def take(self, step: int) -> None:
        """Snapshot the current weights as those after `step` (reusing the oldest ring slot when full)."""
        if self.ring and self.ring[-1].step == step:
            return
        reuse = self.ring.pop(0) if len(self.ring) >= self.keep else None
        self.ring.append(self._copy(step, reuse))
        self.taken += 1

    def pin(self) -> None:
        """Keep the newest snapshot (taken before this early warning) out of the rotation."""
        if not self.ring or (self.pinned is not None and self.pinned.step >= self.ring[-1].step):
            return
        newest = self.ring[-1]
        self.pinned = self._copy(newest.step, self.pinned)
        with torch.no_grad():
            torch._foreach_copy_(self.pinned.tensors, newest.tensors)

    def candidates(self, after: int | None = None) -> list[Snapshot]:
        """Snapshots newest first (at most `after` as their step, when given), the initial weights last."""
        pool = [*self.ring, *([self.pinned] if self.pinned else [])]
        pool = sorted((s for s in pool if after is None or s.step <= after), key=lambda s: -s.step)
        first: dict[int, Snapshot] = {}  # per step, the newest snapshot of it
        for s in pool:
            first.setdefault(s.step, s)
        unique = list(first.values())
        return [*unique, self.initial] if not unique or unique[-1].step > 0 else unique

    def load(self, snap: Snapshot) -> None:
        with torch.no_grad():
            torch._foreach_copy_([t.detach() for t in self.tensors], snap.tensors)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.initial.tensors)


def restore_working(snaps: Snapshots, model: nn.Module, current: Snapshot,
                    compute_loss: Callable[[nn.Module, Any], Any] | None, batches: Sequence[Any],
                    *, forward: bool) -> Restored | None:
    """Load the newest candidate (`current` first, then the snapshots no newer than it) whose weights are finite and,
    when `forward`, whose loss on `batches` is finite; None (weights left as the last candidate) if none is."""
    check = forward and compute_loss is not None and bool(batches)
    tried = 0
    for snap in [current, *snaps.candidates(after=current.step - 1)]:
        if not all(bool(torch.isfinite(t).all()) for t in snap.tensors):
            tried += 1
            continue
        snaps.load(snap)
        if not check or _finite_on(model, compute_loss, batches):
            return Restored(snap.step, "forward" if check else "weights", tried, len(batches) if check else 0)
        tried += 1
    return None


def _finite_on(model: nn.Module, compute_loss: Any, batches: Sequence[Any]) -> bool:
    try:
        with preserved(model), forked_rng(model), torch.no_grad():
            for batch in batches:
                loss = compute_loss(model, batch)
                loss = loss if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
                if not bool(torch.isfinite(loss.detach()).all()):
                    return False
    except Exception as exc:  # noqa: BLE001 - a replay that raises does not prove the weights work
        log.warning("forward check of a weight snapshot raised: %s", exc)
        return False
    return True


__all__ = ["Restored", "Snapshot", "Snapshots", "restore_working"]
