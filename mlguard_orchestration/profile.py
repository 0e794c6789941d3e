"""The reference profile: a compact, mergeable, JSON-serialisable summary of a table.

A profile is what a guard compares a new batch against, so it is built once and compared many times; it is
never a copy of the data. Building one is ONE aggregate pass in DuckDB (plus a bounded look at the first
rows to decide which columns are categorical). Quantiles come from a uniform Bernoulli sample of about 100k values per column
(counts, nulls, min and max are exact), so a profile of 10M rows costs about as much as reading the columns once.

Distributions are compared on *counted* bins, never on quantile levels: a numeric column stores its sample's
counts on fixed edges (`bins`), and a batch is counted on its reference's edges, so identical data gives
identical shares whatever its ties (integer columns get edges on the half-integer lattice, so a value never
sits on an edge). Timestamps store their hour-of-day counts (`hours`), text that holds timestamps is profiled
as time, and a column with one value in the batch is `constant` (a partition key, when it changes between runs).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlguard_orchestration._sql import ident, literal_list
from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Engine, Subquery, Table, kind_family

QUANTILE_LEVELS: list[float] = [i / 20 for i in range(21)]
QUANTILE_SAMPLE = 100_000  # values per column the quantiles are computed from (a uniform Bernoulli sample)
HEAD_ROWS = 50_000
MAX_STORED_CATEGORIES = 100
CATEGORICAL_MAX_DISTINCT = 1_000  # distinct values in the head sample for a string column to count as categorical
DISCRETE_MAX_DISTINCT = 20  # distinct values in the head sample for a number to count as discrete
DISCRETE_MIN_REPEATS = 5  # … each seen this often on average (31 temperatures in 20 values are a measurement)
BITMAP_MAX_BITS = 1 << 30  # exact distinct of an integer key by a bitmap over [min, max] up to 128 MiB
TEXT_TIME_SHARE = 0.98  # share of a text column's head values that must parse as timestamps for it to be time
UNBALANCED_BIN_SHARE = 0.25  # a first profile re-counts a column whose head-derived bins put this much in one bin
PROFILE_VERSION = 2

Role = Literal["numeric", "discrete", "categorical", "temporal", "text", "other"]
HOUR_EDGES: list[int] = list(range(23))  # histogram upper edges 0..22; 23 falls in the overflow bin


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
    edges: dict[str, list[float]] = Field(default_factory=dict,
                                          description="Bin edges per numeric column: the reference's, else from "
                                                      "the head sample's quantiles.")
    edges_from_head: list[str] = Field(default_factory=list,
                                       description="Columns whose edges were guessed from the first rows.")
    text_time: list[str] = Field(default_factory=list, description="Text columns profiled as timestamps.")
    duplicate_rows: bool = Field(False, description="Count exact duplicate rows (tables with no key column).")

    def value(self, name: str) -> str:
        """The column as DOUBLE with NaN/±Inf as NULL (computed once per row for float columns)."""
        return ident(self.finite_columns[name]) if name in self.finite_columns else f"{ident(name)}::DOUBLE"

    def timestamp(self, table: Table, name: str) -> str:
        """A temporal column as a naive UTC TIMESTAMP (or DATE); text timestamps are parsed."""
        q = ident(name)
        if name in self.text_time:
            return f"TRY_CAST({q} AS TIMESTAMP)"
        return f"timezone('UTC', {q})" if table.columns[name].kind == "timestamp_tz" else q

    @property
    def sampled(self) -> str:
        return ident(self.sample_column)

    @property
    def vector_sample(self) -> str:
        """A `USING SAMPLE` clause taking about `sample_fraction` of the rows in whole vectors (system
        sampling: skipped vectors are not read), or nothing when every row is kept."""
        return "" if self.sample_fraction >= 1 else f" USING SAMPLE {self.sample_fraction * 100:.6f}% (system)"


class Bins(BaseModel):
    """Counts of a column's sampled values on fixed edges: bin i holds (edges[i-1], edges[i]], the last bin
    everything above the last edge. Shares computed from counts are exact for ties, unlike quantile levels."""

    model_config = ConfigDict(allow_inf_nan=False)

    edges: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


class ColumnProfile(BaseModel):
    """Per-column summary. Temporal min/max/quantiles are in epoch seconds. Every number is finite: a profile
    edited by hand to hold NaN is refused on load, never written into SQL."""

    model_config = ConfigDict(allow_inf_nan=False)

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
    bins: Bins | None = Field(None, description="Sample counts on fixed edges (numeric columns).")
    hours: list[int] | None = Field(None, description="Sample counts per UTC hour of day (timestamps).")
    nan: int = 0
    inf: int = 0
    categories: dict[str, int] | None = Field(None, description="Most frequent values (at most 100) and counts.")
    categories_other: int = Field(0, description="Non-null values not among `categories`.")
    min_length: int | None = None
    max_length: int | None = None
    constant_value: str | None = Field(None, description="The one value of a column with a single non-null "
                                                         "value in this batch (a partition key, typically).")

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def non_finite_rate(self) -> float:
        return (self.nan + self.inf) / self.non_null if self.non_null else 0.0

    @property
    def categories_complete(self) -> bool:
        """True when `categories` lists every value seen (so a value not in it is genuinely new)."""
        return self.categories is not None and self.categories_other == 0

    @property
    def median(self) -> float | None:
        return self.quantiles[len(QUANTILE_LEVELS) // 2] if self.quantiles else None


class TableProfile(BaseModel):
    """The summary of one table (or of several merged batches)."""

    version: int = PROFILE_VERSION
    rows: int
    columns: dict[str, ColumnProfile]
    source: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    logical_date: datetime | None = Field(None, description="The run's logical date (time checks move with it).")
    duplicate_rows: int | None = Field(None, description="Rows that exactly copy another row (key-less tables).")
    runs: int = Field(1, ge=1, description="How many batches this profile summarises (a rolling reference merges runs).")

    @model_validator(mode="before")
    @classmethod
    def _readable_version(cls, data: Any) -> Any:
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, int) and version > PROFILE_VERSION:
            # not a ValueError: pydantic passes it through, and retrying will not make the file readable
            raise SpecError(f"the profile is version {version}, written by a newer mlguard-orchestration; this one "
                            f"reads up to version {PROFILE_VERSION}. Upgrade the package (or re-profile the data).")
        return data

    @property
    def rows_per_run(self) -> float:
        """Rows of one batch: a rolling reference sums several runs."""
        return self.rows / max(self.runs, 1)

    @property
    def anchor(self) -> datetime:
        """The moment this profile's time columns are relative to: its logical date, else its creation."""
        return self.logical_date or self.created_at

    def merge(self, other: TableProfile) -> TableProfile:
        """The profile of both tables together (quantiles and distinct counts approximately)."""
        cols = {name: _merge_column(col, other.columns[name]) if name in other.columns else col
                for name, col in self.columns.items()}
        cols.update({n: c for n, c in other.columns.items() if n not in cols})
        dups = (self.duplicate_rows + other.duplicate_rows
                if self.duplicate_rows is not None and other.duplicate_rows is not None else None)
        dates = [d for d in (self.logical_date, other.logical_date) if d is not None]
        return TableProfile(rows=self.rows + other.rows, columns=cols, source=f"merge({self.source}, {other.source})",
                            created_at=max(self.created_at, other.created_at), logical_date=max(dates, default=None),
                            duplicate_rows=dups, runs=self.runs + other.runs)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> TableProfile:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except FileNotFoundError:
            raise SourceError(f"reference profile {str(path)!r} does not exist; build one with `mlguard profile`.") from None
        except IsADirectoryError:
            raise SourceError(f"reference profile {str(path)!r} is a directory; give the profile's .json file.") from None
        except OSError as exc:
            raise SourceError(f"reference profile {str(path)!r} cannot be read: {exc.strerror or exc}") from None
        except ValueError as exc:
            lines = str(exc).splitlines()
            detail = " ".join(line.strip() for line in lines[:3])[:400]
            raise SourceError(f"reference profile {str(path)!r} is not a valid profile: {detail}") from None


