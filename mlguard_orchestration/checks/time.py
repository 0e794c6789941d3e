"""Time columns against their reference: where the values lie, and when in the day they fall.

A time column in a scheduled pipeline moves forward with every run, so its range is never compared with the
reference's as it stands: the reference's [min, max] is moved by the time between the two runs' logical
dates (or, without logical dates, between the reference's creation and now) and widened by twice the
reference's span (at least a day) on each side. Values outside that window are a real break — a
seconds-read-as-milliseconds bug that moves every timestamp to January 1970, a year or a unit wrong, a
stale extract — and a backfill run with its own logical date stays inside it.

The hour-of-day profile (counted on the sample in the scan) is the same from one day to the next for almost
any event time; a profile that matches the reference only after rotating it by whole hours is a timezone
mistake. Rotations of one hour are never reported: a daylight-saving change looks exactly like that.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, model_validator

from mlguard_orchestration.checks.base import (
    Answers,
    PlannedTable,
    ReferenceCheck,
    ScannedTable,
    ordered,
)
from mlguard_orchestration.diagnose.timing import offset_text, to_utc_naive
from mlguard_orchestration.distances import js_distance, rate
from mlguard_orchestration.engines.requests import Col, Compare, Or
from mlguard_orchestration.profile import ColumnProfile, TableProfile
from mlguard_orchestration.report import Cause, Finding, Severity, cause

DAY = 86_400.0
# Unit factors an epoch number can be misread by: value read / value meant.
_EPOCH_MISREADS: dict[float, str] = {
    1e-3: "seconds read as milliseconds", 1e-6: "seconds read as microseconds",
    1e-9: "seconds read as nanoseconds", 1e-3 * 1e-3: "milliseconds read as nanoseconds",
    1e3: "milliseconds read as seconds", 1e6: "microseconds read as seconds", 1e9: "nanoseconds read as seconds",
}


class TimeDrift(ReferenceCheck):
    """Time columns stay inside the reference's window moved to this run's logical date (`window` spans of
    the reference, at least a day, of slack on each side), and keep their hour-of-day profile."""

    kind: Literal["time_drift"] = "time_drift"
    window: float = Field(2.0, gt=0, description="Slack on each side, in reference spans (at least a day).")
    max_fraction_outside: float = Field(0.001, ge=0.0, le=1.0)
    fail_fraction_outside: float = Field(0.01, ge=0.0, le=1.0)
    hour_shift_min_js: float = Field(0.25, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _warn_below_fail(self) -> TimeDrift:
        ordered(("max_fraction_outside", self.max_fraction_outside), ("fail_fraction_outside", self.fail_fraction_outside))
        return self

    def _targets(self, ctx: PlannedTable) -> list[tuple[str, float, float]]:
        """(column, low, high) in epoch seconds for every time column judged. Partition columns stay in: a
        date partition must still fall where the schedule puts it."""
        ref = ctx.require_reference(self.label())
        names = self.columns_ or [n for n, c in ref.columns.items()
                                  if c.role == "temporal" and n not in ctx.scope.exclude]
        shift = _seconds_between(ref, ctx.options.logical_date)
        out = []
        for name in names:
            col = ref.columns.get(name)
            if col is None or col.role != "temporal" or col.min is None or col.max is None:
                continue
            if name not in ctx.plan.roles or ctx.plan.roles[name][0] != "temporal":
                continue  # the column is not time in this batch: the schema check reports its type
            slack = self.window * max(col.max - col.min, DAY)
            out.append((name, col.min + shift - slack, col.max + shift + slack))
        return out

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        reference = ctx.require_reference(self.label())
        out: list[Finding] = []
        for name, low, high in self._targets(ctx):
            batch, ref = ctx.profile.columns[name], reference.columns[name]
            outside = 0  # counted (one probe) only when the batch's exact range leaves the window
            if batch.min is not None and batch.max is not None and (batch.min < low or batch.max > high):
                e = Col(name, "epoch")
                outside = ctx.count(Or(Compare(e, "<", low), Compare(e, ">", high)))
            share = rate(outside, batch.non_null)
            misread = _epoch_misread(batch, ref)
            if misread is not None or (outside >= 3 and share > self.max_fraction_outside):
                # a misread epoch is decisive even inside a window that decades of reference make wide
                wide = share > self.fail_fraction_outside or misread is not None
                severity: Severity = "fail" if wide and self.severity == "fail" else "warn"
                out.append(self.finding(
                    "time.out_of_window",
                    f"{share:.2%} of {name!r} ({outside:,} values) lie outside {_when(low)} – {_when(high)}, where "
                    f"the reference ({_when(ref.min)} – {_when(ref.max)}) falls at this run's logical date; "
                    f"observed {_when(batch.min)} – {_when(batch.max)}", table=ctx.table.name, columns=[name],
                    value=round(share, 6), threshold=self.max_fraction_outside, severity=severity,
                    evidence={"outside": outside, "window": [_when(low), _when(high)],
                              "observed": [_when(batch.min), _when(batch.max)],
                              "reference": [_when(ref.min), _when(ref.max)]},
                    causes=_window_causes(batch, ref, low, high)))
            shift = self._hour_shift(batch, ref)
            if shift is not None:
                hours, before, after = shift
                out.append(self.finding(
                    "time.hour_shift",
                    f"{name!r} keeps its hour-of-day profile only when moved by {offset_text(hours)}: "
                    f"Jensen–Shannon distance {before:.2f} as it is, {after:.2f} shifted",
                    table=ctx.table.name, columns=[name], value=hours, threshold=0,
                    evidence={"hour_shift": hours, "js_distance": round(before, 4),
                              "js_distance_shifted": round(after, 4), "hours": batch.hours,
                              "reference_hours": ref.hours},
                    causes=[cause("cause.timezone_mismatch",
                                  f"{name!r} is {offset_text(hours)} off: its timestamps were written or read in "
                                  "another timezone than the reference's", 0.85, {"hours": hours})]))
        return out

    def _hour_shift(self, batch: ColumnProfile, ref: ColumnProfile) -> tuple[int, float, float] | None:
        """(hours, distance as is, distance shifted) when a whole-hour rotation of at least 2 h explains a large
        change of the hour-of-day profile; None otherwise."""
        ref_hours = ref.hours
        if not batch.hours or not ref_hours or sum(batch.hours) < 200 or sum(ref_hours) < 200:
            return None
        p = {str(h): float(c) for h, c in enumerate(ref_hours)}
        q = {str(h): float(c) for h, c in enumerate(batch.hours)}
        before = js_distance(p, q)
        noise = math.sqrt(24 / sum(batch.hours))
        if before - noise < self.hour_shift_min_js:
            return None
        best = min(range(1, 24), key=lambda k: js_distance({str((h + k) % 24): v for h, v in enumerate(ref_hours)}, q))
        after = js_distance({str((h + best) % 24): float(v) for h, v in enumerate(ref_hours)}, q)
        hours = best if best <= 12 else best - 24
        if abs(hours) < 2 or after > min(0.1 + noise, before / 3):
            return None
        return hours, before, after


def _seconds_between(ref: TableProfile, logical_date: datetime | None) -> float:
    """Seconds from the reference's run to this one: the logical dates', else creation to now."""
    now = to_utc_naive(logical_date)
    return (now - to_utc_naive(ref.anchor)).total_seconds()


def _epoch_misread(batch: ColumnProfile, ref: ColumnProfile) -> Cause | None:
    """`cause.epoch_unit` when the batch's median epoch value is the reference's times 10^±3, 10^±6 or 10^±9
    (both at least a year from the epoch): only a unit misread moves a whole column by such a factor."""
    year = 365 * DAY
    if not (batch.median and ref.median and batch.median > 0 and ref.median > year):
        return None
    ratio = batch.median / ref.median
    for factor, words in _EPOCH_MISREADS.items():
        if abs(math.log10(ratio) - math.log10(factor)) < 0.15:
            return cause("cause.epoch_unit", f"{batch.name!r}: {words} — the median moved from {_when(ref.median)} "
                         f"to {_when(batch.median)}, {ratio:.3g}× its epoch value", 0.95,
                         {"epoch_ratio": float(f"{ratio:.4g}"), "factor": factor})
    return None


def _window_causes(batch: ColumnProfile, ref: ColumnProfile, low: float, high: float) -> list[Cause]:
    misread = _epoch_misread(batch, ref)
    causes: list[Cause] = [misread] if misread else []
    if not causes and batch.max is not None and batch.max < low:
        causes.append(cause("cause.stale_source", f"the newest {batch.name!r} ({_when(batch.max)}) is older than "
                            f"this run's window ({_when(low)} onwards): an old extract served again?", 0.6,
                            {"newest": _when(batch.max), "window_start": _when(low)}))
    return causes


def _when(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return "n/a"
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"epoch {epoch:.4g} s"


__all__ = ["TimeDrift"]
