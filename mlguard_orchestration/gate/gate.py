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
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlguard_orchestration.checks.base import cause
from mlguard_orchestration.errors import MlguardError, SpecError, did_you_mean
from mlguard_orchestration.fingerprint import collect, input_profile, record_run
from mlguard_orchestration.gate import metrics as m
from mlguard_orchestration.gate.champion import Champion, resolve_champion
from mlguard_orchestration.gate.slices import BadSlice, SliceColumn, slice_columns, worst_slices
from mlguard_orchestration.report import Cause, Finding, GuardErrorInfo, ModelSummary, Report, TableSummary
from mlguard_orchestration.store import ProfileStore

UserMetric = float | Callable[[np.ndarray, np.ndarray], float]
MIN_ROWS_FOR_CORRELATION = 30


class Bounds(BaseModel):
    """A metric's acceptable range: at least `min` (scores) and/or at most `max` (errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class GateSpec(BaseModel):
    """What the gate checks and how strictly. Defaults are tuned to stay quiet on a healthy model.

    Differences between two values of a metric are in absolute points for accuracy, AUC and your own metrics,
    and relative (a share of the reference value) for log loss, RMSE and MAE, which have no natural scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The gate's name: its key in the store (for the last good run).")
    task: Literal["binary", "multiclass", "regression"]
    model: str | None = Field(None, description="The registered model's name: its champion is read from the "
                                                "store and register_champion(...) writes it.")
    metrics: list[m.MetricName] | None = Field(None, description="Built-in metrics to compute (default: all "
                                                                 "defined for the predictions).")
    thresholds: dict[str, Bounds] = Field(default_factory=dict)
    higher_is_better: dict[str, bool] = Field(default_factory=dict,
                                              description="Direction of your own metrics (built-ins are known).")
    decision_threshold: float = Field(0.5, description="Binary: a score at or above it predicts the positive "
                                                       "class (for accuracy and the one-class check).")
    tolerance: float | dict[str, float] = Field(0.01, ge=0.0, description="How much worse than the champion "
                                                                          "is still acceptable (per metric).")
    slices: list[str] | None = Field(None, description="Slice columns (default: every column given).")
    slice_metric: m.MetricName | None = Field(None, description="Default: AUC for binary scores, else "
                                                                "accuracy; RMSE for regression.")
    slice_threshold: float | None = Field(None, description="Every slice's own floor (ceiling for errors).")
    slice_max_gap: float | None = Field(None, gt=0.0, description="How far below overall a slice may fall "
                                                                  "(default 0.1 points; 25 % for errors).")
    slice_min_size: int = Field(100, ge=1, description="Smaller slices are never blamed.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="One-sided level of every confidence bound.")
    max_slices: int = Field(5, ge=1, description="Worst slices listed per slice column.")
    collapse_ratio: float = Field(0.02, gt=0.0, description="Collapsed: prediction spread below this share of "
                                                            "the targets' spread.")
    explode_ratio: float = Field(10.0, gt=1.0, description="Exploded (regression): prediction range above "
                                                           "this multiple of the target range.")
    min_correlation: float = Field(0.05, ge=0.0, lt=1.0, description="Predictions whose correlation with the "
                                                                     "targets stays below this are unrelated.")
    overfit_max_gap: float | None = Field(None, gt=0.0, description="How much better train may score than "
                                                                    "validation (default 0.1 points; 50 % for errors).")
    max_plausible: dict[str, float] = Field(default_factory=dict, description="Best believable value per "
                                            "metric on this task (e.g. {'auc': 0.97}); better is too good.")
    max_jump: float = Field(0.6, gt=0.0, le=1.0, description="Too good: the share of the champion's remaining "
                                                             "error removed at once.")
    label: str | None = Field(None, description="The label column of train/eval_data, for the leakage checks "
                                                "and the feature diagnosis.")
    prediction_column: str = Field("prediction", description="Where predictions=<path> holds the predictions.")
    target_column: str | None = Field(None, description="Where targets=<path> holds the targets (default: "
                                                        "`label`).")
    group: list[str] = Field(default_factory=list, description="Entity columns (e.g. user_id) for group overlap.")
    leakage_exclude: list[str] = Field(default_factory=list, description="Columns left out of the row overlap "
                                                                         "(row ids, split markers).")

    def direction(self, metric: str) -> bool | None:
        """True when higher is better; None when unknown (your metric without a direction or threshold)."""
        if metric in m.HIGHER_IS_BETTER:
            return m.HIGHER_IS_BETTER[metric]
        if metric in self.higher_is_better:
            return self.higher_is_better[metric]
        b = self.thresholds.get(metric)
        if b is not None and (b.min is None) != (b.max is None):
            return b.min is not None
        return None

    def tolerance_for(self, metric: str) -> float:
        return self.tolerance.get(metric, 0.01) if isinstance(self.tolerance, dict) else self.tolerance


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
        gs = spec if isinstance(spec, GateSpec) else _validate_spec(spec)
        run = _GateRun(gs, st)
        report = run.evaluate(predictions, targets, slices, metrics or {}, champion, train_metrics, train,
                              eval_data, context)
    except MlguardError as exc:
        report = Report(guard=name, status="error", error=GuardErrorInfo.of(exc), context=dict(context or {}))
        inputs: dict[str, Any] = {}
    else:
        inputs = run.inputs
    report = report.model_copy(update={"duration_s": round(time.perf_counter() - started, 4)})
    fingerprint = collect(packages=packages, code_path=code_path, inputs=inputs)
    return record_run(report, st, fingerprint, user_packages=packages)


def _validate_spec(spec: Mapping[str, Any]) -> GateSpec:
    try:
        return GateSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise SpecError(f"invalid gate spec: {problems}") from None


class _GateRun:
    """One evaluation: the checks in order, each adding findings."""

    def __init__(self, spec: GateSpec, store: ProfileStore | None) -> None:
        self.spec = spec
        self.store = store
        self.z = NormalDist().inv_cdf(spec.confidence)
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.checks = 0
        self.inputs: dict[str, Any] = {}
        self.finite: np.ndarray | None = None

    def finding(self, code: str, check: str, message: str, *, severity: Literal["warn", "fail"] = "fail",
                columns: list[str] | None = None, value: Any = None, threshold: Any = None,
                evidence: dict[str, Any] | None = None, causes: list[Cause] | None = None) -> None:
        self.findings.append(Finding(code=code, check=check, severity=severity, message=message,
                                     columns=columns or [], value=value, threshold=threshold,
                                     evidence=evidence or {}, causes=causes or []))

    def evaluate(self, predictions: Any, targets: Any, slices: Any, user: Mapping[str, UserMetric],
                 champion: Mapping[str, float] | Champion | None, train_metrics: Mapping[str, float] | None,
                 train: Any, eval_data: Any, context: Mapping[str, str] | None) -> Report:
        spec = self.spec
        predictions, targets, slices = _from_tables(spec, predictions, targets, slices)
        raw_pred, raw_y = _array(predictions, "predictions"), _array(targets, "targets")
        p_all = _prepare(spec, raw_pred, raw_y)
        digest = _digest(raw_y)
        if slices is None and spec.slices:
            raise SpecError(f"the gate spec declares slice columns {spec.slices} but no slices=… data was passed "
                            "(a DataFrame, Arrow table or dict of arrays aligned with the predictions).")
        slice_data = slice_columns(slices, spec.slices, p_all.rows) if slices is not None else {}
        self.inputs = {"evaluation": input_profile(
            p_all.rows, {"predictions": str(raw_pred.dtype), "targets": str(raw_y.dtype),
                         **{f"slice:{k}": v.dtype for k, v in slice_data.items()}}, digest)}
        finite = self._exploded(p_all)
        self.finite = finite
        p = p_all if finite is None else p_all.subset(finite)
        if finite is not None:
            slice_data = {k: v.subset(finite) for k, v in slice_data.items()}
        values = self._metrics(p, raw_pred, raw_y, user) if p.rows else {}
        degenerate = self._degenerate(p)
        self._thresholds(values)
        champ = resolve_champion(champion, spec.model, self.store)
        too_good = self._champion(values, champ, p_all.rows, digest) + self._plausible(values)
        if slice_data and p.rows and not degenerate:
            self._slices(p, values, slice_data, train)
        if not degenerate:  # degenerate predictions explain any train/validation gap: not memorisation
            self._overfit(values, train_metrics)
        if too_good:
            self._too_good(too_good, train, eval_data)
        if eval_data is not None and p.rows and not degenerate:
            self._explain(p, p_all.rows, slice_data, eval_data)
        model = ModelSummary(model=spec.model, metrics=values, eval_rows=p_all.rows, eval_digest=digest)
        return Report(guard=spec.name, status=Report.status_of(self.findings), findings=self.findings,
                      checks_run=self.checks, notes=self.notes, context=dict(context or {}), model=model,
                      tables={"evaluation": TableSummary(source="predictions and targets", rows=p_all.rows,
                                                         columns=2 + len(slice_data))})

    # -- metrics --

    def _metrics(self, p: m.Prepared, raw_pred: np.ndarray, raw_y: np.ndarray,
                 user: Mapping[str, UserMetric]) -> dict[str, float]:
        available = m.available(p)
        wanted = self.spec.metrics if self.spec.metrics is not None else available
        for name in wanted:
            if name not in available:
                raise SpecError(f"metric {name!r} is not defined for these {p.task} predictions "
                                f"(probabilities: {p.probabilities}); available: {available}.")
        values = {name: round(m.overall(name, p), 6) for name in wanted}
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
        for name in [*self.spec.thresholds, *self.spec.max_plausible]:
            if name not in values:
                hint = did_you_mean(name, values)
                raise SpecError(f"the gate spec names metric {name!r}, but the gate measured only "
                                f"{sorted(values)}." + (f" Did you mean {hint!r}?" if hint else "")
                                + " Pass your own metrics with metrics={...}.")
        return values

    def _thresholds(self, values: dict[str, float]) -> None:
        for name, b in self.spec.thresholds.items():
            self.checks += 1
            v = values[name]
            if b.min is not None and v < b.min:
                self.finding("gate.metric_threshold", f"threshold({name})", f"{name} is {v:.4g}, below the "
                             f"minimum {b.min:.4g}", value=v, threshold=b.min, evidence={"metric": name})
            elif b.max is not None and v > b.max:
                self.finding("gate.metric_threshold", f"threshold({name})", f"{name} is {v:.4g}, above the "
                             f"maximum {b.max:.4g}", value=v, threshold=b.max, evidence={"metric": name})

    # -- champion and plausibility --

    def _champion(self, values: dict[str, float], champ: Champion | None, rows: int, digest: str) -> list[str]:
        """Regressions become findings; jumps far beyond the champion are returned (too good to be true)."""
        if champ is None:
            return []
        self.checks += 1
        if champ.eval_digest is None:
            self.notes.append(f"champion metrics of {champ.model!r} were given by hand: the gate cannot verify "
                              "they were measured on this evaluation data")
        elif champ.eval_digest != digest or champ.eval_rows != rows:
            self.finding("gate.champion_other_data", "champion", f"champion {champ.model!r} was measured on other "
                         f"evaluation data ({champ.eval_rows:,} rows, targets {champ.eval_digest[:10]}…) than this "
                         f"model ({rows:,} rows, targets {digest[:10]}…): metrics not compared", severity="warn",
                         evidence={"champion_rows": champ.eval_rows, "champion_digest": champ.eval_digest,
                                   "rows": rows, "digest": digest,
                                   "registered_at": champ.registered_at.isoformat()})
            return []
        jumps = []
        for name in sorted(set(values) & set(champ.metrics)):
            higher = self.spec.direction(name)
            if higher is None:
                raise SpecError(f"cannot compare your metric {name!r} with the champion: say whether higher is "
                                f"better with higher_is_better={{{name!r}: True}} (or give it a min/max threshold).")
            v, c = values[name], champ.metrics[name]
            worse = _shortfall(name, higher, c, v)
            tol = self.spec.tolerance_for(name)
            if worse > tol:
                how = f"{worse:.1%}" if _relative(name) else f"{worse:.4g}"
                self.finding("gate.champion_regression", f"champion({name})",
                             f"{name} is {v:.4g}, worse than the champion {champ.model!r} ({c:.4g}) by {how} "
                             f"(tolerance {tol:g}{' relative' if _relative(name) else ''}) on the same "
                             "evaluation data", value=v, threshold=c,
                             evidence={"metric": name, "champion": c, "shortfall": round(worse, 6),
                                       "tolerance": tol, "registered_at": champ.registered_at.isoformat()})
            gain = _gain(name, higher, c, v)
            if gain is not None and gain > self.spec.max_jump and -worse > tol:
                jumps.append(f"{name} {v:.4g} removes {gain:.0%} of champion {champ.model!r}'s remaining error "
                             f"({c:.4g}) at once")
        return jumps

    def _plausible(self, values: dict[str, float]) -> list[str]:
        out = []
        for name, limit in self.spec.max_plausible.items():
            self.checks += 1
            higher = self.spec.direction(name)
            v = values[name]
            if (v >= limit) if higher is not False else (v <= limit):
                out.append(f"{name} {v:.4g} is at or beyond {limit:g}, the best believable on this task")
        return out

    # -- degenerate predictions --

    def _exploded(self, p: m.Prepared) -> np.ndarray | None:
        """Non-finite predictions are a finding; returns the mask of finite rows (None when all are)."""
        self.checks += 1
        pred = p.proba if p.proba is not None else p.score
        if pred is None:
            return None
        finite = np.isfinite(pred) if pred.ndim == 1 else np.isfinite(pred).all(axis=1)
        bad = int((~finite).sum())
        if not bad:
            return None
        self.finding("gate.exploded_predictions", "exploded_predictions",
                     f"{bad:,} of {p.rows:,} predictions ({bad / p.rows:.2%}) are NaN or infinite; metrics use "
                     "the finite ones only", value=round(bad / p.rows, 6), threshold=0.0,
                     evidence={"non_finite": bad, "rows": p.rows})
        return finite

    def _degenerate(self, p: m.Prepared) -> bool:
        """Collapsed, exploded (by range), one-class and uncorrelated predictions; True when any fired."""
        if p.rows == 0:
            return True
        spec, before = self.spec, len(self.findings)
        y = p.y.astype(np.float64)
        hard_labels = p.task == "multiclass" or (p.task == "binary" and _is_labels(p.score))
        if hard_labels:
            self._single_class(p)
        else:
            self.checks += 1
            pred = p.score
            assert pred is not None
            pred_sd, y_sd = float(pred.std()), float(y.std())
            if y_sd > 0 and pred_sd < spec.collapse_ratio * y_sd:
                mean_p = float(pred.mean())
                causes = []
                if abs(mean_p - float(y.mean())) <= 0.25 * y_sd:
                    causes.append(cause("cause.prior_only", f"predictions sit at {mean_p:.4g}, the targets' mean "
                                        f"({float(y.mean()):.4g}): the model predicts the base rate for everyone",
                                        0.7, {"prediction_mean": round(mean_p, 6)}))
                self.finding("gate.collapsed_predictions", "collapsed_predictions",
                             f"predictions have collapsed: their spread (std {pred_sd:.3g}) is "
                             f"{pred_sd / y_sd:.2%} of the targets' ({y_sd:.3g}); limit {spec.collapse_ratio:.0%}",
                             value=round(pred_sd / y_sd, 6), threshold=spec.collapse_ratio,
                             evidence={"prediction_std": pred_sd, "target_std": y_sd,
                                       "prediction_mean": mean_p, "target_mean": float(y.mean())}, causes=causes)
            elif p.task == "regression":
                self._range(p)
        if len(self.findings) == before and p.task != "multiclass":
            self._correlation(p)
        return len(self.findings) > before

    def _single_class(self, p: m.Prepared) -> None:
        self.checks += 1
        assert p.label is not None
        predicted = np.unique(p.label)
        classes, counts = np.unique(p.y, return_counts=True)
        if len(predicted) != 1 or len(classes) < 2:
            return
        only = predicted[0]
        majority = classes[np.argmax(counts)]
        causes = []
        if only == majority:
            share = float(counts.max() / counts.sum())
            causes.append(cause("cause.majority_class", f"the one class predicted is the targets' majority "
                                f"({share:.1%} of rows)", 0.5 + 0.4 * share, {"majority_share": round(share, 6)}))
        self.finding("gate.single_class", "single_class", f"every one of {p.rows:,} predictions is class "
                     f"{_class_name(only)} although the targets hold {len(classes)} classes",
                     value=1, threshold=len(classes),
                     evidence={"target_class_counts": {_class_name(c): int(n) for c, n in
                                                       list(zip(classes, counts))[:20]}}, causes=causes)

    def _range(self, p: m.Prepared) -> None:
        assert p.score is not None
        y_range = float(p.y.max() - p.y.min())
        pred_range = float(p.score.max() - p.score.min())
        if y_range > 0 and pred_range > self.spec.explode_ratio * y_range:
            ratio = pred_range / y_range
            self.finding("gate.exploded_predictions", "exploded_predictions",
                         f"predictions span {pred_range:.4g}, {ratio:.3g}× the targets' range ({y_range:.4g})",
                         value=round(ratio, 6), threshold=self.spec.explode_ratio,
                         evidence={"prediction_min": float(p.score.min()), "prediction_max": float(p.score.max()),
                                   "target_min": float(p.y.min()), "target_max": float(p.y.max())},
                         causes=[cause("cause.output_scale", f"the predictions' range is {ratio:.3g}× the "
                                       "targets': a transform of the target was not undone", 0.6,
                                       {"range_ratio": round(ratio, 6)})])

    def _correlation(self, p: m.Prepared) -> None:
        assert p.score is not None
        if p.rows < MIN_ROWS_FOR_CORRELATION:
            return
        self.checks += 1
        r = m.correlation(p.score, p.y.astype(np.float64))
        if not math.isfinite(r):
            return
        upper = math.tanh(math.atanh(min(abs(r), 0.999999)) + self.z / math.sqrt(p.rows - 3))
        if upper < self.spec.min_correlation:
            self.finding("gate.no_correlation", "no_correlation",
                         f"predictions are unrelated to the targets: correlation {r:+.4f} over {p.rows:,} rows "
                         f"(at most {upper:.3f} at {self.spec.confidence:.0%} confidence; needed "
                         f"{self.spec.min_correlation})", value=round(r, 6), threshold=self.spec.min_correlation,
                         evidence={"correlation": r, "upper_bound": upper, "rows": p.rows},
                         causes=[cause("cause.label_misalignment", "predictions carry no information about the "
                                       "targets: rows of predictions and targets are probably misaligned "
                                       "(shuffled or joined on the wrong key)", 0.6)])

    # -- slices --

    def _slices(self, p: m.Prepared, values: dict[str, float], data: dict[str, SliceColumn], train: Any) -> None:
        spec = self.spec
        metric = spec.slice_metric or _default_slice_metric(p)
        if metric not in m.available(p):
            raise SpecError(f"slice_metric {metric!r} is not defined for these {p.task} predictions; available: "
                            f"{m.available(p)}.")
        overall = values[metric] if metric in values else m.overall(metric, p)
        gap = spec.slice_max_gap if spec.slice_max_gap is not None else (0.1 if metric in m.BOUNDED_SCORES else 0.25)
        for column, sc in data.items():
            self.checks += 1
            bad, judged = worst_slices(column, sc, p, metric, overall, gap=gap,
                                       threshold=spec.slice_threshold, min_size=spec.slice_min_size, z=self.z)
            if not bad:
                continue
            shown = bad[:spec.max_slices]
            parts = [f"{column}={b.value!r} (n={b.size:,}): {metric} {b.metric:.3f}" for b in shown]
            more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
            self.finding("gate.slice", f"slice({column})",
                         f"{len(bad)} slice{'s' if len(bad) > 1 else ''} of {column!r} badly served while overall "
                         f"{metric} is {overall:.3f}: {'; '.join(parts)}{more}; limit {shown[0].limit:.3f}",
                         columns=[column], value=round(shown[0].metric, 6), threshold=round(shown[0].limit, 6),
                         evidence={"metric": metric, "overall": overall, "slices_judged": judged,
                                   "min_size": spec.slice_min_size, "confidence": spec.confidence,
                                   "worst": [{"value": b.value, "size": b.size, "metric": round(b.metric, 6),
                                              "optimistic_bound": round(b.optimistic, 6)} for b in shown]},
                         causes=_training_share(column, shown, p.rows, train))

    # -- overfit --

    def _overfit(self, values: dict[str, float], train_metrics: Mapping[str, float] | None) -> None:
        for name, train_value in (train_metrics or {}).items():
            if name not in values:
                raise SpecError(f"train_metrics names {name!r}, which the gate did not measure on the "
                                f"evaluation data ({sorted(values)}).")
            higher = self.spec.direction(name)
            if higher is None:
                raise SpecError(f"cannot compare train and validation {name!r}: set higher_is_better={{{name!r}: "
                                "…}.")
            self.checks += 1
            limit = self.spec.overfit_max_gap or (0.5 if _relative(name) else 0.1)
            gap = _shortfall(name, higher, float(train_value), values[name])
            if gap > limit:
                self.finding("gate.overfit", f"overfit({name})",
                             f"train {name} {float(train_value):.4g} vs validation {values[name]:.4g}: a gap of "
                             f"{gap:.1%}" + ("" if _relative(name) else f" ({gap:.3f} points)")
                             + f", more than {limit:g}", value=round(gap, 6), threshold=limit,
                             evidence={"metric": name, "train": float(train_value), "validation": values[name]},
                             causes=[cause("cause.memorisation", f"the model scores {float(train_value):.4g} on "
                                           f"its training data but {values[name]:.4g} on validation", 0.7)])

    # -- too good to be true --

    def _too_good(self, reasons: list[str], train: Any, eval_data: Any) -> None:
        from mlguard_orchestration.checks.leakage import GroupOverlap, TargetLeakage, TrainTestOverlap
        from mlguard_orchestration.guard import Guard

        spec = self.spec
        tables = {k: v for k, v in (("train", train), ("eval", eval_data)) if v is not None}
        checks: list[Any] = []
        if spec.label is not None and tables:
            checks += [TargetLeakage(table=t, label=spec.label) for t in tables]
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
            self.checks += leak.checks_run
            if leak.error is not None:
                raise SpecError(f"the leakage checks could not run: {leak.error.message}")
            leaks = _dedupe(leak.findings)
            verdict = (f"the leakage checks found {len(leaks)} problem{'s' if len(leaks) > 1 else ''} (below)"
                       if leaks else f"the leakage checks ({', '.join(c.label() for c in checks)}) found nothing: "
                                     "review before registering")
        causes = [c for f in leaks for c in f.causes]
        self.finding("gate.too_good", "too_good", f"results look too good to be true: {'; '.join(reasons)}; "
                     f"{verdict}", severity="fail" if leaks or not checks else "warn",
                     evidence={"reasons": reasons, "leakage_checks": [c.label() for c in checks]}, causes=causes)
        self.findings += leaks


    # -- which feature the model misses --

    def _explain(self, p: m.Prepared, rows: int, slice_data: dict[str, SliceColumn], eval_data: Any) -> None:
        """A cause for a weak model or a badly served slice when its errors still follow a column of the
        (row-aligned) evaluation table: the model does not get that column's signal."""
        todo = [i for i, f in enumerate(self.findings) if f.code in _EXPLAINED and not f.causes]
        if not todo or p.score is None or (p.task == "binary" and not p.probabilities):
            return
        features = self._aligned_features(eval_data, rows, p.y)
        if not features:
            return
        residual = p.y.astype(np.float64) - p.score
        for i in todo:
            f = self.findings[i]
            mask, where = None, ""
            if f.code == "gate.slice":
                sc, worst = slice_data[f.columns[0]], str(f.evidence["worst"][0]["value"])
                mask, where = sc.codes == sc.labels.index(worst), f" within {f.columns[0]}={worst!r}"
            found = _unused_feature(features, residual, mask, self.z, where)
            if found is not None:
                self.findings[i] = f.model_copy(update={"causes": [found]})

    def _aligned_features(self, eval_data: Any, rows: int, y: np.ndarray) -> dict[str, np.ndarray]:
        """eval_data's numeric columns, when it holds the evaluation rows in the predictions' order (same row
        count, label column equal to the targets); else {} with a note saying why."""
        import pyarrow as pa

        from mlguard_orchestration.gate.tables import is_path, read_ordered

        spec = self.spec
        is_frame = type(eval_data).__module__.split(".")[0] == "pandas"
        if spec.label is None or not (is_path(eval_data) or isinstance(eval_data, pa.Table) or is_frame):
            return {}
        table = read_ordered(eval_data, None, "eval_data")
        if spec.label not in table.column_names or table.num_rows != rows:
            self.notes.append(f"eval_data ({table.num_rows:,} rows) is not the evaluation rows in order "
                              f"({rows:,} predictions, label {spec.label!r}): no feature diagnosis")
            return {}
        label = table.column(spec.label).to_numpy(zero_copy_only=False).astype(np.float64)
        if self.finite is not None:
            label = label[self.finite]
        if not np.array_equal(label, y.astype(np.float64)):
            self.notes.append(f"eval_data's {spec.label!r} differs from the targets: its rows are not the "
                              "predictions' rows in order; no feature diagnosis")
            return {}
        skip = {spec.label, spec.prediction_column, spec.target_column, *spec.group, *spec.leakage_exclude}
        out = {}
        for name, column in zip(table.column_names, table.columns, strict=True):
            if name in skip or not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
                continue
            x = column.to_numpy(zero_copy_only=False).astype(np.float64)
            out[name] = x if self.finite is None else x[self.finite]
        return out


_EXPLAINED = ("gate.metric_threshold", "gate.champion_regression", "gate.slice")
UNUSED_MIN_CORRELATION = 0.1


def _unused_feature(features: dict[str, np.ndarray], residual: np.ndarray, mask: np.ndarray | None, z: float,
                    where: str) -> Cause | None:
    """The column the model's errors follow most (|correlation| ≥ 0.1 and above 0.05 even at the pessimistic
    end of its confidence interval), as a cause; None when the errors follow none. A model that uses a
    column leaves errors uncorrelated with it; one that never gets the column leaves its signal there."""
    r_all = residual if mask is None else residual[mask]
    n = r_all.shape[0]
    if n < MIN_ROWS_FOR_CORRELATION:
        return None
    scored = []
    for name, x in features.items():
        xs = x if mask is None else x[mask]
        if np.isnan(xs).all():
            continue
        xs = np.where(np.isnan(xs), np.nanmean(xs), xs)
        r = m.correlation(xs, r_all)
        if not math.isfinite(r) or abs(r) < UNUSED_MIN_CORRELATION:
            continue
        lower = math.tanh(math.atanh(min(abs(r), 0.999999)) - z / math.sqrt(n - 3))
        if lower > 0.05:
            scored.append((abs(r), name, r))
    if not scored:
        return None
    scored.sort(reverse=True)
    _, top, r = scored[0]
    return cause("cause.feature_not_used", f"the model's errors{where} follow {top!r} (correlation {r:+.2f} "
                 f"over {n:,} rows): its signal does not reach the model — the column is dropped from the "
                 "features, or missing/constant at inference", 0.6,
                 {"column": top, "residual_correlation": round(r, 4), "rows": n,
                  "others": {name: round(v, 4) for _, name, v in scored[1:4]}})


# -- input preparation ----------------------------------------------------------------------------------------


def _from_tables(spec: GateSpec, predictions: Any, targets: Any, slices: Any) -> tuple[Any, Any, Any]:
    """Predictions, targets and slices given as paths/URIs, read in row order (one read per distinct path):
    predictions from `spec.prediction_column`, targets from `spec.target_column` (default `spec.label`),
    slices from `spec.slices` (default: every other column)."""
    from mlguard_orchestration.gate.tables import is_path, read_ordered

    target_column = spec.target_column or spec.label
    wanted: dict[str, list[str] | None] = {}
    if is_path(predictions):
        wanted.setdefault(str(predictions), []).append(spec.prediction_column)  # type: ignore[union-attr]
    if is_path(targets):
        if target_column is None:
            raise SpecError(f"targets={str(targets)!r} is a table: say which column holds the targets with "
                            "GateSpec(target_column=…) or label=….")
        wanted.setdefault(str(targets), []).append(target_column)  # type: ignore[union-attr]
    if is_path(slices):
        key = str(slices)
        wanted[key] = None if spec.slices is None else [*(wanted.get(key) or []), *spec.slices]
    read = {path: read_ordered(path, cols, f"the gate's table {path!r}") for path, cols in wanted.items()}
    if is_path(predictions):
        predictions = read[str(predictions)].column(spec.prediction_column).to_numpy()
    if is_path(targets):
        targets = read[str(targets)].column(target_column).to_numpy()
    if is_path(slices):
        table = read[str(slices)]
        if spec.slices is None:
            table = table.drop_columns([c for c in (spec.prediction_column, target_column) if c in table.column_names])
        slices = table
    return predictions, targets, slices



def _array(obj: Any, what: str) -> np.ndarray:
    if obj is None:
        raise SpecError(f"{what} are missing: pass one value per evaluation row.")
    if hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):
        obj = obj.to_numpy()
    elif hasattr(obj, "detach"):  # a torch tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    a = np.asarray(obj)
    if a.ndim == 0 or a.shape[0] == 0:
        raise SpecError(f"{what} are empty: the gate needs at least one evaluation row.")
    return a


