"""The reference profile: a compact, mergeable, JSON-serialisable summary of a table.

A profile is what a guard compares a new batch against, so it is built once and compared many times; it is
never a copy of the data. Building one is ONE aggregate pass in DuckDB (plus a bounded look at the first
rows to decide which columns are categorical). Quantiles come from a uniform Bernoulli sample of about 100k values per column
(counts, nulls, min and max are exact), so a profile of 10M rows costs about as much as reading the columns once.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from mlguard_orchestration._sql import ident, literal_list
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Engine, Subquery, Table

QUANTILE_LEVELS: list[float] = [i / 20 for i in range(21)]
QUANTILE_SAMPLE = 100_000  # values per column the quantiles are computed from (a uniform Bernoulli sample)
HEAD_ROWS = 50_000
MAX_STORED_CATEGORIES = 100
CATEGORICAL_MAX_DISTINCT = 1_000  # distinct values in the head sample for a string column to count as categorical
DISCRETE_MAX_DISTINCT = 20  # distinct values in the head sample for a number to count as discrete
BITMAP_MAX_BITS = 1 << 30  # exact distinct of an integer key by a bitmap over [min, max] up to 128 MiB

Role = Literal["numeric", "discrete", "categorical", "temporal", "text", "other"]


class ProfilePlan(BaseModel):
    """How each column is summarised, decided before the scan."""

    roles: dict[str, tuple[Role, bool]] = Field(description="{column: (role, compute exact distinct)}")
    sample_fraction: float = Field(1.0, description="Share of rows the quantile sample keeps.")
    bounds: dict[str, tuple[int, int]] = Field(default_factory=dict,
                                               description="[min, max] of integer columns counted exactly.")
    derived: dict[str, str] = Field(default_factory=dict,
                                    description="Per-row expressions computed once for the scan: {name: SQL}.")
    sample_column: str = Field("", description="Derived boolean: the row is in the quantile sample.")
    finite_columns: dict[str, str] = Field(default_factory=dict,
                                           description="{float column: derived column holding only finite values}")
    centers: dict[str, float] = Field(default_factory=dict,
                                      description="A typical value per numeric column (reference or head-sample "
                                                  "mean): mean and variance come from sums around it, which is "
                                                  "cheaper than avg/stddev and numerically stable.")

    def value(self, name: str) -> str:
        """The column as DOUBLE with NaN/±Inf as NULL (computed once per row for float columns)."""
        return ident(self.finite_columns[name]) if name in self.finite_columns else f"{ident(name)}::DOUBLE"

    @property
    def sampled(self) -> str:
        return ident(self.sample_column)


class ColumnProfile(BaseModel):
    """Per-column summary. Temporal min/max/quantiles are in epoch seconds."""

    name: str
    sql_type: str
    kind: str
    role: Role
    count: int = Field(description="Rows, including nulls.")
    nulls: int = 0
    distinct: int | None = None
    distinct_exact: bool = Field(False, description="`distinct` is an exact count, not an estimate.")
    unique: bool = Field(False, description="Exactly checked: every non-null value occurs once.")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] | None = Field(None, description="Values at QUANTILE_LEVELS (finite values only).")
    nan: int = 0
    inf: int = 0
    categories: dict[str, int] | None = Field(None, description="Most frequent values (at most 100) and counts.")
    categories_other: int = Field(0, description="Non-null values not among `categories`.")
    min_length: int | None = None
    max_length: int | None = None

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def categories_complete(self) -> bool:
        """True when `categories` lists every value seen (so a value not in it is genuinely new)."""
        return self.categories is not None and self.categories_other == 0

    @property
    def median(self) -> float | None:
        return self.quantiles[len(QUANTILE_LEVELS) // 2] if self.quantiles else None


class TableProfile(BaseModel):
    """The summary of one table (or of several merged batches)."""

    version: int = 1
    rows: int
    columns: dict[str, ColumnProfile]
    source: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def merge(self, other: TableProfile) -> TableProfile:
        """The profile of both tables together (quantiles and distinct counts approximately)."""
        cols = {name: _merge_column(col, other.columns[name]) if name in other.columns else col
                for name, col in self.columns.items()}
        cols.update({n: c for n, c in other.columns.items() if n not in cols})
        return TableProfile(rows=self.rows + other.rows, columns=cols, source=f"merge({self.source}, {other.source})")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> TableProfile:
        from mlguard_orchestration.errors import SourceError

        try:
            return cls.model_validate_json(Path(path).read_text())
        except FileNotFoundError:
            raise SourceError(f"reference profile {str(path)!r} does not exist; build one with `mlguard profile`.") from None
        except ValueError as exc:
            raise SourceError(f"reference profile {str(path)!r} is not a valid profile: {str(exc).splitlines()[0]}") from None


# -- deciding how to summarise each column -----------------------------------------------------------------


def plan_profile(engine: Engine, table: Table, reference: TableProfile | None = None,
                 exact: set[str] | frozenset[str] = frozenset()) -> ProfilePlan:
    """Decide each column's role and which columns get an exact distinct count (those unique in the
    reference, key-like ones in the first rows, and `exact`). The reference decides where it knows the
    column (so a batch is profiled the same way as its reference); otherwise a bounded look at the first
    rows does."""
    roles: dict[str, tuple[Role, bool]] = {}
    unknown: list[str] = []
    for name, col in table.columns.items():
        ref = reference.columns.get(name) if reference else None
        if ref is not None and _kind_family(ref.kind) == _kind_family(col.kind):
            roles[name] = (ref.role, ref.unique)
        elif col.kind in TEMPORAL_KINDS:
            roles[name] = ("temporal", False)
        elif col.kind in ("nested", "binary", "interval", "time", "other"):
            roles[name] = ("other", False)
        else:
            unknown.append(name)
    centers: dict[str, float] = {}
    if unknown:

        def head_mean(c: str) -> str:
            if table.columns[c].kind not in NUMERIC_KINDS:
                return "NULL"
            x = f"{ident(c)}::DOUBLE"
            return f"avg({x}) FILTER (WHERE isfinite({x}))"

        sel = {f"{s}:{c}": e for c in unknown
               for s, e in (("n", f"count({ident(c)})"), ("d", f"count(DISTINCT {ident(c)})"), ("m", head_mean(c)))}
        head = engine.aggregate(table, sel, limit=HEAD_ROWS)
        for name in unknown:
            nonnull, distinct, mean = (head[f"{s}:{name}"] for s in "ndm")
            roles[name] = _role_from_head(table.columns[name].kind, nonnull, distinct)
            if mean is not None:
                centers[name] = float(mean)
    for name in table.columns:
        ref_col = reference.columns.get(name) if reference else None
        if ref_col is not None and ref_col.mean is not None and name not in centers:
            centers[name] = ref_col.mean
    roles = {n: (role, flag or n in exact) for n, (role, flag) in roles.items()}
    # Rows size the quantile sample; integer bounds let an exact distinct count use a bitmap. Both come from
    # parquet metadata or one cheap pass over the few columns involved.
    ints = [n for n, (_, flag) in roles.items() if flag and table.columns[n].kind == "integer"]
    sel = ["count(*)"] + [f"min({ident(n)})::HUGEINT, max({ident(n)})::HUGEINT" for n in ints]
    row = engine.sql(f"SELECT {', '.join(sel)} FROM {table.ref}", table=table)[0]
    rows = reference.rows if reference else int(row[0])
    bounds = {n: (int(row[1 + 2 * i]), int(row[2 + 2 * i])) for i, n in enumerate(ints)
              if row[1 + 2 * i] is not None and row[2 + 2 * i] - row[1 + 2 * i] < BITMAP_MAX_BITS}
    fraction = min(1.0, QUANTILE_SAMPLE / max(rows, 1))
    # Per-row work done once, not once per aggregate: the sample draw, and each float's finiteness test.
    taken = set(table.columns)

    def fresh(base: str) -> str:
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    sample = fresh("__mlguard_sample")
    derived = {sample: f"random() < {fraction!r}" if fraction < 1 else "TRUE"}
    finite: dict[str, str] = {}
    for i, (name, (role, _)) in enumerate(roles.items()):
        if role in ("numeric", "discrete") and table.columns[name].kind == "float":
            finite[name] = fresh(f"__mlguard_finite_{i}")
            q = ident(name)
            derived[finite[name]] = f"CASE WHEN isfinite({q}) THEN {q}::DOUBLE END"
    return ProfilePlan(roles=roles, sample_fraction=fraction, bounds=bounds, derived=derived,
                       sample_column=sample, finite_columns=finite, centers=centers)


def _kind_family(kind: str) -> str:
    return "numeric" if kind in NUMERIC_KINDS else "temporal" if kind in TEMPORAL_KINDS else kind


def _role_from_head(kind: str, nonnull: int, distinct: int) -> tuple[Role, bool]:
    all_unique = nonnull > 1 and distinct == nonnull
    if kind == "boolean":
        return "categorical", False
    if kind in NUMERIC_KINDS:
        if distinct <= DISCRETE_MAX_DISTINCT and nonnull > distinct:
            return "discrete", False
        return "numeric", all_unique and kind == "integer"
    if kind == "string":
        if distinct <= CATEGORICAL_MAX_DISTINCT and distinct <= max(1, nonnull // 2):
            return "categorical", False
        return "text", all_unique
    return "other", False


# -- the one pass ------------------------------------------------------------------------------------------


def exact_distinct_metric(table: Table, plan: ProfilePlan, name: str) -> str | Subquery:
    """Exact count of distinct non-null values: a bitmap over [min, max] for integers (streams, ~1 bit per
    possible value), else a single-column GROUP BY in its own subquery."""
    q = ident(name)
    if name in plan.bounds:
        lo, hi = plan.bounds[name]
        return f"coalesce(bit_count(bitstring_agg({q}, {lo}, {hi})), 0)"
    return Subquery(f"SELECT count(*) FROM (SELECT {q} FROM {{table}} WHERE {q} IS NOT NULL GROUP BY {q})")


def profile_metrics(table: Table, plan: ProfilePlan) -> dict[str, str | Subquery]:
    """The aggregate expressions a profile needs, keyed 'p:<column>:<stat>', to be folded into one scan."""
    m: dict[str, str | Subquery] = {"rows": "count(*)"}
    sample = plan.sampled
    levels = literal_list(QUANTILE_LEVELS)
    for name, (role, exact) in plan.roles.items():
        col = table.columns[name]
        q, k = ident(name), f"p:{name}:"
        m[k + "count"] = f"count({q})"
        # A distinct estimate only where nothing better comes for free: categorical columns get an exact count
        # from their value histogram, exact-counted keys their exact count; floats and timestamps need none.
        if role in ("numeric", "text") and col.kind != "float" and not exact:
            m[k + "distinct"] = f"approx_count_distinct({q})"
        if exact:
            m[k + "exact_distinct"] = exact_distinct_metric(table, plan, name)
        if role in ("numeric", "discrete"):
            x = plan.value(name)
            if col.kind == "float":
                m[k + "nan"] = f"count_if(isnan({q}))"
                m[k + "inf"] = f"count_if(isinf({q}))"
            raw = q if col.kind in ("integer", "decimal") else x  # min/max of the raw column skip a cast per row
            m[k + "min"] = f"min({raw})"
            m[k + "max"] = f"max({raw})"
            c = plan.centers.get(name, 0.0)
            d = f"({x} - {c!r})"
            m[k + "n"] = f"count({x})"
            m[k + "s1"] = f"sum({d})"
            m[k + "s2"] = f"sum({d} * {d})"
            m[k + "quantiles"] = f"quantile_cont({x}, {levels}) FILTER (WHERE {sample})"
        if role in ("discrete", "categorical"):
            m[k + "histogram"] = Subquery(f"SELECT histogram({q}) FROM {{table}}")
        if role == "temporal":
            e = f"epoch({q})"
            m[k + "min"] = f"min({e})"
            m[k + "max"] = f"max({e})"
            m[k + "quantiles"] = f"quantile_cont({e}, {levels}) FILTER (WHERE {sample})"
        if role == "text":
            m[k + "min_length"] = f"min(length({q}))"
            m[k + "max_length"] = f"max(length({q}))"
    return m


def profile_from_values(table: Table, plan: ProfilePlan, v: dict[str, Any]) -> TableProfile:
    rows = int(v["rows"])
    cols: dict[str, ColumnProfile] = {}
    for name, (role, exact) in plan.roles.items():
        col = table.columns[name]
        k = f"p:{name}:"
        nonnull = int(v[k + "count"])
        exact_distinct = v.get(k + "exact_distinct")
        prof = ColumnProfile(
            name=name, sql_type=col.sql_type, kind=col.kind, role=role, count=rows, nulls=rows - nonnull,
            distinct=int(exact_distinct) if exact_distinct is not None else _opt_int(v.get(k + "distinct")),
            distinct_exact=exact_distinct is not None,
            unique=bool(exact and exact_distinct is not None and nonnull > 0 and exact_distinct == nonnull),
            min=_num(v.get(k + "min")), max=_num(v.get(k + "max")),
            **_moments(v.get(k + "n"), v.get(k + "s1"), v.get(k + "s2"), plan.centers.get(name, 0.0)),
            quantiles=_quantiles(v.get(k + "quantiles"), v.get(k + "min"), v.get(k + "max")),
            nan=int(v.get(k + "nan") or 0), inf=int(v.get(k + "inf") or 0),
            min_length=_opt_int(v.get(k + "min_length")), max_length=_opt_int(v.get(k + "max_length")),
        )
        if k + "histogram" in v:
            hist = v[k + "histogram"] or {}
            prof = prof.model_copy(update={**_categories(hist), "distinct": len(hist), "distinct_exact": True})
        cols[name] = prof
    return TableProfile(rows=rows, columns=cols, source=table.source)


def build_profile(data: Any, *, threads: int | None = None) -> TableProfile:
    """Profile a table in one pass: any source a guard accepts (DataFrame, Arrow, parquet path, SQL …)."""
    with Engine(threads=threads) as engine:
        table = engine.add("data", data)
        plan = plan_profile(engine, table)
        return profile_from_values(table, plan, engine.aggregate(table, profile_metrics(table, plan), plan.derived))


# -- helpers -----------------------------------------------------------------------------------------------


def category_key(value: Any) -> str:
    """How a category value is written in a profile (JSON object keys are strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _categories(hist: dict[Any, int]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for value, n in hist.items():
        key = category_key(value)
        counts[key] = counts.get(key, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:MAX_STORED_CATEGORIES])
    return {"categories": kept, "categories_other": sum(n for _, n in ranked[MAX_STORED_CATEGORIES:])}


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _moments(n: Any, s1: Any, s2: Any, center: float) -> dict[str, float | None]:
    """Mean and sample standard deviation from the sums of (x - center) and its square."""
    if not n or s1 is None or s2 is None:
        return {"mean": None, "std": None}
    n, s1, s2 = int(n), float(s1), float(s2)
    mean = center + s1 / n
    std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1)) if n > 1 else None
    return {"mean": _num(mean), "std": _num(std) if std is not None else None}


