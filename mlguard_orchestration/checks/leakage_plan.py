"""The SQL side of `TargetLeakage`: how the label is encoded, how each feature is cut into bins (a SQL
expression giving an INTEGER bin), and the two queries — one small pre-query for what the profile cannot tell,
then one GROUP BY GROUPING SETS per `FEATURES_PER_QUERY` features whose per-bin counts `leakage_scores` turns
into scores. The check itself (`leakage.py`) holds the spec and the judging.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from mlguard_orchestration._sql import ident, literal, literal_list
from mlguard_orchestration.checks.base import ScannedTable, TableContext
from mlguard_orchestration.checks.leakage_scores import (
    binary_scores,
    multiclass_scores,
    positive_negative,
    regression_scores,
)
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Column, Table

TOP_K = 50  # categories kept per feature (the rest are 'other')
VALUE_BINS_MAX = 32  # numeric features with at most this many distinct values are binned by value
QUANTILE_BINS = 20
FEATURES_PER_QUERY = 100
_LEVELS = [i / QUANTILE_BINS for i in range(1, QUANTILE_BINS)]


@dataclass
class Feature:
    """A feature under test and, once planned, its binning."""

    name: str
    col: Column
    expr: str = ""  # SQL giving the INTEGER bin: -1 NULL, 0 other, 1.. value or quantile bins
    values: list[Any] | None = None  # value-binned: the value of bin i+1
    edges: list[float] | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Label:
    """The label as the scoring query reads it."""

    task: Literal["binary", "regression", "multiclass"]
    y: str  # SQL: 0/1, centred value, or class index
    u: str = "0"  # regression: the label's own quantile bin (a rank-like target)
    where: str = "TRUE"
    positive: Any = None
    negative: Any = None
    classes: list[Any] = field(default_factory=list)
    mean: float = 0.0


def prequery(tctx: TableContext, t: Table, lab: Column, feats: list[Feature]) -> dict[str, Any]:
    """ONE small query: the label's values (and quantiles) and what the profile cannot tell of features (their
    stats are filled in on `feats`)."""
    prof = tctx.profile if isinstance(tctx, ScannedTable) else None  # unscanned tables have none
    y = lab.q
    exprs: dict[str, str] = {"rows": "count(*)", "y_n": f"count({y})",
                             "y_top": f"approx_top_k({y}, {TOP_K + 1})"}
    if lab.kind in NUMERIC_KINDS:
        fin = f"isfinite({y}::DOUBLE)"
        exprs["y_mean"] = f"avg({y}::DOUBLE) FILTER (WHERE {fin})"
        exprs["y_q"] = f"reservoir_quantile({y}::DOUBLE, {literal_list(_LEVELS)}) FILTER (WHERE {fin})"
    for i, f in enumerate(feats):
        q, k = f.col.q, f"f{i}:"
        cp = prof.columns.get(f.name) if prof is not None else None
        if cp is not None and cp.kind == f.col.kind:
            f.stats.update(n=cp.non_null, distinct=cp.distinct, unique=cp.unique or None)
            if cp.quantiles and f.col.kind in NUMERIC_KINDS and cp.role == "numeric":
                f.stats["q"] = cp.quantiles[1:-1]
        if f.col.kind == "boolean":
            continue
        if "n" not in f.stats:
            exprs[k + "n"] = f"count({q})"
            exprs[k + "distinct"] = f"approx_count_distinct({q})"
        x = f"epoch({q})" if f.col.kind in TEMPORAL_KINDS else f"{q}::DOUBLE"
        if f.col.kind != "string" and "q" not in f.stats:  # a reservoir of 8k values is plenty for edges
            exprs[k + "q"] = f"reservoir_quantile({x}, {literal_list(_LEVELS)}) FILTER (WHERE isfinite({x}))"
        if f.col.kind in ("string", "integer", "decimal"):  # floats are always cut at quantiles
            exprs[k + "top"] = f"approx_top_k({q}, {max(TOP_K, VALUE_BINS_MAX + 1)})"
    values = tctx.engine.aggregate(t, exprs)
    for i, f in enumerate(feats):
        for stat in ("n", "distinct", "q", "top"):
            if f"f{i}:{stat}" in values:
                f.stats[stat] = values[f"f{i}:{stat}"]
    return values


def plan_label(lab: Column, pre: dict[str, Any], check: str) -> Label | None:
    """The label's encoding (binary, regression or multiclass); None for a constant or empty label (nothing to
    leak); a SpecError naming `check` for a label that is not a boolean, a number or text."""
    y = lab.q
    top = [v for v in (pre["y_top"] or []) if v is not None]
    if lab.kind == "boolean" or (len(top) == 2 and lab.kind in NUMERIC_KINDS | {"string"}):
        vals = [False, True] if lab.kind == "boolean" else top
        neg, pos = positive_negative(vals)
        return Label("binary", f"({y} = {literal(pos)})::INTEGER", where=f"{y} IS NOT NULL",
                     positive=pos, negative=neg)
    if len(top) < 2:
        return None
    if lab.kind in NUMERIC_KINDS:
        mean = float(pre.get("y_mean") or 0.0)
        edges = _edges(pre.get("y_q"))
        x = f"{y}::DOUBLE"
        return Label("regression", f"({x} - {literal(mean)})", u=quantile_bin(x, edges),
                     where=f"isfinite({x})", mean=mean)
    if lab.kind != "string":
        raise SpecError(f"{check}: label {lab.name!r} is {lab.sql_type}; use a boolean, numeric or text label.")
    classes = top[:TOP_K]
    return Label("multiclass", f"coalesce(list_position({literal_list(classes)}, {y}), 0)",
                 where=f"{y} IS NOT NULL", classes=classes)


def plan_features(feats: list[Feature], skipped: dict[str, str], explicit: bool) -> list[Feature]:
    """Each feature's bins: by value (booleans, text, numbers with few values) or at quantiles. Unless the
    features were named (`explicit`), one unique per row (an id) is skipped, with the reason in `skipped`."""
    out = []
    for f in feats:
        kind, q, st = f.col.kind, f.col.q, f.stats
        n = int(st.get("n") or 0)
        distinct = int(st["distinct"]) if st.get("distinct") is not None else n
        looks_unique = st.get("unique") or (n >= 20 and distinct >= 0.97 * n)
        if not explicit and kind in ("integer", "string") and looks_unique:
            skipped[f.name] = "unique per row (an id)"
            continue
        if kind == "boolean":
            f.values = [False, True]
        elif kind == "string" or (kind in NUMERIC_KINDS and distinct <= VALUE_BINS_MAX and st.get("top")):
            top = [v for v in (st.get("top") or []) if v is not None]
            if kind in NUMERIC_KINDS:
                top = sorted({float(v) for v in top})
            f.values = [str(v) for v in top[:TOP_K]] if kind == "string" else top
        if f.values is not None:
            x = {"string": f"{q}::VARCHAR", "boolean": q}.get(kind, f"{q}::DOUBLE")
            f.expr = (f"CASE WHEN {q} IS NULL THEN -1 ELSE coalesce(list_position("
                      f"{literal_list(f.values)}, {x}), 0) END")
        else:
            x = f"epoch({q})" if kind in TEMPORAL_KINDS else f"{q}::DOUBLE"
            f.edges = _edges(st.get("q"))
            f.expr = quantile_bin(x, f.edges)
        out.append(f)
    return out


def score(tctx: TableContext, t: Table, spec: Label, feats: list[Feature]) -> dict[str, dict[str, Any]]:
    """Every feature's scores from ONE GROUP BY GROUPING SETS query (one grouping per feature's bins)."""
    bins = [ident(f"b{i}") for i in range(len(feats))]
    inner = ", ".join(f"{f.expr} AS {b}" for f, b in zip(feats, bins))
    if spec.task == "multiclass":
        sets = ", ".join(f"({b}, y)" for b in bins)
        aggs = "count(*), 0, 0, 0, 0"
    elif spec.task == "binary":
        sets = ", ".join(f"({b})" for b in bins)
        aggs = "count(*), sum(y), 0, 0, 0"
    else:
        sets = ", ".join(f"({b})" for b in bins)
        aggs = "count(*), sum(y), sum(y * y), sum(u), sum(u * u)"
    y_key = "y" if spec.task == "multiclass" else "NULL"
    q = (f"SELECT {', '.join(bins)}, {y_key}, {aggs} FROM (SELECT {spec.y} AS y, {spec.u} AS u, {inner} "
         f"FROM {t.ref} WHERE {spec.where}) GROUP BY GROUPING SETS ({sets})")
    groups: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    nb = len(bins)
    for row in tctx.engine.sql(q, table=t):
        idx = next(i for i in range(nb) if row[i] is not None)
        groups[idx].append((row[idx], *row[nb:]))
    out = {}
    for i, f in enumerate(feats):
        rows = groups.get(i, [])
        if spec.task == "binary":
            out[f.name] = binary_scores(rows, f.values, spec.positive, spec.negative)
        elif spec.task == "regression":
            out[f.name] = regression_scores(rows)
        else:
            out[f.name] = multiclass_scores(rows)
    return out


def _edges(q: Any) -> list[float]:
    return sorted({float(x) for x in (q or []) if x is not None and math.isfinite(float(x))})


def quantile_bin(x: str, edges: list[float]) -> str:
    """The 1-based bin of `x` between sorted `edges` (-1 for NULL), as a balanced CASE tree: about log2(bins)
    comparisons per value instead of a linear chain."""

    def tree(lo: int, hi: int) -> str:  # bins lo..hi; edge i separates bin i+1 from bin i+2
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN {x} < {literal(edges[mid - 1])} THEN {tree(lo, mid)} ELSE {tree(mid + 1, hi)} END"

    return f"CASE WHEN {x} IS NULL THEN -1 ELSE {tree(1, len(edges) + 1)} END"
