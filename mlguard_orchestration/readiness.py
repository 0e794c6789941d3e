"""Is a dataset there and fit to use? The one decision behind every "wait for data" sensor.

A dataset is ready when it can be read, has at least `min_rows` rows, has the expected columns and types,
and (when a time column is named) its newest row is recent enough. "Not yet" (missing file, too few rows,
stale) is different from "never" (the spec asks for something impossible): a sensor keeps waiting on the
first and fails at once on the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.freshness import Freshness
from mlguard_orchestration.checks.schema import Schema
from mlguard_orchestration.checks.volume import RowCount
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.report import Report


@dataclass(frozen=True)
class Readiness:
    ready: bool
    final: bool  # True when waiting cannot help (a spec error): fail now
    reason: str
    report: Report


def check_ready(source: Any, *, min_rows: int = 1, columns: dict[str, str | None] | None = None,
                time_column: str | None = None, max_age: timedelta | str | float | None = None,
                logical_date: datetime | None = None, name: str = "dataset_ready") -> Readiness:
    """Judge `source` (any guard source) once."""
    checks: list[AnyCheck] = [RowCount(min=min_rows)]
    if columns:
        checks.append(Schema(columns_=columns))
    if time_column is not None:
        checks.append(Freshness(column=time_column, max_age=max_age or timedelta(days=1)))
    report = Guard(name, checks=checks).run(source, logical_date=logical_date, promote=False)
    if report.error is not None:
        return Readiness(False, not report.error.retryable, report.error.message, report)
    return Readiness(report.passed, False, "ready" if report.passed else report.headline(), report)
