"""Preflight items about fitting: the model can memorise a handful of samples, and the learning-rate schedule
keeps a usable learning rate over the planned steps.

`overfit_batch` is optimizer-aware: a slow optimizer (plain SGD at lr 1e-3) is not a broken pipeline. When the
caller's optimizer does not memorise the samples within `overfit_steps`, a reference optimizer (Adam, lr 1e-2)
tries the same samples from the same initial weights: if it succeeds, the model and data are fine and the slow
fit is a note (a warn when the caller's optimizer made the loss worse); only an optimizer that cannot move the
weights at all, or a model that even the reference cannot fit, fails."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.checklist._common import (
    OVERFIT_LR,
    Batch,
    Mode,
    Record,
    Setup,
    Skip,
    names,
    reference_optimizer,
)

OVERFIT_SAMPLES = 16  # rows of the first batch the model must memorise
OVERFIT_TARGET = 0.1  # the loss must fall to this fraction of its start (regression: of the mean predictor's)
LR_ZERO = 1e-6  # a learning rate below this share of the schedule's peak is 0 for training
LR_ZERO_SHARE = 0.1  # ... and fails when it stays there for more than this share of the planned steps
LR_EXPLODE = 10.0  # a learning rate above this multiple of the optimizer's base (or max) lr is exploding


@dataclass
class _Fit:
    model: nn.Module
    optimizer: str
    lr: Any
    first: float = math.nan
    last: float = math.nan
    accuracy: float | None = None
    steps: int = 0
    reached: bool = False
    moved: bool = True
    missing: list[str] = field(default_factory=list)
    baseline: float | None = None


def overfit_batch(s: Setup, r: Record, *, on_device: Batch, mode: Mode, differentiable: bool,
                  initial_loss: float | None = None) -> dict[str, Any]:
    """The model can memorise OVERFIT_SAMPLES samples of the first batch (see the module docstring)."""
    if not differentiable:
        raise Skip("the loss is not differentiable (see preflight.gradient_flow)")
    if initial_loss is not None and not math.isfinite(initial_loss):
        raise Skip("the initial loss is not finite (see preflight.initial_loss)")
    rows = _overfit_rows(on_device.y, mode)
    x, y = on_device.x[rows], on_device.y[rows]
    run = _fit(s, x, y, mode, s.optimizer)
    r.note(_summary(run, len(rows)))
    if run.reached:
        return {"trained": run.model}
    ref = None
    if s.make_optimizer is not None and run.moved and not run.missing:
        ref = _fit(s, x, y, mode, reference_optimizer)
        r.note(_summary(ref, len(rows)) + " (reference optimizer)")
        if ref.reached:
            _slow_optimizer(r, run, ref, len(rows))
            return {"trained": ref.model}
    _cannot_fit(s, r, run, ref, x, y, mode, len(rows))
    return {"trained": run.model}


def _fit(s: Setup, x: Tensor, y: Tensor, mode: Mode, make: Callable[[nn.Module], Optimizer]) -> _Fit:
    model = s.fresh_model()
    opt = make(model)
    model.train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    before = [p.detach().clone() for _, p in trainable]
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    run = _Fit(model, type(opt).__name__, opt.param_groups[0].get("lr"),
               missing=[n for n, p in trainable if id(p) not in in_opt])
    if mode == "regression":
        with torch.no_grad():
            out0 = model(x)
        run.baseline = float(s.loss_fn(torch.full_like(out0, float(y.float().mean())), y))
    for step in range(s.overfit_steps):
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = s.loss_fn(out, y)
        run.last = float(loss.detach())
        run.first = run.last if step == 0 else run.first
        run.accuracy = _accuracy(out.detach(), y, mode)
        run.steps = step + 1
        if _fitted(run, mode):
            run.reached = True
            break
        loss.backward()
        opt.step()
    run.moved = any(not torch.equal(p.detach(), b) for (_, p), b in zip(trainable, before, strict=True))
    return run


def _summary(run: _Fit, n: int) -> str:
    return (f"overfit {n} samples with {run.optimizer} (lr {run.lr}): loss {run.first:.4g} → {run.last:.4g} in "
            f"{run.steps} steps" + (f", accuracy {run.accuracy:.0%}" if run.accuracy is not None else ""))


def _slow_optimizer(r: Record, run: _Fit, ref: _Fit, n: int) -> None:
    """The reference memorised the samples: the caller's optimizer is slow (a note) or makes things worse (warn)."""
    worse = not math.isfinite(run.last) or run.last > run.first
    if not worse:
        r.note(f"overfit_batch: {run.optimizer} (lr {run.lr}) did not memorise {n} samples in {run.steps} steps "
               f"(loss {run.first:.4g} → {run.last:.4g}, still falling), while Adam (lr {OVERFIT_LR:g}) did in "
               f"{ref.steps}: the model and data can be fit; the optimizer is slower than this check's budget")
        return
    r.add("overfit_batch", f"With {run.optimizer} (lr {run.lr}) the loss on {n} samples of one batch went from "
          f"{run.first:.4g} to {run.last:.4g} in {run.steps} steps, while Adam (lr {OVERFIT_LR:g}) memorised them in "
          f"{ref.steps} steps. Expected the loss to fall: the model and data can be fit, so the optimizer's settings "
          "(most likely a learning rate too high) make it worse. Lower the learning rate or add warm-up.",
          severity="warn", value=run.last, threshold=run.first,
          evidence={"steps": run.steps, "first_loss": run.first, "last_loss": run.last, "optimizer": run.optimizer,
                    "lr": run.lr, "reference_steps": ref.steps},
          causes=[cause("cause.learning_rate_too_high", f"the loss rose from {run.first:.3g} to {run.last:.3g} on 16 "
                        f"samples with lr {run.lr}", 0.7)])


