"""Metric requests: what a check needs from a table, said without SQL (issue 14, docs/engines.md).

A check asks for metrics as small frozen, hashable values; an engine (DuckDB, a SQL dialect through sqlglot,
Spark) computes every scan request on a table in one scan and answers each with a `Measured` value. Nothing
here knows an engine: adding one must not touch a request or a check.

What is measured is a `Col`: a column as it is, or seen a stated way (`of`): as a finite number (NaN and ±Inf
become NULL), as text, as epoch seconds in UTC (naive timestamps and dates read in `zone`; text parsed as a
timestamp), as its UTC hour of day, or as its length. A plain string is shorthand for `Col(name)`.

    Count()                                   rows                                              -> int
    NullCount(c)                              rows where c IS NULL                              -> int
    CountIf(predicate)                        rows where a typed predicate holds                -> int
    MinMax(c)                                 (min, max), NULLs ignored                         -> (v, v)
    Moments(c, center=)                       (n, mean, sample sd) of the non-NULL values       -> (int, f, f)
    Quantiles(c, levels, exact=, sample=)     one value per level                               -> (f, ...)
    Distinct(c, exact=, bounds=)              distinct non-NULL values (a sketch when not exact) -> int
    Histogram(c, edges, sample=)              counts in (-inf, e0], (e0, e1], ..., (en, inf)    -> (int, ...)
    MaxGap(a, b)                              largest a - b among rows with both                -> f | None
    DistinctRows(columns)                     distinct tuples among rows with no NULL in them   -> int
    DuplicateRows(columns)                    rows that repeat an earlier row on `columns`      -> int
    ValueCounts(c, top=)                      a probe: the `top` most frequent values           -> Counted
    TopK(c, k, where=)                        a probe: k most frequent values (where the predicate holds)

`sample` (a share of the rows, 1 = all) says that a uniform sample is enough: an engine may compute the
metric on one row sample it shares between every request with the same share (so a column's quantiles and
bins see the same rows). Predicates are a small typed tree (Compare, CompareColumns, IsNull, IsIn, IsNaN,
IsInf, Matches, And, Or, Not) so that every engine can compile them, every identifier is quoted by the
engine, and no user text is ever spliced into SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = bool | int | float | str
Of = Literal["value", "number", "text", "epoch", "hour", "length"]


def _finite(value: Scalar) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a literal must be finite, got {value!r} (ask for NaN/Inf with a metric of their own)")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **fields: Any) -> None:
        """Fields by keyword: each request's own `__init__` takes its usual arguments positionally too."""
        super().__init__(**fields)


class Col(_Frozen):
    """A column as a metric sees it.

    of="value": as stored. "number": a DOUBLE with NaN and ±Inf as NULL (text parsed as a number, blanks around
    it ignored, NULL where it does not parse). "text": as a string. "epoch":
    seconds since 1970 in UTC — a zone-aware timestamp converted, a naive one or a DATE read as local time in
    `zone` (a DATE at its midnight, or at the next one with `end_of_day`), text parsed as a timestamp (NULL
    where it does not parse). "hour": the UTC hour of day of that instant. "length": characters of a string.
    """

    name: str
    of: Of = "value"
    zone: str = "UTC"
    end_of_day: bool = False

    def __init__(self, name: str, of: Of = "value", **kw: Any) -> None:
        super().__init__(name=name, of=of, **kw)


def _col(v: Any) -> Any:
    return Col(v) if isinstance(v, str) else v


ColumnLike = Col | str


# -- predicates (what CountIf counts) ---------------------------------------------------------------------


class Compare(_Frozen):
    """`column op value`; a NULL never satisfies it (SQL's three-valued logic, on every engine)."""

    predicate: Literal["compare"] = "compare"
    column: Col
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: Scalar

    def __init__(self, column: ColumnLike, op: str, value: Scalar, **kw: Any) -> None:
        super().__init__(column=_col(column), op=op, value=value, **kw)

    @field_validator("value")
    @classmethod
    def _check_value(cls, v: Scalar) -> Scalar:
        return _finite(v)


class CompareColumns(_Frozen):
    """`left + shift op right` between two columns of the same row (`shift` in left's unit: seconds for
    epochs); NULL on either side never satisfies it."""

    predicate: Literal["compare_columns"] = "compare_columns"
    left: Col
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    right: Col
    shift: float = 0.0

    def __init__(self, left: ColumnLike, op: str, right: ColumnLike, shift: float = 0.0, **kw: Any) -> None:
        super().__init__(left=_col(left), op=op, right=_col(right), shift=shift, **kw)


