"""Schema checks: columns and types, missing values, ranges, allowed values, patterns, uniqueness.

Each is evaluated from aggregates in the table's single scan. A column that is missing from the data is a
data failure (`schema.missing_column`, with the closest existing name and a rename diagnosis), not a crash.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from mlguard_orchestration.checks.base import (
    Answers,
    PlannedTable,
    ReferenceCheck,
    ScanCheck,
    ScannedTable,
    TableContext,
    names,
)
from mlguard_orchestration.diagnose.drift import distribution_causes, renamed_twin
from mlguard_orchestration.diagnose.duplicates import duplicate_causes
from mlguard_orchestration.diagnose.types import text_type_causes
from mlguard_orchestration.distances import rate
from mlguard_orchestration.engines.requests import (
    And,
    Col,
    Compare,
    CountIf,
    DistinctRows,
    IsIn,
    IsNull,
    Matches,
    Not,
    Or,
    Predicate,
    ScanRequest,
    TopK,
)
from mlguard_orchestration.errors import SpecError, did_you_mean
from mlguard_orchestration.report import Finding, Severity, cause, sample_value
from mlguard_orchestration.sources import LOGICAL_TYPES, NUMERIC_KINDS, kind_family

LogicalType = Literal["integer", "float", "numeric", "string", "boolean", "timestamp", "timestamp_tz", "date",
                      "temporal", "nested"]


def missing_column_finding(ctx: TableContext, column: str, severity: Severity, check: str) -> Finding:
    """`schema.missing_column` for `column`, naming what exists, the closest name, and a likely rename: only
    a column the reference had can have been renamed; without a reference the spec may be misspelt."""
    table = ctx.table
    available = list(table.columns)
    hint = did_you_mean(column, available)
    message = f"column {column!r} is missing from table {table.name!r} ({table.source})"
    message += f"; did you mean {hint!r}?" if hint else "."
    causes = []
    reference = ctx.reference
    ref = reference.columns.get(column) if reference is not None else None
    profile = ctx.profile if isinstance(ctx, ScannedTable) else None  # a join may read an unscanned table
    if hint is None and reference is not None and ref is not None and profile is not None:
        twin = renamed_twin(ref, [c for n, c in profile.columns.items() if n not in reference.columns])
        if twin is not None:
            causes.append(cause("cause.renamed_column", f"{column!r} appears to have been renamed to {twin.name!r}: "
                                "the new column holds the same kind of values, distributed alike", 0.8,
                                {"missing": column, "candidate": twin.name, "matched_by": "values"}))
    if hint is not None and reference is None:
        causes.append(cause("cause.renamed_column", f"{column!r} is not in the data but {hint!r} is: renamed "
                            "upstream, or misspelt in the spec (there is no reference to tell)", 0.4,
                            {"missing": column, "candidate": hint}))
    elif hint is not None and reference is not None and ref is not None:
        new_col = table.columns[hint]
        was_new = hint not in reference.columns
        same_kind = kind_family(ref.kind) == kind_family(new_col.kind)
        confidence = 0.5 + 0.3 * was_new + 0.15 * same_kind
        causes.append(cause("cause.renamed_column", f"{column!r} appears to have been renamed to {hint!r}",
                            confidence, {"missing": column, "candidate": hint, "candidate_is_new": was_new,
                                         "same_kind_of_values": same_kind}))
    return Finding(code="schema.missing_column", check=check, severity=severity, message=message,
                   table=table.name, columns=[column], evidence={"available_columns": available[:100],
                                                                 "closest": hint}, causes=causes)


class Schema(ScanCheck):
    """Required columns and, optionally, their logical types (`integer`, `float`, `numeric`, `string`,
    `boolean`, `timestamp`, `date`, …). `allow_extra=False` also flags columns nobody declared, except those
    in `ignore`."""

    kind: Literal["schema"] = "schema"
    columns_: dict[str, LogicalType | None] = Field(alias="columns")
    allow_extra: bool = True
    ignore: list[str] = Field(default_factory=list, description="Columns that may come and go unremarked.")

    model_config = ConfigDict(**ScanCheck.model_config, populate_by_name=True)

    @field_validator("columns_", mode="before")
    @classmethod
    def _list_ok(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            bad = [c for c in v if not isinstance(c, str)]
            if bad:
                raise ValueError(f"columns must be names (strings) or a {{name: type}} mapping; got {bad[:3]!r}")
            return dict.fromkeys(v)
        return v

    def label(self) -> str:
        return "schema"

    def columns(self) -> list[str]:
        return []  # missing columns are this check's own finding, reported below

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        table = ctx.table
        out: list[Finding] = []
        for name, logical in self.columns_.items():
            col = table.columns.get(name)
            if col is None:
                out.append(missing_column_finding(ctx, name, self.severity, self.label()))
            elif logical is not None and col.kind not in LOGICAL_TYPES[logical]:
                out.append(self.finding(
                    "schema.type_mismatch",
                    f"column {name!r} is {col.sql_type} ({col.kind}), expected {logical}",
                    table=table.name, columns=[name], value=col.kind, threshold=logical,
                    evidence={"sql_type": col.sql_type},
                    causes=text_type_causes(ctx, name, LOGICAL_TYPES[logical])))
        if not self.allow_extra:
            extra = [c for c in table.columns if c not in self.columns_ and c not in self.ignore]
            if extra:
                out.append(self.finding("schema.unexpected_column",
                                        f"{len(extra)} column(s) not in the schema: {', '.join(map(repr, extra[:10]))}",
                                        table=table.name, columns=extra[:50], value=len(extra), threshold=0,
                                        severity="warn"))
        return out


class NullRate(ScanCheck):
    """At most `max` of the rows may be NULL (0 means the column is required)."""

    kind: Literal["null_rate"] = "null_rate"
    column: str
    max: float = Field(0.0, ge=0.0, le=1.0)

    def columns(self) -> list[str]:
        return [self.column]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        col = ctx.profile.columns[self.column]
        if col.count == 0 or col.null_rate <= self.max:
            return []
        ref = ctx.reference.columns.get(self.column) if ctx.reference else None
        causes = []
        if ref is not None and col.null_rate > max(2 * ref.null_rate, ref.null_rate + 0.05):
            causes.append(cause("cause.upstream_nulls",
                                f"{self.column!r} was {ref.null_rate:.1%} missing in the reference, now "
                                f"{col.null_rate:.1%}", 0.7, {"reference_null_rate": round(ref.null_rate, 6)}))
        return [self.finding("schema.null_rate",
                             f"{self.column!r} is {col.null_rate:.2%} NULL ({col.nulls:,} of {col.count:,} rows), "
                             f"allowed {self.max:.2%}", table=ctx.table.name, value=round(col.null_rate, 6),
                             threshold=self.max, evidence={"nulls": col.nulls, "rows": col.count}, causes=causes)]


class Range(ScanCheck):
    """Values must lie in [min, max]; at most `max_fraction_outside` of the non-null values may not."""

    kind: Literal["range"] = "range"
    column: str
    min: float | None = None
    max: float | None = None
    max_fraction_outside: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("range needs min, max or both")
        if any(b is not None and math.isnan(b) for b in (self.min, self.max)):
            raise ValueError("range bounds cannot be NaN (every value would be 'outside'); give numbers or leave "
                             "a side open")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range min {self.min} is above max {self.max}")
        return self

    def columns(self) -> list[str]:
        return [self.column]

    def _key(self) -> str:
        return f"range:{self.column}:{self.min}:{self.max}"

    def _metric(self) -> CountIf:
        """Values below min or above max (a NaN is neither: it is Finite's business; ±Inf is outside)."""
        sides = ([Compare(self.column, "<", float(self.min))] if self.min is not None else []) + \
                ([Compare(self.column, ">", float(self.max))] if self.max is not None else [])
        return CountIf(Or(*sides))

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        col = ctx.table.column(self.column)
        if col.kind not in NUMERIC_KINDS:
            raise SpecError(f"range check on {self.column!r} needs a numeric column; it is {col.sql_type}.")
        return [self._metric()]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        col = ctx.profile.columns[self.column]
        outside = int(values[self._metric()].value)
        share = rate(outside, col.non_null)
        if outside == 0 or share <= self.max_fraction_outside:
            return []
        ref = ctx.reference.columns.get(self.column) if ctx.reference else None
        bounds = f"[{_fmt(self.min)}, {_fmt(self.max)}]"
        return [self.finding(
            "schema.out_of_range",
            f"{share:.2%} of {self.column!r} ({outside:,} values) lie outside {bounds}; observed "
            f"[{_fmt(col.min)}, {_fmt(col.max)}]", table=ctx.table.name, value=round(share, 6),
            threshold=self.max_fraction_outside,
            evidence={"outside": outside, "observed_min": col.min, "observed_max": col.max, "min": self.min,
                      "max": self.max}, causes=distribution_causes(col, ref) if ref else [])]


class ReferenceRange(ReferenceCheck):
    """Numeric values must stay near the reference's span: [min, max] widened by `margin` of the span on each
    side (a non-negative column stays non-negative). At most `max_fraction_outside` of the values, and fewer
    than `min_outside` values, may lie outside. ±Inf and NaN are `finite`'s business, not range."""

    kind: Literal["reference_range"] = "reference_range"
    margin: float = Field(0.5, ge=0.0)
    max_fraction_outside: float = Field(0.001, ge=0.0, le=1.0)
    min_outside: int = Field(3, ge=1, description="Fewer values outside never fire (one odd value in a "
                                                  "small batch is not a broken column).")

    def _targets(self, ctx: TableContext) -> list[tuple[str, float, float]]:
        """(column, low, high) for every numeric reference column this check judges."""
        ref = ctx.require_reference(self.label())
        names = self.columns_ or [n for n, c in ref.columns.items() if c.role == "numeric" and not c.unique
                                  and n not in ctx.scope.exclude and n not in ctx.scope.partition_by]
        out = []
        for name in names:
            col, table_col = ref.columns.get(name), ctx.table.columns.get(name)
            if col is None or table_col is None or col.min is None or col.max is None:
                continue
            if table_col.kind not in NUMERIC_KINDS or col.kind not in NUMERIC_KINDS:
                continue  # a changed type is the schema check's finding
            span = (col.max - col.min) or abs(col.max) or 1.0
            low = col.min - self.margin * span
            out.append((name, max(low, 0.0) if col.min >= 0 else low, col.max + self.margin * span))
        return out

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        """The batch's exact min and max say whether anything lies outside; only then are the values outside
        counted (one probe), so a passing range costs nothing in the scan."""
        reference = ctx.require_reference(self.label())
        partitions = set(ctx.partitions()) if not self.columns_ else set()
        out = []
        for name, low, high in self._targets(ctx):
            col, ref = ctx.profile.columns[name], reference.columns[name]
            if name in partitions or col.min is None or col.max is None or (low <= col.min and col.max <= high):
                continue
            x = Col(name, "number")  # finite values only
            outside = ctx.count(Or(Compare(x, "<", low), Compare(x, ">", high)))
            share = rate(outside, col.non_null - col.nan - col.inf)
            if outside < self.min_outside or share <= self.max_fraction_outside:
                continue
            causes = distribution_causes(col, ref)
            out.append(self.finding(
                "schema.out_of_range",
                f"{share:.2%} of {name!r} ({outside:,} values) lie outside [{_fmt(low)}, {_fmt(high)}], the "
                f"reference's range [{_fmt(ref.min)}, {_fmt(ref.max)}] widened by {self.margin:.0%} of its span; "
                f"observed [{_fmt(col.min)}, {_fmt(col.max)}]", table=ctx.table.name, columns=[name],
                value=round(share, 6), threshold=self.max_fraction_outside,
                evidence={"outside": outside, "observed_min": col.min, "observed_max": col.max, "min": low,
                          "max": high, "reference_min": ref.min, "reference_max": ref.max},
                causes=causes, severity=self._judged(self.severity, causes)))
        return out


class Finite(ScanCheck):
    """No NaN or ±Inf in a float column (NULL is the null-rate check's business); with `max_fraction`, at
    most that share of the non-null values."""

    kind: Literal["finite"] = "finite"
    column: str
    max_fraction: float = Field(0.0, ge=0.0, le=1.0)

    def columns(self) -> list[str]:
        return [self.column]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        col = ctx.profile.columns[self.column]
        bad = col.nan + col.inf
        if not bad or col.non_finite_rate <= self.max_fraction:
            return []
        allowed = f" (allowed {self.max_fraction:.2%})" if self.max_fraction else ""
        return [self.finding("schema.non_finite",
                             f"{self.column!r} has {col.nan:,} NaN and {col.inf:,} infinite values "
                             f"({col.non_finite_rate:.2%} of {col.non_null:,}){allowed}",
                             table=ctx.table.name, value=bad, threshold=self.max_fraction,
                             evidence={"nan": col.nan, "inf": col.inf})]


class AllowedValues(ScanCheck):
    """Values must be among `values`; at most `max_fraction_outside` of non-null values may not be."""

    kind: Literal["allowed_values"] = "allowed_values"
    column: str
    values: list[str | int | float | bool]
    max_fraction_outside: float = Field(0.0, ge=0.0, le=1.0)

    def columns(self) -> list[str]:
        return [self.column]

    def _outside(self) -> Predicate:
        return And(Not(IsNull(self.column)), Not(IsIn(self.column, self.values)))

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        ctx.table.column(self.column)
        return [CountIf(self._outside())]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        col = ctx.profile.columns[self.column]
        bad = int(values[CountIf(self._outside())].value)
        share = rate(bad, col.non_null)
        if bad == 0 or share <= self.max_fraction_outside:
            return []
        evidence: dict[str, Any] = {"outside": bad}
        if col.role == "categorical" or ctx.options.sample_values:
            top = ctx.engine.top_k(ctx.table, TopK(Col(self.column, "text"), 5, where=self._outside()))
            evidence["unexpected_values"] = _maybe_redact(ctx, [v for v, _ in top])
        return [self.finding("schema.not_allowed",
                             f"{share:.2%} of {self.column!r} ({bad:,} values) are not in the allowed set",
                             table=ctx.table.name, value=round(share, 6), threshold=self.max_fraction_outside,
                             evidence=evidence)]


class Pattern(ScanCheck):
    """Text values must fully match the regular expression `regex` (RE2 syntax)."""

    kind: Literal["pattern"] = "pattern"
    column: str
    regex: str
    max_fraction_outside: float = Field(0.0, ge=0.0, le=1.0)

    def columns(self) -> list[str]:
        return [self.column]

    def _metric(self) -> CountIf:
        return CountIf(Not(Matches(self.column, self.regex)))  # a NULL matches nothing and mismatches nothing

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        ctx.table.column(self.column)
        ctx.engine.check_regex(self.regex, f"pattern for {self.column!r}")
        return [self._metric()]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        col = ctx.profile.columns[self.column]
        bad = int(values[self._metric()].value)
        share = rate(bad, col.non_null)
        if bad == 0 or share <= self.max_fraction_outside:
            return []
        return [self.finding("schema.pattern_mismatch",
                             f"{share:.2%} of {self.column!r} ({bad:,} values) do not match /{self.regex}/",
                             table=ctx.table.name, value=round(share, 6), threshold=self.max_fraction_outside,
                             evidence={"mismatched": bad})]


class Unique(ScanCheck):
    """The column set identifies rows: at most `max_duplicate_rate` of non-null keys may repeat (exact)."""

    kind: Literal["unique"] = "unique"
    columns_: list[str] = Field(alias="columns", min_length=1)
    max_duplicate_rate: float = Field(0.0, ge=0.0, le=1.0)

    model_config = ConfigDict(**ScanCheck.model_config, populate_by_name=True)

    _names = field_validator("columns_", mode="before")(classmethod(lambda cls, v: names(v)))

    def columns(self) -> list[str]:
        return list(self.columns_)

    def exact_distinct(self) -> list[str]:
        return list(self.columns_) if len(self.columns_) == 1 else []

    def _metrics(self) -> tuple[CountIf, DistinctRows]:
        """Rows with a whole key, and their distinct keys (a composite key; one column's come from the profile)."""
        return CountIf(And(*(Not(IsNull(c)) for c in self.columns_))), DistinctRows(self.columns_)

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        if len(self.columns_) == 1:
            return []  # the profile counts it exactly (see exact_distinct)
        return list(self._metrics())

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        if len(self.columns_) == 1:
            col = ctx.profile.columns[self.columns_[0]]
            n, distinct = col.non_null, int(col.distinct or 0)
        else:
            whole, keys = self._metrics()
            n, distinct = int(values[whole].value), int(values[keys].value)
        dup = n - distinct
        share = rate(dup, n)
        if dup == 0 or share <= self.max_duplicate_rate:
            return []
        return [self.finding("schema.not_unique",
                             f"{dup:,} of {n:,} rows ({share:.2%}) repeat a key of ({', '.join(self.columns_)})",
                             table=ctx.table.name, value=round(share, 6), threshold=self.max_duplicate_rate,
                             evidence={"rows": n, "distinct_keys": distinct},
                             causes=duplicate_causes(ctx, self.columns_))]


def _fmt(x: float | None) -> str:
    if x is None:
        return "…"
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _maybe_redact(ctx: TableContext, vals: list[Any]) -> list[Any]:
    return [sample_value(v, redact=True) for v in vals] if ctx.options.redact else vals