# -- deciding how to summarise each column -----------------------------------------------------------------


def plan_profile(engine: Engine, table: Table, reference: TableProfile | None = None,
                 exact: set[str] | frozenset[str] = frozenset(),
                 roles: dict[str, Role] | None = None, count_duplicates: bool = True) -> ProfilePlan:
    """Decide each column's role and which columns get an exact distinct count (those unique in the
    reference, key-like ones in the first rows, and `exact`). `roles` are the user's overrides; then the
    reference decides where it knows the column (so a batch is profiled the same way as its reference);
    otherwise a bounded look at the first rows does. Numeric columns are binned on the reference's edges (so
    the batch is counted where its reference was), else on edges from the first rows' quantiles. Exact
    duplicate rows are counted (`count_duplicates`) only in tables with no key-like column."""
    decided: dict[str, tuple[Role, bool]] = {}
    edges: dict[str, list[float]] = {}
    text_time: list[str] = []
    unknown: list[str] = []
    for name, col in table.columns.items():
        ref = reference.columns.get(name) if reference else None
        same_family = ref is not None and kind_family(ref.kind) == kind_family(col.kind)
        if ref is not None and same_family and ref.bins is not None and col.kind in NUMERIC_KINDS:
            edges[name] = list(ref.bins.edges)
        elif ref is not None and same_family and ref.quantiles and col.kind in NUMERIC_KINDS:
            edges[name] = lattice_edges(ref.quantiles[1:-1], col.kind)
        if roles and name in roles:
            decided[name] = (roles[name], bool(ref and ref.unique))
            if roles[name] == "temporal" and col.kind == "string":
                text_time.append(name)
        elif ref is not None and same_family:
            decided[name] = (ref.role, ref.unique)
            if ref.role == "temporal" and col.kind == "string":
                text_time.append(name)
        elif col.kind in TEMPORAL_KINDS:
            decided[name] = ("temporal", False)
        elif col.kind in ("nested", "binary", "interval", "time", "other"):
            decided[name] = ("other", False)
        else:
            unknown.append(name)
    head_edges = [n for n, c in table.columns.items() if c.kind in NUMERIC_KINDS and n not in edges]
    centers: dict[str, float] = {}
    if unknown or head_edges:
        levels = literal_list(QUANTILE_LEVELS)

        def stats(c: str) -> list[str]:
            q, kind = ident(c), table.columns[c].kind
            out = []
            if c in unknown:
                x = f"{q}::DOUBLE"
                mean = f"avg({x}) FILTER (WHERE isfinite({x}))" if kind in NUMERIC_KINDS else "NULL"
                as_time = f"count(TRY_CAST({q} AS TIMESTAMP))" if kind == "string" else "NULL"
                out += [f"count({q})", f"count(DISTINCT {q})", mean, as_time]
            if c in head_edges:
                x = f"{q}::DOUBLE"
                out.append(f"quantile_cont({x}, {levels}) FILTER (WHERE isfinite({x}))")
            return out

        cols = list(dict.fromkeys(unknown + head_edges))
        sel = {f"{i}:{c}": e for c in cols for i, e in enumerate(stats(c))}
        head = engine.aggregate(table, sel, limit=HEAD_ROWS)
        for name in cols:
            row = iter(head[f"{i}:{name}"] for i in range(len(stats(name))))
            if name in unknown:
                nonnull, distinct, mean, as_time = next(row), next(row), next(row), next(row)
                kind = table.columns[name].kind
                if as_time is not None and nonnull and as_time >= TEXT_TIME_SHARE * nonnull:
                    decided[name] = ("temporal", False)
                    text_time.append(name)
                else:
                    decided[name] = _role_from_head(kind, nonnull, distinct)
                if mean is not None:
                    centers[name] = float(mean)
            if name in head_edges:
                qs = next(row)
                if qs:
                    edges[name] = lattice_edges([float(v) for v in qs][1:-1], table.columns[name].kind)
    for name in table.columns:
        ref_col = reference.columns.get(name) if reference else None
        if ref_col is not None and ref_col.mean is not None and name not in centers:
            centers[name] = ref_col.mean
    decided = {n: (role, flag or n in exact) for n, (role, flag) in decided.items()}
    edges = {n: e for n, e in edges.items() if decided[n][0] == "numeric"}
    # Rows size the quantile sample; integer bounds let an exact distinct count use a bitmap. Both come from
    # parquet metadata or one cheap pass over the few columns involved.
    ints = [n for n, (_, flag) in decided.items() if flag and table.columns[n].kind == "integer"]
    counts = ["count(*)"] + [f"min({ident(n)})::HUGEINT, max({ident(n)})::HUGEINT" for n in ints]
    row0 = engine.sql(f"SELECT {', '.join(counts)} FROM {table.ref}", table=table)[0]
    rows = int(reference.rows_per_run) if reference else int(row0[0])
    bounds = {n: (int(row0[1 + 2 * i]), int(row0[2 + 2 * i])) for i, n in enumerate(ints)
              if row0[1 + 2 * i] is not None and row0[2 + 2 * i] - row0[1 + 2 * i] < BITMAP_MAX_BITS}
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
    for i, (name, (role, _)) in enumerate(decided.items()):
        if role in ("numeric", "discrete") and table.columns[name].kind == "float":
            finite[name] = fresh(f"__mlguard_finite_{i}")
            q = ident(name)
            derived[finite[name]] = f"CASE WHEN isfinite({q}) THEN {q}::DOUBLE END"
    keyed = any(flag for _, flag in decided.values())
    return ProfilePlan(roles=decided, sample_fraction=fraction, bounds=bounds, derived=derived,
                       sample_column=sample, finite_columns=finite, centers=centers, edges=edges,
                       edges_from_head=[n for n in head_edges if n in edges], text_time=text_time,
                       duplicate_rows=count_duplicates and not keyed and bool(table.columns))


