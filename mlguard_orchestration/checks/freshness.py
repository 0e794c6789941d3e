"""Freshness: the newest timestamp must be recent relative to the run's logical date, and none may lie in
the future.

    Freshness(column="event_time", max_age="6h")               # naive timestamps are UTC
    Freshness(column="event_time", max_age="2d", timezone="Europe/Paris", max_future="15m")

Compared against the run's `logical_date` (the orchestrator's data interval, not the wall clock, so a
backfill of last March is judged against last March); without one, against now. Everything is compared in
UTC: TIMESTAMPTZ columns are converted, naive TIMESTAMP columns are read in `timezone`, a DATE counts as
fresh until the end of that day and as future only from its start. Two aggregates in the table's single
scan; no extra query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import field_validator

from mlguard_orchestration.checks.base import Answers, PlannedTable, ScanCheck, ScannedTable, TableContext
from mlguard_orchestration.diagnose.timing import (
    check_zone_in_engine,
    epoch_seconds,
    from_epoch,
    future_timezone_cause,
    human_duration,
    parse_duration,
    to_utc_naive,
    validate_zone,
)
from mlguard_orchestration.engines.requests import Col, Compare, CountIf, MinMax, ScanRequest
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.report import Finding, cause
from mlguard_orchestration.sources import TEMPORAL_KINDS


class Freshness(ScanCheck):
    """The newest `column` value is at most `max_age` older than the logical date, and at most `max_future`
    of it lies after the logical date. `timezone` is the zone naive timestamps are in."""

    kind: Literal["freshness"] = "freshness"
    column: str
    max_age: timedelta
    max_future: timedelta = timedelta(0)
    timezone: str = "UTC"

    _durations = field_validator("max_age", "max_future", mode="before")(
        classmethod(lambda cls, v: parse_duration(v)))

    @field_validator("max_age")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("max_age must be positive (e.g. '6h')")
        return v

    @field_validator("max_future")
    @classmethod
    def _not_negative(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("max_future cannot be negative")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return validate_zone(v)

    def columns(self) -> list[str]:
        return [self.column]

    def _now(self, ctx: TableContext) -> datetime:
        """The logical date in naive UTC (the guard fixes it once per run, so metrics and evaluation agree)."""
        return to_utc_naive(ctx.options.logical_date)

    def _metrics(self, ctx: TableContext) -> tuple[MinMax, MinMax, CountIf]:
        """The newest value (a DATE counts to the end of its day), the newest start, and rows past the limit;
        every time in UTC epoch seconds, naive values read in `timezone`."""
        start = Col(self.column, "epoch", zone=self.timezone)
        end = Col(self.column, "epoch", zone=self.timezone, end_of_day=True)
        limit = self._now(ctx) + self.max_future
        return MinMax(end), MinMax(start), CountIf(Compare(start, ">", epoch_seconds(limit)))

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        col = ctx.table.column(self.column)
        if col.kind not in TEMPORAL_KINDS:
            raise SpecError(f"freshness check on {self.column!r} needs a TIMESTAMP, TIMESTAMP WITH TIME ZONE or "
                            f"DATE column; it is {col.sql_type} ({col.kind}). Parse it upstream, or point the "
                            "check at the event-time column.")
        if col.kind != "timestamp_tz":
            check_zone_in_engine(ctx.engine, self.timezone)
        return list(self._metrics(ctx))

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        now = self._now(ctx)
        col = ctx.table.columns[self.column]
        end, start, past = self._metrics(ctx)
        newest = from_epoch(values[end].value[1])
        newest_start = from_epoch(values[start].value[1])
        future = int(values[past].value)
        rows = ctx.profile.rows
        base_ev: dict[str, Any] = {"logical_date_utc": now.isoformat(), "column_type": col.sql_type}
        if col.kind != "timestamp_tz":
            base_ev["assumed_timezone"] = self.timezone
        out: list[Finding] = []
        table = ctx.table.name
        if newest is None:
            empty = not rows
            why = "the table is empty" if empty else f"all {rows:,} values of {self.column!r} are NULL"
            causes = [cause("cause.empty_extract", f"table {table!r} has no rows", 0.8)] if empty else \
                [cause("cause.upstream_nulls", f"{self.column!r} is NULL on every row", 0.7)]
            out.append(self.finding("freshness.stale", f"no timestamps to judge freshness by: {why}",
                                    table=table, value=None, threshold=human_duration(self.max_age.total_seconds()),
                                    evidence={**base_ev, "rows": rows or 0}, causes=causes))
            return out
        age = (now - newest).total_seconds()
        if age > self.max_age.total_seconds():
            out.append(self.finding(
                "freshness.stale",
                f"newest {self.column!r} is {newest.isoformat(sep=' ', timespec='seconds')} UTC, {human_duration(age)} before the "
                f"logical date {now.isoformat(sep=' ', timespec='seconds')} UTC; allowed {human_duration(self.max_age.total_seconds())}",
                table=table, value=round(age, 1), threshold=self.max_age.total_seconds(),
                evidence={**base_ev, "newest_utc": newest.isoformat(), "age_seconds": round(age, 1),
                          "max_age_seconds": self.max_age.total_seconds()},
                causes=[cause("cause.stale_source",
                              f"the newest {self.column!r} is {human_duration(age)} old at the logical date",
                              0.7, {"age_seconds": round(age, 1), "newest_utc": newest.isoformat()})]))
        if future > 0 and newest_start is not None:
            excess = (newest_start - now).total_seconds()
            causes = []
            tz = future_timezone_cause(self.column, excess, future, col.kind != "timestamp_tz", self.timezone)
            if tz is not None:
                causes.append(tz)
            share = future / rows if rows else None
            out.append(self.finding(
                "freshness.future",
                f"{future:,} row(s) of {self.column!r} lie after the logical date {now.isoformat(sep=' ', timespec='seconds')} UTC"
                + (f" + {human_duration(self.max_future.total_seconds())}" if self.max_future else "")
                + f"; the newest is {human_duration(excess)} ahead ({newest_start.isoformat(sep=' ', timespec='seconds')} UTC)",
                table=table, value=future, threshold=0,
                evidence={**base_ev, "future_rows": future, "future_share": round(share, 6) if share else None,
                          "newest_utc": newest_start.isoformat(), "ahead_seconds": round(excess, 1),
                          "max_future_seconds": self.max_future.total_seconds()},
                causes=causes))
        return out
