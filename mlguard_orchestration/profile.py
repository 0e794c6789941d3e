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
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlguard_orchestration.engines.requests import (
    Col,
    Count,
    Counted,
    CountIf,
    Distinct,
    DuplicateRows,
    Histogram,
    IsInf,
    IsNaN,
    Measured,
    MinMax,
    Moments,
    NullCount,
    Quantiles,
    ScanRequest,
    ValueCounts,
    category_key,
)
from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Engine, Table, kind_family

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
        head = _head_requests(table, unknown, head_edges)
        got = engine.measure(table, [Count(), *(r for stats in head.values() for r in stats.values())],
                             limit=HEAD_ROWS)
        rows_seen = int(got[Count()].value)
        for name, stats in head.items():
            value = {stat: got[r].value for stat, r in stats.items()}
            if name in unknown:
                kind = table.columns[name].kind
                nonnull = rows_seen - value["nulls"]
                as_time = rows_seen - value["unparsed"] if "unparsed" in value else None
                if as_time is not None and nonnull and as_time >= TEXT_TIME_SHARE * nonnull:
                    decided[name] = ("temporal", False)
                    text_time.append(name)
                else:
                    decided[name] = _role_from_head(kind, nonnull, value["distinct"])
                if "moments" in value and value["moments"][1] is not None:
                    centers[name] = float(value["moments"][1])
            if value.get("quantiles"):
                edges[name] = lattice_edges(list(value["quantiles"])[1:-1], table.columns[name].kind)
    for name in table.columns:
        ref_col = reference.columns.get(name) if reference else None
        if ref_col is not None and ref_col.mean is not None and name not in centers:
            centers[name] = ref_col.mean
    decided = {n: (role, flag or n in exact) for n, (role, flag) in decided.items()}
    edges = {n: e for n, e in edges.items() if decided[n][0] == "numeric"}
    # Rows size the quantile sample; integer bounds let an exact distinct count use a bitmap. Both come from
    # parquet metadata or one cheap pass over the few columns involved.
    ints = [n for n, (_, flag) in decided.items() if flag and table.columns[n].kind == "integer"]
    first = engine.measure(table, [Count(), *(MinMax(n) for n in ints)])
    rows = int(reference.rows_per_run) if reference else int(first[Count()].value)
    bounds = {}
    for n in ints:
        lo, hi = first[MinMax(n)].value
        if lo is not None and hi - lo < BITMAP_MAX_BITS:
            bounds[n] = (int(lo), int(hi))
    fraction = min(1.0, QUANTILE_SAMPLE / max(rows, 1))
    keyed = any(flag for _, flag in decided.values())
    return ProfilePlan(roles=decided, sample_fraction=fraction, bounds=bounds, centers=centers, edges=edges,
                       edges_from_head=[n for n in head_edges if n in edges], text_time=text_time,
                       duplicate_rows=count_duplicates and not keyed and bool(table.columns))


def _head_requests(table: Table, unknown: list[str], head_edges: list[str]) -> dict[str, dict[str, ScanRequest]]:
    """What the first rows must tell: for a column of unknown role its non-null and distinct counts, mean and
    (text) how much parses as time; for a numeric column without edges, its quantiles."""
    out: dict[str, dict[str, ScanRequest]] = {}
    for name in dict.fromkeys(unknown + head_edges):
        kind = table.columns[name].kind
        stats: dict[str, ScanRequest] = {}
        if name in unknown:
            stats["nulls"] = NullCount(name)
            stats["distinct"] = Distinct(name)
            if kind in NUMERIC_KINDS:
                stats["moments"] = Moments(Col(name, "number"))
            if kind == "string":
                stats["unparsed"] = NullCount(Col(name, "epoch"))
        if name in head_edges:
            stats["quantiles"] = Quantiles(Col(name, "number"), QUANTILE_LEVELS)
        out[name] = stats
    return out


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


def column_requests(table: Table, plan: ProfilePlan, name: str) -> dict[str, ScanRequest]:
    """What a column's profile is made of, by statistic: requests an engine answers in the table's one scan."""
    role, exact = plan.roles[name]
    kind = table.columns[name].kind
    m: dict[str, ScanRequest] = {}
    m["nulls"] = NullCount(Col(name, "epoch") if name in plan.text_time else name)  # unparsable text is missing time
    # A distinct estimate only where nothing better comes for free: categorical columns get an exact count
    # from their value counts, exact-counted keys their exact count; floats and timestamps need none.
    if role in ("numeric", "text") and kind != "float" and not exact:
        m["distinct"] = Distinct(name, exact=False)
    if exact:
        m["exact_distinct"] = Distinct(name, bounds=plan.bounds.get(name))
    if role in ("numeric", "discrete") and kind in NUMERIC_KINDS:
        x = Col(name, "number")
        if kind == "float":
            m["nan"] = CountIf(IsNaN(name))
            m["inf"] = CountIf(IsInf(name))
        m["min_max"] = MinMax(x if kind == "float" else name)  # min/max of the raw column skip a cast per row
        m["moments"] = Moments(x, center=plan.centers.get(name, 0.0))
        m["quantiles"] = Quantiles(x, QUANTILE_LEVELS, sample=plan.sample_fraction)
        if plan.edges.get(name):
            m["bins"] = Histogram(x, plan.edges[name], sample=plan.sample_fraction)
    if role in ("discrete", "categorical"):
        m["categories"] = ValueCounts(name, top=MAX_STORED_CATEGORIES)
    if role == "temporal":
        t = Col(name, "epoch")
        m["min_max"] = MinMax(t)
        m["quantiles"] = Quantiles(t, QUANTILE_LEVELS, sample=plan.sample_fraction)
        if kind != "date":
            m["hours"] = Histogram(Col(name, "hour"), HOUR_EDGES, sample=plan.sample_fraction)
    if role == "text":
        m["lengths"] = MinMax(Col(name, "length"))
    return m


