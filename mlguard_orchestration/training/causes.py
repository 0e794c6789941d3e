"""From a training finding and its evidence to ranked likely causes.

Each rule reads the TrainingEvidence and either returns a Cause — with a summary that names the numbers, modules
and samples it relied on, and a confidence that grows with the strength of that evidence — or nothing. A rule
only runs for findings it can explain (RULES); an unknown code, or evidence no rule fits, gives [].

Heuristics (histories are oldest first; NaN/Inf entries are ignored):
- learning_rate_too_high: the largest gradient norm of the last 3 steps over the median before them (×10 or more
  is strong, ×3 weak); a loss spike (the last 3 steps' peak 6 robust deviations and 1.5× above the earlier
  median); an update/weight ratio of 1e-2 or more (≈1e-3 is usual).
- unstable_loss: the producer is '<loss>', or a module that turned finite inputs into NaN/Inf, forward or
  backward; stronger when its name says log/exp/sqrt/div/pow… or its inputs reach 0 (log, sqrt, division) or
  exceed ~88 (exp overflows in float32, ~11 in float16); weaker when the inputs are near the dtype's maximum
  (an overflow, not an unstable formula).
- corrupt_input_sample: the named samples' inputs hold NaN/Inf (0.95), or only a few (≤ 10) samples reproduce.
- low_precision_overflow: float16/bfloat16 params or autocast, and a value within 4× of the dtype's maximum
  (65504 for float16) in the faulting module, or Inf (not NaN) out of it in that dtype from finite inputs
  (strong without a GradScaler); float16 without GradScaler alone is weak.
- bad_initialisation: the failure is at step ≤ 2 and the inputs are not to blame.
- missing_zero_grad: gradient norms fit a straight line in the step (R² ≥ 0.9 — 0.6 for the guard's own
  missing_zero_grad finding —, no better as an exponential, rising ≥ 10% of their mean over the window); for
  other findings only together with a flat loss (first and last thirds within 25%).
- params_not_in_optimizer: `not_in_optimizer` is non-empty; for frozen parameters, by their overlap with it.
- label_misalignment: prediction std ≤ 0.2 × target std, more so when the loss is flat and equals the
  predict-the-mean baseline (target variance: exact for MSE, an approximation otherwise).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from mlguard_orchestration.checks.base import cause
from mlguard_orchestration.report import Cause
from mlguard_orchestration.training.evidence import TensorStats, TrainingEvidence

RECENT = 3  # the "last few steps" compared with the window before them
GROWTH_STRONG, GROWTH_WEAK = 10.0, 3.0
SPIKE_Z, SPIKE_RATIO = 6.0, 1.5
UPDATE_RATIO_HIGH = 1e-2
FEW_SAMPLES = 10
EARLY_STEP = 2
DTYPE_MAX = {"float16": 65504.0, "bfloat16": 3.3895e38, "float32": 3.4028e38, "float64": 1.7977e308}
HALF = {"float16", "bfloat16"}
_ALIASES = {"half": "float16", "fp16": "float16", "bf16": "bfloat16", "float": "float32", "fp32": "float32",
            "double": "float64"}
_UNSTABLE_NAMES = ("log", "exp", "sqrt", "div", "pow", "reciprocal", "rsqrt", "softmax", "entropy", "norm",
                   "acos", "asin", "atanh", "tan", "logit")

NON_FINITE = ("training.non_finite_loss", "training.non_finite_gradients", "training.non_finite_weights",
              "training.non_finite_activations")


def _dtype(name: str | None) -> str | None:
    if not name:
        return None
    name = name.removeprefix("torch.").lower()
    return _ALIASES.get(name, name)


def _finite(xs: list[float]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(x)]


def _fmt_indices(indices: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return f"[{shown}{f', … +{len(indices) - limit} more' if len(indices) > limit else ''}]"


def _fmt_names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _recent_growth(values: list[float]) -> tuple[float, float, float] | None:
    """(peak of the last RECENT steps / median before them, that median, that peak)."""
    if len(values) < 2:
        return None
    k = min(RECENT, len(values) - 1)
    base, peak = statistics.median(values[:-k]), max(values[-k:])
    if base <= 0:
        return None
    return peak / base, base, peak


def _loss_spike(losses: list[float]) -> tuple[float, float] | None:
    """(earlier median, recent peak) when the last RECENT steps hold a robust spike."""
    if len(losses) < 4:
        return None
    k = min(RECENT, len(losses) - 3)
    early, peak = losses[:-k], max(losses[-k:])
    base = statistics.median(early)
    mad = statistics.median(abs(x - base) for x in early) * 1.4826
    z = (peak - base) / (mad + 0.01 * abs(base) + 1e-12)
    if z >= SPIKE_Z and (peak >= SPIKE_RATIO * base if base > 0 else peak - base > abs(base) * 0.5):
        return base, peak
    return None


def _flat(losses: list[float], tolerance: float = 0.1) -> tuple[bool, float, float] | None:
    """(is flat, median of the first third, median of the last third) of a loss history of at least 4."""
    if len(losses) < 4:
        return None
    third = max(1, len(losses) // 3)
    first, last = statistics.median(losses[:third]), statistics.median(losses[-third:])
    return abs(last - first) <= tolerance * max(abs(first), 1e-12), first, last


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope, R²) of the least-squares line."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx == 0 or syy == 0:
        return 0.0, 0.0
    return sxy / sxx, sxy * sxy / (sxx * syy)


def _range(stats: list[TensorStats]) -> tuple[float | None, float | None, float | None]:
    lows = [s.min for s in stats if s.min is not None]
    highs = [s.max for s in stats if s.max is not None]
    absmax = [s.abs_max for s in stats if s.abs_max is not None]
    return (min(lows) if lows else None, max(highs) if highs else None, max(absmax) if absmax else None)


def _bad_counts(stats: list[TensorStats]) -> str:
    nan, inf = sum(s.nan for s in stats), sum(s.inf for s in stats)
    return " and ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if p) or "NaN/Inf"


# -- rules ---------------------------------------------------------------------------------------------------

def learning_rate_too_high(ev: TrainingEvidence, code: str) -> Cause | None:
    grads, losses, ratios = (_finite(ev.grad_norm_history), _finite(ev.loss_history),
                             _finite(ev.update_ratio_history))
    score, parts, data = 0.0, [], {}
    growth = _recent_growth(grads)
    if growth is not None and growth[0] >= GROWTH_WEAK:
        g, base, peak = growth
        score = 0.55 + 0.15 * min(2.0, math.log10(g / GROWTH_STRONG)) if g >= GROWTH_STRONG else 0.3
        parts.append(f"the gradient norm rose ×{g:.3g} over the last {min(RECENT, len(grads) - 1)} steps "
                     f"({base:.3g} → {peak:.3g})")
        data.update(grad_norm_growth=round(g, 3), grad_norm_before=base, grad_norm_peak=peak)
    spike = _loss_spike(losses)
    if spike is not None:
        score = score + 0.15 if score else 0.4
        parts.append(f"the loss jumped from {spike[0]:.3g} to {spike[1]:.3g}")
        data.update(loss_before=spike[0], loss_peak=spike[1])
    recent_ratio = max(ratios[-RECENT:], default=0.0)
    if recent_ratio >= UPDATE_RATIO_HIGH:
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


def _unstable_hint(stats: list[TensorStats], type_name: str, dtype: str | None) -> tuple[str, bool]:
    """A phrase explaining why these inputs break the operation, and whether the stats support it."""
    lo, _, absmax = _range(stats)
    lowered = type_name.lower()
    exp_limit = 11.0 if dtype == "float16" else 88.0
    if lo is not None and (lo == 0.0 or (lo < 0 and any(k in lowered for k in ("log", "sqrt")))):
        return f"its input reaches {lo:g} (log, sqrt or division at 0 is infinite)", True
    if lo is not None and 0 < abs(lo) < 1e-30:
        return f"its input comes within {abs(lo):.1e} of 0", True
    if absmax is not None and absmax > exp_limit and "exp" in lowered:
        return f"its input reaches {absmax:.3g} (exp overflows above ~{exp_limit:g} in {dtype or 'float32'})", True
    return "", False


def unstable_operation(ev: TrainingEvidence, code: str) -> Cause | None:
    fault = ev.module_fault
    if fault is None or (ev.sample_fault is not None and ev.sample_fault.input_non_finite):
        return None
    if any(not s.finite for s in fault.inputs):
        return None  # it passed on a non-finite value, it did not produce it
    dtype = next((_dtype(s.dtype) for s in fault.inputs if s.dtype), None)
    hint, supported = _unstable_hint(fault.inputs, fault.type, dtype)
    named = any(k in fault.type.lower() or k in fault.name.lower() for k in _UNSTABLE_NAMES)
    _, _, absmax = _range(fault.inputs)
    near_max = absmax is not None and dtype in DTYPE_MAX and absmax >= DTYPE_MAX[dtype] / 4
    lo, hi, _ = _range(fault.inputs)
    span = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else "unknown"
    data = {"module": fault.name, "type": fault.type, "phase": fault.phase, "input_min": lo, "input_max": hi}
    what = f"the loss computation ({fault.type})" if fault.name == "<loss>" else \
        f"module '{fault.name}' ({fault.type})"
    if fault.phase == "backward":
        confidence = 0.75 if supported else 0.55
        summary = (f"the backward of {what} produced {_bad_counts(fault.outputs)} gradients from finite ones; "
                   f"its forward input spans {span}" + (f": {hint}" if hint else "")
                   + " — the derivative of sqrt/log/pow/division there is infinite")
    elif fault.name == "<loss>":
        confidence = 0.85 if supported else 0.75
        summary = (f"{what} turned finite model outputs (range {span}) into {_bad_counts(fault.outputs)}"
                   + (f": {hint.replace('its input', 'the model output')}" if hint else "")
                   + "; compute it from logits with a stable form (log_softmax, cross_entropy, BCEWithLogits)")
    else:
        confidence = 0.75 if supported else (0.6 if named else 0.5)
        summary = f"{what} produced {_bad_counts(fault.outputs)} from finite inputs (range {span})" + \
            (f": {hint}" if hint else "")
    if near_max and not supported:
        confidence = 0.35  # magnitudes at the dtype's limit: an overflow more than an unstable formula
    elif named and not supported and fault.name != "<loss>":
        confidence += 0.05
    return cause("cause.unstable_loss", summary, confidence, data)


def corrupt_input_sample(ev: TrainingEvidence, code: str) -> Cause | None:
    sample = ev.sample_fault
    if sample is None or not (sample.indices or sample.input_non_finite):
        return None
    saved = f"; saved to {sample.artifact}" if sample.artifact else ""
    data = {"indices": sample.indices[:50], "method": sample.method, "artifact": sample.artifact}
    which = f"sample{'s' if len(sample.indices) != 1 else ''} {_fmt_indices(sample.indices)}" \
        if sample.indices else "samples"
    if sample.input_non_finite:
        return cause("cause.corrupt_input_sample", f"{which} of the batch hold NaN/Inf in their inputs{saved}",
                     0.95, data)
    k = len(sample.indices)
    if k > FEW_SAMPLES:
        return None  # many samples fail: a model-wide problem, not a few bad rows
    return cause("cause.corrupt_input_sample",
                 f"only {which} of the batch reproduce the failure ({sample.method}): look for extreme values or "
                 f"invalid labels in them{saved}", 0.6 - 0.03 * (k - 1), data)


def low_precision_overflow(ev: TrainingEvidence, code: str) -> Cause | None:
    autocast, params = _dtype(ev.autocast_dtype), _dtype(ev.param_dtype)
    dtype = autocast if autocast in HALF else params if params in HALF else None
    if dtype is None:
        return None
    fmax = DTYPE_MAX[dtype]
    fault = ev.module_fault
    stats = [*fault.inputs, *fault.outputs] if fault is not None else []
    half_stats = [s for s in stats if _dtype(s.dtype) in HALF] or stats
    _, _, peak = _range(half_stats)
    overflowed = any(s.inf and not s.nan for s in fault.outputs if _dtype(s.dtype) == dtype) if fault else False
    mode = f"autocast to {dtype}" if autocast in HALF else f"{dtype} parameters"
    scaler = "with a GradScaler" if ev.grad_scaler else "without a GradScaler"
    data = {"dtype": dtype, "dtype_max": fmax, "abs_max": peak, "grad_scaler": ev.grad_scaler,
            "module": fault.name if fault else None}
    if overflowed or (peak is not None and peak >= fmax / 4):
        where = f"module '{fault.name}' ({fault.type})" if fault else "the faulting module"
        phase = f" in the {fault.phase} pass" if fault else ""
        if peak is not None and peak >= fmax / 4:
            summary = (f"{where} reached {peak:.3g} in {dtype} (max {fmax:.5g}) under {mode} {scaler}"
                       + (f" and overflowed to Inf{phase}" if overflowed else ""))
        else:
            summary = f"{where} overflowed to Inf{phase} from finite inputs under {mode} {scaler} (max {fmax:.5g})"
        return cause("cause.low_precision_overflow", summary, 0.55 if ev.grad_scaler else 0.85, data)
    if dtype == "float16" and not ev.grad_scaler and code in NON_FINITE:
        return cause("cause.low_precision_overflow",
                     f"training runs with {mode} {scaler}: float16 holds at most 65504 and gradients are unscaled",
                     0.35, data)
    return None


def bad_initialisation(ev: TrainingEvidence, code: str) -> Cause | None:
    if ev.step > EARLY_STEP or (ev.sample_fault is not None and ev.sample_fault.input_non_finite):
        return None
    fault = ev.module_fault
    where = (f"; module '{fault.name}' ({fault.type}) already went non-finite in the {fault.phase} pass"
             if fault is not None and fault.name != "<loss>" else "")
    return cause("cause.bad_initialisation",
                 f"the failure came at step {ev.step}, before training had moved the weights far from their "
                 f"initial values{where}", 0.55 if fault is None or fault.name == "<loss>" else 0.6,
                 {"step": ev.step, "module": fault.name if fault else None})


def missing_zero_grad(ev: TrainingEvidence, code: str) -> Cause | None:
    grads = _finite(ev.grad_norm_history)
    if len(grads) < 5 or min(grads) <= 0:
        return None
    steps = [float(i) for i in range(len(grads))]
    slope, r2 = _fit(steps, grads)
    _, r2_exp = _fit(steps, [math.log(g) for g in grads])
    rise = slope * (len(grads) - 1)
    own = code == "training.missing_zero_grad"  # the guard saw the pattern: a looser fit still explains it
    if slope <= 0 or r2 < (0.6 if own else 0.9) or r2_exp > r2 + 0.02 or rise < 0.1 * statistics.fmean(grads):
        return None
    flat = _flat(_finite(ev.loss_history), tolerance=0.25)
    if not own and (flat is None or not flat[0]):
        return None  # for other findings, only the full pattern (linear gradients, flat loss) counts
    confidence = 0.3 + 0.5 * (r2 - 0.6) / 0.4 + (0.1 if flat and flat[0] else -0.1 if flat else 0.0)
    summary = (f"the gradient norm grew linearly with the step, {grads[0]:.3g} → {grads[-1]:.3g} over "
               f"{len(grads)} steps (R²={r2:.2f})")
    if flat is not None:
        summary += (f" while the loss stayed flat ({flat[1]:.3g} → {flat[2]:.3g})" if flat[0]
                    else f" while the loss moved {flat[1]:.3g} → {flat[2]:.3g}")
    return cause("cause.missing_zero_grad", summary + ": gradients accumulate across steps", min(confidence, 0.9),
                 {"grad_norm_first": grads[0], "grad_norm_last": grads[-1], "r2": round(r2, 3),
                  "slope_per_step": slope})


def params_not_in_optimizer(ev: TrainingEvidence, code: str) -> Cause | None:
    missing = ev.not_in_optimizer
    if not missing:
        return None
    data: dict[str, object] = {"not_in_optimizer": missing[:20], "count": len(missing)}
    summary = f"{len(missing)} trainable parameter{'s' if len(missing) != 1 else ''} in no optimizer group: " \
              f"{_fmt_names(missing)}"
    if code == "training.parameters_not_in_optimizer":
        confidence = 0.9
    elif code == "training.frozen_parameters" and ev.frozen_parameters:
        overlap = [p for p in ev.frozen_parameters if p in set(missing)]
        share = len(overlap) / len(ev.frozen_parameters)
        if not overlap:
            return None
        confidence = 0.5 + 0.45 * share
        summary += f"; {len(overlap)} of the {len(ev.frozen_parameters)} frozen parameters are among them"
        data["frozen_overlap"] = len(overlap)
    elif code == "training.frozen_parameters":
        confidence = 0.7
    else:  # a plateau: missing parameters are one reason nothing is learnt
        confidence = 0.5
    return cause("cause.params_not_in_optimizer", summary, confidence, data)


def label_misalignment(ev: TrainingEvidence, code: str) -> Cause | None:
    losses = _finite(ev.loss_history)
    if ev.baseline_loss and losses:
        recent = sorted(losses[-20:])[len(losses[-20:]) // 2]
        if recent >= 0.97 * ev.baseline_loss:
            return cause("cause.label_misalignment", f"the loss {recent:.4g} stays at the level of a constant "
                         f"prediction ({ev.baseline_loss:.4g}): the inputs carry no information about these labels, "
                         "as when labels are shuffled or joined to the wrong rows", 0.85,
                         {"recent_loss": recent, "baseline_loss": ev.baseline_loss})
    pred, target = ev.prediction_std, ev.target_std
    if pred is None or target is None or target <= 0:
        return None
    ratio = pred / target
    if ratio > 0.2:
        return None
    flat = _flat(losses)
    baseline = target * target
    near = bool(losses) and abs(losses[-1] - baseline) <= 0.25 * baseline
    if code == "training.loss_plateau" and not (near or (flat and flat[0])):
        return None
    confidence = 0.45 + (0.15 if ratio <= 0.05 else 0.0) + (0.2 if near else 0.0) + (0.1 if flat and flat[0] else 0.0)
    summary = f"predictions vary {ratio:.1%} as much as the targets (std {pred:.3g} vs {target:.3g})"
    if near:
        summary += f" and the loss {losses[-1]:.3g} equals the predict-the-mean baseline {baseline:.3g}"
    elif flat and flat[0]:
        summary += f" and the loss is flat at {flat[2]:.3g}"
    return cause("cause.label_misalignment", summary + ": the model learnt only the mean, as if labels did not "
                 "match inputs", min(confidence, 0.9),
                 {"prediction_std": pred, "target_std": target, "baseline_loss": baseline,
                  "last_loss": losses[-1] if losses else None})


Rule = Callable[[TrainingEvidence, str], Cause | None]
_FAULT_RULES: list[Rule] = [corrupt_input_sample, unstable_operation, low_precision_overflow,
                            learning_rate_too_high, bad_initialisation, missing_zero_grad]
RULES: dict[str, list[Rule]] = {
    **{code: _FAULT_RULES for code in NON_FINITE},
    "training.exploding_gradients": [learning_rate_too_high, missing_zero_grad, bad_initialisation,
                                     corrupt_input_sample],
    "training.loss_spike": [learning_rate_too_high, corrupt_input_sample],
    "training.divergence": [learning_rate_too_high, missing_zero_grad],
    "training.update_ratio": [learning_rate_too_high],
    "training.loss_plateau": [params_not_in_optimizer, label_misalignment],
    "training.prediction_collapse": [label_misalignment, learning_rate_too_high],
    "training.prediction_explosion": [learning_rate_too_high, bad_initialisation],
    "training.frozen_parameters": [params_not_in_optimizer],
    "training.parameters_not_in_optimizer": [params_not_in_optimizer],
    "training.missing_zero_grad": [missing_zero_grad],
    "training.vanishing_gradients": [bad_initialisation],
    "training.saturated_activations": [bad_initialisation],
    "training.dead_units": [learning_rate_too_high, bad_initialisation],
}


def rank_causes(code: str, evidence: TrainingEvidence) -> list[Cause]:
    """Likely causes of finding `code` given `evidence`, most likely first; [] when no rule fits."""
    causes = [c for rule in RULES.get(code, []) if (c := rule(evidence, code)) is not None]
    best: dict[str, Cause] = {}
    for c in causes:
        if c.code not in best or c.confidence > best[c.code].confidence:
            best[c.code] = c
    return sorted(best.values(), key=lambda c: -c.confidence)


__all__ = ["RULES", "rank_causes"]