def lattice_edges(values: list[float], kind: str) -> list[float]:
    """Bin edges from quantile values: distinct and sorted; for integers on the half-integer lattice, so no
    value ever sits on an edge and every bin holds whole values."""
    finite = [v for v in values if math.isfinite(v)]
    if kind == "integer":
        finite = [math.floor(v) + 0.5 for v in finite]
    return sorted(set(finite))


def _role_from_head(kind: str, nonnull: int, distinct: int) -> tuple[Role, bool]:
    all_unique = nonnull > 1 and distinct == nonnull
    if kind == "boolean":
        return "categorical", False
    if kind in NUMERIC_KINDS:
        if distinct <= DISCRETE_MAX_DISTINCT and nonnull >= DISCRETE_MIN_REPEATS * distinct:
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
        if role in ("numeric", "discrete") and col.kind in NUMERIC_KINDS:
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
            if plan.edges.get(name):
                m[k + "bins"] = (f"histogram({x}, {literal_list(plan.edges[name])}) "
                                 f"FILTER (WHERE {sample} AND {x} IS NOT NULL)")
        if role in ("discrete", "categorical"):
            m[k + "histogram"] = Subquery(f"SELECT histogram({q}) FROM {{table}}")
        if role == "temporal":
            ts = plan.timestamp(table, name)
            e = f"epoch({ts})"
            m[k + "min"] = f"min({e})"
            m[k + "max"] = f"max({e})"
            m[k + "quantiles"] = f"quantile_cont({e}, {levels}) FILTER (WHERE {sample})"
            if name in plan.text_time:
                m[k + "count"] = f"count({ts})"  # text that does not parse counts as missing time
            if col.kind != "date":  # on its own sample of whole vectors: far cheaper than a filtered aggregate
                m[k + "hours"] = Subquery(f"SELECT histogram(hour({ts}), {literal_list(HOUR_EDGES)}) "
                                          f"FROM {{table}}{plan.vector_sample}")
        if role == "text":
            m[k + "min_length"] = f"min(length({q}))"
            m[k + "max_length"] = f"max(length({q}))"
    if plan.duplicate_rows:
        row = f"hash({', '.join(ident(c) for c in table.columns)})"
        m["duplicate_rows"] = Subquery(f"SELECT count(*) - count(DISTINCT h) FROM (SELECT {row} AS h FROM {{table}})")
    return m


