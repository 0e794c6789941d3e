"""The zero-configuration suite: checks derived from a reference profile alone.

This is how users catch the bugs they did not think to write a check for — a renamed column, a unit change,
a null explosion, an empty or duplicated partition, a category that changed case, a shifted label rate, a
timestamp moved to 1970 — while staying quiet on the same data, on a fresh sample of the same distribution,
on ordinary seasonal movement and on the next partition of a schedule.

Every derived threshold is relative to what the reference itself holds (its duplicate-row rate, its share of
NaN/Inf, its span), so a table checked against its own profile always passes. Partition columns (declared,
or detected as constant in each batch) and excluded columns are left to what fits them; time columns are
judged in a window that moves with the run's logical date. `SuiteOptions` is how a user says what the
profile cannot see.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.base import Scope, names
from mlguard_orchestration.checks.drift import Drift, LabelDrift, NullRateDrift, UnseenCategories
from mlguard_orchestration.checks.schema import Finite, LogicalType, ReferenceRange, Schema, Unique
from mlguard_orchestration.checks.time import TimeDrift
from mlguard_orchestration.checks.volume import DuplicateRows, RowCount, RowCountChange
from mlguard_orchestration.profile import Role, TableProfile

_LOGICAL: dict[str, LogicalType] = {"integer": "numeric", "float": "numeric", "decimal": "numeric",
                                    "string": "string", "boolean": "boolean", "timestamp": "timestamp",
                                    "timestamp_tz": "timestamp", "date": "date", "nested": "nested"}
DUPLICATE_ALLOWANCE = 0.05  # duplicate-row share above the reference's that fails


class ColumnRule(BaseModel):
    """What the default suite should know about one column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role | None = Field(None, description="How the column is profiled and compared: numeric, discrete, "
                                                "categorical, temporal (also for text holding timestamps), text.")
    severity: Literal["warn", "fail"] | None = Field(None, description="'warn': the suite's findings on this "
                                                                       "column never fail the run.")


class SuiteOptions(BaseModel):
    """What the profile cannot tell: columns to leave out, columns that are partition keys, and per-column
    rules. Applies to every table of the guard that has the named columns.

        SuiteOptions(partition_by=["month"], exclude=["row_id"], columns={"zip": {"role": "categorical"}})
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    exclude: list[str] = Field(default_factory=list, description="Columns the suite does not check at all.")
    partition_by: list[str] = Field(default_factory=list,
                                    description="Partition keys: one value per batch, new each run; never drift.")
    columns: dict[str, ColumnRule] = Field(default_factory=dict)

    _names = field_validator("exclude", "partition_by", mode="before")(classmethod(lambda cls, v: names(v)))

    def scope(self) -> Scope:
        return Scope(exclude=frozenset(self.exclude), partition_by=frozenset(self.partition_by),
                     roles=tuple((n, r.role) for n, r in self.columns.items() if r.role is not None))

    def warn_only(self) -> set[str]:
        return {n for n, r in self.columns.items() if r.severity == "warn"}


def default_checks(table: str, reference: TableProfile, label: str | None = None,
                   options: SuiteOptions | None = None) -> list[AnyCheck]:
    """The checks a reference implies for `table`."""
    options = options or SuiteOptions()
    excluded = set(options.exclude)
    cols = {n: c for n, c in reference.columns.items() if n not in excluded}
    checks: list[AnyCheck] = [
        Schema(table=table, columns_={n: _LOGICAL.get(c.kind) for n, c in cols.items()}, allow_extra=False,
               ignore=sorted(excluded)),
        RowCount(table=table, min=1),
        RowCountChange(table=table, min_ratio=0.5, max_ratio=1.5, severity="warn"),
        NullRateDrift(table=table, unexplained="warn"),
        UnseenCategories(table=table, unexplained="warn"),
        Drift(table=table, unexplained="warn"),
        ReferenceRange(table=table, unexplained="warn"),
        TimeDrift(table=table),
    ]
    unique = [n for n, c in cols.items() if c.unique]
    checks += [Unique(table=table, columns_=[n]) for n in unique]
    if not unique:
        checks.append(DuplicateRows(table=table, max_rate=duplicate_allowance(reference)))
    for name, c in cols.items():
        if c.kind == "float" and c.non_null:
            rate = c.non_finite_rate
            checks.append(Finite(table=table, column=name,
                                 max_fraction=0.0 if not rate else min(1.0, 2 * rate + _noise(rate, c.non_null))))
    if label is not None and label not in excluded:
        checks.append(LabelDrift(table=table, column=label))
    return checks


def duplicate_allowance(reference: TableProfile) -> float:
    """The duplicate-row share a batch may have: the reference's own, plus 5 points and its sampling noise."""
    if reference.duplicate_rows is None or not reference.rows:
        return DUPLICATE_ALLOWANCE
    share = reference.duplicate_rows / reference.rows
    return min(1.0, share + DUPLICATE_ALLOWANCE + _noise(share, reference.rows))


def _noise(p: float, n: int) -> float:
    return 4 * math.sqrt(max(p * (1 - p), 1e-6) / max(n, 1))


def options_of(value: Any) -> SuiteOptions:
    """SuiteOptions from None, a mapping (a spec file's `suite:`) or SuiteOptions."""
    if value is None:
        return SuiteOptions()
    return value if isinstance(value, SuiteOptions) else SuiteOptions.model_validate(value)