def _cannot_fit(s: Setup, r: Record, run: _Fit, ref: _Fit | None, x: Tensor, y: Tensor, mode: Mode, n: int) -> None:
    target = (f"below {OVERFIT_TARGET:g}× the loss of predicting the mean ({run.baseline:.4g})" if run.baseline
              else f"below {OVERFIT_TARGET:g}× its start" + (" with 100% accuracy" if mode == "index" else ""))
    ev: dict[str, Any] = {"samples": n, "steps": run.steps, "first_loss": run.first, "last_loss": run.last,
                          "accuracy": run.accuracy, "mean_predictor_loss": run.baseline, "optimizer": run.optimizer,
                          "lr": run.lr}
    reasons: list[str] = []
    causes: list[Cause] = []
    with torch.no_grad():
        out = run.model(x).detach()
    spread = float((out - out.mean(dim=0, keepdim=True)).abs().max()) if out.shape[0] > 1 else math.nan
    ev["output_spread_across_samples"] = spread
    if spread <= 1e-6 * (1.0 + float(out.abs().max())):
        reasons.append("the output is the same for every sample: forward ignores its input (a constant, a detached "
                       "path, or an input overwritten before use)")
    if not run.moved:
        reasons.append("no parameter changed: the learning rate is 0 or the optimizer holds none of them")
    if run.missing:
        ev["not_in_optimizer"] = run.missing[:50]
        reasons.append(f"{len(run.missing)} trainable parameters are not in the optimizer ({names(run.missing)})")
        causes.append(cause("cause.params_not_in_optimizer", f"{len(run.missing)} parameters missing from the "
                            "optimizer", 0.7, {"parameters": run.missing[:20]}))
    conflicts = _conflicting_targets(x, y)
    if conflicts:
        ev["conflicting_rows"] = conflicts[:20]
        reasons.append(f"{len(conflicts)} pairs of identical inputs carry different targets, so no model can fit them")
        causes.append(cause("cause.label_misalignment", "identical inputs have different targets in one batch", 0.7,
                            {"row_pairs": conflicts[:10]}))
    if r.failed("initial_loss"):
        reasons.append("the implausible initial loss (preflight.initial_loss): the model starts too far from the "
                       "targets to get there in this many steps")
    if ref is not None:
        ev["reference"] = {"optimizer": ref.optimizer, "lr": ref.lr, "last_loss": ref.last, "steps": ref.steps}
        reasons.append(f"Adam (lr {OVERFIT_LR:g}) could not either (loss {ref.first:.4g} → {ref.last:.4g})")
    why = (" Likely: " + "; ".join(reasons) + ".") if reasons else (
        " Check that the loss fits the output (logits vs probabilities), that targets belong to their inputs, and that "
        "the model has enough capacity and a working learning rate.")
    r.add("overfit_batch", f"The model could not memorise {n} samples of one batch: in {run.steps} steps of "
          f"{run.optimizer} (lr {run.lr}) the loss went from {run.first:.4g} to {run.last:.4g}"
          + (f" ({run.last / run.first:.0%} of its start)" if run.first else "")
          + (f", accuracy {run.accuracy:.0%}" if run.accuracy is not None else "")
          + f". Expected {target}: any working model and pipeline can overfit a handful of samples.{why}",
          value=round(run.last / run.first, 4) if run.first else None, threshold=OVERFIT_TARGET, evidence=ev,
          causes=causes)