def _prepare(spec: GateSpec, pred: np.ndarray, y: np.ndarray) -> m.Prepared:
    n = y.shape[0]
    if y.ndim != 1:
        raise SpecError(f"targets must be one value per row; got shape {y.shape}.")
    if pred.shape[0] != n:
        raise SpecError(f"predictions have {pred.shape[0]:,} rows but targets {n:,}: they must come from the same "
                        "evaluation rows, in the same order.")
    if spec.task == "multiclass":
        return _prepare_multiclass(pred, y)
    if pred.ndim == 2 and spec.task == "binary" and pred.shape[1] in (1, 2):
        pred = pred[:, -1]
    if pred.ndim != 1:
        raise SpecError(f"{spec.task} predictions must be one number per row (binary: or an (n, 2) probability "
                        f"matrix); got shape {pred.shape}.")
    score = _numeric(pred, "predictions")
    yf = _numeric(y, "targets")
    if not np.isfinite(yf).all():
        bad = np.flatnonzero(~np.isfinite(yf))
        raise SpecError(f"{len(bad):,} targets are NaN/infinite (first at row {int(bad[0])}): drop unlabeled rows "
                        "before evaluating.")
    if spec.task == "regression":
        return m.Prepared("regression", yf, score, None, None, False)
    values = np.unique(yf)
    if not set(values.tolist()) <= {0.0, 1.0}:
        raise SpecError(f"binary targets must be 0/1 or booleans; got values {values[:10].tolist()}. Map them, "
                        "e.g. targets == 'churned'.")
    fin = score[np.isfinite(score)]
    probabilities = bool(fin.size) and float(fin.min()) >= 0.0 and float(fin.max()) <= 1.0
    label = (score >= spec.decision_threshold).astype(np.float64)
    return m.Prepared("binary", yf, score, label, None, probabilities)