def _opt_int(x: Any) -> int | None:
    return None if x is None else int(x)


def _quantiles(q: Any, lo: Any, hi: Any) -> list[float] | None:
    if not q:
        return None
    vals = sorted(float(x) for x in q)
    if lo is not None and hi is not None:  # the sample may miss the extremes: pin them to the exact ones
        vals[0], vals[-1] = float(lo), float(hi)
    return vals


def _merge_column(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    n_a, n_b = a.non_null - a.nan - a.inf, b.non_null - b.nan - b.inf
    update: dict[str, Any] = {
        "count": a.count + b.count, "nulls": a.nulls + b.nulls, "nan": a.nan + b.nan, "inf": a.inf + b.inf,
        "distinct": max(a.distinct or 0, b.distinct or 0) or None, "unique": False, "distinct_exact": False,
        "min": _pick(min, a.min, b.min), "max": _pick(max, a.max, b.max),
        "min_length": _pick(min, a.min_length, b.min_length), "max_length": _pick(max, a.max_length, b.max_length),
    }
    if a.mean is not None and b.mean is not None and n_a + n_b > 0:
        mean = (a.mean * n_a + b.mean * n_b) / (n_a + n_b)
        var = sum(((s or 0.0) ** 2 * max(n - 1, 0) + n * (m - mean) ** 2) for s, n, m in
                  ((a.std, n_a, a.mean), (b.std, n_b, b.mean))) / max(n_a + n_b - 1, 1)
        update.update(mean=mean, std=math.sqrt(var))
    if a.quantiles and b.quantiles:
        update["quantiles"] = merge_quantiles(a.quantiles, n_a, b.quantiles, n_b)
    if a.categories is not None and b.categories is not None:
        summed = dict(a.categories)
        for k, n in b.categories.items():
            summed[k] = summed.get(k, 0) + n
        merged = _categories(summed)
        merged["categories_other"] += a.categories_other + b.categories_other
        update.update(merged)
    return a.model_copy(update=update)


def merge_quantiles(qa: list[float], na: int, qb: list[float], nb: int) -> list[float]:
    """Quantiles of the mixture of two distributions given by their quantiles (piecewise-linear CDFs)."""
    levels = np.asarray(QUANTILE_LEVELS)
    grid = np.unique(np.concatenate([qa, qb]))
    cdf = (na * np.interp(grid, qa, levels, left=0, right=1) + nb * np.interp(grid, qb, levels, left=0, right=1))
    cdf /= max(na + nb, 1)
    return [float(x) for x in np.interp(levels, cdf, grid)]


def _pick(fn: Any, x: Any, y: Any) -> Any:
    vals = [v for v in (x, y) if v is not None]
    return fn(vals) if vals else None