def _fitted(run: _Fit, mode: Mode) -> bool:
    if not math.isfinite(run.last):
        return False
    if run.last <= 1e-4:
        return True
    if mode == "regression" and run.baseline is not None and run.baseline > 0:
        return run.last <= OVERFIT_TARGET * run.baseline
    return run.last <= OVERFIT_TARGET * run.first and (run.accuracy is None or run.accuracy == 1.0)


def _overfit_rows(y: Tensor, mode: Mode) -> list[int]:
    """Up to OVERFIT_SAMPLES rows; for class labels, taken round-robin over the classes present."""
    n = y.shape[0]
    if mode != "index" or y.ndim != 1:
        return list(range(min(n, OVERFIT_SAMPLES)))
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(y.tolist()):
        by_class.setdefault(int(label), []).append(i)
    rows: list[int] = []
    queues = list(by_class.values())
    while len(rows) < min(n, OVERFIT_SAMPLES):
        for q in queues:
            if q and len(rows) < OVERFIT_SAMPLES:
                rows.append(q.pop(0))
    return sorted(rows)


def _accuracy(out: Tensor, y: Tensor, mode: Mode) -> float | None:
    if mode == "index":
        mask = y != -100
        return float((out.argmax(dim=1) == y)[mask].float().mean()) if bool(mask.any()) else None
    return None


def _conflicting_targets(x: Tensor, y: Tensor) -> list[list[int]]:
    flat_x, flat_y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    return [[i, j] for i in range(x.shape[0]) for j in range(i + 1, x.shape[0])
            if torch.equal(flat_x[i], flat_x[j]) and not torch.equal(flat_y[i], flat_y[j])]


# -- the learning-rate schedule ---------------------------------------------------------------------------------