def _prepare_multiclass(pred: np.ndarray, y: np.ndarray) -> m.Prepared:
    import pandas as pd

    if pred.ndim == 2:
        k = pred.shape[1]
        if y.dtype.kind not in "iub" or (y.size and (int(y.min()) < 0 or int(y.max()) >= k)):
            raise SpecError(f"with an (n, {k}) score matrix, targets must be class indices 0..{k - 1} (the matrix's "
                            f"column order); got dtype {y.dtype}. Map labels first, e.g. "
                            "pd.Categorical(y, categories=classes).codes.")
        proba = _numeric(pred, "predictions")
        fin = proba[np.isfinite(proba).all(axis=1)]
        probabilities = bool(fin.size) and float(fin.min()) >= 0 and float(fin.max()) <= 1 and bool(
            np.allclose(fin.sum(axis=1), 1.0, atol=1e-3))
        label = np.where(np.isfinite(proba).all(axis=1), np.argmax(np.nan_to_num(proba, nan=-np.inf), axis=1), -1)
        return m.Prepared("multiclass", y.astype(np.int64), None, label.astype(np.int64), proba, probabilities)
    if pred.ndim != 1:
        raise SpecError(f"multiclass predictions must be labels (one per row) or an (n, k) score matrix; got "
                        f"shape {pred.shape}.")
    codes, _ = pd.factorize(np.concatenate([y.astype(object), pred.astype(object)]), use_na_sentinel=False)
    n = y.shape[0]
    return m.Prepared("multiclass", codes[:n].astype(np.int64), None, codes[n:].astype(np.int64), None, False)


