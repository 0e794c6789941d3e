"""The zero-configuration suite: checks derived from a reference profile alone.

This is how users catch the bugs they did not think to write a check for — a renamed column, a unit change,
a null explosion, an empty or duplicated partition, a category that changed case, a shifted label rate —
while staying quiet on a fresh sample of the same distribution and on ordinary seasonal movement.
"""

from __future__ import annotations

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.drift import Drift, LabelDrift, NullRateDrift, UnseenCategories
from mlguard_orchestration.checks.schema import Finite, Range, Schema, Unique
from mlguard_orchestration.checks.volume import DuplicateRows, RowCount, RowCountChange
from mlguard_orchestration.profile import TableProfile
from mlguard_orchestration.sources import NUMERIC_KINDS

_LOGICAL = {"integer": "numeric", "float": "numeric", "decimal": "numeric", "string": "string",
            "boolean": "boolean", "timestamp": "timestamp", "timestamp_tz": "timestamp", "date": "date",
            "nested": "nested"}
RANGE_MARGIN = 0.5  # widen the reference's [min, max] by this share of its span on each side


def default_checks(table: str, reference: TableProfile, label: str | None = None) -> list[AnyCheck]:
    """The checks a reference implies for `table`."""
    cols = reference.columns
    checks: list[AnyCheck] = [
        Schema(table=table, columns={n: _LOGICAL.get(c.kind) for n, c in cols.items()}, allow_extra=False),
        RowCount(table=table, min=1),
        RowCountChange(table=table, min_ratio=0.5, max_ratio=1.5, severity="warn"),
        NullRateDrift(table=table),
        UnseenCategories(table=table),
        Drift(table=table),
    ]
    unique = [n for n, c in cols.items() if c.unique]
    checks += [Unique(table=table, columns=[n]) for n in unique]
    if not unique:
        checks.append(DuplicateRows(table=table, max_rate=0.05))
    for name, c in cols.items():
        if c.kind == "float" and c.nan + c.inf == 0 and c.non_null:
            checks.append(Finite(table=table, column=name))
        if c.kind in NUMERIC_KINDS and c.role == "numeric" and not c.unique and c.min is not None and c.max is not None:
            span = (c.max - c.min) or abs(c.max) or 1.0
            low = c.min - RANGE_MARGIN * span
            if c.min >= 0:
                low = max(low, 0.0)  # a non-negative quantity stays non-negative
            checks.append(Range(table=table, column=name, min=low, max=c.max + RANGE_MARGIN * span,
                                max_fraction_outside=0.001))
    if label is not None:
        checks.append(LabelDrift(table=table, column=label))
    return checks