class IsNull(_Frozen):
    predicate: Literal["is_null"] = "is_null"
    column: Col

    def __init__(self, column: ColumnLike, **kw: Any) -> None:
        super().__init__(column=_col(column), **kw)


class IsIn(_Frozen):
    """`column IN (values)`; an empty tuple matches nothing, a NULL never matches."""

    predicate: Literal["is_in"] = "is_in"
    column: Col
    values: tuple[Scalar, ...]

    def __init__(self, column: ColumnLike, values: tuple[Scalar, ...] | list[Scalar], **kw: Any) -> None:
        super().__init__(column=_col(column), values=tuple(values), **kw)

    @field_validator("values")
    @classmethod
    def _check_values(cls, v: tuple[Scalar, ...]) -> tuple[Scalar, ...]:
        return tuple(_finite(x) for x in v)


class IsNaN(_Frozen):
    """A float value that is NaN (false for NULL and for non-float columns)."""

    predicate: Literal["is_nan"] = "is_nan"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class IsInf(_Frozen):
    """A float value that is +Inf or -Inf."""

    predicate: Literal["is_inf"] = "is_inf"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class Matches(_Frozen):
    """The value, as text, matches `regex` in full (RE2 syntax, the common subset of the engines' regexes)."""

    predicate: Literal["matches"] = "matches"
    column: str
    regex: str

    def __init__(self, column: str, regex: str, **kw: Any) -> None:
        super().__init__(column=column, regex=regex, **kw)


class And(_Frozen):
    predicate: Literal["and"] = "and"
    items: tuple[Predicate, ...] = Field(min_length=1)

    def __init__(self, *items: Predicate, **kw: Any) -> None:
        super().__init__(items=kw.pop("items", items), **kw)


class Or(_Frozen):
    predicate: Literal["or"] = "or"
    items: tuple[Predicate, ...] = Field(min_length=1)

    def __init__(self, *items: Predicate, **kw: Any) -> None:
        super().__init__(items=kw.pop("items", items), **kw)


class Not(_Frozen):
    predicate: Literal["not"] = "not"
    item: Predicate

    def __init__(self, item: Predicate | None = None, **kw: Any) -> None:
        super().__init__(item=kw.pop("item", item), **kw)


Predicate = Annotated[Compare | CompareColumns | IsNull | IsIn | IsNaN | IsInf | Matches | And | Or | Not,
                      Field(discriminator="predicate")]
for _model in (And, Or, Not):
    _model.model_rebuild()


def columns_of(p: Predicate) -> list[Col]:
    """Every column a predicate reads."""
    if isinstance(p, Compare | IsNull | IsIn):
        return [p.column]
    if isinstance(p, IsNaN | IsInf | Matches):
        return [Col(p.column)]
    if isinstance(p, CompareColumns):
        return [p.left, p.right]
    if isinstance(p, And | Or):
        return [c for item in p.items for c in columns_of(item)]
    return columns_of(p.item)


# -- metric requests --------------------------------------------------------------------------------------


class Count(_Frozen):
    metric: Literal["count"] = "count"


class NullCount(_Frozen):
    metric: Literal["null_count"] = "null_count"
    column: Col

    def __init__(self, column: ColumnLike, **kw: Any) -> None:
        super().__init__(column=_col(column), **kw)


class CountIf(_Frozen):
    metric: Literal["count_if"] = "count_if"
    where: Predicate

    def __init__(self, where: Predicate | None = None, **kw: Any) -> None:
        super().__init__(where=kw.pop("where", where), **kw)


class MinMax(_Frozen):
    metric: Literal["min_max"] = "min_max"
    column: Col

    def __init__(self, column: ColumnLike, **kw: Any) -> None:
        super().__init__(column=_col(column), **kw)


class Moments(_Frozen):
    """(n, mean, sample standard deviation (n - 1)) of the non-NULL values. `center`, a typical value (a
    reference's mean), lets an engine sum deviations from it: cheaper than avg/stddev and as stable."""

    metric: Literal["moments"] = "moments"
    column: Col
    center: float = 0.0

    def __init__(self, column: ColumnLike, center: float = 0.0, **kw: Any) -> None:
        super().__init__(column=_col(column), center=center, **kw)

    @field_validator("center")
    @classmethod
    def _check_center(cls, v: float) -> float:
        return float(_finite(v))


class Quantiles(_Frozen):
    """Continuous (interpolated) quantiles at `levels`; `exact=False` lets the engine use a sketch, `sample`
    a uniform row sample of that share."""

    metric: Literal["quantiles"] = "quantiles"
    column: Col
    levels: tuple[float, ...] = Field(min_length=1)
    exact: bool = True
    sample: float = Field(1.0, gt=0.0, le=1.0)

    def __init__(self, column: ColumnLike, levels: Sequence[float], exact: bool = True,
                 **kw: Any) -> None:
        super().__init__(column=_col(column), levels=tuple(levels), exact=exact, **kw)

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= q <= 1 for q in v):
            raise ValueError(f"quantile levels must lie in [0, 1], got {v}")
        return v


