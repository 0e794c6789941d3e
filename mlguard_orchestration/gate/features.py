"""Which feature a weak model misses: when a metric, a champion comparison or a slice fails and the model's
errors still follow a column of the (row-aligned) evaluation table, that column's signal never reached the
model — dropped from the features, or missing/constant at inference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlguard_orchestration.gate.metrics import Prepared
from mlguard_orchestration.gate.metrics import correlation as metric_correlation
from mlguard_orchestration.gate.predictions import MIN_ROWS_FOR_CORRELATION
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.gate.slices import SliceColumn
from mlguard_orchestration.gate.tables import is_path, read_ordered
from mlguard_orchestration.report import Cause, cause


def explain(run: GateRun, p: Prepared, rows: int, slice_data: dict[str, SliceColumn], eval_data: Any) -> None:
    """A cause for a weak model or a badly served slice when its errors still follow a column of the
    (row-aligned) evaluation table: the model does not get that column's signal."""
    todo = [i for i, f in enumerate(run.findings) if f.code in EXPLAINED and not f.causes]
    if not todo or p.score is None or (p.task == "binary" and not p.probabilities):
        return
    features = aligned_features(run, eval_data, rows, p.y)
    if not features:
        return
    residual = p.y.astype(np.float64) - p.score
    for i in todo:
        f = run.findings[i]
        mask, where = None, ""
        if f.code == "gate.slice":
            sc, worst = slice_data[f.columns[0]], str(f.evidence["worst"][0]["value"])
            mask, where = sc.codes == sc.labels.index(worst), f" within {f.columns[0]}={worst!r}"
        found = unused_feature(features, residual, mask, run.z, where)
        if found is not None:
            run.findings[i] = f.model_copy(update={"causes": [found]})


def aligned_features(run: GateRun, eval_data: Any, rows: int, y: np.ndarray) -> dict[str, np.ndarray]:
    """eval_data's numeric columns, when it holds the evaluation rows in the predictions' order (same row
    count, label column equal to the targets); else {} with a note saying why."""
    import pyarrow as pa

    spec = run.spec
    is_frame = type(eval_data).__module__.split(".")[0] == "pandas"
    if spec.label is None or not (is_path(eval_data) or isinstance(eval_data, pa.Table) or is_frame):
        return {}
    table = read_ordered(eval_data, None, "eval_data")
    if spec.label not in table.column_names or table.num_rows != rows:
        run.notes.append(f"eval_data ({table.num_rows:,} rows) is not the evaluation rows in order "
                          f"({rows:,} predictions, label {spec.label!r}): no feature diagnosis")
        return {}
    label = table.column(spec.label).to_numpy(zero_copy_only=False).astype(np.float64)
    if run.finite is not None:
        label = label[run.finite]
    if not np.array_equal(label, y.astype(np.float64)):
        run.notes.append(f"eval_data's {spec.label!r} differs from the targets: its rows are not the "
                          "predictions' rows in order; no feature diagnosis")
        return {}
    skip = {spec.label, spec.prediction_column, spec.target_column, *spec.group, *spec.leakage_exclude}
    out = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in skip or not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            continue
        x = column.to_numpy(zero_copy_only=False).astype(np.float64)
        out[name] = x if run.finite is None else x[run.finite]
    return out


EXPLAINED = ("gate.metric_threshold", "gate.champion_regression", "gate.slice")
UNUSED_MIN_CORRELATION = 0.1


def unused_feature(features: dict[str, np.ndarray], residual: np.ndarray, mask: np.ndarray | None, z: float,
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
        r = metric_correlation(xs, r_all)
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