def lr_schedule(s: Setup, r: Record, *, model: nn.Module) -> dict[str, Any]:
    """Step the caller's scheduler over the planned steps (no optimizer step, so no weight changes) and fail when the
    learning rate reaches 0 long before the end, grows far above its base, or the scheduler raises."""
    if s.make_scheduler is None:
        raise Skip("no make_scheduler given")
    steps = s.planned_steps or (len(s.loader) if isinstance(s.loader, Sized) else None)
    if not steps:
        raise Skip("planned_steps is not given and the loader has no length")
    opt = s.optimizer(model)
    sched = s.make_scheduler(opt)
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise Skip("ReduceLROnPlateau follows the validation loss: nothing to preview")
    base = max(max(float(g.get("initial_lr", g["lr"])), _number(g.get("max_lr"))) for g in opt.param_groups)
    lrs: list[float] = []
    raised: tuple[int, BaseException] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": deliberate here
        for i in range(steps):
            lrs.append(max(float(g["lr"]) for g in opt.param_groups))
            if not math.isfinite(lrs[-1]):
                break
            try:
                sched.step()
            except Exception as exc:  # noqa: BLE001 - a scheduler that raises mid-run is the finding
                raised = (i + 1, exc)
                break
    base = max(base, lrs[0]) if lrs else base
    peak = max(lrs, default=0.0)
    where = "" if s.planned_steps else " (planned_steps not given: one pass over the loader)"
    r.note(f"lr schedule over {steps} steps{where}: {lrs[0]:.3g} at step 0, peak {peak:.3g} at step "
           f"{lrs.index(peak)}, {lrs[-1]:.3g} at step {len(lrs) - 1}" if lrs else "lr schedule: no step")
    ev: dict[str, Any] = {"planned_steps": steps, "base_lr": base, "peak_lr": peak, "scheduler": type(sched).__name__,
                          "lr_by_step": _thin(lrs)}
    kind = type(sched).__name__
    if raised is not None:
        r.add("lr_schedule", f"{kind}.step() raised {type(raised[1]).__name__}: {raised[1]} at step {raised[0]} of "
              f"{steps} planned. Expected the schedule to last the whole run: size it for the planned steps (e.g. "
              "OneCycleLR's total_steps = epochs × steps per epoch).", evidence={**ev, "raised_at_step": raised[0]})
        return {}
    bad = next((i for i, lr in enumerate(lrs) if not math.isfinite(lr) or lr > LR_EXPLODE * base), None)
    if bad is not None:
        r.add("lr_schedule", f"The learning rate of {kind} reaches {lrs[bad]:.3g} at step {bad} of {steps}, more than "
              f"{LR_EXPLODE:g}× the optimizer's base/max learning rate {base:.3g}. Expected a schedule that stays at or "
              "below its base: check the schedule's factor (a lambda returning the step instead of a fraction, a "
              "gamma above 1).", value=lrs[bad], threshold=LR_EXPLODE * base, evidence={**ev, "step": bad},
              causes=[cause("cause.learning_rate_too_high", f"the schedule takes the learning rate to {lrs[bad]:.3g} "
                            f"at step {bad}", 0.8, {"step": bad, "lr": lrs[bad]})])
        return {}
    zero = _zero_from(lrs, peak)
    if zero is not None and steps - zero > max(1, LR_ZERO_SHARE * steps):
        r.add("lr_schedule", f"The learning rate of {kind} reaches 0 at step {zero} of {steps} planned and stays there: "
              f"the last {steps - zero} steps ({(steps - zero) / steps:.0%}) would learn nothing. Expected the schedule "
              "to end with the run: size it for the planned steps (e.g. T_max, total_iters, or the step counts of a "
              "warm-up/decay), or step it once per epoch if it counts epochs.", value=zero, threshold=steps,
              evidence={**ev, "zero_from_step": zero},
              causes=[cause("cause.zero_learning_rate", f"the schedule reaches 0 at step {zero} of {steps}", 0.85,
                            {"zero_from_step": zero, "planned_steps": steps})])
    return {}


def _zero_from(lrs: list[float], peak: float) -> int | None:
    """The first step from which the learning rate stays at 0 (below LR_ZERO × the peak) to the end."""
    limit = LR_ZERO * peak
    first = None
    for i in range(len(lrs) - 1, -1, -1):
        if lrs[i] > limit:
            break
        first = i
    return first


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) else 0.0


def _thin(values: list[float], k: int = 20) -> list[list[float]]:
    """At most k (step, value) pairs, evenly spread, the last included."""
    if not values:
        return []
    idx = sorted({round(i * (len(values) - 1) / (k - 1)) for i in range(k)}) if len(values) > k else range(len(values))
    return [[i, values[i]] for i in idx]
