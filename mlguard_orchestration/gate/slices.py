"""Slice analysis: is any declared segment (a country, a plan) badly served while the overall metric looks fine?

A slice is blamed only when it is large enough (`slice_min_size`) AND bad even at the optimistic end of its
confidence interval, so a 12-row slice with a bad-looking score cannot fire alone. Each slice column is one
vectorised pass (see metrics.py); the report lists the worst slices with their sizes, bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlguard_orchestration._sql import ident
from mlguard_orchestration.errors import SpecError, did_you_mean, suggestion
from mlguard_orchestration.gate.metrics import (
    BOUNDED_SCORES,
    HIGHER_IS_BETTER,
    MetricName,
    Prepared,
    compute,
    default_slice_metric,
)
from mlguard_orchestration.gate.metrics import available as metric_available
from mlguard_orchestration.gate.metrics import overall as metric_overall
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.sources import Engine

MAX_SLICE_VALUES = 1_000


@dataclass(frozen=True)
class BadSlice:
    column: str
    value: str
    size: int
    metric: float
    optimistic: float
    limit: float


@dataclass(frozen=True)
class SliceColumn:
    """A slice column factorised once: each row's slice index and the slices' labels."""

    codes: np.ndarray
    labels: list[str]
    dtype: str

    def subset(self, mask: np.ndarray) -> SliceColumn:
        return SliceColumn(self.codes[mask], self.labels, self.dtype)


def slice_columns(data: Any, names: list[str] | None, rows: int) -> dict[str, SliceColumn]:
    """The slice columns of `data` (a DataFrame, an Arrow table, a polars frame or a dict of arrays),
    factorised; `names` None means every column. Each must hold one value per prediction."""
    if isinstance(data, Mapping):
        available = list(data)

        def get(c: str) -> Any:
            v = data[c]
            return v if isinstance(v, pd.Series) else np.asarray(v)
    elif hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow.Table
        available = list(data.column_names)

        def get(c: str) -> Any:
            return data.column(c).to_pandas()
    elif isinstance(data, pd.DataFrame):
        available = [str(c) for c in data.columns]

        def get(c: str) -> Any:
            return data[c]
    elif hasattr(data, "columns") and hasattr(data, "__getitem__"):  # polars DataFrame
        available = [str(c) for c in data.columns]

        def get(c: str) -> Any:
            return data[c].to_numpy()
    else:
        raise SpecError(f"slices must be a DataFrame, an Arrow table or a dict of arrays; got "
                        f"{type(data).__name__}.")
    out = {}
    for name in names if names is not None else available:
        if name not in available:
            hint = did_you_mean(name, available)
            raise SpecError(f"slice column {name!r} is not in the slice data; it has {available[:40]}."
                            + suggestion(hint))
        values = get(name)
        if values.ndim != 1 or values.shape[0] != rows:
            raise SpecError(f"slice column {name!r} has shape {values.shape}; expected one value per prediction "
                            f"({rows} rows).")
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if len(uniques) > MAX_SLICE_VALUES:
            raise SpecError(f"slice column {name!r} has {len(uniques):,} distinct values (at most "
                            f"{MAX_SLICE_VALUES:,}): slice by a categorical column, or bin this one first "
                            "(e.g. pd.cut).")
        out[name] = SliceColumn(np.asarray(codes, dtype=np.int64), [_label(u) for u in uniques], str(values.dtype))
    return out


def worst_slices(column: str, sc: SliceColumn, p: Prepared, metric: MetricName, overall: float, *,
                 gap: float, threshold: float | None, min_size: int, z: float) -> tuple[list[BadSlice], int]:
    """The slices of `column` that are badly served, worst first, and how many slices were judged."""
    k = len(sc.labels)
    g = compute(metric, p, sc.codes, k, z)
    higher = HIGHER_IS_BETTER[metric]
    if higher:
        limit = overall - gap if metric in BOUNDED_SCORES else overall * (1 - gap)
        limit = max(limit, threshold) if threshold is not None else limit
        bad = (g.size >= min_size) & (g.optimistic < limit)
    else:
        limit = overall * (1 + gap)
        limit = min(limit, threshold) if threshold is not None else limit
        bad = (g.size >= min_size) & (g.optimistic > limit)
    bad &= np.isfinite(g.value) & np.isfinite(g.optimistic)
    idx = np.flatnonzero(bad)
    idx = idx[np.argsort(g.value[idx] if higher else -g.value[idx], kind="stable")]
    judged = int(((g.size >= min_size) & np.isfinite(g.value)).sum())
    return [BadSlice(column, sc.labels[i], int(g.size[i]), float(g.value[i]), float(g.optimistic[i]),
                     float(limit)) for i in idx], judged


def _label(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "<null>"
    return str(v)


def judge_slices(run: GateRun, p: Prepared, values: dict[str, float], data: dict[str, SliceColumn], train: Any) -> None:
    spec = run.spec
    metric = spec.slice_metric or default_slice_metric(p)
    if metric not in metric_available(p):
        raise SpecError(f"slice_metric {metric!r} is not defined for these {p.task} predictions; available: "
                        f"{metric_available(p)}.")
    overall = values[metric] if metric in values else metric_overall(metric, p)
    gap = spec.slice_max_gap if spec.slice_max_gap is not None else (0.1 if metric in BOUNDED_SCORES else 0.25)
    for column, sc in data.items():
        run.checks += 1
        bad, judged = worst_slices(column, sc, p, metric, overall, gap=gap,
                                   threshold=spec.slice_threshold, min_size=spec.slice_min_size, z=run.z)
        if not bad:
            continue
        shown = bad[:spec.max_slices]
        parts = [f"{column}={b.value!r} (n={b.size:,}): {metric} {b.metric:.3f}" for b in shown]
        more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
        run.finding("gate.slice", f"slice({column})",
                     f"{len(bad)} slice{'s' if len(bad) > 1 else ''} of {column!r} badly served while overall "
                     f"{metric} is {overall:.3f}: {'; '.join(parts)}{more}; limit {shown[0].limit:.3f}",
                     columns=[column], value=round(shown[0].metric, 6), threshold=round(shown[0].limit, 6),
                     evidence={"metric": metric, "overall": overall, "slices_judged": judged,
                               "min_size": spec.slice_min_size, "confidence": spec.confidence,
                               "worst": [{"value": b.value, "size": b.size, "metric": round(b.metric, 6),
                                          "optimistic_bound": round(b.optimistic, 6)} for b in shown]},
                     causes=training_share(column, shown, p.rows, train))


def training_share(column: str, bad: list[BadSlice], eval_rows: int, train: Any) -> list[Cause]:
    """A cause when the badly served slices are rare in the training table (when it has the column)."""
    if train is None:
        return []
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
