"""Compile a table's metric requests into ONE aggregate statement for a SQL dialect, through sqlglot.

Why sqlglot and not hand-written strings: it quotes every identifier for the dialect (a column named
`select`, `a "quoted" name`, `prix €`) and spells functions per dialect; what it does not know (which
aggregates a dialect lacks) comes from `_dialects.py`. Each request becomes one or more aliased expressions
`m0, m1, ...`; `Scan.decode(row)` turns the row back into one `Measured` per request, marked exact or not.
TopK is a probe of its own (`compile_top_k`): a GROUP BY cannot share the one-row scan.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from mlguard_orchestration.engines.requests import (
    And,
    Compare,
    Count,
    CountIf,
    Distinct,
    Histogram,
    IsIn,
    IsNull,
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
)
from mlguard_orchestration.engines.sql._dialects import DIALECTS, Capabilities
from mlguard_orchestration.errors import SpecError

_COMPARE = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


def capabilities(dialect: str) -> Capabilities:
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise SpecError(f"unknown SQL dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}") from None


def column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def table_ref(table: str | Sequence[str]) -> exp.Table:
    """A table from a name or a (catalog,) schema, name path; every part quoted as given, none split on dots."""
    parts = [table] if isinstance(table, str) else list(table)
    if not 1 <= len(parts) <= 3:
        raise SpecError(f"a table is a name or a (catalog, schema, name) path, got {table!r}")
    idents = [exp.to_identifier(p, quoted=True) for p in parts]
    return exp.Table(this=idents[-1], db=idents[-2] if len(idents) > 1 else None,
                     catalog=idents[-3] if len(idents) > 2 else None)


def literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def predicate(p: Predicate) -> exp.Expr:
    """A typed predicate as a sqlglot condition (parenthesised where it nests)."""
    if isinstance(p, Compare):
        return _COMPARE[p.op](this=column(p.column), expression=literal(p.value))
    if isinstance(p, IsNull):
        return exp.Is(this=column(p.column), expression=exp.Null())
    if isinstance(p, IsIn):
        return exp.In(this=column(p.column), expressions=[literal(v) for v in p.values]) if p.values else exp.false()
    if isinstance(p, And):
        return exp.and_(*(exp.paren(predicate(i), copy=False) for i in p.items))
    if isinstance(p, Or):
        return exp.or_(*(exp.paren(predicate(i), copy=False) for i in p.items))
    if isinstance(p, Not):
        return exp.not_(exp.paren(predicate(p.item), copy=False))
    raise TypeError(f"not a predicate: {p!r}")


def count_where(cond: exp.Expr) -> exp.Expr:
    """COUNT(CASE WHEN cond THEN 1 END): portable, and 0 (not NULL) on an empty table."""
    return exp.Count(this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))]))


def _ordered(x: exp.Expr, dialect: str) -> exp.Ordered:
    # the dialect's own default null placement: otherwise sqlglot emulates it with a CASE sort key, which
    # WITHIN GROUP does not allow (T-SQL, MySQL)
    return exp.Ordered(this=x, nulls_first=Dialect.get_or_raise(dialect).NULL_ORDERING == "nulls_are_small")


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


def _parts(r: ScanRequest, dialect: str, caps: Capabilities) -> tuple[list[exp.Expr], bool]:
    """The expressions one request needs, and whether its answer is exact."""
    if isinstance(r, Count):
        return [exp.Count(this=exp.Star())], True
    if isinstance(r, NullCount):
        return [count_where(exp.Is(this=column(r.column), expression=exp.Null()))], True
    if isinstance(r, CountIf):
        return [count_where(predicate(r.where))], True
    if isinstance(r, MinMax):
        return [exp.Min(this=column(r.column)), exp.Max(this=column(r.column))], True
    if isinstance(r, Moments):
        x = column(r.column)
        sd = exp.Anonymous(this=caps.stddev_fn, expressions=[x.copy()]) if caps.stddev_fn else exp.StddevSamp(this=x.copy())
        return [exp.Avg(this=x), sd], True
    if isinstance(r, Quantiles):
        exact = r.exact or not caps.approx_quantile
        if exact and not caps.exact_quantile:
            what = "an exact quantile" if r.exact else "a quantile (exact or approximate)"
            raise SpecError(f"{dialect} has no aggregate for {what} of {r.column!r}"
                            + ("; ask for exact=False" if r.exact and caps.approx_quantile else ""))
        return [_quantile(column(r.column), q, exact, dialect, caps) for q in r.levels], exact
    if isinstance(r, Distinct):
        x = column(r.column)
        if r.exact or not caps.approx_distinct:
            return [exp.Count(this=exp.Distinct(expressions=[x]))], True
        if caps.approx_distinct_fn:
            return [exp.Anonymous(this=caps.approx_distinct_fn, expressions=[x])], False
        return [exp.ApproxDistinct(this=x)], False
    if isinstance(r, Histogram):
        x, edges = column(r.column), r.edges
        out = []
        for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
            upper = (exp.LTE if i == len(edges) - 2 else exp.LT)(this=x.copy(), expression=literal(hi))
            out.append(count_where(exp.and_(exp.GTE(this=x.copy(), expression=literal(lo)), upper)))
        return out, True
    raise TypeError(f"not a scan request: {r!r} (TopK is compiled by compile_top_k)")


def _number(v: Any) -> Any:
    return float(v) if isinstance(v, Decimal) else v


@dataclass(frozen=True)
class Scan:
    """One compiled statement and how to read its single row back."""

    sql: str
    dialect: str
    layout: tuple[tuple[ScanRequest, tuple[int, ...], bool], ...]  # (request, its columns, exact)

    def decode(self, row: Sequence[Any]) -> dict[ScanRequest, Measured]:
        out: dict[ScanRequest, Measured] = {}
        for request, columns, exact in self.layout:
            got = [_number(row[i]) for i in columns]
            value: Any = tuple(got) if len(got) > 1 or isinstance(request, Quantiles | Histogram) else got[0]
            out[request] = Measured(value=value, exact=exact)
        return out


def compile_scan(table: str | Sequence[str], requests: Sequence[ScanRequest], dialect: str) -> Scan:
    """Every request on `table` in one SELECT for `dialect`; an expression two requests share (an approximate
    quantile computed exactly beside the exact one) is computed once."""
    caps = capabilities(dialect)
    if not requests:
        raise SpecError("nothing to compute: no metric requests")
    index: dict[exp.Expr, int] = {}  # sqlglot expressions hash and compare by structure
    layout = []
    for request in dict.fromkeys(requests):
        parts, exact = _parts(request, dialect, caps)
        layout.append((request, tuple(index.setdefault(p, len(index)) for p in parts), exact))
    columns = [exp.alias_(p, f"m{i}", quoted=True) for p, i in index.items()]
    sql = exp.select(*columns).from_(table_ref(table)).sql(dialect=dialect)
    return Scan(sql=sql, dialect=dialect, layout=tuple(layout))


def compile_top_k(table: str | Sequence[str], request: TopK, dialect: str) -> str:
    """SELECT value, COUNT(*) ... GROUP BY value ORDER BY count DESC, value LIMIT k (TOP k on T-SQL)."""
    capabilities(dialect)
    x, n = column(request.column), exp.to_identifier("n", quoted=True)
    query = (exp.select(exp.alias_(x, "value", quoted=True), exp.alias_(exp.Count(this=exp.Star()), n))
             .from_(table_ref(table)).where(exp.not_(exp.Is(this=x.copy(), expression=exp.Null())))
             .group_by(x.copy())
             .order_by(exp.Ordered(this=exp.column(n.copy()), desc=True), exp.Ordered(this=x.copy()))
             .limit(request.k))
    return query.sql(dialect=dialect)
