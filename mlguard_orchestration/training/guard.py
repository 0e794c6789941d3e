"""`TrainingGuard`: replaces `optimizer.step()`, stops training at the bad step and leaves weights that work.

Why it costs (almost) nothing per step — the design, step by step:

1. On the device (measure.py): fused per-parameter gradient norms, their total and finiteness flags, packed with
   the loss into one small float64 tensor; under torch.distributed one int64 flag pair all-reduced so that every
   rank knows some rank went bad. The update is applied or skipped on the device (`found_inf` for fused
   optimizers, as GradScaler does), so a bad step never reaches the weights.
2. The packed tensor is copied to pinned host memory `non_blocking` and read ONE STEP LATE on accelerators (at the
   next `step()`, synchronising on the previous step's event only); on CPU it is read at once.
3. Probe steps — the first `watch_first` steps, then every `sample_every` — add forward-hook activation shares
   (naming the layer that feeds a dead ReLU), the update/weight ratio from one copy of the parameters, weight and
   optimizer-state finiteness, and target statistics from which the guard estimates the loss of the best constant
   prediction itself (constant_level.py). Rules relative to a rolling window need history; absolute rules (an
   update larger than the weights, updates exactly zero, a layer that passes nothing, gradients reaching
   parameters no optimizer holds) judge the first steps, so a fault present from initialisation stops at once.
4. Rolling snapshots of the weights every `snapshot_every` steps and on early warnings (snapshots.py). A stop
   restores the newest candidate whose forward pass on the recent batches is finite and the report names its step;
   an extreme update found by a probe is undone first. A repro artifact (dataset indices when the loader was
   tracked with `guard.track(loader)`, the samples, the weights' step) is written and its path reported.
5. Mixed precision: the autocast dtype is noted by a forward hook. With a `torch.amp.GradScaler` (`scaler=`) the
   guard unscales the gradients before measuring them and lets the scaler step and update: its overflow skips
   are counted, and `scaler_max_skips` in a row mean the gradients are non-finite at any scale (a fault).

A fail finding raises `TrainingStopped` at the step it becomes known — the bad step itself on CPU, the next one
otherwise; host-side fails under torch.distributed are agreed through the next step's all-reduce, so all ranks
stop together. The batch of a step is kept (a reference, no copy) until that step is judged, so a NaN can be
replayed by the locator with the pre-fault weights.

Size: a little over 400 lines, on purpose. `TrainingGuard` is one object whose methods share the step's state (the
pending record, the judges, the snapshots, the findings); what stands alone lives beside it — measure.py (the
device side), judges.py and sampled_judges.py (the rules), probes.py, snapshots.py, stopping.py (the stop path),
locate.py (the replay) — and splitting the class further would pass that state around instead."""

from __future__ import annotations

import fnmatch
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import torch
from torch import nn

from mlguard_orchestration.errors import GuardFailed
from mlguard_orchestration.report import Finding, Report
from mlguard_orchestration.training.causes import rank_causes
from mlguard_orchestration.training.config import GuardConfig
from mlguard_orchestration.training.constant_level import FORMS
from mlguard_orchestration.training.evidence import DeadLayer, ModuleFault, SampleFault, TrainingEvidence
from mlguard_orchestration.training.indices import IndexedLoader
from mlguard_orchestration.training.judges import AbsentJudge, GradJudge, LossJudge, StallJudge, Verdict
from mlguard_orchestration.training.locate import locate_non_finite
from mlguard_orchestration.training.measure import BASE, Record, StepMeter, norms
from mlguard_orchestration.training.probes import ActivationProbe, dead_layers
from mlguard_orchestration.training.sampled_judges import OverfitJudge, ProbeJudge
from mlguard_orchestration.training.snapshots import Restored, Snapshots
from mlguard_orchestration.training.stopping import (
    leave_working_weights,
    non_finite_verdict,
    write_stop_artifact,
)

# Host-side fail codes, numbered for the distributed agreement (never renumber within a run).
_HOST_FAILS = ("training.loss_spike", "training.exploding_gradients", "training.divergence",
               "training.missing_zero_grad", "training.prediction_explosion", "training.non_finite_weights",
               "training.dead_units", "training.loss_plateau", "training.update_ratio", "training.zero_updates",
               "training.parameters_not_in_optimizer")
