"""Causes of a value that went non-finite, from where it happened: an unstable operation, a corrupt sample, a
half-precision overflow, a bad initialisation."""

from __future__ import annotations

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.causes._common import (
    DTYPE_MAX,
    EARLY_STEP,
    FEW_SAMPLES,
    GRAD_WEIGHT_HIGH,
    HALF,
    NON_FINITE,
    STABLE_MODULES,
    UNSTABLE_NAMES,
    bad_counts,
    dtype_name,
    fmt_indices,
    value_range,
)
from mlguard_orchestration.training.evidence import TensorStats, TrainingEvidence


def _unstable_hint(stats: list[TensorStats], type_name: str, dtype: str | None) -> tuple[str, bool]:
    """A phrase explaining why these inputs break the operation, and whether the stats support it."""
    lo, _, absmax = value_range(stats)
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
    """Offered only where an unstable operation can be: the loss, or a module that is not a known-stable torch.nn
    layer (a Linear or an RNN that outputs Inf from finite inputs overflowed; it computed no log or division)."""
    fault = ev.module_fault
    if fault is None or (ev.sample_fault is not None and ev.sample_fault.input_non_finite):
        return None
    if any(not s.finite for s in fault.inputs):
        return None  # it passed on a non-finite value, it did not produce it
    if fault.name != "<loss>" and fault.type in STABLE_MODULES:
        return None
    dtype = next((dtype_name(s.dtype) for s in fault.inputs if s.dtype), None)
    hint, supported = _unstable_hint(fault.inputs, fault.type, dtype)
    named = any(k in fault.type.lower() or k in fault.name.lower() for k in UNSTABLE_NAMES)
    lo, hi, absmax = value_range(fault.inputs)
    # magnitudes whose square overflows the dtype: an overflow (of a product, a square), not an unstable formula
    near_max = absmax is not None and dtype in DTYPE_MAX and absmax >= DTYPE_MAX[dtype] ** 0.5 / 4
    span = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else "unknown"
    data = {"module": fault.name, "type": fault.type, "phase": fault.phase, "input_min": lo, "input_max": hi}
    what = f"the loss computation ({fault.type})" if fault.name == "<loss>" else \
        f"module '{fault.name}' ({fault.type})"
    if fault.phase == "backward":
        confidence = 0.75 if supported else 0.55
        summary = (f"the backward of {what} produced {bad_counts(fault.outputs)} gradients from finite ones; "
                   f"its forward input spans {span}" + (f": {hint}" if hint else "")
                   + " — the derivative of sqrt/log/pow/division there is infinite")
    elif fault.name == "<loss>":
        confidence = 0.85 if supported else 0.75
        summary = (f"{what} turned finite model outputs (range {span}) into {bad_counts(fault.outputs)}"
                   + (f": {hint.replace('its input', 'the model output')}" if hint else "")
                   + "; compute it from logits with a stable form (log_softmax, cross_entropy, BCEWithLogits)")
    else:
        confidence = 0.75 if supported else (0.6 if named else 0.5)
        summary = f"{what} produced {bad_counts(fault.outputs)} from finite inputs (range {span})" + \
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
    data = {"indices": sample.indices[:50], "dataset_indices": (sample.dataset_indices or [])[:50],
            "method": sample.method, "artifact": sample.artifact}
    which = f"sample{'s' if len(sample.indices) != 1 else ''} {fmt_indices(sample.indices)}" \
        if sample.indices else "samples"
    if sample.dataset_indices:
        which += f" (dataset ind{'ices' if len(sample.dataset_indices) != 1 else 'ex'} " \
                 f"{fmt_indices(sample.dataset_indices)})"
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
    autocast, params = dtype_name(ev.autocast_dtype), dtype_name(ev.param_dtype)
    dtype = autocast if autocast in HALF else params if params in HALF else None
    if dtype is None:
        return None
    fmax = DTYPE_MAX[dtype]
    fault = ev.module_fault
    stats = [*fault.inputs, *fault.outputs] if fault is not None else []
    half_stats = [s for s in stats if dtype_name(s.dtype) in HALF] or stats
    _, _, peak = value_range(half_stats)
    overflowed = any(s.inf and not s.nan for s in fault.outputs if dtype_name(s.dtype) == dtype) if fault else False
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
    """A failure in the first steps, before training moved the weights far; strongest when the gradient is
    already many times the weights' size (an RNN whose recurrent weight amplifies, a layer scaled up)."""
    if ev.step > EARLY_STEP or (ev.sample_fault is not None and ev.sample_fault.input_non_finite):
        return None
    fault = ev.module_fault
    where = (f"; module '{fault.name}' ({fault.type}) already went non-finite in the {fault.phase} pass"
             if fault is not None and fault.name != "<loss>" else "")
    confidence = 0.55 if fault is None or fault.name == "<loss>" else 0.6
    data: dict[str, object] = {"step": ev.step, "module": fault.name if fault else None}
    if ev.grad_weight_ratio is not None and ev.grad_weight_ratio > GRAD_WEIGHT_HIGH:
        where += f"; the gradient norm was {ev.grad_weight_ratio:.3g}× the weights' norm"
        confidence, data["grad_weight_ratio"] = 0.8, ev.grad_weight_ratio
    return cause("cause.bad_initialisation",
                 f"the failure came at step {ev.step}, before training had moved the weights far from their "
                 f"initial values{where}", confidence, data)
