"""Freshness: stale and future data against the run's logical date, in every timestamp flavour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.freshness import Freshness
from mlguard_orchestration.guard import Guard

LOGICAL = datetime(2024, 3, 10, 12, 0)  # naive: taken as UTC


def _events(n: int = 5_000, *, end: datetime = LOGICAL, span_h: float = 48, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(60, span_h * 3600, n)
    ages[0] = 60.0  # the newest event is a minute before `end`
    return pd.Series(pd.Timestamp(end) - pd.to_timedelta(ages, unit="s"), name="event_time")


def _run(df: pd.DataFrame, check: Freshness, logical_date: datetime | None = LOGICAL):
    return Guard("fresh", checks=[check]).run(df, logical_date=logical_date)


def _codes(report) -> list[str]:
    return [f.code for f in report.findings]


def test_fresh_naive_data_passes():
    report = _run(pd.DataFrame({"event_time": _events()}), Freshness(column="event_time", max_age="6h"))
    assert report.status == "pass", report.headline()


def test_stale_data_names_the_age():
    df = pd.DataFrame({"event_time": _events(end=LOGICAL - timedelta(days=3))})
    report = _run(df, Freshness(column="event_time", max_age="1d"))
    assert report.status == "fail"
    (f,) = report.findings
    assert f.code == "freshness.stale"
    assert f.value == pytest.approx(3 * 86400 + 60, abs=1)
    assert "3.0 days" in f.message
    assert f.causes[0].code == "cause.stale_source"
    assert f.evidence["logical_date_utc"].startswith("2024-03-10T12:00")


def test_future_rows_from_a_timezone_shift_are_diagnosed():
    # Events recorded in local time UTC+5 but stored naive and read as UTC: the newest is ~5 h "ahead".
    df = pd.DataFrame({"event_time": _events() + pd.Timedelta(hours=5)})
    report = _run(df, Freshness(column="event_time", max_age="6h"))
    (f,) = report.findings
    assert f.code == "freshness.future"
    assert f.evidence["future_rows"] > 0
    top = f.causes[0]
    assert top.code == "cause.timezone_mismatch"
    assert top.evidence["offset_hours"] == 5
    assert "UTC+5" in top.summary


def test_future_without_whole_hour_offset_has_no_timezone_cause():
    df = pd.DataFrame({"event_time": _events() + pd.Timedelta(minutes=150)})
    (f,) = _run(df, Freshness(column="event_time", max_age="6h")).findings
    assert f.code == "freshness.future"
    assert not any(c.code == "cause.timezone_mismatch" for c in f.causes)


def test_max_future_allows_small_clock_skew():
    df = pd.DataFrame({"event_time": _events() + pd.Timedelta(minutes=10)})
    assert _run(df, Freshness(column="event_time", max_age="6h", max_future="15m")).status == "pass"
    assert _codes(_run(df, Freshness(column="event_time", max_age="6h"))) == ["freshness.future"]


def test_tz_aware_column_is_compared_as_instants():
    # Correct instants written in New York time: naively compared (wall clock) they would look 4-5 h stale.
    ny = _events().dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    report = _run(pd.DataFrame({"event_time": ny}), Freshness(column="event_time", max_age="1h"))
    assert report.status == "pass", report.headline()
    # ... and a tz-aware logical date means the same instant as its naive UTC twin.
    aware = LOGICAL.replace(tzinfo=UTC).astimezone(pd.Timestamp(0, tz="Asia/Tokyo").tzinfo)
    assert _run(pd.DataFrame({"event_time": ny}), Freshness(column="event_time", max_age="1h"),
                logical_date=aware).status == "pass"


def test_tz_aware_future_is_detected():
    ahead = (_events() + pd.Timedelta(hours=3)).dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    (f,) = _run(pd.DataFrame({"event_time": ahead}), Freshness(column="event_time", max_age="6h")).findings
    assert f.code == "freshness.future"
    assert f.causes and f.causes[0].evidence["column_is_naive"] is False


def test_naive_local_times_with_declared_timezone():
    # Naive New York wall-clock times (March 10 2024 is EDT, UTC-4, after 07:00 UTC).
    utc = _events()
    local = utc.dt.tz_localize("UTC").dt.tz_convert("America/New_York").dt.tz_localize(None)
    df = pd.DataFrame({"event_time": local})
    assert _run(df, Freshness(column="event_time", max_age="1h", timezone="America/New_York")).status == "pass"
    # Read as UTC, the same values look about 4 h old.
    (f,) = _run(df, Freshness(column="event_time", max_age="1h")).findings
    assert f.code == "freshness.stale"
    assert f.value == pytest.approx(4 * 3600 + 60, abs=5)
    # A fixed offset works too.
    assert _run(df, Freshness(column="event_time", max_age="1h", timezone="UTC-4")).status == "pass"


def test_date_column_is_fresh_until_the_end_of_the_day():
    today = LOGICAL.date()
    df = pd.DataFrame({"d": [today - timedelta(days=i) for i in range(10)]})
    # the newest date is today: fresh (end of day), and not in the future (start of day is before LOGICAL)
    assert _run(df, Freshness(column="d", max_age="12h")).status == "pass"
    old = pd.DataFrame({"d": [today - timedelta(days=i) for i in range(3, 10)]})
    (f,) = _run(old, Freshness(column="d", max_age="1d")).findings
    assert f.code == "freshness.stale"
    tomorrow = pd.DataFrame({"d": [today + timedelta(days=1), today]})
    assert _codes(_run(tomorrow, Freshness(column="d", max_age="1d"))) == ["freshness.future"]
    assert isinstance(df["d"][0], date)


def test_empty_table_and_all_null_column():
    empty = pd.DataFrame({"event_time": pd.Series([], dtype="datetime64[ns]")})
    (f,) = _run(empty, Freshness(column="event_time", max_age="6h")).findings
    assert f.code == "freshness.stale" and "empty" in f.message
    assert f.causes[0].code == "cause.empty_extract"
    nulls = pd.DataFrame({"event_time": pd.Series([pd.NaT] * 5, dtype="datetime64[ns]")})
    (f,) = _run(nulls, Freshness(column="event_time", max_age="6h")).findings
    assert f.code == "freshness.stale" and "NULL" in f.message


def test_without_logical_date_now_is_used():
    now = datetime.now(UTC).replace(tzinfo=None)
    df = pd.DataFrame({"event_time": _events(end=now)})
    assert _run(df, Freshness(column="event_time", max_age="1h"), logical_date=None).status == "pass"
    old = pd.DataFrame({"event_time": _events(end=now - timedelta(hours=5))})
    assert _codes(_run(old, Freshness(column="event_time", max_age="1h"), logical_date=None)) == ["freshness.stale"]


def test_non_temporal_column_is_a_spec_error():
    report = _run(pd.DataFrame({"event_time": ["2024-03-10"]}), Freshness(column="event_time", max_age="1d"))
    assert report.status == "error"
    assert "TIMESTAMP" in report.error.message and "event_time" in report.error.message


def test_missing_column_is_a_schema_finding():
    report = _run(pd.DataFrame({"event_tme": _events()}), Freshness(column="event_time", max_age="1d"))
    (f,) = report.findings
    assert f.code == "schema.missing_column"
    assert "event_tme" in f.message


def test_hostile_column_name():
    name = 'ts"; DROP TABLE x; --'
    df = pd.DataFrame({name: _events(end=LOGICAL - timedelta(days=2))})
    (f,) = _run(df, Freshness(column=name, max_age="1d")).findings
    assert f.code == "freshness.stale"


@pytest.mark.parametrize(("text", "seconds"), [
    ("6h", 21600), ("2d", 172800), ("90m", 5400), ("1h30m", 5400), ("1 day", 86400), ("PT6H", 21600),
    (3600, 3600), ("45s", 45), ("1w", 604800),
])
def test_duration_parsing(text, seconds):
    assert Freshness(column="t", max_age=text).max_age.total_seconds() == seconds


@pytest.mark.parametrize("kwargs", [
    {"max_age": "6 parsecs"}, {"max_age": "0h"}, {"max_age": "6h", "max_future": "-1h"},
    {"max_age": "6h", "timezone": "Mars/Olympus_Mons"}, {"max_age": "6h", "unknown": 1},
])
def test_bad_specs_are_rejected(kwargs):
    with pytest.raises(ValidationError):
        Freshness(column="t", **kwargs)


def test_spec_dict_round_trip():
    check = TypeAdapter(AnyCheck).validate_python({"kind": "freshness", "column": "t", "max_age": "2d",
                                                   "max_future": 600, "timezone": "Europe/Paris"})
    assert isinstance(check, Freshness)
    assert check.max_age == timedelta(days=2) and check.max_future == timedelta(minutes=10)
    again = TypeAdapter(AnyCheck).validate_json(check.model_dump_json())
    assert again == check