def _numeric(a: np.ndarray, what: str) -> np.ndarray:
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"{what} must be numbers; got dtype {a.dtype} (e.g. {a.ravel()[:3].tolist()}).") from None


def _digest(y: np.ndarray) -> str:
    """The evaluation data's identity: a hash of the targets, in row order."""
    h = hashlib.blake2b(digest_size=16)
    if y.dtype.kind in "biuf":
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    else:
        h.update("\x1f".join(map(str, y.tolist())).encode())
    return h.hexdigest()


# -- comparisons -------------------------------------------------------------------------------------------------


def _relative(metric: str) -> bool:
    return metric in m.HIGHER_IS_BETTER and metric not in m.BOUNDED_SCORES


def _shortfall(metric: str, higher: bool, reference: float, value: float) -> float:
    """How much worse `value` is than `reference` (negative: better): relative for error metrics."""
    worse = (reference - value) if higher else (value - reference)
    if _relative(metric):
        return worse / abs(reference) if reference else (math.inf if worse > 0 else 0.0)
    return worse


def _gain(metric: str, higher: bool, champion: float, value: float) -> float | None:
    """The share of the champion's remaining error removed (bounded scores and errors only)."""
    if metric in m.BOUNDED_SCORES and higher and champion < 1:
        return (value - champion) / (1 - champion)
    if _relative(metric) and champion > 0:
        return (champion - value) / champion
    return None


