"""Generated tables with every column shape users have, for the default suite's self-consistency property.

A table is described by a `TableSpec` (a list of column shapes with their parameters, drawn by hypothesis in
the property test) and built vectorised with numpy/pyarrow from a seed, so a failing example is small to
print and exact to replay: `build(spec, rows, seed)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa

SHAPES = (
    "int_levels",      # integers with 2-1,000 levels and heavy ties (zipf-like)
    "day_of_month",    # 1-31
    "minute",          # 0-59
    "constant_int", "constant_str", "near_constant",
    "lognormal", "zero_inflated", "normal", "with_inf_nan",
    "timestamp_naive", "timestamp_tz", "timestamp_daily", "timestamp_subsecond", "date",
    "boolean", "decimal", "categorical", "long_tail_categorical", "int_key", "str_key", "text_numbers",
    "text_timestamps",
)
EPOCH = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ColumnSpec:
    shape: str
    null_share: float = 0.0
    levels: int = 10  # for int_levels / categoricals


@dataclass(frozen=True)
class TableSpec:
    columns: list[ColumnSpec] = field(default_factory=list)
    duplicate_share: float = 0.0  # share of rows that copy another row (key-less tables)


def column(spec: ColumnSpec, n: int, rng: np.random.Generator) -> pa.Array:
    """One column of `n` values of the given shape, with `null_share` of them NULL."""
    s = spec.shape
    mask = rng.random(n) < spec.null_share if spec.null_share else None
    if s == "int_levels":
        p = 1.0 / np.arange(1, spec.levels + 1) ** 1.1
        values = rng.choice(np.arange(spec.levels) * 7 - 50, n, p=p / p.sum())
        return pa.array(values, pa.int64(), mask=mask)
    if s == "day_of_month":
        return pa.array(rng.integers(1, 32, n), pa.int64(), mask=mask)
    if s == "minute":
        return pa.array(rng.integers(0, 60, n), pa.int16(), mask=mask)
    if s == "constant_int":
        return pa.array(np.full(n, 42), pa.int64(), mask=mask)
    if s == "constant_str":
        return pa.array(["only"] * n, pa.string(), mask=mask)
    if s == "near_constant":
        values = np.where(rng.random(n) < 0.999, 0.0, rng.normal(5, 1, n))
        return pa.array(values, pa.float64(), mask=mask)
    if s == "lognormal":
        return pa.array(rng.lognormal(3, 1.5, n), pa.float64(), mask=mask)
    if s == "zero_inflated":
        return pa.array(np.where(rng.random(n) < 0.7, 0.0, rng.exponential(20, n)), pa.float64(), mask=mask)
    if s == "normal":
        return pa.array(rng.normal(0, 1, n), pa.float32(), mask=mask)
    if s == "with_inf_nan":
        values = rng.normal(100, 15, n)
        u = rng.random(n)
        values[u < 0.01] = np.inf
        values[(u >= 0.01) & (u < 0.015)] = -np.inf
        values[(u >= 0.015) & (u < 0.03)] = np.nan
        return pa.array(values, pa.float64(), mask=mask, from_pandas=False)
    if s in ("timestamp_naive", "timestamp_tz", "timestamp_subsecond", "timestamp_daily", "date"):
        start = np.datetime64(EPOCH.replace(tzinfo=None), "us")
        if s == "timestamp_daily":
            offsets = rng.integers(0, 31, n).astype("timedelta64[D]").astype("timedelta64[us]")
        elif s == "timestamp_subsecond":
            offsets = rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")
        else:  # a month of events with a daily rhythm (busy afternoons)
            days = rng.integers(0, 31, n).astype("timedelta64[D]")
            secs = (np.clip(rng.normal(15, 4, n), 0, 23.99) * 3600).astype("timedelta64[s]")
            offsets = days.astype("timedelta64[us]") + secs.astype("timedelta64[us]")
        values = start + offsets
        if s == "date":
            return pa.array(values.astype("datetime64[D]"), pa.date32(), mask=mask)
        kind = pa.timestamp("us", tz="UTC") if s == "timestamp_tz" else pa.timestamp("us")
        return pa.array(values, kind, mask=mask)
    if s == "boolean":
        return pa.array(rng.random(n) < 0.3, pa.bool_(), mask=mask)
    if s == "decimal":
        cents = rng.integers(0, 100_000, n)
        return pa.array([Decimal(int(c)) / 100 for c in cents], pa.decimal128(10, 2), mask=mask)
    if s == "categorical":
        names = np.array([f"level_{i}" for i in range(max(2, min(spec.levels, 50)))])
        p = rng.dirichlet(np.ones(len(names)))
        return pa.array(rng.choice(names, n, p=p), pa.string(), mask=mask)
    if s == "long_tail_categorical":
        ranks = np.minimum(rng.zipf(1.3, n), 20_000)
        return pa.array(np.char.add("city_", ranks.astype(str)), pa.string(), mask=mask)
    if s == "int_key":
        return pa.array(rng.permutation(n) + 1_000_000, pa.int64())
    if s == "str_key":
        return pa.array([f"u-{i:09d}" for i in rng.permutation(n)], pa.string())
    if s == "text_numbers":
        return pa.array(np.char.mod("%.2f", rng.gamma(2, 30, n)), pa.string(), mask=mask)
    if s == "text_timestamps":
        start = np.datetime64(EPOCH.replace(tzinfo=None), "s")
        values = start + rng.integers(0, 31 * 86_400, n).astype("timedelta64[s]")
        return pa.array(np.datetime_as_string(values), pa.string(), mask=mask)
    raise ValueError(f"unknown shape {s!r}")


def build(spec: TableSpec, rows: int, seed: int) -> pa.Table:
    """The table `spec` describes, `rows` rows, deterministic in `seed`. Column names are the shapes with an
    index; duplicate rows (when asked for) copy randomly chosen earlier rows."""
    rng = np.random.default_rng(seed)
    table = pa.table({f"{c.shape}_{i}": column(c, rows, rng) for i, c in enumerate(spec.columns)})
    if spec.duplicate_share:
        copies = int(rows * spec.duplicate_share)
        take = np.concatenate([np.arange(rows - copies), rng.integers(0, rows - copies, copies)])
        table = table.take(pa.array(take))
    return table


def halves(table: pa.Table, seed: int) -> tuple[pa.Table, pa.Table]:
    """Two random halves of the rows."""
    order = np.random.default_rng(seed).permutation(table.num_rows)
    mid = table.num_rows // 2
    return table.take(pa.array(order[:mid])), table.take(pa.array(order[mid:]))