# predictions vary (the model has moved away from a constant) when their spread across samples exceeds this share
# of the targets' spread, or this many logits (nats) for class scores: a spread that would show in the loss
VARIES = 0.03
_RECENT = 3  # batches a restored snapshot's forward pass is checked on (the failing one included)


class TrainingStopped(GuardFailed[Report]):
    """Training was stopped by a fail finding. `report` holds the diagnosis; the weights are the restored ones
    (the report's `weights_from_step` evidence says from which step)."""


class TrainingGuard:
    """Watches a PyTorch training loop; see the module docstring for how, and `GuardConfig` for the rules."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, config: GuardConfig | None = None,
                 compute_loss: Callable[[nn.Module, Any], torch.Tensor] | None = None, name: str = "training",
                 context: dict[str, str] | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config or GuardConfig()
        cfg = self.config
        # the scaler owns unscale/step/update; a disabled one (GradScaler(enabled=False)) is a no-op
        self.scaler = scaler if scaler is not None and scaler.is_enabled() else None
        self.compute_loss, self.name, self.context = compute_loss, name, dict(context or {})
        self.step_count = 0
        self.last_good_step: int | None = None
        self.restored: Restored | None = None  # what a stop restored
        self.artifact: str | None = None  # where a stop wrote its repro artifact
        self._inner: nn.Module = getattr(model, "module", model) if _is_ddp(model) else model
        named = [(n, p) for n, p in self._inner.named_parameters() if p.requires_grad]
        in_opt = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._names = [n for n, p in named if id(p) in in_opt]
        # typed as Tensors: torch's _foreach_* functions take list[Tensor], and lists are invariant
        self._params: list[torch.Tensor] = [p for n, p in named if id(p) in in_opt]
        frozen_ok = cfg.deliberately_frozen
        absent = [(n, p) for n, p in named if id(p) not in in_opt
                  and not any(fnmatch.fnmatchcase(n, pat) for pat in frozen_ok)]
        self._not_in_optimizer = [n for n, _ in absent]
        self._device = self._params[0].device if self._params else torch.device("cpu")
        self._meter = StepMeter(self._params, optimizer, self.scaler, self._device)
        self._meter.absent = [p for _, p in absent]
        self._dist, self._rank, self._world = self._meter.dist, self._meter.rank, self._meter.world
        self._late = cfg.evaluate_late if cfg.evaluate_late is not None else (
            self._device.type != "cpu" or self._dist)
        self._loss, self._stall = LossJudge(cfg), StallJudge(cfg)
        self._weights = [p.dim() >= 2 for p in self._params]
        self._grads = GradJudge(cfg, self._names, self._weights)
        self._probes, self._overfit = ProbeJudge(cfg), OverfitJudge(cfg)
        self._absent_judge = AbsentJudge(cfg, self._not_in_optimizer)
        self._baseline = norms(self._params).tolist() if self._params else []  # one sync, at construction
        self._frozen: list[str] = []
        self._frozen_checked = False
        self._dead: list[DeadLayer] = []
        self._last_ratios: tuple[float | None, float | None] = (None, None)  # (update, grad) / weight
        self._findings: dict[str, Finding] = {}
        self._notes: list[str] = []
        self._stopped: TrainingStopped | None = None
        self._pending: Record | None = None
        self._host_code = 0  # this rank's host-side fail, to share through the next all-reduce
        self._skips = 0  # consecutive steps the scaler skipped for overflowing gradients
        self._recent: deque[Any] = deque(maxlen=_RECENT)
        self._loader: IndexedLoader | None = None
        self._last_pred: tuple[float, float] | None = None
        self._started, self._t0 = datetime.now(UTC), time.monotonic()
        self._probe = ActivationProbe(self._inner, self._device)
        self._probe.armed = self._probed(1)
        self._snaps = Snapshots(self._inner, cfg.snapshots, cfg.snapshot_device)
        self._last_signal = -1

    # -- the context manager and the loader ---------------------------------------------------------------------

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
                flags = torch.tensor([0, self._host_code], dtype=torch.int64, device=self._meter.flag_device())
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                self._judge_remote(self.step_count, int(flags[1]))
            if self._stopped is not None:
                raise TrainingStopped(self.report())
        finally:
            self._probe.remove()

    def track(self, loader: Iterable[Any]) -> IndexedLoader:
        """`for batch in guard.track(loader):` — the same batches, and reports name their dataset indices."""
        self._loader = IndexedLoader(loader)
        return self._loader

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
        probe = self._probed(self.step_count)
        if self.scaler is not None:
            self._unscale()
        with torch.no_grad():
            record, code, grads = self._meter.measure(self.step_count, loss, batch, self._host_code)
            record.lr = self._lr()
            record.indices = self._loader.last if self._loader is not None else None
            before = torch._foreach_mul(self._params, 1.0) if probe and self._params else None
            self._meter.apply(code, grads)
            acts, root = self._probe.take() if probe else ([], None)
            tail = self._meter.tail(record, before, predictions, targets, acts, root) if probe else []
        record.before = before
        self._recent.append(batch)
        self._probe.armed = self._probed(self.step_count + 1)
        self._meter.finish(record, tail)
        if self._late:
            self._pending = record
        else:
            self._judge(record)

    def _probed(self, step: int) -> bool:
        return step <= self.config.watch_first or step % self.config.sample_every == 0

    def _unscale(self) -> None:
        """Unscale the gradients for the scaler, unless the user already did (to clip them)."""
        assert self.scaler is not None
        try:
            self.scaler.unscale_(self.optimizer)
        except RuntimeError as exc:
            if "already been called" not in str(exc):
                raise

    def _lr(self) -> float | None:
        """The largest learning rate over the groups, when reading it costs no device sync."""
        lrs = [v for g in self.optimizer.param_groups if (v := g.get("lr")) is not None]
        if not lrs or any(isinstance(v, torch.Tensor) and v.device.type != "cpu" for v in lrs):
            return None
        return max(float(v) for v in lrs)

    # -- judging (on the host, one step late where that matters) -----------------------------------------------

    def _judge(self, record: Record) -> None:
        vals = record.values()
        loss, total, local_kind, code, host_code, absent = vals[:BASE]
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
            per[record.grad_index] = torch.tensor(vals[BASE:BASE + n], dtype=torch.float64)
        spikes, bursts = len(self._loss.spikes.steps), len(self._grads.bursts.steps)
        verdicts = self._absent(record.step, absent)
        verdicts += self._loss.observe(record.step, loss) + self._grads.observe(record.step, total, per,
                                                                                record.same_grads)
        verdicts += self._stall.observe(record.step, record.lr, total, loss)
        if record.probe is not None:
            verdicts += self._judge_probe(record, vals[BASE + n:], per)
        self.last_good_step = record.step
        warned = False
        for v in verdicts:
            if v.severity == "warn" or (self._dist and v.code in _HOST_FAILS):
                warned = warned or v.code not in self._findings
                self._add(v)
                if v.severity == "fail" and not self._host_code:  # agreed through the next all-reduce
                    self._host_code = (self._world - self._rank) * len(_HOST_FAILS) + _HOST_FAILS.index(v.code) + 1
            else:
                self._stop(v, record=record)
        signal = warned or len(self._loss.spikes.steps) > spikes or len(self._grads.bursts.steps) > bursts \
            or (self._last_ratios[0] or 0.0) > self.config.update_ratio_high
        self._snapshot(record.step, signal)
        record.before = None

    def _snapshot(self, step: int, signal: bool) -> None:
        """Rolling snapshots; on an early warning pin the newest one taken before it, then snapshot now."""
        if signal:
            self._snaps.pin()
            self._last_signal = step
        if signal or step % self.config.snapshot_every == 0:
            self._snaps.take(step)

    def _absent(self, step: int, norm: float) -> list[Verdict]:
        """Parameters in no optimizer group; once judged, the meter stops measuring their gradients."""
        out = self._absent_judge.observe(step, norm)
        if not self._absent_judge.open:
            self._meter.absent = []
        return out

    def _judge_probe(self, record: Record, vals: list[float], per: torch.Tensor) -> list[Verdict]:
        probe, step, out = record.probe or {}, record.step, []
        early = step % self.config.sample_every != 0  # one of the first steps: absolute rules only
        k = probe.get("params", 0)
        weights, before, updates = vals[:k], vals[k:2 * k], vals[2 * k:3 * k]
        state_ok, rest = vals[3 * k], vals[3 * k + 1:]
        bad = [self._names[i] for i, w in enumerate(weights) if not math.isfinite(w)]
        if bad or not state_ok:
            where = "weights" if bad else "optimizer state"
            return [Verdict("training.non_finite_weights", "fail", f"NaN/Inf in the {where} after step {step}"
                            + (f": {', '.join(bad[:5])}" if bad else ""), len(bad), 0,
                            {"step": step, "where": where, "parameters": bad[:20]})]
        if k:
            out += self._update_ratio(step, weights, before, updates, per, early)
        if step >= self.config.frozen_after and not self._frozen_checked:
            self._frozen_checked = True
            self._frozen = [self._names[i] for i, (w, b) in enumerate(zip(weights, self._baseline, strict=True))
                            if w == b]
            if self._frozen:
                out.append(Verdict("training.frozen_parameters", "warn", f"{len(self._frozen)} trainable "
                                   f"parameter(s) have not changed in {step} steps: {', '.join(self._frozen[:5])}",
                                   len(self._frozen), 0, {"step": step, "parameters": self._frozen[:20]}))
        if probe.get("level"):
            level, form = rest[:2]
            rest = rest[2:]
            if math.isfinite(level):
                self._loss.level, self._loss.level_source = level, FORMS.get(int(form), "")
        preds = None
        if "regression" in probe:
            preds, rest = rest[:4], rest[4:]
        root = probe.get("root_ptr")
        fractions = {a.key: (a.kind, share) for a, share in zip(record.acts, rest, strict=True)
                     if not (a.kind == "saturated" and a.ptr == root)}  # the output layer may saturate by design
        producers = {a.key: a.producer for a in record.acts if a.producer}
        for v in self._probes.activations(step, fractions, producers, early):  # before predictions: a dead layer
            if v.code == "training.dead_units" and v.severity == "fail":  # explains their collapse
                self._dead = dead_layers(self._inner, record.acts, v.evidence.get("layers", {}))
                v.evidence["parameters"] = [d.parameter for d in self._dead if d.parameter]
            out.append(v)
        if preds is not None:
            spread, scale, t_spread, t_scale = preds
            self._loss.varies = spread > VARIES * (t_spread if probe["regression"] else 1.0)
        if preds is not None and not early:
            self._last_pred = (spread, t_spread)
            out += self._probes.predictions(step, spread, scale, t_spread, t_scale, probe["regression"])
        return out

    def _update_ratio(self, step: int, weights: list[float], before: list[float], updates: list[float],
                      per: torch.Tensor, early: bool) -> list[Verdict]:
        """Update and gradient norms over the weight matrices that were non-zero at the start (a zero-initialised
        layer's first update is infinitely large relative to it, by design)."""
        use = [i for i, w in enumerate(self._weights) if w and self._baseline[i] > 0 and before[i] > 0]
        w = math.sqrt(sum(before[i] ** 2 for i in use))
        if not use or w <= 0:
            return []
        ratio = math.sqrt(sum(updates[i] ** 2 for i in use)) / w
        g = [float(per[i]) for i in use if math.isfinite(float(per[i]))]
        grad_weight = math.sqrt(sum(v * v for v in g)) / w if g else None
        self._last_ratios = (ratio, grad_weight)
        per_layer = {self._names[i]: u / max(b, 1e-30) for i, (u, b) in enumerate(zip(updates, before, strict=True))}
        return self._probes.update_ratio(step, ratio, per_layer, grad_weight, early)

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

    # -- stopping ----------------------------------------------------------------------------------------------

    def _stop_non_finite(self, record: Record, local_kind: int, code: int, loss: float, total: float) -> None:
        kind, rank = code // (self._world + 1), self._world - code % (self._world + 1)
        weights_ok = all(bool(torch.isfinite(p).all()) for p in self._params)  # rare path: a sync is fine
        fault: ModuleFault | None = None
        sample: SampleFault | None = None
        if self.config.locate and self.compute_loss is not None and record.batch is not None and local_kind:
            fault, sample = locate_non_finite(self._inner, self.compute_loss, record.batch, max_samples=50)
        verdict = non_finite_verdict(record, kind, rank, loss, total, fault=fault, sample=sample,
                                     distributed=self._dist, last_good_step=self.last_good_step,
                                     scaler_skips=self._skips)
        self._stop(verdict, rank=rank, record=record, skipped=True, loss_finite=kind != 3,
                   grads_finite=math.isfinite(total), weights_finite=weights_ok, module_fault=fault,
                   sample_fault=sample)

    def _stop(self, v: Verdict, rank: int | None = None, record: Record | None = None, skipped: bool = False,
              **evidence: Any) -> None:
        """Leave weights that work, write the repro artifact, and raise TrainingStopped (stopping.py)."""
        step = int(v.evidence.get("step", self.step_count))
        sample: SampleFault | None = evidence.get("sample_fault")
        self.restored, note = leave_working_weights(v, record, step, skipped, sample, params=self._params,
                                                    model=self._inner, snaps=self._snaps, recent=self._recent,
                                                    compute_loss=self.compute_loss, forward=not self._dist)
        self._notes.append(note)
        if record is not None and self.restored is not None:
            self.artifact = write_stop_artifact(self.config.artifact_dir, self.name, v, record, step, sample,
                                                evidence.get("module_fault"), self.restored)
            if self.artifact is not None:
                self._notes.append(f"repro artifact (samples, dataset indices, weights' step): {self.artifact}")
                v.evidence["artifact"] = self.artifact
                if sample is not None:
                    sample.artifact = self.artifact
        finding = self._finding(v, rank=rank, **evidence)
        self._findings = {v.code: finding, **{c: f for c, f in self._findings.items() if c != v.code}}
        self._stopped = TrainingStopped(self.report())
        raise self._stopped

    def _add(self, v: Verdict) -> None:
        if v.code not in self._findings:
            self._findings[v.code] = self._finding(v)

    def _finding(self, v: Verdict, rank: int | None = None, **evidence: Any) -> Finding:
        rank = self._rank if rank is None else rank
        step = int(v.evidence.get("step", self.step_count))
        ev = self._evidence(step, rank, **evidence)
        extra = {"rank": rank} if self._dist else {}
        return Finding(code=v.code, check=f"training_guard({self.name})", severity=v.severity, message=v.message,
                       value=v.value, threshold=v.threshold, evidence={**v.evidence, **extra},
                       causes=rank_causes(v.code, ev))

    def _evidence(self, step: int, rank: int, **extra: Any) -> TrainingEvidence:
        lr = self._lr()
        stall = self._stall
        return TrainingEvidence(
            step=step, rank=rank if self._dist else None, loss_history=list(self._loss.history),
            grad_norm_history=list(self._grads.history), update_ratio_history=list(self._probes.update_ratios),
            learning_rate=lr, learning_rates=list(stall.lrs),
            param_dtype=str(self._params[0].dtype).removeprefix("torch.") if self._params else "float32",
            autocast_dtype=self._probe.autocast, grad_scaler=self.scaler is not None,
            frozen_parameters=self._frozen, not_in_optimizer=self._not_in_optimizer,
            constant_level=self._loss.level, constant_level_from=self._loss.level_source, dead_layers=self._dead,
            zero_updates=stall.because if stall.run >= 2 else None,
            update_ratio=self._last_ratios[0], grad_weight_ratio=self._last_ratios[1],
            prediction_std=self._last_pred[0] if self._last_pred else None,
            target_std=self._last_pred[1] if self._last_pred else None, **extra)

    # -- validation and the report -----------------------------------------------------------------------------

    def validation(self, train_metric: float, val_metric: float, *, higher_is_better: bool = False) -> None:
        """Record one evaluation; a train/validation gap that keeps widening is reported (warn)."""
        sign = -1.0 if higher_is_better else 1.0
        for v in self._overfit.observe(sign * float(train_metric), sign * float(val_metric)):
            self._add(v)

    def report(self) -> Report:
        """Status pass/warn/fail, findings with training.* codes, causes ranked; notes say which step the weights
        are from after a stop, and where the repro artifact is."""
        findings = list(self._findings.values())
        return Report(guard=self.name, status=Report.status_of(findings), started_at=self._started,
                      duration_s=time.monotonic() - self._t0, checks_run=self.step_count, findings=findings,
                      notes=list(self._notes), context=self.context)


def _is_ddp(model: nn.Module) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel)