def profile_from_values(table: Table, plan: ProfilePlan, v: dict[str, Any],
                        logical_date: datetime | None = None) -> TableProfile:
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
            bins=_bins(plan.edges.get(name), v.get(k + "bins")),
            hours=_hours(v.get(k + "hours")),
            nan=int(v.get(k + "nan") or 0), inf=int(v.get(k + "inf") or 0),
            min_length=_opt_int(v.get(k + "min_length")), max_length=_opt_int(v.get(k + "max_length")),
        )
        if k + "histogram" in v:
            hist = v[k + "histogram"] or {}
            prof = prof.model_copy(update={**_categories(hist), "distinct": len(hist), "distinct_exact": True})
        cols[name] = prof.model_copy(update={"constant_value": _constant_value(prof)})
    dups = v.get("duplicate_rows")
    return TableProfile(rows=rows, columns=cols, source=table.source, logical_date=logical_date,
                        duplicate_rows=None if dups is None else int(dups))


def build_profile(data: Any, *, threads: int | None = None, logical_date: datetime | None = None) -> TableProfile:
    """Profile a table in one pass: any source a guard accepts (DataFrame, Arrow, parquet path, SQL …)."""
    with Engine(threads=threads) as engine:
        table = engine.add("data", data)
        plan = plan_profile(engine, table)
        values = engine.aggregate(table, profile_metrics(table, plan), plan.derived)
        return rebalance_bins(engine, table, plan, profile_from_values(table, plan, values, logical_date))


