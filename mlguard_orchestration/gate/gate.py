"""The evaluate → register gate: should this model be registered?

    spec = GateSpec(name="churn_gate", task="binary", model="churn", thresholds={"auc": {"min": 0.75}},
                    slices=["country"], max_plausible={"auc": 0.97}, label="churned")
    report = evaluate_gate(spec, predictions=proba, targets=y, slices=eval_df, train_metrics={"auc": 0.83},
                           train=train_df, eval_data=eval_df, store=".mlguard/profiles")
    if report.passed:
        register_champion(report, ".mlguard/profiles")

It blocks (status 'fail') when a metric misses its threshold or regresses against the champion measured on
the same evaluation data; when a declared slice is badly served; when predictions are degenerate (collapsed,
exploded, one class, unrelated to the targets); when train and validation scores are far apart; and when
results are too good to be true — then it runs the leakage checks on the train/evaluation tables it was given
and attaches what they found. Like `Guard.run` it never raises: the guard's own trouble (bad input) comes back
as status 'error'. The report carries the metrics and the evaluation data's identity (for
`register_champion`) and the run fingerprint; with a store, a failed gate lists what changed since the last
passing one.

The judges live by concern: `predictions.py` (degenerate predictions), `champion.py` (regression against the
registered model, plausibility), `slices.py`, `fit.py` (overfit, too good to be true), `features.py` (which
column a weak model misses); `prepare.py` turns the inputs into aligned arrays. This module runs them in order.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlguard_orchestration.errors import MlguardError, SpecError, did_you_mean, suggestion
from mlguard_orchestration.fingerprint import collect, input_profile
from mlguard_orchestration.gate.champion import compare_champion, plausible, resolve_champion
from mlguard_orchestration.gate.features import explain
from mlguard_orchestration.gate.fit import overfit, too_good
from mlguard_orchestration.gate.metrics import Prepared, overall
from mlguard_orchestration.gate.metrics import available as metric_available
from mlguard_orchestration.gate.predictions import degenerate, exploded
from mlguard_orchestration.gate.prepare import as_array, from_tables, prepare, target_digest
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.gate.slices import judge_slices, slice_columns
from mlguard_orchestration.gate.spec import GateSpec, UserMetric, gate_spec
from mlguard_orchestration.report import Champion, ModelSummary, Report, TableSummary
from mlguard_orchestration.runs import record_run
from mlguard_orchestration.store import ProfileStore


def evaluate_gate(
    spec: GateSpec | Mapping[str, Any],
    predictions: Any,
    targets: Any,
    *,
    slices: Any = None,
    metrics: Mapping[str, UserMetric] | None = None,
    champion: Mapping[str, float] | Champion | None = None,
    train_metrics: Mapping[str, float] | None = None,
    train: Any = None,
    eval_data: Any = None,
    store: ProfileStore | str | os.PathLike[str] | None = None,
    packages: Sequence[str] = (),
    code_path: str | os.PathLike[str] | None = None,
    context: Mapping[str, str] | None = None,
) -> Report:
    """Judge a model from its predictions on the evaluation data; never raises (see the module docstring).

    predictions: probabilities/scores or labels (binary: one per row or an (n, 2) matrix; multiclass: labels
    or an (n, k) score matrix; regression: values). targets: one per row. `metrics`: your own metrics, values
    or callables over (predictions, targets). `champion`: the registered model's metrics (default: read from
    the store by `spec.model`). `train`/`eval_data`: tables any guard can read, used only when results look
    too good."""
    started = time.perf_counter()
    name = spec.name if isinstance(spec, GateSpec) else str(spec.get("name", "gate"))
    st = store if isinstance(store, ProfileStore) or store is None else ProfileStore(store)
    try:
        run = GateRun(gate_spec(spec), st)
        report = _judge(run, predictions, targets, slices, metrics or {}, champion, train_metrics, train,
                        eval_data, context)
    except MlguardError as exc:
        report = Report.of_error(name, exc, context)
        inputs: dict[str, Any] = {}
    else:
        inputs = run.inputs
    report = report.model_copy(update={"duration_s": round(time.perf_counter() - started, 4)})
    fingerprint = collect(packages=packages, code_path=code_path, inputs=inputs)
    return record_run(report, st, fingerprint, user_packages=packages)


def _judge(run: GateRun, predictions: Any, targets: Any, slices: Any, user: Mapping[str, UserMetric],
             champion: Mapping[str, float] | Champion | None, train_metrics: Mapping[str, float] | None,
             train: Any, eval_data: Any, context: Mapping[str, str] | None) -> Report:
    spec = run.spec
    predictions, targets, slices = from_tables(spec, predictions, targets, slices)
    raw_pred, raw_y = as_array(predictions, "predictions"), as_array(targets, "targets")
    p_all = prepare(spec, raw_pred, raw_y)
    digest = target_digest(raw_y)
    if slices is None and spec.slices:
        raise SpecError(f"the gate spec declares slice columns {spec.slices} but no slices=… data was passed "
                        "(a DataFrame, Arrow table or dict of arrays aligned with the predictions).")
    slice_data = slice_columns(slices, spec.slices, p_all.rows) if slices is not None else {}
    run.inputs = {"evaluation": input_profile(
        p_all.rows, {"predictions": str(raw_pred.dtype), "targets": str(raw_y.dtype),
                     **{f"slice:{k}": v.dtype for k, v in slice_data.items()}}, digest)}
    finite = exploded(run, p_all)
    run.finite = finite
    p = p_all if finite is None else p_all.subset(finite)
    if finite is not None:
        slice_data = {k: v.subset(finite) for k, v in slice_data.items()}
    values = measure(run, p, raw_pred, raw_y, user) if p.rows else {}
    is_degenerate = degenerate(run, p)
    thresholds(run, values)
    champ = resolve_champion(champion, spec.model, run.store)
    reasons = compare_champion(run, values, champ, p_all.rows, digest) + plausible(run, values)
    if slice_data and p.rows and not is_degenerate:
        judge_slices(run, p, values, slice_data, train)
    if not is_degenerate:  # degenerate predictions explain any train/validation gap: not memorisation
        overfit(run, values, train_metrics)
    if reasons:
        too_good(run, reasons, train, eval_data)
    if eval_data is not None and p.rows and not is_degenerate:
        explain(run, p, p_all.rows, slice_data, eval_data)
    model = ModelSummary(model=spec.model, metrics=values, eval_rows=p_all.rows, eval_digest=digest)
    return Report(guard=spec.name, status=Report.status_of(run.findings), findings=run.findings,
                  checks_run=run.checks, notes=run.notes, context=dict(context or {}), model=model,
                  tables={"evaluation": TableSummary(source="predictions and targets", rows=p_all.rows,
                                                     columns=2 + len(slice_data))})


def measure(run: GateRun, p: Prepared, raw_pred: np.ndarray, raw_y: np.ndarray,
             user: Mapping[str, UserMetric]) -> dict[str, float]:
    available = metric_available(p)
    wanted = run.spec.metrics if run.spec.metrics is not None else available
    for metric_name in wanted:
        if metric_name not in available:
            raise SpecError(f"metric {metric_name!r} is not defined for these {p.task} predictions "
                            f"(probabilities: {p.probabilities}); available: {available}.")
    values: dict[str, float] = {name: round(overall(name, p), 6) for name in wanted}
    for name, metric in user.items():
        if callable(metric):
            try:
                v = metric(raw_pred, raw_y)
            except Exception as exc:  # noqa: BLE001 - the user's metric failing is an input problem
                raise SpecError(f"your metric {name!r} raised {type(exc).__name__}: {exc}") from None
        else:
            v = metric
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise SpecError(f"your metric {name!r} gave {v!r}; expected a number.") from None
        if not math.isfinite(fv):
            raise SpecError(f"your metric {name!r} is {fv}; expected a finite number.")
        values[name] = round(fv, 6)
    for name in [*run.spec.thresholds, *run.spec.max_plausible]:
        if name not in values:
            hint = did_you_mean(name, values)
            raise SpecError(f"the gate spec names metric {name!r}, but the gate measured only "
                            f"{sorted(values)}." + suggestion(hint)
                            + " Pass your own metrics with metrics={...}.")
    return values


def thresholds(run: GateRun, values: dict[str, float]) -> None:
    for name, b in run.spec.thresholds.items():
        run.checks += 1
        v = values[name]
        if b.min is not None and v < b.min:
            run.finding("gate.metric_threshold", f"threshold({name})", f"{name} is {v:.4g}, below the "
                         f"minimum {b.min:.4g}", value=v, threshold=b.min, evidence={"metric": name})
        elif b.max is not None and v > b.max:
            run.finding("gate.metric_threshold", f"threshold({name})", f"{name} is {v:.4g}, above the "
                         f"maximum {b.max:.4g}", value=v, threshold=b.max, evidence={"metric": name})