def profile_requests(table: Table, plan: ProfilePlan) -> list[ScanRequest]:
    """Every request a profile needs, to be computed in the table's one scan with the checks' requests."""
    out: list[ScanRequest] = [Count()]
    for name in plan.roles:
        out += column_requests(table, plan, name).values()
    if plan.duplicate_rows:
        out.append(DuplicateRows(list(table.columns)))
    return out


def profile_from_values(table: Table, plan: ProfilePlan, answers: Mapping[ScanRequest, Measured],
                        logical_date: datetime | None = None) -> TableProfile:
    rows = int(answers[Count()].value)
    cols: dict[str, ColumnProfile] = {}
    for name, (role, exact) in plan.roles.items():
        col = table.columns[name]
        v = {stat: answers[r].value for stat, r in column_requests(table, plan, name).items()}
        nonnull = rows - int(v["nulls"])
        exact_distinct = v.get("exact_distinct")
        lo, hi = v.get("min_max", (None, None))
        _, mean, std = v.get("moments", (0, None, None))
        lengths = v.get("lengths", (None, None))
        prof = ColumnProfile(
            name=name, sql_type=col.sql_type, kind=col.kind, role=role, count=rows, nulls=rows - nonnull,
            distinct=int(exact_distinct) if exact_distinct is not None else _opt_int(v.get("distinct")),
            distinct_exact=exact_distinct is not None,
            unique=bool(exact and exact_distinct is not None and nonnull > 0 and exact_distinct == nonnull),
            min=_num(lo), max=_num(hi), mean=_num(mean), std=_num(std),
            quantiles=_quantiles(v.get("quantiles"), lo, hi),
            bins=_bins(plan.edges.get(name), v.get("bins")),
            hours=list(v["hours"]) if v.get("hours") is not None else None,
            nan=int(v.get("nan") or 0), inf=int(v.get("inf") or 0),
            min_length=_opt_int(lengths[0]), max_length=_opt_int(lengths[1]),
        )
        if "categories" in v:
            counted: Counted = v["categories"]
            prof = prof.model_copy(update={**_categories(dict(counted.top), counted.other),
                                           "distinct": counted.distinct, "distinct_exact": True})
        cols[name] = prof.model_copy(update={"constant_value": _constant_value(prof)})
    dups = answers[DuplicateRows(list(table.columns))].value if plan.duplicate_rows else None
    return TableProfile(rows=rows, columns=cols, source=table.source, logical_date=logical_date,
                        duplicate_rows=None if dups is None else int(dups))


def build_profile(data: Any, *, threads: int | None = None, logical_date: datetime | None = None) -> TableProfile:
    """Profile a table in one pass: any source a guard accepts (DataFrame, Arrow, parquet path, SQL …)."""
    with Engine(threads=threads) as engine:
        table = engine.add("data", data)
        plan = plan_profile(engine, table)
        answers = engine.measure(table, profile_requests(table, plan))
        return rebalance_bins(engine, table, plan, profile_from_values(table, plan, answers, logical_date))


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
    requests = {name: Histogram(Col(name, "number"), e) for name, e in redo.items()}
    answers = engine.measure(table, requests.values())
    cols = dict(profile.columns)
    for name, e in redo.items():
        cols[name] = cols[name].model_copy(update={"bins": _bins(e, answers[requests[name]].value)})
    return profile.model_copy(update={"columns": cols})


# -- helpers -----------------------------------------------------------------------------------------------


def _categories(hist: dict[Any, int], other: int = 0) -> dict[str, Any]:
    """The stored categories (at most MAX_STORED_CATEGORIES, most frequent first) and how many values are
    not among them (`other` more were left out by the engine already)."""
    counts: dict[str, int] = {}
    for value, n in hist.items():
        key = category_key(value)
        counts[key] = counts.get(key, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:MAX_STORED_CATEGORIES])
    return {"categories": kept, "categories_other": other + sum(n for _, n in ranked[MAX_STORED_CATEGORIES:])}


def _bins(edges: list[float] | None, counts: Any) -> Bins | None:
    """A column's bins from a Histogram answer on its edges."""
    if not edges or counts is None:
        return None
    return Bins(edges=list(edges), counts=[int(c) for c in counts])


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