def rebalance_bins(engine: Engine, table: Table, plan: ProfilePlan, profile: TableProfile) -> TableProfile:
    """A first profile guesses bin edges from the first rows; when the data was ordered (the head is not like
    the rest), one bin holds much of the mass. Such columns are counted once more, on edges from their own
    (uniformly sampled) quantiles: a bounded follow-up, only for profiles made without a reference."""
    redo: dict[str, list[float]] = {}
    for name in plan.edges_from_head:
        col = profile.columns[name]
        if col.bins is None or not col.bins.total or not col.quantiles:
            continue
        if max(col.bins.counts) / col.bins.total > UNBALANCED_BIN_SHARE:
            better = lattice_edges(col.quantiles[1:-1], col.kind)
            if better and better != col.bins.edges:
                redo[name] = better
    if not redo:
        return profile
    sel = ", ".join(f"histogram({plan.value(n)}, {literal_list(e)}) FILTER (WHERE {plan.value(n)} IS NOT NULL)"
                    for n, e in redo.items())
    derived = {k: e for k, e in plan.derived.items() if k in plan.finite_columns.values()}
    source = table.ref
    if derived:
        extra = ", ".join(f"{e} AS {ident(k)}" for k, e in derived.items())
        source = f"(SELECT *, {extra} FROM {table.ref})"
    row = engine.sql(f"SELECT {sel} FROM {source}", table=table)[0]
    cols = dict(profile.columns)
    for (name, e), hist in zip(redo.items(), row):
        cols[name] = cols[name].model_copy(update={"bins": _bins(e, hist)})
    return profile.model_copy(update={"columns": cols})


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


def _bins(edges: list[float] | None, hist: Any) -> Bins | None:
    """Counts per bin from DuckDB's `histogram(x, edges)` map (keyed by each bin's upper edge, overflow last)."""
    if not edges or hist is None:
        return None
    inner = set(edges)
    counts = [int(hist.get(e, 0)) for e in edges]
    counts.append(int(sum(n for key, n in hist.items() if key not in inner)))
    return Bins(edges=list(edges), counts=counts)


def _hours(hist: Any) -> list[int] | None:
    if hist is None:
        return None
    return [int(hist.get(h, 0)) for h in HOUR_EDGES] + [int(sum(n for h, n in hist.items() if h not in HOUR_EDGES))]


def _constant_value(col: ColumnProfile) -> str | None:
    """The single value of a column that has exactly one distinct non-null value, as a string."""
    if not col.non_null or col.nan or col.inf:
        return None
    if col.categories is not None:
        return next(iter(col.categories)) if len(col.categories) == 1 and not col.categories_other else None
    if col.min is not None and col.min == col.max:
        if col.role == "temporal":
            return datetime.fromtimestamp(col.min, UTC).isoformat()
        return f"{col.min:g}" if not float(col.min).is_integer() else str(int(col.min))
    return None


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
        "constant_value": a.constant_value if a.constant_value == b.constant_value else None,
        "bins": merge_bins(a.bins, b.bins),
        "hours": [x + y for x, y in zip(a.hours, b.hours)] if a.hours and b.hours else a.hours or b.hours,
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


def merge_bins(a: Bins | None, b: Bins | None) -> Bins | None:
    """Counts of both on `a`'s edges; `b`'s counts are moved onto them through its piecewise-linear CDF when
    the edges differ (a reference keeps its edges, so they rarely do)."""
    if a is None or b is None:
        return a or b
    if a.edges == b.edges:
        return Bins(edges=a.edges, counts=[x + y for x, y in zip(a.counts, b.counts)])
    cum_b = np.cumsum(b.counts[:-1])
    at = np.interp(a.edges, b.edges, cum_b, left=0, right=float(sum(b.counts[:-1])))
    moved = np.diff(np.concatenate([[0.0], at, [float(b.total)]]))
    return Bins(edges=a.edges, counts=[int(x + round(y)) for x, y in zip(a.counts, moved)])


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
