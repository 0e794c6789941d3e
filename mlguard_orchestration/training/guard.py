"""`TrainingGuard`: replaces `optimizer.step()`, stops training at the bad step and keeps the weights good.

Why it costs (almost) nothing per step — the design, step by step:

1. On the device, fused: per-parameter gradient norms (`torch._foreach_norm`, accumulated in float64), their
   total (`torch.linalg.vector_norm`), `isfinite` flags of loss and total, packed with the loss into ONE small
   float64 tensor. Under torch.distributed an int64 flag pair is all-reduced (MAX) in the same stream, so every
   rank knows that some rank went bad, and which (integers: NCCL's MAX drops NaN): the kind (loss > own batch
   non-finite > gradients only, since DDP spreads NaN gradients to every rank), then the lowest rank.
2. The update is applied or skipped WITHOUT the host knowing: fused optimizers (Adam/AdamW/SGD/Adagrad with
   fused=True) get `optimizer.found_inf` (1.0 when bad), exactly as `torch.amp.GradScaler` drives them, so a
   bad step changes neither weights nor optimizer state. Other optimizers: on CPU the flag is read directly
   (free); on an accelerator the bad step's gradients are zeroed on the device (`masked_fill_`), which keeps
   the weights finite but lets momentum/weight decay move them — use fused=True for an exact skip there.
3. The packed tensor goes to the host `non_blocking` into a pinned buffer, followed by a CUDA event. It is
   read ONE STEP LATE: at the next `step()` call, before that step's update, after synchronising on the
   PREVIOUS step's event only (the device is busy with the queued step meanwhile, so the host never drains
   it). On CPU the values are simply read (nothing to wait for), at once unless `evaluate_late=True`.
4. Every `sample_every` steps a probe adds: forward-hook statistics of ReLU/sigmoid/tanh modules, the
   update/weight ratio (one copy of the parameters), weight and optimizer-state finiteness, a fingerprint
   (float64 norm per parameter) for parameters that never change, and prediction/target spreads.

5. Mixed precision: the forward's autocast dtype is noted by a forward hook (two host calls, no sync). With a
   `torch.amp.GradScaler` (`scaler=`), the guard unscales the gradients before measuring them (true norms) and
   lets the scaler step and update: a step whose gradients overflow is the scaler's to skip, by design, and is
   only counted; `scaler_max_skips` skips in a row mean the gradients are non-finite at any scale (a fault).
   A non-finite LOSS is a fault at once, scaler or not.

A fail finding raises `TrainingStopped` at the step it becomes known — the bad step itself on CPU, the next
one otherwise; host-side rules under torch.distributed are agreed through the next step's all-reduce, so all
ranks stop together, one step later still. The batch of a step is kept (a reference, no copy) until that
step is judged, so a NaN can be replayed by the locator with the pre-fault weights."""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import torch
from torch import nn

from mlguard_orchestration.errors import GuardFailed
from mlguard_orchestration.report import Finding, Report
from mlguard_orchestration.training._stats import GradJudge, LossJudge, OverfitJudge, ProbeJudge, Verdict
from mlguard_orchestration.training.config import GuardConfig
from mlguard_orchestration.training.evidence import TrainingEvidence

# Host-side fail codes, numbered for the distributed agreement (never renumber within a run).
_HOST_FAILS = ("training.loss_spike", "training.exploding_gradients", "training.divergence",
               "training.missing_zero_grad", "training.prediction_explosion", "training.non_finite_weights")
_NON_FINITE = {1: "training.non_finite_gradients", 2: "training.non_finite_gradients", 3: "training.non_finite_loss"}
_BASE = 5  # packed layout: loss, total grad norm, local kind, global kind code, global host-fail code
_DEAD = (nn.ReLU, nn.ReLU6)
_SATURATING = (nn.Sigmoid, nn.Tanh)


class TrainingStopped(GuardFailed):
    """Training was stopped by a fail finding. `report` holds the diagnosis; the weights are the last good ones."""


@dataclass
class _Record:
    """One step, measured on the device, waiting to be judged."""

    step: int
    packed: torch.Tensor
    grad_index: list[int]
    same_grads: bool
    batch: Any
    event: torch.cuda.Event | None = None
    probe: dict[str, Any] | None = None  # layout of the probe tail, when this step was sampled
    acts: list[tuple[str, str, int]] = field(default_factory=list)  # (module key, kind, output data_ptr)

    def values(self) -> list[float]:
        if self.event is not None:
            self.event.synchronize()  # this record's event only: the queued next step keeps the device busy
        return self.packed.tolist()