def _default_slice_metric(p: m.Prepared) -> m.MetricName:
    if p.task == "regression":
        return "rmse"
    if p.task == "binary" and not _is_labels(p.score):
        return "auc"
    return "accuracy"


def _is_labels(score: np.ndarray | None) -> bool:
    return score is not None and bool(np.isin(score, (0.0, 1.0)).all())


def _class_name(c: Any) -> str:
    return str(c.item() if hasattr(c, "item") else c)


def _training_share(column: str, bad: list[BadSlice], eval_rows: int, train: Any) -> list[Cause]:
    """A cause when the badly served slices are rare in the training table (when it has the column)."""
    if train is None:
        return []
    from mlguard_orchestration._sql import ident
    from mlguard_orchestration.sources import Engine

    with Engine() as engine:
        t = engine.add("train", train)
        if column not in t.columns:
            return []
        rows = engine.sql(f"SELECT {ident(column)}::VARCHAR, count(*) FROM {t.ref} GROUP BY ALL", table=t)
    counts = {("<null>" if v is None else v): int(n) for v, n in rows}
    total = sum(counts.values()) or 1
    causes = []
    for b in bad:
        train_share, eval_share = counts.get(b.value, 0) / total, b.size / eval_rows
        if train_share < 0.5 * eval_share:
            causes.append(cause("cause.slice_rare_in_training",
                                f"{column}={b.value!r} is {train_share:.2%} of the training rows but "
                                f"{eval_share:.2%} of the evaluation rows", 0.5 + 0.4 * (1 - train_share / eval_share),
                                {"train_share": round(train_share, 6), "eval_share": round(eval_share, 6)}))
    return causes


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """The same leak found on train and on eval is one finding (the first, train's)."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for f in findings:
        key = (f.code, tuple(f.columns))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
