"""Time helpers shared by the freshness and point-in-time checks: durations as people write them, one way of
turning any timestamp column into UTC, and the probes that recognise a timezone mix-up.

Every comparison happens on naive UTC timestamps: a TIMESTAMPTZ is converted to UTC, a naive TIMESTAMP is
read in the zone the check names (UTC unless told otherwise), a DATE is midnight of that day. A timezone bug
shows up as a whole number of hours between two columns (or between a column and the run's logical date),
so the probes look for exactly that: the smallest whole-hour shift that makes the problem go away.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mlguard_orchestration._sql import literal
from mlguard_orchestration._zones import fixed_offset
from mlguard_orchestration.engines.requests import Col, CompareColumns, CountIf
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.sources import Column, Engine, Table

HOUR_OFFSETS: tuple[int, ...] = tuple(h for h in range(-14, 15) if h) + (-24, 24)
DROP_NEEDED = 0.95  # share of violations a shift must remove to count as the explanation

# -- durations --------------------------------------------------------------------------------------------

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_UNIT_ALIASES = {
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
    "d": "d", "day": "d", "days": "d",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "millisecond": "ms", "milliseconds": "ms",
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")


def parse_duration(value: Any) -> Any:
    """'6h', '2d', '90m', '1h30m', '1 day' → timedelta; anything else is left for pydantic (ISO 'PT6H',
    seconds as a number, a timedelta)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if not text or text.startswith(("p", "-p")) or re.fullmatch(r"[+-]?\d+(\.\d+)?", text) or ":" in text:
        return value  # ISO 8601, plain seconds or HH:MM:SS: pydantic's own parser
    pos, total = 0, 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        unit = _UNIT_ALIASES.get(m.group(2)) if m else None
        if m is None or unit is None:
            raise ValueError(f"cannot read duration {value!r}; write e.g. '6h', '2d', '90m', '1h30m' or 'PT6H'")
        total += float(m.group(1)) * _UNIT_SECONDS[unit]
        pos = m.end()
    return timedelta(seconds=total)


