"""The embedded engine's compiler: metric requests -> DuckDB aggregate expressions (hand-written DuckDB SQL).

The embedded engine is the default and the fast path, so its SQL is written for DuckDB rather than through
sqlglot: per-row work shared through derived columns (one random draw per sample share, one finiteness test
per float column), exact distinct counts of integer keys by a bitmap over their known bounds, map-building
aggregates (`histogram`) and exact distinct counts in scalar subqueries that stream one column each, and the
hour-of-day counts on a sample of whole vectors. `sources.Engine.aggregate` folds the expressions into one
scan (split into column groups for a wide table) and `DuckScan.decode` turns its values back into answers.

Every identifier goes through `_sql.ident` and every value through `_sql.literal`: no user text is spliced in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlguard_orchestration._sql import ident, literal, literal_list
from mlguard_orchestration._zones import fixed_offset
from mlguard_orchestration.engines.requests import (
    And,
    Col,
    Compare,
    CompareColumns,
    Count,
    Counted,
    CountIf,
    Distinct,
    DistinctRows,
    DuplicateRows,
    Histogram,
    IsIn,
    IsInf,
    IsNaN,
    IsNull,
    Matches,
    MaxGap,
    Measured,
    MinMax,
    Moments,
    Not,
    NullCount,
    Or,
    Predicate,
    Quantiles,
    ScanRequest,
    TopK,
    ValueCounts,
    category_key,
)
from mlguard_orchestration.errors import SpecError

NUMERIC = frozenset({"integer", "float", "decimal"})
TIME = frozenset({"timestamp", "timestamp_tz", "date"})


@dataclass(frozen=True)
class Subquery:
    """An aggregate computed by its own scalar subquery over the table (`{table}` stands for it), inside the
    same statement as the table's scan.

    Used for the aggregates that would otherwise make DuckDB hold every scanned column in memory when they
    share a query with the others (map-building `histogram(col)`, exact distinct counts): on their own they
    read only their column and stream."""

    sql: str

    def render(self, table_ref: str, source: str | None = None) -> str:
        """The subquery over `table_ref`, or over `source` (a FROM item holding the columns it reads)."""
        return "(" + self.sql.replace("{table}", source or table_ref) + ")"


@dataclass
class DuckCompiler:
    """Renders columns and predicates of one table for DuckDB; collects the derived per-row columns used."""

    kinds: Mapping[str, str]
    bounded: bool = False  # the scan reads a bounded head of the table: nothing needs its own streaming subquery
    derived: dict[str, str] = field(default_factory=dict)
    _finite: dict[str, str] = field(default_factory=dict)
    _samples: dict[float, str] = field(default_factory=dict)

    def kind(self, name: str) -> str:
        try:
            return self.kinds[name]
        except KeyError:
            raise SpecError(f"a metric names column {name!r}, which the table does not have") from None

    def _fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.kinds or name in self.derived:
            i += 1
            name = f"{base}_{i}"
        return name

    def sample(self, share: float) -> str | None:
        """The derived column that keeps a uniform `share` of the rows (one draw a row, shared by every request
        with the same share), or None for every row."""
        if share >= 1:
            return None
        if share not in self._samples:
            name = self._fresh("__mlguard_sample" if not self._samples else f"__mlguard_sample_{len(self._samples)}")
            self.derived[name] = f"random() < {share!r}"
            self._samples[share] = ident(name)
        return self._samples[share]

    def instant(self, col: Col) -> str:
        """A time column as a naive UTC TIMESTAMP (or a DATE read in UTC, which DuckDB compares as one)."""
        q, kind = ident(col.name), self.kind(col.name)
        if kind == "string":
            return f"TRY_CAST({q} AS TIMESTAMP)"
        if kind == "timestamp_tz":
            return f"timezone('UTC', {q})"
        if kind not in TIME:
            raise SpecError(f"column {col.name!r} is {kind}, not a time column")
        if col.zone == "UTC" and not col.end_of_day:
            return q
        local = f"({q}::TIMESTAMP + INTERVAL 1 DAY)" if kind == "date" and col.end_of_day else f"{q}::TIMESTAMP"
        offset = fixed_offset(col.zone)
        if offset is not None:
            secs = int(offset.total_seconds())
            return local if secs == 0 else f"({local} - INTERVAL ({secs}) SECOND)"
        return f"timezone('UTC', timezone({literal(col.zone)}, {local}))"

    def expr(self, col: Col) -> str:
        q, kind = ident(col.name), self.kind(col.name)
        if col.of == "value":
            return q
        if col.of == "text":
            return f"{q}::VARCHAR"
        if col.of == "length":
            return f"length({q})"
        if col.of == "number":
            if kind == "string":  # text that holds numbers: NULL where it does not parse
                return f"TRY_CAST(trim({q}) AS DOUBLE)"
            if kind != "float":
                return f"{q}::DOUBLE"
            if col.name not in self._finite:  # the finiteness test once a row, for every aggregate of the column
                name = self._fresh(f"__mlguard_finite_{len(self._finite)}")
                self.derived[name] = f"CASE WHEN isfinite({q}) THEN {q}::DOUBLE END"
                self._finite[col.name] = ident(name)
            return self._finite[col.name]
        if col.of == "epoch":
            return f"epoch({self.instant(col)})"
        return f"hour({self.instant(col)})"  # "hour"

    def predicate(self, p: Predicate) -> str:
        if isinstance(p, Compare):
            x = self.expr(p.column)
            cond = f"{x} {p.op} {literal(p.value)}"
            if p.column.of == "value" and self.kind(p.column.name) == "float":  # NaN is finite's business
                cond = f"({cond} AND NOT isnan({x}))"
            return cond
        if isinstance(p, CompareColumns):
            if p.left.of == p.right.of == "epoch":  # compare the instants themselves: no conversion a row
                left, right = self.instant(p.left), self.instant(p.right)
                if p.shift:
                    left = f"({left} + INTERVAL ({p.shift!r}) SECOND)"
                return f"{left} {p.op} {right}"
            left = self.expr(p.left) if not p.shift else f"({self.expr(p.left)} + {p.shift!r})"
            cond = f"{left} {p.op} {self.expr(p.right)}"
            nans = [f"NOT isnan({self.expr(c)})" for c in (p.left, p.right)
                    if c.of == "value" and self.kind(c.name) == "float"]  # a NaN satisfies no comparison
            return f"({' AND '.join([cond, *nans])})" if nans else cond
        if isinstance(p, IsNull):
            return f"{self.expr(p.column)} IS NULL"
        if isinstance(p, IsIn):
            if not p.values:
                return "FALSE"
            x = self.expr(p.column)
            found = f"list_contains({literal_list(p.values)}, {x})"
            if p.column.of == "value" and self.kind(p.column.name) == "float":  # a NaN is in no list
                return f"({found} AND NOT isnan({x}))"
            return found
        if isinstance(p, IsNaN):
            return f"isnan({ident(p.column)})" if self.kind(p.column) == "float" else "FALSE"
        if isinstance(p, IsInf):
            return f"isinf({ident(p.column)})" if self.kind(p.column) == "float" else "FALSE"
        if isinstance(p, Matches):
            return f"regexp_full_match({ident(p.column)}::VARCHAR, {literal(p.regex)})"
        if isinstance(p, And):
            return "(" + " AND ".join(self.predicate(i) for i in p.items) + ")"
        if isinstance(p, Or):
            return "(" + " OR ".join(self.predicate(i) for i in p.items) + ")"
        if isinstance(p, Not):
            return f"NOT ({self.predicate(p.item)})"
        raise TypeError(f"not a predicate: {p!r}")

    def parts(self, r: ScanRequest) -> tuple[list[str | Subquery], bool]:
        """The expressions one request needs, and whether its answer is exact."""
        if isinstance(r, Count):
            return ["count(*)"], True
        if isinstance(r, NullCount):
            return ["count(*)", f"count({self.expr(r.column)})"], True
        if isinstance(r, CountIf):
            return [f"count_if({self.predicate(r.where)})"], True
        if isinstance(r, MinMax):
            x = self.expr(r.column)
            return [f"min({x})", f"max({x})"], True
        if isinstance(r, Moments):
            x = self.expr(r.column)
            d = f"({x} - {r.center!r})"
            return [f"count({x})", f"sum({d})", f"sum({d} * {d})"], True
        if isinstance(r, Quantiles):
            x, sample = self.expr(r.column), self.sample(r.sample)
            levels = literal_list(r.levels)
            if r.column.of == "value" and self.kind(r.column.name) == "float":
                x = self.expr(Col(r.column.name, "number"))  # NaN sorts above +Inf in DuckDB: quantiles of finite values
            fn = f"quantile_cont({x}, {levels})" if r.exact else f"approx_quantile({x}, {levels})"
            return [fn + (f" FILTER (WHERE {sample})" if sample else "")], r.exact and sample is None
        if isinstance(r, Distinct):
            x = self.expr(r.column)
            if not r.exact:
                return [f"approx_count_distinct({x})"], False
            if r.bounds is not None and r.column.of == "value" and self.kind(r.column.name) == "integer":
                lo, hi = r.bounds
                return [f"coalesce(bit_count(bitstring_agg({x}, {int(lo)}, {int(hi)})), 0)"], True
            if self.bounded:
                return [f"count(DISTINCT {x})"], True
            return [Subquery(f"SELECT count(*) FROM (SELECT {x} FROM {{table}} WHERE {x} IS NOT NULL GROUP BY 1)")], True
        if isinstance(r, Histogram):
            x = self.expr(r.column)
            if r.column.of == "hour":  # its own statement on a sample of whole vectors: skipped vectors are not read
                clause = "" if r.sample >= 1 else f" USING SAMPLE {r.sample * 100:.6f}% (system)"
                return [Subquery(f"SELECT histogram({x}, {literal_list(_edges(r))}) FROM {{table}}{clause}")], \
                    r.sample >= 1
            if r.column.of == "value" and self.kind(r.column.name) == "float":
                x = self.expr(Col(r.column.name, "number"))
            sample = self.sample(r.sample)
            keep = f"{sample} AND {x} IS NOT NULL" if sample else f"{x} IS NOT NULL"
            return [f"histogram({x}, {literal_list(_edges(r))}) FILTER (WHERE {keep})"], sample is None
        if isinstance(r, MaxGap):
            return [f"max({self.expr(r.left)} - {self.expr(r.right)})"], True
        if isinstance(r, DistinctRows):
            cols = [ident(c) for c in r.columns if self.kind(c)]
            not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
            return [Subquery(f"SELECT count(*) FROM (SELECT {', '.join(cols)} FROM {{table}} WHERE {not_null} "
                             "GROUP BY ALL)")], True
        if isinstance(r, DuplicateRows):
            h = f"hash({', '.join(ident(c) for c in r.columns if self.kind(c))})"
            return [Subquery(f"SELECT count(*) - count(DISTINCT h) FROM (SELECT {h} AS h FROM {{table}})")], True
        if isinstance(r, ValueCounts):
            return [Subquery(f"SELECT histogram({self.expr(r.column)}) FROM {{table}}")], True
        raise TypeError(f"not a scan request: {r!r}")


def _edges(r: Histogram) -> list[float | int]:
    """Edges as DuckDB should see them: whole numbers as integers for an integer expression (the hour)."""
    return [int(e) for e in r.edges] if r.column.of == "hour" else list(r.edges)


def _number(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    try:
        return float(v)  # Decimal, HUGEINT results
    except (TypeError, ValueError):
        return v


def _histogram(edges: Sequence[float], hist: Mapping[Any, int] | None) -> tuple[int, ...]:
    """Counts per bin from DuckDB's `histogram(x, edges)` map (keyed by each bin's upper edge, overflow last)."""
    hist = hist or {}
    inner = set(edges)
    counts = [int(hist.get(e, 0)) for e in edges]
    counts.append(int(sum(n for key, n in hist.items() if key not in inner)))
    return tuple(counts)


def _moments(n: Any, s1: Any, s2: Any, center: float) -> tuple[int, float | None, float | None]:
    """(n, mean, sample standard deviation) from the sums of (x - center) and its square."""
    if not n or s1 is None or s2 is None:
        return int(n or 0), None, None
    n, s1, s2 = int(n), float(s1), float(s2)
    mean = center + s1 / n
    std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1)) if n > 1 else None
    return n, mean, std


def counted(hist: Mapping[Any, int] | None, top: int) -> Counted:
    """A ValueCounts answer from a full value -> count map: the `top` most frequent, ties by value as text."""
    ranked = sorted((hist or {}).items(), key=lambda kv: (-int(kv[1]), category_key(kv[0])))
    return Counted(top=tuple((v, int(n)) for v, n in ranked[:top]), distinct=len(ranked),
                   other=sum(int(n) for _, n in ranked[top:]))


@dataclass(frozen=True)
class DuckScan:
    """A table's requests as DuckDB aggregates: `exprs` and `derived` for `Engine.aggregate`, and how to read
    its values back."""

    exprs: dict[str, str | Subquery]
    derived: dict[str, str]
    layout: tuple[tuple[ScanRequest, tuple[str, ...], bool], ...]

    def decode(self, values: Mapping[str, Any]) -> dict[ScanRequest, Measured]:
        out: dict[ScanRequest, Measured] = {}
        for request, keys, exact in self.layout:
            got = [values[k] for k in keys]
            out[request] = Measured(value=_answer(request, got), exact=exact)
        return out


def _answer(r: ScanRequest, got: list[Any]) -> Any:
    if isinstance(r, NullCount):
        return int(got[0]) - int(got[1] or 0)
    if isinstance(r, Count | CountIf | Distinct | DistinctRows | DuplicateRows):
        return int(got[0] or 0)
    if isinstance(r, MinMax):
        return _number(got[0]), _number(got[1])
    if isinstance(r, MaxGap):
        return None if got[0] is None else float(got[0])
    if isinstance(r, Moments):
        return _moments(got[0], got[1], got[2], r.center)
    if isinstance(r, Quantiles):
        return tuple(float(v) for v in got[0]) if got[0] else None
    if isinstance(r, Histogram):
        return _histogram(_edges(r), got[0])
    if isinstance(r, ValueCounts):
        return counted(got[0], r.top)
    raise TypeError(f"not a scan request: {r!r}")


def compile_scan(requests: Iterable[ScanRequest], kinds: Mapping[str, str], *, bounded: bool = False) -> DuckScan:
    """Every request as DuckDB aggregate expressions keyed `m0, m1, ...`; an expression two requests share
    (`count(*)`) is computed once. `bounded`: the scan reads a bounded number of rows (a head sample)."""
    compiler = DuckCompiler(kinds, bounded)
    index: dict[str | Subquery, str] = {}
    layout = []
    for request in dict.fromkeys(requests):
        parts, exact = compiler.parts(request)
        layout.append((request, tuple(index.setdefault(p, f"m{len(index)}") for p in parts), exact))
    return DuckScan(exprs={k: p for p, k in index.items()}, derived=compiler.derived, layout=tuple(layout))


def compile_top_k(table_ref: str, request: TopK, kinds: Mapping[str, str]) -> str:
    """SELECT value as text, count ... GROUP BY ... ORDER BY count DESC, value LIMIT k."""
    compiler = DuckCompiler(kinds)
    x = compiler.expr(request.column)
    where = f"{x} IS NOT NULL" + (f" AND {compiler.predicate(request.where)}" if request.where else "")
    source = table_ref
    if compiler.derived:
        extra = ", ".join(f"{e} AS {ident(n)}" for n, e in compiler.derived.items())
        source = f"(SELECT *, {extra} FROM {table_ref})"
    return (f"SELECT {x}::VARCHAR AS v, count(*) AS n FROM {source} WHERE {where} GROUP BY 1 "
            f"ORDER BY n DESC, v LIMIT {int(request.k)}")