class TrainingGuard:
    """Watches a PyTorch training loop; see the module docstring for how, and `GuardConfig` for the rules."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, config: GuardConfig | None = None,
                 compute_loss: Callable[[nn.Module, Any], torch.Tensor] | None = None, name: str = "training",
                 context: dict[str, str] | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config or GuardConfig()
        # the scaler owns unscale/step/update; a disabled one (GradScaler(enabled=False)) is a no-op
        self.scaler = scaler if scaler is not None and scaler.is_enabled() else None
        self._skips = 0  # consecutive steps the scaler skipped for overflowing gradients
        self._autocast: str | None = None  # the dtype the last training forward was autocast to
        self.compute_loss, self.name, self.context = compute_loss, name, dict(context or {})
        self.step_count = 0
        self.last_good_step: int | None = None
        self._inner: nn.Module = getattr(model, "module", model) if _is_ddp(model) else model
        named = [(n, p) for n, p in self._inner.named_parameters() if p.requires_grad]
        in_opt = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._names = [n for n, p in named if id(p) in in_opt]
        self._params = [p for n, p in named if id(p) in in_opt]
        self._not_in_optimizer = [n for n, p in named if id(p) not in in_opt]
        self._device = self._params[0].device if self._params else torch.device("cpu")
        self._fused = bool(getattr(optimizer, "defaults", {}).get("fused"))
        dist = torch.distributed
        self._dist = dist.is_available() and dist.is_initialized()
        self._rank = dist.get_rank() if self._dist else 0
        self._world = dist.get_world_size() if self._dist else 1
        cfg = self.config
        self._late = cfg.evaluate_late if cfg.evaluate_late is not None else (
            self._device.type != "cpu" or self._dist)
        self._loss = LossJudge(cfg)
        self._grads = GradJudge(cfg, self._names, [p.dim() >= 2 for p in self._params])
        self._probes = ProbeJudge(cfg)
        self._overfit = OverfitJudge(cfg)
        self._baseline = self._norms(self._params).tolist() if self._params else []  # one sync, at construction
        self._frozen: list[str] = []
        self._frozen_checked = False
        self._findings: dict[str, Finding] = {}
        self._stopped: TrainingStopped | None = None
        self._pending: _Record | None = None
        self._host_code = 0  # this rank's host-side fail, to share through the next all-reduce
        self._prev_grad: weakref.ref[torch.Tensor] | None = None
        self._pinned: dict[int, torch.Tensor] = {}
        self._armed = cfg.sample_every == 1
        self._acts: dict[str, tuple[str, torch.Tensor, int]] = {}
        self._root_ptr: int | None = None
        self._last_pred: tuple[float, float] | None = None
        self._started, self._t0 = datetime.now(UTC), time.monotonic()
        self._hooks = self._register_hooks()
        if self._not_in_optimizer:
            self._add(Verdict("training.parameters_not_in_optimizer", "warn",
                              f"{len(self._not_in_optimizer)} trainable parameter(s) are in no optimizer group: "
                              f"{', '.join(self._not_in_optimizer[:5])}", len(self._not_in_optimizer), 0,
                              {"parameters": self._not_in_optimizer[:20]}))

    # -- the context manager -----------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Judge the last step and share the last verdict across ranks; raise if a fail finding exists."""
        try:
            if exc_type is not None:
                return
            if self._stopped is None and self._pending is not None:
                record, self._pending = self._pending, None
                self._judge(record)
            if self._stopped is None and self._dist:
                flags = torch.tensor([0, self._host_code], dtype=torch.int64, device=self._flag_device())
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                self._judge_remote(self.step_count, int(flags[1]))
            if self._stopped is not None:
                raise TrainingStopped(self.report())
        finally:
            for handle in self._hooks:
                handle.remove()
            self._hooks = []

    # -- the step ----------------------------------------------------------------------------------------------

    def step(self, loss: torch.Tensor, *, batch: Any = None, predictions: torch.Tensor | None = None,
             targets: torch.Tensor | None = None) -> None:
        """Replaces optimizer.step(): checks this step on device, applies the update unless the step is bad,
        and raises TrainingStopped as soon as a fail finding is known (at most one step late)."""
        if self._stopped is not None:
            raise self._stopped
        if self._pending is not None:
            record, self._pending = self._pending, None
            self._judge(record)
        self.step_count += 1
        probe = self.step_count % self.config.sample_every == 0
        if self.scaler is not None:
            self._unscale()
        with torch.no_grad():
            record, code, grads = self._measure(loss, batch)
            before = torch._foreach_mul(self._params, 1.0) if probe and self._params else None
            self._apply(code, grads)
            tail = self._probe(record, before, predictions, targets) if probe else []
        self._armed = (self.step_count + 1) % self.config.sample_every == 0
        self._finish(record, tail)
        if self._late:
            self._pending = record
        else:
            self._judge(record)

    def _unscale(self) -> None:
        """Unscale the gradients for the scaler, unless the user already did (to clip them)."""
        assert self.scaler is not None
        try:
            self.scaler.unscale_(self.optimizer)
        except RuntimeError as exc:
            if "already been called" not in str(exc):
                raise

    def _measure(self, loss: torch.Tensor, batch: Any) -> tuple[_Record, torch.Tensor, list[torch.Tensor]]:
        """This step's numbers on the device, and its verdict code (a device integer, all ranks agreeing):
        0 when good, else kind * (world + 1) + ..., kind 3 for a non-finite loss (see `_stop_non_finite`)."""
        index = [i for i, p in enumerate(self._params) if p.grad is not None]
        grads = [self._params[i].grad for i in index]
        value = torch.as_tensor(loss).detach().float().mean()
        dev = value.device
        if grads:
            norms = torch._foreach_norm([g._values() if g.is_sparse else g for g in grads], 2, dtype=torch.float64)
            per = torch.stack([n.to(dev) for n in norms])  # .to is a no-op unless the model spans devices
            total = torch.linalg.vector_norm(per)
        else:
            per = torch.zeros(0, dtype=torch.float64, device=dev)
            total = torch.zeros((), dtype=torch.float64, device=dev)
        loss_bad, grads_bad = ~torch.isfinite(value), ~torch.isfinite(total)
        # DDP averages gradients over ranks, so NaN gradients are everywhere: a rank whose own batch holds a
        # NaN/Inf outranks the others (one reduction over the batch's float tensors, under DDP only)
        own = self._batch_bad(batch, dev) if self._dist else torch.zeros((), dtype=torch.bool, device=dev)
        kind = torch.where(loss_bad, 3, torch.where(grads_bad, torch.where(own, 2, 1), 0)).to(torch.int64)
        # kind and the lowest bad rank in one integer: MAX keeps the worst kind, then the lowest rank
        code = kind * (self._world + 1) + (kind > 0) * (self._world - self._rank)
        flags = torch.stack([code, torch.full((), self._host_code, dtype=torch.int64, device=dev)])
        if self._dist:
            flags = flags.to(self._flag_device())
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            flags = flags.to(dev)
        packed = torch.cat([torch.stack([value.double(), total, kind.double()]), flags.double(), per])
        first = grads[0] if grads else None
        same = first is not None and self._prev_grad is not None and self._prev_grad() is first
        self._prev_grad = weakref.ref(first) if first is not None else None
        return _Record(self.step_count, packed, index, same, batch), flags[0], grads

    def _apply(self, code: torch.Tensor, grads: list[torch.Tensor]) -> None:
        """optimizer.step(), unless the step is bad — decided on the device where the optimizer allows it."""
        opt: Any = self.optimizer
        if self.scaler is not None:  # overflowing gradients are the scaler's to skip; a bad loss is ours
            loss_bad = code >= 3 * (self._world + 1)
            if loss_bad.device.type != "cpu":
                for g in grads:
                    g.masked_fill_(loss_bad, 0)
            if loss_bad.device.type != "cpu" or not bool(loss_bad):
                self.scaler.step(opt)
            self.scaler.update()
            return
        bad = code > 0
        if self._fused:
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

    def _probe(self, record: _Record, before: list[torch.Tensor] | None, predictions: torch.Tensor | None,
               targets: torch.Tensor | None) -> list[torch.Tensor]:
        """The sampled extras, on the device: weight norms, update norms, state finite, predictions, activations."""
        dev = record.packed.device
        tail: list[torch.Tensor] = []
        layout: dict[str, Any] = {}
        if self._params:
            assert before is not None
            tail += [self._norms(self._params).to(dev), self._norms(torch._foreach_sub(self._params, before)).to(dev)]
            layout["params"] = len(self._params)
        states = [t for s in self.optimizer.state.values() for t in s.values()  # not CPU step counters:
                  if isinstance(t, torch.Tensor) and t.is_floating_point() and t.device == dev]  # no copies
        ok = torch.isfinite(self._norms(states).sum()) if states else torch.ones((), dtype=torch.bool, device=dev)
        tail.append(ok.to(torch.float64).reshape(1))
        if predictions is not None and targets is not None and predictions.dim() >= 1 and len(predictions) >= 2:
            # spreads need neither float64 nor every column of a (batch × seq × vocab) logits tensor
            p = _columns(predictions.detach().float().reshape(len(predictions), -1))
            t = _columns(targets.detach().float().reshape(len(targets), -1))
            tail.append(torch.stack([p.std(0, correction=0).mean(), p.abs().mean(), t.std(0, correction=0).mean(),
                                     t.abs().mean()]).to(dev))
            layout["regression"] = targets.is_floating_point() and targets.numel() == predictions.numel()
        record.acts = [(key, kind, ptr) for key, (kind, _, ptr) in self._acts.items()]
        if self._acts:
            tail.append(torch.stack([share.to(dev, torch.float64) for _, share, _ in self._acts.values()]))
        layout["root_ptr"] = self._root_ptr
        record.probe = layout
        return tail

    def _finish(self, record: _Record, tail: list[torch.Tensor]) -> None:
        """Pack, start the copy to the host (pinned, non_blocking, event) and forget the activation samples."""
        packed = torch.cat([record.packed, *tail]) if tail else record.packed
        self._acts, self._root_ptr = {}, None
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

    # -- judging (on the host, one step late where that matters) -----------------------------------------------

    def _judge(self, record: _Record) -> None:
        vals = record.values()
        loss, total, local_kind, code, host_code = vals[:_BASE]
        scaler_skip = self.scaler is not None and 0 < code < 3 * (self._world + 1)
        self._skips = self._skips + 1 if scaler_skip else 0
        if code > 0 and (not scaler_skip or self._skips >= self.config.scaler_max_skips):
            self._stop_non_finite(record, int(local_kind), int(code), loss, total)
        self._judge_remote(record.step, int(host_code))
        if scaler_skip:
            return  # the scaler skipped the update: nothing happened that the other rules could judge
        per = torch.full((len(self._params),), math.nan, dtype=torch.float64)
        n = len(record.grad_index)
        if n:
            per[record.grad_index] = torch.tensor(vals[_BASE:_BASE + n], dtype=torch.float64)
        verdicts = self._loss.observe(record.step, loss) + self._grads.observe(record.step, total, per,
                                                                               record.same_grads)
        if record.probe is not None:
            verdicts += self._judge_probe(record, vals[_BASE + n:])
        self.last_good_step = record.step
        for v in verdicts:
            if v.severity == "warn" or (self._dist and v.code in _HOST_FAILS):
                self._add(v)
                if v.severity == "fail" and not self._host_code:  # agreed through the next all-reduce
                    self._host_code = (self._world - self._rank) * len(_HOST_FAILS) + _HOST_FAILS.index(v.code) + 1
            else:
                self._stop(v)

    def _judge_probe(self, record: _Record, vals: list[float]) -> list[Verdict]:
        probe, step, out = record.probe or {}, record.step, []
        k = probe.get("params", 0)
        weights, updates, state_ok, rest = vals[:k], vals[k:2 * k], vals[2 * k], vals[2 * k + 1:]
        bad = [self._names[i] for i, w in enumerate(weights) if not math.isfinite(w)]
        if bad or not state_ok:
            where = "weights" if bad else "optimizer state"
            out.append(Verdict("training.non_finite_weights", "fail", f"NaN/Inf in the {where} after step {step}"
                               + (f": {', '.join(bad[:5])}" if bad else ""), len(bad), 0,
                               {"step": step, "where": where, "parameters": bad[:20]}))
            return out
        if k:
            ratio = math.sqrt(sum(u * u for u in updates)) / max(math.sqrt(sum(w * w for w in weights)), 1e-30)
            per_layer = {self._names[i]: u / max(w, 1e-30) for i, (u, w) in enumerate(zip(updates, weights,
                                                                                             strict=True))}
            out += self._probes.update_ratio(step, ratio, per_layer)
        if step >= self.config.frozen_after and not self._frozen_checked:
            self._frozen_checked = True
            self._frozen = [self._names[i] for i, (w, b) in enumerate(zip(weights, self._baseline, strict=True))
                            if w == b]
            if self._frozen:
                out.append(Verdict("training.frozen_parameters", "warn", f"{len(self._frozen)} trainable "
                                   f"parameter(s) have not changed in {step} steps: {', '.join(self._frozen[:5])}",
                                   len(self._frozen), 0, {"step": step, "parameters": self._frozen[:20]}))
        if "regression" in probe:
            spread, scale, t_spread, t_scale = rest[:4]
            rest = rest[4:]
            self._last_pred = (spread, t_spread)
            out += self._probes.predictions(step, spread, scale, t_spread, t_scale, probe["regression"])
        fractions = {key: (kind, share) for (key, kind, ptr), share in zip(record.acts, rest, strict=True)
                     if ptr != probe.get("root_ptr")}  # the model's own output layer may saturate: it is exempt
        return out + self._probes.activations(step, fractions)

    def _judge_remote(self, step: int, host_code: int) -> None:
        """Under torch.distributed: stop if some rank found a host-side fail (the lowest such rank names it)."""
        if host_code <= 0:
            return
        rank, idx = self._world - (host_code - 1) // len(_HOST_FAILS), (host_code - 1) % len(_HOST_FAILS)
        code = _HOST_FAILS[idx]
        mine = self._findings.get(code)
        if mine is not None and rank == self._rank:
            self._stop(Verdict(code, "fail", mine.message, mine.value, mine.threshold, mine.evidence))
        self._stop(Verdict(code, "fail", f"rank {rank} stopped training at step {step}: {code}", None, None,
                           {"step": step, "reported_by_rank": rank}), rank=rank)

    def _stop_non_finite(self, record: _Record, local_kind: int, code: int, loss: float, total: float) -> None:
        kind, rank = code // (self._world + 1), self._world - code % (self._world + 1)
        weights_ok = all(bool(torch.isfinite(p).all()) for p in self._params)  # rare path: a sync is fine
        fault = sample = None
        if self.config.locate and self.compute_loss is not None and record.batch is not None and local_kind:
            from mlguard_orchestration.training.locate import locate_non_finite

            fault, sample = locate_non_finite(self._inner, self.compute_loss, record.batch,
                                              artifact_dir=self.config.artifact_dir, max_samples=50)
        what = "loss" if kind == 3 else "gradients"
        where = f" on rank {rank}" if self._dist else ""
        ev: dict[str, Any] = {"step": record.step, "loss": _num(loss), "grad_norm": _num(total),
                              "update_skipped": True, "last_good_step": self.last_good_step}
        if self._skips:
            ev["scaler_skips_in_a_row"] = self._skips
        if fault is not None:
            ev["module"] = f"{fault.name} ({fault.type}, {fault.phase})"
        if sample is not None:
            ev["samples"] = sample.indices[:20]
        code_ = _NON_FINITE[kind]
        if (fault is not None and fault.phase == "forward" and not fault.name.startswith("<")
                and not (sample is not None and sample.input_non_finite)):
            code_, what = "training.non_finite_activations", f"activations of {fault.name!r}"  # from finite inputs
        verdict = Verdict(code_, "fail", f"the {what} became non-finite at step {record.step}{where}"
                          + (f", first in module {fault.name!r}" if fault is not None else ""), _num(loss), None, ev)
        self._stop(verdict, rank=rank, loss_finite=kind != 3, grads_finite=math.isfinite(total),
                   weights_finite=weights_ok, module_fault=fault, sample_fault=sample)

    def _stop(self, v: Verdict, rank: int | None = None, **evidence: Any) -> None:
        finding = self._finding(v, rank=rank, **evidence)
        self._findings = {v.code: finding, **{c: f for c, f in self._findings.items() if c != v.code}}
        self._stopped = TrainingStopped(self.report())
        raise self._stopped

    def _add(self, v: Verdict) -> None:
        if v.code not in self._findings:
            self._findings[v.code] = self._finding(v)

    def _finding(self, v: Verdict, rank: int | None = None, **evidence: Any) -> Finding:
        from mlguard_orchestration.training.causes import rank_causes

        rank = self._rank if rank is None else rank
        step = int(v.evidence.get("step", self.step_count))
        ev = self._evidence(step, rank, **evidence)
        extra = {"rank": rank} if self._dist else {}
        return Finding(code=v.code, check=f"training_guard({self.name})", severity=v.severity, message=v.message,
                       value=v.value, threshold=v.threshold, evidence={**v.evidence, **extra},
                       causes=rank_causes(v.code, ev))

    def _evidence(self, step: int, rank: int, **extra: Any) -> TrainingEvidence:
        lr = self.optimizer.param_groups[0].get("lr") if self.optimizer.param_groups else None
        return TrainingEvidence(
            step=step, rank=rank if self._dist else None, loss_history=list(self._loss.history),
            grad_norm_history=list(self._grads.history), update_ratio_history=list(self._probes.update_ratios),
            learning_rate=float(lr) if lr is not None else None,
            param_dtype=str(self._params[0].dtype).removeprefix("torch.") if self._params else "float32",
            autocast_dtype=self._autocast, grad_scaler=self.scaler is not None,
            frozen_parameters=self._frozen, not_in_optimizer=self._not_in_optimizer,
            baseline_loss=self.config.baseline_loss,
            prediction_std=self._last_pred[0] if self._last_pred else None,
            target_std=self._last_pred[1] if self._last_pred else None, **extra)

    # -- validation and the report -----------------------------------------------------------------------------

    def validation(self, train_metric: float, val_metric: float, *, higher_is_better: bool = False) -> None:
        """Record one evaluation; a train/validation gap that keeps widening is reported (warn)."""
        sign = -1.0 if higher_is_better else 1.0
        for v in self._overfit.observe(sign * float(train_metric), sign * float(val_metric)):
            self._add(v)

    def report(self) -> Report:
        """Status pass/warn/fail, findings with training.* codes, causes ranked."""
        findings = list(self._findings.values())
        return Report(guard=self.name, status=Report.status_of(findings), started_at=self._started,
                      duration_s=time.monotonic() - self._t0, checks_run=self.step_count, findings=findings,
                      context=self.context)

    # -- helpers -----------------------------------------------------------------------------------------------

    def _register_hooks(self) -> list[Any]:
        hooks = [self._inner.register_forward_hook(self._root_hook)]
        for name, module in self._inner.named_modules():
            kind = "dead" if isinstance(module, _DEAD) else "saturated" if isinstance(module, _SATURATING) else None
            if kind is not None:
                hooks.append(module.register_forward_hook(self._activation_hook(name or "<root>", kind)))
        return hooks

    def _sampling(self, module: nn.Module, output: Any) -> bool:
        return self._armed and module.training and torch.is_grad_enabled() and isinstance(output, torch.Tensor) \
            and output.dim() >= 1

    def _root_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            dev = self._device.type
            self._autocast = (str(torch.get_autocast_dtype(dev)).removeprefix("torch.")
                              if torch.is_autocast_enabled(dev) else None)
        if self._sampling(module, output):
            self._root_ptr = output.data_ptr()

    def _activation_hook(self, name: str, kind: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._sampling(module, output):
                return
            calls = sum(1 for k in self._acts if k == name or k.startswith(f"{name}[call "))
            key = name if not calls else f"{name}[call {calls + 1}]"  # a module used twice is two layers
            o = output.detach()
            if kind == "dead":  # units: channels of conv maps, else the last dimension
                dim = 1 if o.dim() in (4, 5) else -1
                share = o.movedim(dim, -1).reshape(-1, o.shape[dim]).gt(0).any(0).logical_not().float().mean()
            elif isinstance(module, nn.Sigmoid):
                share = ((o < 0.01) | (o > 0.99)).float().mean()
            else:
                share = (o.abs() > 0.98).float().mean()
            self._acts[key] = (kind, share, o.data_ptr())
        return hook

    @staticmethod
    def _batch_bad(batch: Any, dev: torch.device) -> torch.Tensor:
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

    def _flag_device(self) -> torch.device:
        backend = torch.distributed.get_backend()
        return self._device if backend != "gloo" else torch.device("cpu")

    @staticmethod
    def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
        """Per-tensor L2 norms in float64 (fingerprints exact enough to see any change; no half overflow)."""
        norms = torch._foreach_norm([t.detach() for t in tensors], 2, dtype=torch.float64)
        return torch.stack([n.to(norms[0].device) for n in norms])


def _is_ddp(model: nn.Module) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel)


def _num(x: float) -> float | str:
    """A float for the report: NaN/Inf as text, since JSON has no spelling for them."""
    return x if math.isfinite(x) else str(x)


def _columns(x: torch.Tensor, limit: int = 4096) -> torch.Tensor:
    """At most `limit` evenly strided columns: enough to measure a spread, cheap for wide outputs."""
    return x if x.shape[1] <= limit else x[:, :: -(-x.shape[1] // limit)]
