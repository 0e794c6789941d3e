"""Compile a table's metric requests into ONE aggregate statement (plus bounded probes) for a SQL dialect.

Why sqlglot and not hand-written strings: it quotes every identifier for the dialect (a column named
`select`, `a "quoted" name`, `prix €`) and spells functions per dialect; what it does not know (which
aggregates a dialect lacks, its epoch/zone/regex/NaN functions) comes from `_dialects.py`, how a `Col` reads
from `_columns.py`. Each request becomes one or more aliased expressions `m0, m1, ...` of the one scan
(an expression two requests share is computed once); `Scan.decode` turns the row back into one `Measured`
per request, marked exact or not.

What cannot share a one-row aggregate becomes a *probe*, a bounded statement of its own returned beside the
scan: ValueCounts (`GROUP BY value ORDER BY count DESC, value-as-text LIMIT top`, with the distinct count and
the non-NULL total as window functions over the groups), and on dialects that cannot count distinct tuples
in an aggregate, DistinctRows/DuplicateRows (`SELECT COUNT(*) FROM (… GROUP BY columns)`). TopK is a probe
run on demand (`compile_top_k`).

Sampling: every request with `sample` < 1 reads rows where one random number drawn per row (a column of the
one derived table, so that it is drawn once, not once per use) is below its share: requests with the same
share see the same rows, and a smaller share's rows are among a larger one's. Sampled quantiles and
histograms are marked not exact; a histogram's counts are those of the sampled rows.

A float's NaN read of="value" (not "number") is a value like any other for MinMax, Moments, Distinct and
ValueCounts (the dialect orders it: above +Inf in postgres, DuckDB, Snowflake and Spark); quantiles and
histograms leave it out (see `_columns`). Distinct's `bounds` hint is not used: COUNT(DISTINCT) needs none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from mlguard_orchestration.engines.requests import (
    Count,
    Counted,
    CountIf,
    Distinct,
    DistinctRows,
    DuplicateRows,
    Histogram,
    MaxGap,
    Measured,
    MinMax,
    Moments,
    NullCount,
    Quantiles,
    ScanRequest,
    TopK,
    ValueCounts,
)
from mlguard_orchestration.engines.sql._columns import Columns, column, count_where, literal
from mlguard_orchestration.engines.sql._dialects import DIALECTS, Capabilities, render
from mlguard_orchestration.engines.sql._source import Source, describe, rows
from mlguard_orchestration.errors import SpecError

SAMPLE = "mlguard sample"  # the derived table's random column
Read = Callable[[list[Any], list[list[Sequence[Any]]]], Any]  # (the scan's columns, the probes' rows) -> value


def capabilities(dialect: str) -> Capabilities:
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise SpecError(f"unknown SQL dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}") from None


def number(v: Any) -> Any:
    return float(v) if isinstance(v, Decimal) else v


def _ordered(x: exp.Expr, dialect: str, desc: bool = False) -> exp.Ordered:
    # the dialect's own default null placement: otherwise sqlglot emulates it with a CASE sort key, which
    # WITHIN GROUP does not allow (T-SQL, MySQL) and which only clutters a probe's ORDER BY
    small = Dialect.get_or_raise(dialect).NULL_ORDERING == "nulls_are_small"
    return exp.Ordered(this=x, desc=desc, nulls_first=small != desc)


def _quantile(x: exp.Expr, q: float, exact: bool, dialect: str, caps: Capabilities) -> exp.Expr:
    level = exp.Literal.number(q)
    if not exact:
        if caps.approx_quantile_within_group:
            return exp.WithinGroup(this=exp.Anonymous(this=caps.approx_quantile_within_group, expressions=[level]),
                                   expression=exp.Order(expressions=[_ordered(x, dialect)]))
        return exp.ApproxQuantile(this=x, quantile=level)
    if caps.exact_quantile_fn:
        return exp.Anonymous(this=caps.exact_quantile_fn, expressions=[x, level])
    return exp.WithinGroup(this=exp.PercentileCont(this=level), expression=exp.Order(expressions=[_ordered(x, dialect)]))


def _moments(n: Any, a: Any, b: Any, center: float | None) -> tuple[int, float | None, float | None]:
    """(n, mean, sd) from COUNT/AVG/STDDEV_SAMP (center None) or from COUNT and the sums of deviations from
    `center` and of their squares."""
    n = int(n or 0)
    if center is None:
        return n, None if a is None else float(a), None if b is None else float(b)
    if n == 0:
        return 0, None, None
    s1, s2 = float(a), float(b)
    mean = center + s1 / n
    if n < 2:
        return n, mean, None
    var = (s2 - s1 * s1 / n) / (n - 1)
    return n, mean, math.sqrt(var) if var > 0 else var if math.isnan(var) else 0.0  # rounding: never < 0


def _histogram(cumulative: list[Any]) -> tuple[int, ...]:
    """Counts per bin from the counts at or below each edge and the total (last)."""
    at_or_below = [int(v or 0) for v in cumulative]
    return tuple(b - a for a, b in zip([0, *at_or_below[:-1]], at_or_below, strict=True))


def _counted(rows_: Sequence[Sequence[Any]]) -> Counted:
    top = tuple((number(r[0]), int(r[1])) for r in rows_)
    if not rows_:
        return Counted(top=(), distinct=0, other=0)
    total = int(rows_[0][3])
    return Counted(top=top, distinct=int(rows_[0][2]), other=total - sum(n for _, n in top))


@dataclass(frozen=True)
class Answer:
    """How one request reads back: a function of its scan columns and the probes' rows."""

    request: ScanRequest
    read: Read
    exact: bool