def human_duration(seconds: float) -> str:
    """12345 → '3.4 h'; for messages."""
    s = abs(float(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 120:
        return f"{sign}{s:.0f} s"
    if s < 7200:
        return f"{sign}{s / 60:.0f} min"
    if s < 172800:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} days"


# -- timezones --------------------------------------------------------------------------------------------

def validate_zone(zone: str) -> str:
    """Accept IANA names ('Europe/Paris') and fixed offsets ('+05:00', 'UTC-5'); ValueError otherwise."""
    if fixed_offset(zone) is not None:
        return zone
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(zone)
    except (ValueError, KeyError):
        raise ValueError(f"unknown timezone {zone!r}; use an IANA name such as 'America/New_York' or an "
                         "offset such as '+05:00'") from None
    except Exception:  # noqa: BLE001 - no tz database on this machine: DuckDB decides at run time
        return zone
    return zone


def check_zone_in_engine(engine: Engine, zone: str) -> None:
    """A named zone DuckDB does not know is a spec error (DuckDB's ICU database decides, not Python's)."""
    if fixed_offset(zone) is not None:
        return
    try:
        engine.con.execute(f"SELECT timezone({literal(zone)}, TIMESTAMP '2000-01-01')").fetchall()
    except Exception as exc:  # noqa: BLE001 - duckdb raises NotImplementedException for unknown zones
        first = str(exc).strip().splitlines()[0]
        raise SpecError(f"timezone {zone!r} is not known to the engine: {first}") from None


def to_utc_naive(when: datetime | date | None) -> datetime:
    """A logical date as naive UTC; naive datetimes are taken as UTC, a date as its midnight, None as now."""
    if when is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if not isinstance(when, datetime):
        return datetime(when.year, when.month, when.day)
    if when.tzinfo is not None:
        return when.astimezone(UTC).replace(tzinfo=None)
    return when


EPOCH = datetime(1970, 1, 1)


def epoch_seconds(when: datetime) -> float:
    """A naive UTC datetime as seconds since 1970 (how engines measure time)."""
    return (when - EPOCH).total_seconds()


def from_epoch(seconds: float | None) -> datetime | None:
    """Seconds since 1970 as a naive UTC datetime, to the microsecond; None stays None."""
    return None if seconds is None else EPOCH + timedelta(microseconds=round(float(seconds) * 1e6))


def offset_text(hours: int) -> str:
    if abs(hours) == 24:
        return f"{'+' if hours > 0 else '-'}1 day"
    return f"{hours:+d} h"


def whole_hours(seconds: float, *, tolerance_s: float = 900.0, max_hours: int = 14) -> int | None:
    """The whole number of hours (1..max_hours) `seconds` is close to, else None."""
    h = round(seconds / 3600)
    if 1 <= h <= max_hours and abs(seconds - h * 3600) <= tolerance_s:
        return h
    return None


def future_timezone_cause(column: str, excess_s: float, future_rows: int, is_naive: bool, zone: str) -> Cause | None:
    """When the newest value is a whole number of hours past the logical date, name the offset."""
    h = whole_hours(excess_s)
    if h is None:
        return None
    miss = abs(excess_s - h * 3600)
    confidence = (0.75 if is_naive else 0.55) - 0.2 * miss / 900
    where = (f"naive timestamps in {column!r} look like local time about UTC+{h}, but are read as {zone}"
             if is_naive else f"timestamps in {column!r} look shifted by +{h} h")
    return cause("cause.timezone_mismatch",
                 f"{where} (the newest value is {human_duration(excess_s)} after the logical date)", confidence,
                 {"offset_hours": h, "excess_seconds": round(excess_s, 1), "future_rows": future_rows,
                  "column_is_naive": is_naive, "assumed_timezone": zone})


# -- point in time ----------------------------------------------------------------------------------------


def shift_probe(engine: Engine, table: Table, feature: Col, label: Col,
                offsets: tuple[int, ...] = HOUR_OFFSETS) -> dict[int, int]:
    """Violations (feature >= label) after adding each whole-hour offset to the feature time, in ONE scan.
    The key 0 is the uncorrected count."""
    shifted = {h: CountIf(CompareColumns(feature, ">=", label, shift=3600.0 * h)) for h in (0, *offsets)}
    got = engine.measure(table, shifted.values())
    return {h: int(got[r].value) for h, r in shifted.items()}


def point_in_time_cause(engine: Engine, table: Table, feature_col: Column, label_col: Column,
                        compared: int, naive_as_utc: list[str]) -> Cause | None:
    """cause.timezone_mismatch when a whole-hour shift of the feature time removes >= 95% of violations.

    The smallest such shift is the diagnosis (larger shifts in the same direction trivially also work), and
    only when it looks like a shift of every row: many rows break, or the drop is sharp."""
    counts = shift_probe(engine, table, Col(feature_col.name, "epoch"), Col(label_col.name, "epoch"))
    base = counts[0]
    if base == 0 or compared == 0:
        return None
    fixes = [h for h in HOUR_OFFSETS if counts[h] <= (1 - DROP_NEEDED) * base]
    if not fixes:
        return None
    corr = min(fixes, key=lambda h: (abs(h), h))
    # corr is the correction applied to feature_time; the stored times are shifted by -corr.
    shift = -corr
    after = counts[corr]
    before_rate, after_rate = base / compared, after / compared
    # A timezone shift moves every row by the same whole hours, so it either breaks many rows (all whose
    # real lead time is shorter than the shift) or breaks them sharply (one hour less of correction still
    # leaves most violations). A few rows leaking by a spread of delays do neither: no diagnosis then.
    prev = (corr - (1 if corr > 0 else -1)) if abs(corr) != 24 else (14 if corr > 0 else -14)
    prev_left = min(counts.get(prev, base) / base, 1.0)
    sharp, broad = prev_left >= 0.2, before_rate >= 0.25
    if not (sharp or broad):
        return None
    confidence = (0.4 + 0.3 * prev_left + 0.15 * (1 - after / base) + 0.1 * broad
                  - 0.15 * (abs(shift) == 1) - 0.2 * (abs(shift) == 24))
    what = (f"{feature_col.name!r} looks shifted by {offset_text(shift)} relative to {label_col.name!r} "
            f"(violations drop from {before_rate:.1%} to {after_rate:.1%} when corrected)")
    if abs(shift) == 24:
        what += "; a whole day points at a date convention (start vs end of day) rather than a timezone"
    evidence: dict[str, Any] = {
        "offset_hours": shift, "correction_hours": corr, "violations": base, "violations_after_correction": after,
        "violations_by_correction_hours": {str(h): counts[h] for h in sorted(counts) if abs(h) <= abs(corr) + 2},
    }
    if naive_as_utc:
        evidence["naive_treated_as_utc"] = naive_as_utc
        what += f"; {', '.join(map(repr, naive_as_utc))} has no timezone and was read as UTC"
    return cause("cause.timezone_mismatch", what, confidence, evidence)


def naive_in_pair(feature_col: Column, label_col: Column) -> list[str]:
    """When one column of a pair carries a timezone and the other does not, the naive one is read as UTC:
    its name, for the report. A column that is not time is a SpecError."""
    for c in (feature_col, label_col):
        if c.kind not in ("timestamp", "timestamp_tz", "date"):
            raise SpecError(f"column {c.name!r} is {c.sql_type} ({c.kind}); a time check needs a TIMESTAMP, "
                            "TIMESTAMP WITH TIME ZONE or DATE column. Cast it first (e.g. with mlguard.Sql(...) "
                            "or strptime), or point the check at the right column.")
    kinds = {feature_col.kind, label_col.kind}
    if "timestamp_tz" in kinds and kinds & {"timestamp", "date"}:
        return [c.name for c in (feature_col, label_col) if c.kind != "timestamp_tz"]
    return []
