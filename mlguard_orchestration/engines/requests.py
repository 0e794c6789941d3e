"""Metric requests: what a check needs from a table, said without SQL (issue 14, docs/engines.md).

A check asks for metrics as small frozen, hashable values; an engine (DuckDB, a SQL dialect through sqlglot,
Spark) compiles every request on a table into one scan and answers each with a `Measured` value. Nothing
here knows an engine: adding one must not touch a request or a check.

    Count()                                 rows
    NullCount("x")                          rows where x IS NULL
    CountIf(Compare("x", ">", 10))          rows where a typed predicate holds (never a SQL string)
    MinMax("x")                             (min, max), NULLs ignored
    Moments("x")                            (mean, sample standard deviation)
    Quantiles("x", (0.1, 0.5), exact=...)   one value per level; approximate ones say so
    Distinct("x", exact=...)                number of distinct non-NULL values (a sketch when not exact)
    Histogram("x", edges)                   counts in [e0, e1), [e1, e2), ..., [e(n-1), en] (last closed)
    TopK("x", k)                            the k most frequent values with counts: a probe of its own

Predicates are a small typed tree (Compare, IsNull, IsIn, And, Or, Not) so that every engine can compile
them, every identifier is quoted by the engine, and no user text is ever spliced into SQL.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = bool | int | float | str


def _finite(value: Scalar) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a literal must be finite, got {value!r} (ask for NaN/Inf with a metric of their own)")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **fields: Any) -> None:
        """Fields by keyword: each request's own `__init__` takes its usual arguments positionally too."""
        super().__init__(**fields)


# -- predicates (what CountIf counts) ---------------------------------------------------------------------


class Compare(_Frozen):
    """`column op value`; a NULL column never satisfies it (SQL's three-valued logic, on every engine)."""

    predicate: Literal["compare"] = "compare"
    column: str
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: Scalar

    def __init__(self, column: str, op: str, value: Scalar, **kw: Any) -> None:
        super().__init__(column=column, op=op, value=value, **kw)

    @field_validator("value")
    @classmethod
    def _check_value(cls, v: Scalar) -> Scalar:
        return _finite(v)


class IsNull(_Frozen):
    predicate: Literal["is_null"] = "is_null"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class IsIn(_Frozen):
    """`column IN (values)`; an empty tuple matches nothing."""

    predicate: Literal["is_in"] = "is_in"
    column: str
    values: tuple[Scalar, ...]

    def __init__(self, column: str, values: tuple[Scalar, ...] | list[Scalar], **kw: Any) -> None:
        super().__init__(column=column, values=tuple(values), **kw)

    @field_validator("values")
    @classmethod
    def _check_values(cls, v: tuple[Scalar, ...]) -> tuple[Scalar, ...]:
        return tuple(_finite(x) for x in v)


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


Predicate = Annotated[Compare | IsNull | IsIn | And | Or | Not, Field(discriminator="predicate")]
for _model in (And, Or, Not):
    _model.model_rebuild()


# -- metric requests --------------------------------------------------------------------------------------


class Count(_Frozen):
    metric: Literal["count"] = "count"


class NullCount(_Frozen):
    metric: Literal["null_count"] = "null_count"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class CountIf(_Frozen):
    metric: Literal["count_if"] = "count_if"
    where: Predicate

    def __init__(self, where: Predicate | None = None, **kw: Any) -> None:
        super().__init__(where=kw.pop("where", where), **kw)


class MinMax(_Frozen):
    metric: Literal["min_max"] = "min_max"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class Moments(_Frozen):
    """Mean and sample standard deviation (n - 1), NULLs ignored."""

    metric: Literal["moments"] = "moments"
    column: str

    def __init__(self, column: str, **kw: Any) -> None:
        super().__init__(column=column, **kw)


class Quantiles(_Frozen):
    """Continuous (interpolated) quantiles at `levels`; `exact=False` lets the engine use a sketch."""

    metric: Literal["quantiles"] = "quantiles"
    column: str
    levels: tuple[float, ...] = Field(min_length=1)
    exact: bool = True

    def __init__(self, column: str, levels: tuple[float, ...] | list[float], exact: bool = True, **kw: Any) -> None:
        super().__init__(column=column, levels=tuple(levels), exact=exact, **kw)

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= q <= 1 for q in v):
            raise ValueError(f"quantile levels must lie in [0, 1], got {v}")
        return v


class Distinct(_Frozen):
    """Number of distinct non-NULL values; `exact=False` lets the engine use a sketch (HyperLogLog)."""

    metric: Literal["distinct"] = "distinct"
    column: str
    exact: bool = True

    def __init__(self, column: str, exact: bool = True, **kw: Any) -> None:
        super().__init__(column=column, exact=exact, **kw)


class Histogram(_Frozen):
    """Counts in [e0, e1), ..., [e(n-1), en]: the last bucket is closed, values outside are not counted."""

    metric: Literal["histogram"] = "histogram"
    column: str
    edges: tuple[float, ...] = Field(min_length=2)

    def __init__(self, column: str, edges: tuple[float, ...] | list[float], **kw: Any) -> None:
        super().__init__(column=column, edges=tuple(edges), **kw)

    @model_validator(mode="after")
    def _check_edges(self) -> Histogram:
        if any(not math.isfinite(e) for e in self.edges) or any(a >= b for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"histogram edges must be finite and strictly increasing, got {self.edges}")
        return self


class TopK(_Frozen):
    """The k most frequent non-NULL values with their counts, ties broken by value: a probe, not the scan."""

    metric: Literal["top_k"] = "top_k"
    column: str
    k: int = Field(ge=1, le=10_000)

    def __init__(self, column: str, k: int, **kw: Any) -> None:
        super().__init__(column=column, k=k, **kw)


ScanRequest = Count | NullCount | CountIf | MinMax | Moments | Quantiles | Distinct | Histogram
Request = ScanRequest | TopK


class Measured(_Frozen):
    """An engine's answer to one request; `exact` is False when a sketch or sample produced it."""

    value: Any
    exact: bool