@dataclass(frozen=True)
class Scan:
    """The one aggregate statement (`sql`, None when every request is a probe), the probes to run beside it,
    and how to read their rows back (`decode`)."""

    sql: str | None
    probes: tuple[str, ...]
    dialect: str
    answers: tuple[Answer, ...]

    def decode(self, row: Sequence[Any] | None,
               probe_rows: Sequence[Sequence[Sequence[Any]]] = ()) -> dict[ScanRequest, Measured]:
        """`row`: the scan's one row; `probe_rows`: every probe's rows, in the order of `probes`."""
        if len(probe_rows) != len(self.probes):
            raise ValueError(f"{len(self.probes)} probes compiled, {len(probe_rows)} answered")
        got, probed = list(row or ()), [list(r) for r in probe_rows]
        return {a.request: Measured(value=a.read(got, probed), exact=a.exact) for a in self.answers}


class _Builder:
    """Collects a scan's aggregate expressions (deduplicated) and its probes."""

    def __init__(self, source: Source, dialect: str, kinds: Mapping[str, str], limit: int | None) -> None:
        self.source, self.dialect, self.limit = source, dialect, limit
        self.caps = capabilities(dialect)
        self.cols = Columns(dialect, self.caps, kinds, describe(source))
        self.index: dict[exp.Expr, int] = {}  # sqlglot expressions hash and compare by structure
        self.probes: list[str] = []
        self.sampled = False

    def agg(self, *parts: exp.Expr) -> list[int]:
        return [self.index.setdefault(p, len(self.index)) for p in parts]

    def probe(self, query: exp.Select) -> int:
        self.probes.append(query.sql(dialect=self.dialect))
        return len(self.probes) - 1

    def rows(self) -> exp.Expr:
        return rows(self.source, self.dialect, limit=self.limit)

    def in_sample(self, share: float) -> exp.Expr | None:
        if share >= 1:
            return None
        self.sampled = True
        return exp.LT(this=column(SAMPLE), expression=literal(share))

    def groups(self, names: Sequence[str], skip_nulls: bool) -> int:
        """A probe counting the distinct tuples of `names` (GROUP BY: NULLs equal)."""
        keys = [column(n) for n in names]
        inner = exp.select(exp.alias_(exp.Literal.number(1), "one", quoted=True)).from_(self.rows())
        if skip_nulls:
            inner = inner.where(exp.and_(*(exp.not_(exp.Is(this=k.copy(), expression=exp.Null())) for k in keys)))
        inner = inner.group_by(*keys)
        return self.probe(exp.select(exp.Count(this=exp.Star())).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("groups", quoted=True)))))

    def answer(self, r: ScanRequest) -> Answer:
        cols, caps, dialect = self.cols, self.caps, self.dialect
        if isinstance(r, Count):
            (i,) = self.agg(exp.Count(this=exp.Star()))
            return Answer(r, lambda g, p: int(g[i]), True)
        if isinstance(r, NullCount):
            i, j = self.agg(exp.Count(this=exp.Star()), exp.Count(this=cols.col(r.column)))
            return Answer(r, lambda g, p: int(g[i]) - int(g[j]), True)
        if isinstance(r, CountIf):
            (i,) = self.agg(count_where(cols.predicate(r.where)))
            return Answer(r, lambda g, p: int(g[i]), True)
        if isinstance(r, MinMax):
            x = cols.col(r.column)
            boolean = r.column.of == "value" and cols.kind(r.column.name) == "boolean"
            if boolean:  # no MIN(boolean) on postgres or MIN(bit) on SQL Server
                x = exp.Cast(this=x, to=exp.DataType.build("INT"))
            i, j = self.agg(exp.Min(this=x), exp.Max(this=x.copy()))
            back: Callable[[Any], Any] = (lambda v: None if v is None else bool(v)) if boolean else number
            return Answer(r, lambda g, p: (back(g[i]), back(g[j])), True)
        if isinstance(r, Moments):
            x = cols.numeric(r.column, "Moments")
            if r.center == 0.0:  # no typical value given: the engine's own stable mean and deviation
                sd = (exp.Anonymous(this=caps.stddev_fn, expressions=[x.copy()]) if caps.stddev_fn
                      else exp.StddevSamp(this=x.copy()))
                i, j, k = self.agg(exp.Count(this=x), exp.Avg(this=x.copy()), sd)
                return Answer(r, lambda g, p: _moments(g[i], g[j], g[k], None), True)
            c = r.center
            dev = (exp.Sub if c > 0 else exp.Add)(this=x, expression=literal(abs(c)))
            i, j, k = self.agg(exp.Count(this=x.copy()), exp.Sum(this=dev),
                               exp.Sum(this=exp.Mul(this=exp.paren(dev.copy()), expression=exp.paren(dev.copy()))))
            return Answer(r, lambda g, p: _moments(g[i], g[j], g[k], c), True)
        if isinstance(r, Quantiles):
            exact = r.exact or not caps.approx_quantile
            if exact and not caps.exact_quantile:
                what = "an exact quantile" if r.exact else "a quantile (exact or approximate)"
                raise SpecError(f"{dialect} has no aggregate for {what} of {r.column.name!r}"
                                + ("; ask for exact=False" if r.exact and caps.approx_quantile else ""))
            x, keep = cols.numeric(r.column, "Quantiles", finite=True), self.in_sample(r.sample)
            if keep is not None:
                x = exp.Case(ifs=[exp.If(this=keep, true=x)])
            idx = self.agg(*(_quantile(x.copy(), q, exact, dialect, caps) for q in r.levels))
            return Answer(r, lambda g, p: tuple(number(g[i]) for i in idx), exact and keep is None)
        if isinstance(r, Distinct):
            x = cols.col(r.column)
            if r.exact or not caps.approx_distinct:
                (i,) = self.agg(exp.Count(this=exp.Distinct(expressions=[x])))
                return Answer(r, lambda g, p: int(g[i]), True)
            approx = (exp.Anonymous(this=caps.approx_distinct_fn, expressions=[x]) if caps.approx_distinct_fn
                      else exp.ApproxDistinct(this=x))
            (i,) = self.agg(approx)
            return Answer(r, lambda g, p: int(g[i]), False)
        if isinstance(r, Histogram):
            x, keep = cols.numeric(r.column, "Histogram", finite=True), self.in_sample(r.sample)
            conds: list[exp.Expr] = [exp.LTE(this=x.copy(), expression=literal(e)) for e in r.edges]
            if keep is not None:
                conds = [exp.and_(keep.copy(), cond) for cond in conds]
                total = exp.Count(this=exp.Case(ifs=[exp.If(this=keep.copy(), true=x.copy())]))
            else:
                total = exp.Count(this=x.copy())
            idx = self.agg(*(count_where(cond) for cond in conds), total)
            return Answer(r, lambda g, p: _histogram([g[i] for i in idx]), keep is None)
        if isinstance(r, MaxGap):
            gap = exp.Sub(this=cols.numeric(r.left, "MaxGap"), expression=cols.numeric(r.right, "MaxGap"))
            (i,) = self.agg(exp.Max(this=gap))
            return Answer(r, lambda g, p: None if g[i] is None else float(g[i]), True)
        if isinstance(r, DistinctRows | DuplicateRows):
            return self._tuples(r)
        if isinstance(r, ValueCounts):
            return self._value_counts(r)
        raise TypeError(f"not a scan request: {r!r} (TopK is compiled by compile_top_k)")

    def _tuples(self, r: DistinctRows | DuplicateRows) -> Answer:
        for name in r.columns:
            self.cols.kind(name)  # an unknown column is a SpecError naming the close ones
        keys = [column(n) for n in r.columns]
        how = self.caps.row_distinct
        if isinstance(r, DistinctRows):
            if len(keys) == 1 or how == "args":
                (i,) = self.agg(exp.Count(this=exp.Distinct(expressions=keys)))
                return Answer(r, lambda g, p: int(g[i]), True)
            if how == "row":
                whole = exp.and_(*(exp.not_(exp.Is(this=k.copy(), expression=exp.Null())) for k in keys))
                (i,) = self.agg(exp.Count(this=exp.Distinct(expressions=[
                    exp.Case(ifs=[exp.If(this=whole, true=exp.Tuple(expressions=keys))])])))
                return Answer(r, lambda g, p: int(g[i]), True)
            k = self.groups(r.columns, skip_nulls=True)
            return Answer(r, lambda g, p: int(p[k][0][0]), True)
        if len(keys) == 1:  # the NULLs, if any, are one more distinct value
            n, d, nn = self.agg(exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=keys)),
                                exp.Count(this=keys[0].copy()))
            return Answer(r, lambda g, p: int(g[n]) - int(g[d]) - (1 if int(g[nn]) < int(g[n]) else 0), True)
        if how == "row":
            n, d = self.agg(exp.Count(this=exp.Star()),
                            exp.Count(this=exp.Distinct(expressions=[exp.Tuple(expressions=keys)])))
            return Answer(r, lambda g, p: int(g[n]) - int(g[d]), True)
        (n,) = self.agg(exp.Count(this=exp.Star()))
        k = self.groups(r.columns, skip_nulls=False)
        return Answer(r, lambda g, p: int(g[n]) - int(p[k][0][0]), True)

    def _value_counts(self, r: ValueCounts) -> Answer:
        x = self.cols.col(r.column)
        as_text = x.copy() if self.cols.kind(r.column.name) == "string" and r.column.of in ("value", "text") \
            else self.cols.text(x.copy())
        n = exp.Count(this=exp.Star())
        query = (exp.select(exp.alias_(x, "value", quoted=True), exp.alias_(n, "n", quoted=True),
                            exp.alias_(exp.Window(this=n.copy()), "distinct", quoted=True),
                            exp.alias_(exp.Window(this=exp.Sum(this=n.copy())), "total", quoted=True),
                            exp.alias_(as_text, "text", quoted=True))
                 .from_(self.rows()).where(exp.not_(exp.Is(this=x.copy(), expression=exp.Null())))
                 .group_by(x.copy())
                 .order_by(_ordered(exp.column(exp.to_identifier("n", quoted=True)), self.dialect, desc=True),
                           _ordered(exp.column(exp.to_identifier("text", quoted=True)), self.dialect))
                 .limit(r.top))
        k = self.probe(query)
        return Answer(r, lambda g, p: _counted(p[k]), True)