class Distinct(_Frozen):
    """Number of distinct non-NULL values; `exact=False` lets the engine use a sketch (HyperLogLog).
    `bounds`, the [min, max] of an integer column when known, lets an engine count exactly with a bitmap."""

    metric: Literal["distinct"] = "distinct"
    column: Col
    exact: bool = True
    bounds: tuple[int, int] | None = None

    def __init__(self, column: ColumnLike, exact: bool = True, **kw: Any) -> None:
        super().__init__(column=_col(column), exact=exact, **kw)


class Histogram(_Frozen):
    """Counts of the non-NULL values in (-inf, e0], (e0, e1], ..., (e(n-1), en], (en, inf): len(edges) + 1
    counts, upper edges closed (an integer column binned on half-integers never sits on an edge)."""

    metric: Literal["histogram"] = "histogram"
    column: Col
    edges: tuple[float, ...] = Field(min_length=1)
    sample: float = Field(1.0, gt=0.0, le=1.0)

    def __init__(self, column: ColumnLike, edges: Sequence[float], **kw: Any) -> None:
        super().__init__(column=_col(column), edges=tuple(float(e) for e in edges), **kw)

    @model_validator(mode="after")
    def _check_edges(self) -> Histogram:
        if any(not math.isfinite(e) for e in self.edges) or any(a >= b for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"histogram edges must be finite and strictly increasing, got {self.edges}")
        return self


class MaxGap(_Frozen):
    """The largest `left - right` over rows where both are non-NULL (in their unit: seconds for epochs), or
    None when no row has both."""

    metric: Literal["max_gap"] = "max_gap"
    left: Col
    right: Col

    def __init__(self, left: ColumnLike, right: ColumnLike, **kw: Any) -> None:
        super().__init__(left=_col(left), right=_col(right), **kw)


class DistinctRows(_Frozen):
    """Distinct tuples of `columns` among the rows where none of them is NULL."""

    metric: Literal["distinct_rows"] = "distinct_rows"
    columns: tuple[str, ...] = Field(min_length=1)

    def __init__(self, columns: tuple[str, ...] | list[str], **kw: Any) -> None:
        super().__init__(columns=tuple(columns), **kw)


class DuplicateRows(_Frozen):
    """Rows that repeat another row on `columns` (rows minus distinct tuples; NULLs compare equal here)."""

    metric: Literal["duplicate_rows"] = "duplicate_rows"
    columns: tuple[str, ...] = Field(min_length=1)

    def __init__(self, columns: tuple[str, ...] | list[str], **kw: Any) -> None:
        super().__init__(columns=tuple(columns), **kw)


class ValueCounts(_Frozen):
    """The `top` most frequent non-NULL values of a column, how many distinct values it has, and how many
    values are not among the top: a categorical column's profile. Answered as `Counted`."""

    metric: Literal["value_counts"] = "value_counts"
    column: Col
    top: int = Field(100, ge=1, le=10_000)

    def __init__(self, column: ColumnLike, top: int = 100, **kw: Any) -> None:
        super().__init__(column=_col(column), top=top, **kw)


class TopK(_Frozen):
    """The k most frequent non-NULL values, as text, with their counts, among rows where `where` holds (all
    rows without one), ties broken by value: a probe, run when a check already fires."""

    metric: Literal["top_k"] = "top_k"
    column: Col
    k: int = Field(ge=1, le=10_000)
    where: Predicate | None = None

    def __init__(self, column: ColumnLike, k: int, **kw: Any) -> None:
        super().__init__(column=_col(column), k=k, **kw)


ScanRequest = (Count | NullCount | CountIf | MinMax | Moments | Quantiles | Distinct | Histogram | MaxGap
               | DistinctRows | DuplicateRows | ValueCounts)
Request = ScanRequest | TopK


def category_key(value: Any) -> str:
    """A value as text, the way a profile writes a category (JSON object keys are strings) and the order
    ValueCounts breaks ties in."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Counted(_Frozen):
    """A ValueCounts answer: `top` as (value, count) pairs, most frequent first (ties by value as text)."""

    top: tuple[tuple[Any, int], ...]
    distinct: int
    other: int


class Measured(_Frozen):
    """An engine's answer to one request; `exact` is False when a sketch or sample produced it."""

    value: Any
    exact: bool
