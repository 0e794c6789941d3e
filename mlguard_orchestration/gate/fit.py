"""Scores that say something about how the model was trained rather than how good it is: a train/validation
gap too wide (memorisation), and results too good to be true — then the leakage checks run on the train
and evaluation tables the gate was given, and their findings name the leaking column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.gate.metrics import relative, shortfall
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.report import Finding, cause


def overfit(run: GateRun, values: dict[str, float], train_metrics: Mapping[str, float] | None) -> None:
    for name, train_value in (train_metrics or {}).items():
        if name not in values:
            raise SpecError(f"train_metrics names {name!r}, which the gate did not measure on the "
                            f"evaluation data ({sorted(values)}).")
        higher = run.spec.direction(name)
        if higher is None:
            raise SpecError(f"cannot compare train and validation {name!r}: set higher_is_better={{{name!r}: "
                            "…}.")
        run.checks += 1
        limit = run.spec.overfit_max_gap or (0.5 if relative(name) else 0.1)
        gap = shortfall(name, higher, float(train_value), values[name])
        if gap > limit:
            run.finding("gate.overfit", f"overfit({name})",
                         f"train {name} {float(train_value):.4g} vs validation {values[name]:.4g}: a gap of "
                         f"{gap:.1%}" + ("" if relative(name) else f" ({gap:.3f} points)")
                         + f", more than {limit:g}", value=round(gap, 6), threshold=limit,
                         evidence={"metric": name, "train": float(train_value), "validation": values[name]},
                         causes=[cause("cause.memorisation", f"the model scores {float(train_value):.4g} on "
                                       f"its training data but {values[name]:.4g} on validation", 0.7)])


def too_good(run: GateRun, reasons: list[str], train: Any, eval_data: Any) -> None:
    # lazily: the data guard (every check, the suite, spec parsing) loads only for a gate given its tables
    from mlguard_orchestration.checks.leakage import GroupOverlap, TargetLeakage, TrainTestOverlap
    from mlguard_orchestration.guard import Guard

    spec = run.spec
    tables = {k: v for k, v in (("train", train), ("eval", eval_data)) if v is not None}
    checks: list[Any] = []
    if spec.label is not None and tables:
        checks += [TargetLeakage(table=t, label_=spec.label) for t in tables]
    if len(tables) == 2:
        checks.append(TrainTestOverlap(train="train", test="eval", exclude=spec.leakage_exclude))
        if spec.group:
            checks.append(GroupOverlap(train="train", test="eval", group=spec.group))
    leaks: list[Finding] = []
    if not checks:
        verdict = ("the gate cannot look for a leak: pass train=… and eval_data=… tables and the label column "
                   "(GateSpec.label)")
    else:
        leak = Guard(f"{spec.name}.leakage", checks=checks).run(tables, promote=False)
        run.checks += leak.checks_run
        if leak.error is not None:
            raise SpecError(f"the leakage checks could not run: {leak.error.message}")
        leaks = dedupe(leak.findings)
        verdict = (f"the leakage checks found {len(leaks)} problem{'s' if len(leaks) > 1 else ''} (below)"
                   if leaks else f"the leakage checks ({', '.join(c.label() for c in checks)}) found nothing: "
                                 "review before registering")
    causes = [c for f in leaks for c in f.causes]
    run.finding("gate.too_good", "too_good", f"results look too good to be true: {'; '.join(reasons)}; "
                 f"{verdict}", severity="fail" if leaks or not checks else "warn",
                 evidence={"reasons": reasons, "leakage_checks": [c.label() for c in checks]}, causes=causes)
    run.findings += leaks


def dedupe(findings: list[Finding]) -> list[Finding]:
    """The same leak found on train and on eval is one finding (the first, train's)."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for f in findings:
        key = (f.code, tuple(f.columns))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