def compile_scan(table: Source, requests: Sequence[ScanRequest], dialect: str, kinds: Mapping[str, str], *,
                 limit: int | None = None) -> Scan:
    """Every request on `table` (a name, a (catalog,) schema, name path, or a SELECT as text) in one SELECT
    for `dialect`, plus the probes some requests need; `kinds` maps each column to its logical kind;
    `limit`: aggregate the first `limit` rows only (a head sample: without an ORDER BY, which rows those
    are is the database's choice, and the scan and its probes may not see the same ones)."""
    if not requests:
        raise SpecError("nothing to compute: no metric requests")
    b = _Builder(table, dialect, kinds, limit)
    answers = tuple(b.answer(r) for r in dict.fromkeys(requests))
    sql = None
    if b.index:
        extra = [exp.alias_(render(b.caps.rand, dialect), SAMPLE, quoted=True)] if b.sampled else []
        columns = [exp.alias_(p, f"m{i}", quoted=True) for p, i in b.index.items()]
        sql = exp.select(*columns).from_(rows(table, dialect, limit=limit, extra=extra)).sql(dialect=dialect)
    return Scan(sql=sql, probes=tuple(b.probes), dialect=dialect, answers=answers)


def compile_top_k(table: Source, request: TopK, dialect: str, kinds: Mapping[str, str], *,
                  limit: int | None = None) -> str:
    """SELECT value-as-text, COUNT(*) … [WHERE the request's predicate] GROUP BY value ORDER BY count DESC,
    value LIMIT k (TOP k on T-SQL): the k most frequent non-NULL values as text, with their counts."""
    caps = capabilities(dialect)
    cols = Columns(dialect, caps, kinds, describe(table))
    x = cols.col(request.column)
    if not (cols.kind(request.column.name) == "string" and request.column.of in ("value", "text")):
        x = cols.text(x)
    n = exp.to_identifier("n", quoted=True)
    cond: exp.Expr = exp.not_(exp.Is(this=x.copy(), expression=exp.Null()))
    if request.where is not None:
        cond = exp.and_(cond, exp.paren(cols.predicate(request.where)))
    query = (exp.select(exp.alias_(x, "value", quoted=True), exp.alias_(exp.Count(this=exp.Star()), n))
             .from_(rows(table, dialect, limit=limit)).where(cond)
             .group_by(x.copy())
             .order_by(_ordered(exp.column(n.copy()), dialect, desc=True), _ordered(x.copy(), dialect))
             .limit(request.k))
    return query.sql(dialect=dialect)
