"""Causes read from how training moved: a learning rate too high, one that reached 0, gradients zeroed before the
step, gradients never reset."""

from __future__ import annotations

import math
import statistics

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.causes._common import (
    GRAD_WEIGHT_HIGH,
    GROWTH_STRONG,
    GROWTH_WEAK,
    NON_FINITE,
    RECENT,
    UPDATE_RATIO_EXTREME,
    UPDATE_RATIO_HIGH,
    finite,
    fit,
    flat,
    loss_spike,
    recent_growth,
)
from mlguard_orchestration.training.evidence import TrainingEvidence


def learning_rate_too_high(ev: TrainingEvidence, code: str) -> Cause | None:
    grads, losses, ratios = finite(ev.grad_norm_history), finite(ev.loss_history), finite(ev.update_ratio_history)
    score, parts = 0.0, []
    data: dict[str, float | None] = {}
    growth = recent_growth(grads)
    if growth is not None and growth[0] >= GROWTH_WEAK:
        g, base, peak = growth
        score = 0.55 + 0.15 * min(2.0, math.log10(g / GROWTH_STRONG)) if g >= GROWTH_STRONG else 0.3
        parts.append(f"the gradient norm rose ×{g:.3g} over the last {min(RECENT, len(grads) - 1)} steps "
                     f"({base:.3g} → {peak:.3g})")
        data.update(grad_norm_growth=round(g, 3), grad_norm_before=base, grad_norm_peak=peak)
    spike = loss_spike(losses)
    if spike is not None:
        score = score + 0.15 if score else 0.4
        parts.append(f"the loss jumped from {spike[0]:.3g} to {spike[1]:.3g}")
        data.update(loss_before=spike[0], loss_peak=spike[1])
    jump = _lr_jump(ev.learning_rates)
    if jump is not None:
        score = max(score, 0.8)
        parts.append(f"the learning rate jumped from {jump[0]:.3g} to {jump[1]:.3g}")
        data.update(learning_rate_before=jump[0], learning_rate_after=jump[1])
    recent_ratio = max(ratios[-RECENT:], default=0.0)
    if recent_ratio >= UPDATE_RATIO_EXTREME:
        # an update as large as the weights: the step size, unless the gradient itself is out of all proportion
        gradient = ev.grad_weight_ratio is not None and ev.grad_weight_ratio > GRAD_WEIGHT_HIGH
        score = max(score, 0.5 if gradient else 0.85)
        parts.append(f"one update was {recent_ratio:.3g}× the size of the weights (≈1e-3 is usual)"
                     + (f", from a gradient {ev.grad_weight_ratio:.3g}× the weights" if gradient else ""))
        data.update(update_ratio=recent_ratio, grad_weight_ratio=ev.grad_weight_ratio)
    elif recent_ratio >= UPDATE_RATIO_HIGH:
        strong = recent_ratio >= 10 * UPDATE_RATIO_HIGH
        score = score + (0.15 if strong else 0.1) if score else (0.4 if strong else 0.3)
        parts.append(f"updates reached {recent_ratio:.2g} of the weights' size (≈1e-3 is usual)")
        data["update_ratio"] = recent_ratio
    if not parts:
        return None
    lr = f"at learning rate {ev.learning_rate:g}, " if ev.learning_rate is not None else ""
    when = " before the values went non-finite" if code in NON_FINITE else ""
    data["learning_rate"] = ev.learning_rate
    return cause("cause.learning_rate_too_high", f"{lr}{' and '.join(parts)}{when}", min(score, 0.9), data)


def _lr_jump(lrs: list[float]) -> tuple[float, float] | None:
    """(the median before, the peak) when the last RECENT learning rates rose ≥ 10× above the earlier median."""
    if len(lrs) <= RECENT:
        return None
    before, peak = statistics.median(lrs[:-RECENT]), max(lrs[-RECENT:])
    return (before, peak) if before > 0 and peak >= GROWTH_STRONG * before else None


def zero_learning_rate(ev: TrainingEvidence, code: str) -> Cause | None:
    """Every group's learning rate is 0: the guard read it at each step (no guess)."""
    if ev.zero_updates != "learning_rate" and not (ev.learning_rate == 0.0 and code != "training.zero_updates"):
        return None
    lrs = ev.learning_rates
    last = max((i for i, lr in enumerate(lrs) if lr > 0), default=None)
    history = (f" (it was {lrs[last]:.3g} {len(lrs) - last - 1} steps earlier: a schedule that ends before the run "
               "does)") if last is not None else " (in every step the guard remembers)"
    return cause("cause.zero_learning_rate", f"the learning rate is 0 in every parameter group{history}", 0.9,
                 {"recent_learning_rates": lrs[-10:], "last_non_zero": lrs[last] if last is not None else None})


def gradients_zeroed(ev: TrainingEvidence, code: str) -> Cause | None:
    """All gradients exactly 0 with a non-zero loss and no layer known to block them: zeroed on the way to the
    optimizer."""
    if ev.zero_updates != "gradients" or ev.dead_layers:
        return None
    lr = f" at learning rate {ev.learning_rate:g}" if ev.learning_rate else ""
    return cause("cause.gradients_zeroed", f"every gradient reaching the optimizer is exactly 0 while the loss is "
                 f"not{lr}: they are clipped to 0 (clip_grad_norm_ with max_norm=0), multiplied by 0, or detached",
                 0.75, {"learning_rate": ev.learning_rate})


def missing_zero_grad(ev: TrainingEvidence, code: str) -> Cause | None:
    grads = finite(ev.grad_norm_history)
    if len(grads) < 5 or min(grads) <= 0:
        return None
    steps = [float(i) for i in range(len(grads))]
    slope, r2 = fit(steps, grads)
    _, r2_exp = fit(steps, [math.log(g) for g in grads])
    rise = slope * (len(grads) - 1)
    own = code == "training.missing_zero_grad"  # the guard saw the pattern: a looser fit still explains it
    if slope <= 0 or r2 < (0.6 if own else 0.9) or r2_exp > r2 + 0.02 or rise < 0.1 * statistics.fmean(grads):
        return None
    is_flat = flat(finite(ev.loss_history), tolerance=0.25)
    if not own and (is_flat is None or not is_flat[0]):
        return None  # for other findings, only the full pattern (linear gradients, flat loss) counts
    confidence = 0.3 + 0.5 * (r2 - 0.6) / 0.4 + (0.1 if is_flat and is_flat[0] else -0.1 if is_flat else 0.0)
    summary = (f"the gradient norm grew linearly with the step, {grads[0]:.3g} → {grads[-1]:.3g} over "
               f"{len(grads)} steps (R²={r2:.2f})")
    if is_flat is not None:
        summary += (f" while the loss stayed flat ({is_flat[1]:.3g} → {is_flat[2]:.3g})" if is_flat[0]
                    else f" while the loss moved {is_flat[1]:.3g} → {is_flat[2]:.3g}")
    return cause("cause.missing_zero_grad", summary + ": gradients accumulate across steps", min(confidence, 0.9),
                 {"grad_norm_first": grads[0], "grad_norm_last": grads[-1], "r2": round(r2, 3),
                  "slope_per_step": slope})
