"""A `Col` and a predicate as sqlglot expressions for one dialect, given the columns' logical kinds.

Why kinds: the same `Col(x, of="epoch")` is a different expression on a zone-aware timestamp, a naive one,
a date or text, and the SQL engine cannot ask the database mid-compile. The caller passes what
`SqlEngine.columns` (or its own catalogue) knows.

Semantics decided here, the same on every dialect:
- of="number": a float's NaN and ±Inf are NULL; integers and decimals are cast to DOUBLE; a boolean is 0/1.
- of="value" in a comparison (Compare, CompareColumns, IsIn): a float's NaN satisfies none, `!=` included,
  and so satisfies its Not (IEEE's answer, and the embedded engine's), although postgres, DuckDB, Snowflake
  and Spark order NaN above every number and BigQuery and Trino make `NaN != 1` true. ±Inf compare as the
  infinities they are. A NULL satisfies neither a comparison nor its Not (SQL's unknown).
- Quantiles and Histogram read a float of="value" as "number" (finite values only: NaN has no place in an
  order); MinMax, Moments, Distinct and ValueCounts read it as stored.
- of="epoch": a number is taken as seconds already; text names its offset (then it is that instant) or is
  local time in `zone`; text that is no timestamp is NULL. of="hour": the UTC hour, from the epoch by
  floor arithmetic (no per-dialect hour function, right for instants before 1970).
- IsNaN/IsInf are FALSE on any column that is not a float (a decimal too on postgres, whose NUMERIC has
  NaN and ±Infinity), and everywhere on MySQL and SQL Server, whose floats cannot hold them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from mlguard_orchestration.engines.requests import (
    And,
    Col,
    Compare,
    CompareColumns,
    IsIn,
    IsInf,
    IsNaN,
    IsNull,
    Matches,
    Not,
    Or,
    Predicate,
)
from mlguard_orchestration.engines.sql._dialects import OFFSET_RE, TIMESTAMP_RE, Capabilities, render
from mlguard_orchestration.errors import SpecError, missing_column_error

COMPARE = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
NUMERIC_KINDS = frozenset({"integer", "float", "decimal"})
NUMERIC_OF = frozenset({"number", "epoch", "hour", "length"})


def column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def literal(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def count_where(cond: exp.Expr) -> exp.Expr:
    """COUNT(CASE WHEN cond THEN 1 END): portable, and 0 (not NULL) on an empty table."""
    return exp.Count(this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))]))


class Columns:
    """Expressions for one dialect over columns of known kinds."""

    def __init__(self, dialect: str, caps: Capabilities, kinds: Mapping[str, str], where: str) -> None:
        self.dialect, self.caps, self.kinds, self.where = dialect, caps, kinds, where

    def kind(self, name: str) -> str:
        try:
            return self.kinds[name]
        except KeyError:
            raise missing_column_error(name, self.kinds, self.where) from None

    def _t(self, template: str, **values: exp.Expr) -> exp.Expr:
        return render(template, self.dialect, **values)

    def _type(self, name: str) -> exp.DataType:
        return exp.DataType.build(name, dialect=self.dialect)

    def double(self, x: exp.Expr) -> exp.Expr:
        to = self._type("DOUBLE")
        return x if isinstance(x, exp.Cast) and x.to == to else exp.Cast(this=x, to=to)

    def text(self, x: exp.Expr) -> exp.Expr:
        return exp.Cast(this=x, to=self._type(self.caps.text_type))

    def _nan_capable(self, kind: str) -> bool:
        return self.caps.has_nan and (kind == "float" or (kind == "decimal" and self.caps.decimal_nan))

    def is_nan(self, x: exp.Expr) -> exp.Expr:
        return self._t(self.caps.is_nan, x=x)

    def is_inf(self, x: exp.Expr) -> exp.Expr:
        return self._t(self.caps.is_inf, x=x)

    def is_finite(self, x: exp.Expr) -> exp.Expr:
        if self.caps.is_finite:
            return self._t(self.caps.is_finite, x=x)
        return exp.and_(exp.not_(exp.paren(self.is_nan(x))), exp.not_(exp.paren(self.is_inf(x))))

    def _zone(self, zone: str) -> exp.Expr:
        return exp.Literal.string(self.caps.utc if zone.upper() == "UTC" else zone)

    def _epoch(self, x: exp.Expr, kind: str, c: Col) -> exp.Expr:
        if kind == "timestamp_tz":
            return self._t(self.caps.epoch_tz, x=x)
        if kind in ("timestamp", "date"):
            if kind == "date":
                if c.end_of_day:
                    x = exp.DateAdd(this=x, expression=exp.Literal.number(1), unit=exp.var("DAY"))
                x = exp.Cast(this=x, to=self._type(self.caps.naive_type))
            return self._t(self.caps.epoch_local, x=x, z=self._zone(c.zone))
        if kind == "string":
            anchored = self.caps.regex_anchors[0] + TIMESTAMP_RE + self.caps.regex_anchors[1]
            p = exp.Literal.string(anchored)
            with_offset = self._t(self.caps.epoch_tz, x=self._t(self.caps.parse_tz, x=x, p=p))
            local = self._t(self.caps.epoch_local, x=self._t(self.caps.parse_naive, x=x, p=p),
                            z=self._zone(c.zone))
            return exp.Case(ifs=[exp.If(this=self.matches(x, OFFSET_RE), true=with_offset)], default=local)
        if kind in NUMERIC_KINDS:
            return self.number(x, kind, c)
        raise SpecError(f"column {c.name!r} ({kind}) cannot be read as a time (of='epoch'/'hour')")

    def number(self, x: exp.Expr, kind: str, c: Col) -> exp.Expr:
        if kind == "boolean":
            return self.double(exp.Cast(this=x, to=self._type("INT")))
        if kind not in NUMERIC_KINDS:
            raise SpecError(f"column {c.name!r} ({kind}) cannot be read as a number (of='number')")
        out = x if kind == "float" else self.double(x)
        if self._nan_capable(kind):
            return exp.Case(ifs=[exp.If(this=self.is_finite(x), true=out)])
        return out

    def col(self, c: Col) -> exp.Expr:
        """The column seen as `c.of` says (see the module docstring)."""
        kind, x = self.kind(c.name), column(c.name)
        if c.of == "value":
            return x
        if c.of == "number":
            return self.number(x, kind, c)
        if c.of == "text":
            return x if kind == "string" else self.text(x)
        if c.of == "length":
            return exp.Length(this=x if kind == "string" else self.text(x))
        epoch = self.double(self._epoch(x, kind, c))
        if c.of == "epoch":
            return epoch
        day = exp.Mul(this=exp.Floor(this=exp.Div(this=epoch.copy(), expression=exp.Literal.number(86400))),
                      expression=exp.Literal.number(86400))
        return exp.Floor(this=exp.Div(this=exp.paren(exp.Sub(this=epoch, expression=day)),
                                      expression=exp.Literal.number(3600)))

    def numeric(self, c: Col, what: str, *, finite: bool = False) -> exp.Expr:
        """`c` as a DOUBLE for an aggregate that needs numbers (moments, quantiles, histograms, gaps);
        `finite`: a float of="value" is read as "number"."""
        kind = self.kind(c.name)
        if c.of in NUMERIC_OF:
            return self.col(c)
        if c.of == "value" and kind in NUMERIC_KINDS:
            if finite:
                return self.number(column(c.name), kind, c)
            return self.col(c) if kind == "float" else self.double(self.col(c))
        raise SpecError(f"{what} needs numbers: column {c.name!r} is {kind} as {c.of!r}; ask for it "
                        "of='number' or of='epoch'")

    def _not_nan(self, cond: exp.Expr, *cols: Col) -> exp.Expr:
        """`cond`, made false where a float read of="value" is NaN."""
        guards = [exp.not_(exp.paren(self.is_nan(column(c.name)))) for c in cols
                  if c.of == "value" and self._nan_capable(self.kind(c.name))]
        return exp.and_(exp.paren(cond), *guards) if guards else cond

    def matches(self, x: exp.Expr, regex: str) -> exp.Expr:
        lo, hi = self.caps.regex_anchors
        return self._t(self.caps.regex, x=x, p=exp.Literal.string(lo + regex + hi))

    def predicate(self, p: Predicate) -> exp.Expr:
        """A typed predicate as a condition (parenthesised where it nests); NULL never satisfies a leaf."""
        if isinstance(p, Compare):
            return self._not_nan(COMPARE[p.op](this=self.col(p.column), expression=literal(p.value)), p.column)
        if isinstance(p, CompareColumns):
            left = self.col(p.left)
            if p.shift:
                left = exp.Add(this=left, expression=literal(p.shift))
            return self._not_nan(COMPARE[p.op](this=left, expression=self.col(p.right)), p.left, p.right)
        if isinstance(p, IsNull):
            return exp.Is(this=self.col(p.column), expression=exp.Null())
        if isinstance(p, IsIn):
            if not p.values:
                return exp.false()
            return self._not_nan(exp.In(this=self.col(p.column), expressions=[literal(v) for v in p.values]), p.column)
        if isinstance(p, IsNaN | IsInf):
            kind = self.kind(p.column)
            if not self._nan_capable(kind):
                return exp.false()
            x = column(p.column)
            return self.is_nan(x) if isinstance(p, IsNaN) else self.is_inf(x)
        if isinstance(p, Matches):
            x = column(p.column)
            return self.matches(x if self.kind(p.column) == "string" else self.text(x), p.regex)
        if isinstance(p, And):
            return exp.and_(*(exp.paren(self.predicate(i), copy=False) for i in p.items))
        if isinstance(p, Or):
            return exp.or_(*(exp.paren(self.predicate(i), copy=False) for i in p.items))
        if isinstance(p, Not):
            return exp.not_(exp.paren(self.predicate(p.item), copy=False))
        raise TypeError(f"not a predicate: {p!r}")
