"""What the guard does on the device each step: measure, decide, apply or skip the update, pack for the host.

1. Fused: per-parameter gradient norms (`torch._foreach_norm`, accumulated in float64), their total
   (`torch.linalg.vector_norm`), `isfinite` flags of loss and total, packed with the loss into ONE small float64
   tensor. Under torch.distributed an int64 flag pair is all-reduced (MAX) in the same stream, so every rank knows
   that some rank went bad, and which (integers: NCCL's MAX drops NaN): the kind (loss > own batch non-finite >
   gradients only, since DDP spreads NaN gradients to every rank), then the lowest rank. While trainable
   parameters outside the optimizer are undecided, their gradient norm rides along.
2. The update is applied or skipped WITHOUT the host knowing: fused optimizers (Adam/AdamW/SGD/Adagrad with
   fused=True) get `optimizer.found_inf` (1.0 when bad), exactly as `torch.amp.GradScaler` drives them, so a bad
   step changes neither weights nor optimizer state. Other optimizers: on CPU the flag is read directly (free); on
   an accelerator the bad step's gradients are zeroed on the device (`masked_fill_`), which keeps the weights
   finite but lets momentum/weight decay move them — use fused=True for an exact skip there. With a GradScaler,
   overflowing gradients are the scaler's to skip; a non-finite loss is the guard's.
3. On a probe step the tail adds: weight norms after and before the update and update norms (one copy of the
   parameters), optimizer state finite, the constant-prediction level of the targets seen, prediction/target
   spreads and the activation shares from the forward hooks.
4. The packed tensor goes to the host `non_blocking` into a pinned buffer, followed by a CUDA event; the host
   reads it one step late, synchronising on that event only (see guard.py)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mlguard_orchestration.training.constant_level import ConstantLevel
from mlguard_orchestration.training.probes import Activation

BASE = 6  # packed layout: loss, total grad norm, local kind, global kind code, global host-fail code, absent norm


@dataclass
class Record:
    """One step, measured on the device, waiting to be judged."""

    step: int
    packed: torch.Tensor
    grad_index: list[int]
    same_grads: bool
    batch: Any
    lr: float | None = None
    indices: list[int] | None = None  # dataset indices of the batch, when the loader is tracked
    event: torch.cuda.Event | None = None
    probe: dict[str, Any] | None = None  # layout of the probe tail, when this step was probed
    acts: list[Activation] = field(default_factory=list)
    before: tuple[torch.Tensor, ...] | None = None  # the parameters before this step's update (probe steps)

    def values(self) -> list[float]:
        if self.event is not None:
            self.event.synchronize()  # this record's event only: the queued next step keeps the device busy
        return self.packed.tolist()


class StepMeter:
    """The device side of `TrainingGuard`, for one set of parameters and one optimizer."""

    def __init__(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None, device: torch.device) -> None:
        self.params, self.optimizer, self.scaler, self.device = params, optimizer, scaler, device
        self.fused = bool(getattr(optimizer, "defaults", {}).get("fused"))
        dist = torch.distributed
        self.dist = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.dist else 0
        self.world = dist.get_world_size() if self.dist else 1
        self.absent: list[torch.nn.Parameter] = []  # trainable, in no optimizer group, still undecided
        self.level = ConstantLevel()
        self._prev_grad: weakref.ref[torch.Tensor] | None = None
        self._pinned: dict[int, torch.Tensor] = {}

    def measure(self, step: int, loss: torch.Tensor, batch: Any,
                host_code: int) -> tuple[Record, torch.Tensor, list[torch.Tensor]]:
        """This step's numbers on the device, and its verdict code (a device integer, all ranks agreeing):
        0 when good, else kind * (world + 1) + (world - bad rank), kind 3 for a non-finite loss."""
        with_grad = [(i, g) for i, p in enumerate(self.params) if (g := p.grad) is not None]
        index, grads = [i for i, _ in with_grad], [g for _, g in with_grad]
        value = torch.as_tensor(loss).detach().float().mean()
        dev = value.device
        if grads:
            per = norms([g._values() if g.is_sparse else g for g in grads]).to(dev)
            total = torch.linalg.vector_norm(per)
        else:
            per = torch.zeros(0, dtype=torch.float64, device=dev)
            total = torch.zeros((), dtype=torch.float64, device=dev)
        absent = [p.grad for p in self.absent if p.grad is not None]
        absent_norm = torch.linalg.vector_norm(norms(absent).to(dev)) if absent else \
            torch.zeros((), dtype=torch.float64, device=dev)
        loss_bad, grads_bad = ~torch.isfinite(value), ~torch.isfinite(total)
        # DDP averages gradients over ranks, so NaN gradients are everywhere: a rank whose own batch holds a
        # NaN/Inf outranks the others (one reduction over the batch's float tensors, under DDP only)
        own = batch_bad(batch, dev) if self.dist else torch.zeros((), dtype=torch.bool, device=dev)
        kind = torch.where(loss_bad, 3, torch.where(grads_bad, torch.where(own, 2, 1), 0)).to(torch.int64)
        code = kind * (self.world + 1) + (kind > 0) * (self.world - self.rank)
        flags = torch.stack([code, torch.full((), host_code, dtype=torch.int64, device=dev)])
        if self.dist:
            flags = flags.to(self.flag_device())
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            flags = flags.to(dev)
        packed = torch.cat([torch.stack([value.double(), total, kind.double()]), flags.double(),
                            absent_norm.reshape(1), per])
        first = grads[0] if grads else None
        same = first is not None and self._prev_grad is not None and self._prev_grad() is first
        self._prev_grad = weakref.ref(first) if first is not None else None
        return Record(step, packed, index, same, batch), flags[0], grads

    def apply(self, code: torch.Tensor, grads: list[torch.Tensor]) -> None:
        """optimizer.step(), unless the step is bad — decided on the device where the optimizer allows it."""
        opt: Any = self.optimizer
        if self.scaler is not None:  # overflowing gradients are the scaler's to skip; a bad loss is ours
            loss_bad = code >= 3 * (self.world + 1)
            if loss_bad.device.type != "cpu":
                for g in grads:
                    g.masked_fill_(loss_bad, 0)
            if loss_bad.device.type != "cpu" or not bool(loss_bad):
                self.scaler.step(opt)
            self.scaler.update()
            return
        bad = code > 0
        if self.fused:
            opt.grad_scale, opt.found_inf = None, bad.float()
            try:
                opt.step()
            finally:
                del opt.grad_scale, opt.found_inf
        elif bad.device.type == "cpu":
            if not bool(bad):
                opt.step()
        else:
            for g in grads:
                g.masked_fill_(bad, 0)
            opt.step()

    def tail(self, record: Record, before: tuple[torch.Tensor, ...] | None, predictions: torch.Tensor | None,
             targets: torch.Tensor | None, acts: list[Activation], root_ptr: int | None) -> list[torch.Tensor]:
        """The probe's extras, on the device (see the module docstring); their layout goes on the record."""
        dev = record.packed.device
        tail: list[torch.Tensor] = []
        layout: dict[str, Any] = {"params": 0}
        if self.params and before is not None:
            after = norms(self.params).to(dev)
            tail += [after, norms(before).to(dev), norms(torch._foreach_sub(self.params, before)).to(dev)]
            layout["params"] = len(self.params)
        states = [t for s in self.optimizer.state.values() for t in s.values()  # not CPU step counters:
                  if isinstance(t, torch.Tensor) and t.is_floating_point() and t.device == dev]  # no copies
        ok = torch.isfinite(norms(states).sum()) if states else torch.ones((), dtype=torch.bool, device=dev)
        tail.append(ok.to(torch.float64).reshape(1))
        if predictions is not None and targets is not None and predictions.dim() >= 1 and len(predictions) >= 2:
            self.level.add(predictions, targets)
            tail.append(self.level.level(dev))
            layout["level"] = True
            # spreads need neither float64 nor every column of a (batch × seq × vocab) logits tensor
            p = _columns(predictions.detach().float().reshape(len(predictions), -1))
            t = _columns(targets.detach().float().reshape(len(targets), -1))
            tail.append(torch.stack([p.std(0, correction=0).mean(), p.abs().mean(), t.std(0, correction=0).mean(),
                                     t.abs().mean()]).to(dev))
            layout["regression"] = targets.is_floating_point() and targets.numel() == predictions.numel()
        record.acts = acts
        if acts:
            tail.append(torch.stack([a.share.to(dev, torch.float64) for a in acts]))
        layout["root_ptr"] = root_ptr
        record.probe = layout
        return tail

    def finish(self, record: Record, tail: list[torch.Tensor]) -> None:
        """Pack, and start the copy to the host (pinned, non_blocking, event)."""
        packed = torch.cat([record.packed, *tail]) if tail else record.packed
        if packed.device.type == "cuda":
            host = self._pinned.get(packed.numel())
            if host is None:
                host = self._pinned[packed.numel()] = torch.empty(packed.numel(), dtype=torch.float64,
                                                                  pin_memory=True)
            host.copy_(packed, non_blocking=True)
            record.event = torch.cuda.Event()
            record.event.record()
            packed = host
        record.packed = packed

    def flag_device(self) -> torch.device:
        backend = torch.distributed.get_backend()
        return self.device if backend != "gloo" else torch.device("cpu")


def norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-tensor L2 norms in float64 (fingerprints exact enough to see any change; no half overflow)."""
    out = torch._foreach_norm([t.detach() for t in tensors], 2, dtype=torch.float64)
    return torch.stack([n.to(out[0].device) for n in out])


def batch_bad(batch: Any, dev: torch.device) -> torch.Tensor:
    """Whether the batch's float tensors (in tuples, lists, dicts) hold a NaN/Inf, as a device bool."""
    stack, flags = [batch], []
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            flags.append((~torch.isfinite(item)).any().to(dev))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return torch.stack(flags).any() if flags else torch.zeros((), dtype=torch.bool, device=dev)


def _columns(x: torch.Tensor, limit: int = 4096) -> torch.Tensor:
    """At most `limit` evenly strided columns: enough to measure a spread, cheap for wide outputs."""
    return x if x.shape[1] <= limit else x[:, :: -(-x.shape[1] // limit)]


__all__ = ["BASE", "Record", "StepMeter", "batch_bad", "norms"]
