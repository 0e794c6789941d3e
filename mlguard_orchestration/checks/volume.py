"""Volume checks: how many rows, how that compares with the reference, and exact duplicate rows.

(Duplicate *keys* are `Unique(columns, max_duplicate_rate=…)` in the schema family: one check, one way.)
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from mlguard_orchestration.checks.base import Answers, PlannedTable, ScanCheck, ScannedTable, ordered
from mlguard_orchestration.distances import rate
from mlguard_orchestration.engines.requests import DuplicateRows as DuplicateRowsMetric
from mlguard_orchestration.engines.requests import ScanRequest
from mlguard_orchestration.report import Finding, cause


class RowCount(ScanCheck):
    """The table has between `min` and `max` rows (by default: at least one)."""

    kind: Literal["row_count"] = "row_count"
    min: int | None = Field(1, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _order(self) -> RowCount:
        ordered(("min", self.min), ("max", self.max))
        return self

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        rows = ctx.profile.rows
        low, high = self.min is not None and rows < self.min, self.max is not None and rows > self.max
        if not (low or high):
            return []
        causes = [cause("cause.empty_extract", f"table {ctx.table.name!r} is empty", 0.9)] if rows == 0 else []
        bound = f"at least {self.min:,}" if low else f"at most {self.max:,}"
        return [self.finding("volume.row_count", f"table {ctx.table.name!r} has {rows:,} rows, expected {bound}",
                             table=ctx.table.name, value=rows, threshold=self.min if low else self.max,
                             causes=causes)]


class RowCountChange(ScanCheck):
    """Rows / reference rows must stay within [min_ratio, max_ratio]."""

    kind: Literal["row_count_change"] = "row_count_change"
    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, ge=0)
    needs_reference: ClassVar[bool] = True

    @model_validator(mode="after")
    def _order(self) -> RowCountChange:
        ordered(("min_ratio", self.min_ratio), ("max_ratio", self.max_ratio))
        return self

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        ref_rows = ctx.require_reference(self.label()).rows_per_run  # a rolling reference sums several runs
        rows = ctx.profile.rows
        if ref_rows == 0:
            return []
        ratio = rows / ref_rows
        if self.min_ratio <= ratio <= self.max_ratio:
            return []
        causes = []
        if rows == 0:
            causes.append(cause("cause.empty_extract", f"table {ctx.table.name!r} is empty", 0.9))
        elif abs(ratio - round(ratio)) < 0.05 and round(ratio) in (2, 3):
            causes.append(cause("cause.duplicated_partition",
                                f"exactly {round(ratio)}× the reference's rows: data loaded {round(ratio)} times?",
                                0.5, {"ratio": round(ratio, 4)}))
        return [self.finding("volume.row_count_change",
                             f"{rows:,} rows is {ratio:.2f}× the reference's {ref_rows:,.0f} "
                             f"(allowed {self.min_ratio}–{self.max_ratio}×)", table=ctx.table.name,
                             value=round(ratio, 4), threshold=self.min_ratio if ratio < self.min_ratio else self.max_ratio,
                             evidence={"rows": rows, "reference_rows": round(ref_rows)}, causes=causes)]


class DuplicateRows(ScanCheck):
    """At most `max_rate` of rows may be exact copies of another row (all columns, or `columns`)."""

    kind: Literal["duplicate_rows"] = "duplicate_rows"
    max_rate: float = Field(0.0, ge=0.0, le=1.0)
    subset: list[str] | None = None

    def columns(self) -> list[str]:
        return list(self.subset or [])

    def _metric(self, ctx: PlannedTable) -> DuplicateRowsMetric:
        return DuplicateRowsMetric(self.subset or list(ctx.table.columns))

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        return [self._metric(ctx)]  # the same request as the profile's in a key-less table: counted once

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        rows = ctx.profile.rows
        dup = int(values[self._metric(ctx)].value)
        share = rate(dup, rows)
        if dup == 0 or share <= self.max_rate:
            return []
        causes = [cause("cause.duplicated_partition",
                        f"{share:.1%} of rows are exact copies of another row", 0.85 if share >= 0.05 else 0.5,
                        {"duplicate_rows": dup})]
        return [self.finding("volume.duplicate_rows", f"{dup:,} of {rows:,} rows ({share:.2%}) are duplicates",
                             table=ctx.table.name, value=round(share, 6), threshold=self.max_rate,
                             evidence={"rows": rows, "duplicate_rows": dup}, causes=causes)]
