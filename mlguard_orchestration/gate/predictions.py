"""Degenerate predictions: non-finite, collapsed to one value, exploded beyond the targets' range, a single
class, or unrelated to the targets (an upper confidence bound on the correlation). Any of these explains a
poor metric better than the model's skill does, so the gate says so first."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlguard_orchestration.gate.metrics import Prepared, is_labels
from mlguard_orchestration.gate.metrics import correlation as metric_correlation
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.report import cause

MIN_ROWS_FOR_CORRELATION = 30


def exploded(run: GateRun, p: Prepared) -> np.ndarray | None:
    """Non-finite predictions are a finding; returns the mask of finite rows (None when all are)."""
    run.checks += 1
    pred = p.proba if p.proba is not None else p.score
    if pred is None:
        return None
    finite: np.ndarray = np.isfinite(pred) if pred.ndim == 1 else np.isfinite(pred).all(axis=1)
    bad = int((~finite).sum())
    if not bad:
        return None
    run.finding("gate.exploded_predictions", "exploded_predictions",
                 f"{bad:,} of {p.rows:,} predictions ({bad / p.rows:.2%}) are NaN or infinite; metrics use "
                 "the finite ones only", value=round(bad / p.rows, 6), threshold=0.0,
                 evidence={"non_finite": bad, "rows": p.rows})
    return finite

def degenerate(run: GateRun, p: Prepared) -> bool:
    """Collapsed, exploded (by range), one-class and uncorrelated predictions; True when any fired."""
    if p.rows == 0:
        return True
    spec, before = run.spec, len(run.findings)
    y = p.y.astype(np.float64)
    hard_labels = p.task == "multiclass" or (p.task == "binary" and is_labels(p.score))
    if hard_labels:
        single_class(run, p)
    else:
        run.checks += 1
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
            run.finding("gate.collapsed_predictions", "collapsed_predictions",
                         f"predictions have collapsed: their spread (std {pred_sd:.3g}) is "
                         f"{pred_sd / y_sd:.2%} of the targets' ({y_sd:.3g}); limit {spec.collapse_ratio:.0%}",
                         value=round(pred_sd / y_sd, 6), threshold=spec.collapse_ratio,
                         evidence={"prediction_std": pred_sd, "target_std": y_sd,
                                   "prediction_mean": mean_p, "target_mean": float(y.mean())}, causes=causes)
        elif p.task == "regression":
            value_range(run, p)
    if len(run.findings) == before and p.task != "multiclass":
        correlation(run, p)
    return len(run.findings) > before

def single_class(run: GateRun, p: Prepared) -> None:
    run.checks += 1
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
    run.finding("gate.single_class", "single_class", f"every one of {p.rows:,} predictions is class "
                 f"{class_name(only)} although the targets hold {len(classes)} classes",
                 value=1, threshold=len(classes),
                 evidence={"target_class_counts": {class_name(c): int(n) for c, n in
                                                   list(zip(classes, counts))[:20]}}, causes=causes)

def value_range(run: GateRun, p: Prepared) -> None:
    assert p.score is not None
    y_range = float(p.y.max() - p.y.min())
    pred_range = float(p.score.max() - p.score.min())
    if y_range > 0 and pred_range > run.spec.explode_ratio * y_range:
        ratio = pred_range / y_range
        run.finding("gate.exploded_predictions", "exploded_predictions",
                     f"predictions span {pred_range:.4g}, {ratio:.3g}× the targets' range ({y_range:.4g})",
                     value=round(ratio, 6), threshold=run.spec.explode_ratio,
                     evidence={"prediction_min": float(p.score.min()), "prediction_max": float(p.score.max()),
                               "target_min": float(p.y.min()), "target_max": float(p.y.max())},
                     causes=[cause("cause.output_scale", f"the predictions' range is {ratio:.3g}× the "
                                   "targets': a transform of the target was not undone", 0.6,
                                   {"range_ratio": round(ratio, 6)})])

def correlation(run: GateRun, p: Prepared) -> None:
    assert p.score is not None
    if p.rows < MIN_ROWS_FOR_CORRELATION:
        return
    run.checks += 1
    r = metric_correlation(p.score, p.y.astype(np.float64))
    if not math.isfinite(r):
        return
    upper = math.tanh(math.atanh(min(abs(r), 0.999999)) + run.z / math.sqrt(p.rows - 3))
    if upper < run.spec.min_correlation:
        run.finding("gate.no_correlation", "no_correlation",
                     f"predictions are unrelated to the targets: correlation {r:+.4f} over {p.rows:,} rows "
                     f"(at most {upper:.3f} at {run.spec.confidence:.0%} confidence; needed "
                     f"{run.spec.min_correlation})", value=round(r, 6), threshold=run.spec.min_correlation,
                     evidence={"correlation": r, "upper_bound": upper, "rows": p.rows},
                     causes=[cause("cause.label_misalignment", "predictions carry no information about the "
                                   "targets: rows of predictions and targets are probably misaligned "
                                   "(shuffled or joined on the wrong key)", 0.6)])


def class_name(c: Any) -> str:
    return str(c.item() if hasattr(c, "item") else c)
