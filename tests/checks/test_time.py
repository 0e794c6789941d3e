"""`time_drift`: time columns judged in a window that moves with the run's logical date, and by their
hour-of-day profile. It fires on an epoch-unit bug, a stale extract and a timezone shift of whole hours; it
stays quiet on the next day's or month's data, on a backfill run with its own logical date, and on a
daylight-saving hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from tests._data import assert_quiet, only

N = 40_000


def events(start: datetime, days: int, seed: int, *, tz: str | None = None, hour_shift: int = 0) -> pd.DataFrame:
    """Event times over `days` days with a daily rhythm (busy afternoons)."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, days, N)
    hour = np.clip(rng.normal(15, 3.5, N), 0, 23.99)
    ts = pd.Timestamp(start) + pd.to_timedelta(day, "D") + pd.to_timedelta(hour + hour_shift, "h")
    frame = pd.DataFrame({"event_time": ts, "amount": rng.gamma(2, 10, N)})
    if tz:
        frame["event_time"] = frame["event_time"].dt.tz_localize(tz)
    return frame


def guard(ref: mg.TableProfile) -> mg.Guard:
    return mg.Guard("events", [mg.TimeDrift()], reference=ref)


JAN = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def jan_ref() -> mg.TableProfile:
    return mg.build_profile(events(JAN, 31, 1), logical_date=datetime(2024, 2, 1, tzinfo=UTC))


def test_quiet_on_the_next_month_at_its_logical_date(jan_ref: mg.TableProfile) -> None:
    feb = events(datetime(2024, 2, 1), 29, 2)
    assert_quiet(guard(jan_ref).run(feb, logical_date=datetime(2024, 3, 1, tzinfo=UTC)))


def test_quiet_on_a_backfill_run_with_its_own_logical_date(jan_ref: mg.TableProfile) -> None:
    old = events(datetime(2021, 6, 1), 30, 3)
    assert_quiet(guard(jan_ref).run(old, logical_date=datetime(2021, 7, 1, tzinfo=UTC)))


def test_quiet_on_a_daylight_saving_hour(jan_ref: mg.TableProfile) -> None:
    summer = events(datetime(2024, 2, 1), 29, 4, hour_shift=1)
    assert_quiet(guard(jan_ref).run(summer, logical_date=datetime(2024, 3, 1, tzinfo=UTC)))


def test_a_stale_extract_is_out_of_the_window(jan_ref: mg.TableProfile) -> None:
    """January's data served again half a year later."""
    report = guard(jan_ref).run(events(JAN, 31, 5), logical_date=datetime(2024, 8, 1, tzinfo=UTC))
    f = only(report, "time.out_of_window")
    assert f.severity == "fail" and f.causes[0].code == "cause.stale_source"


def test_milliseconds_read_as_seconds_land_far_in_the_future() -> None:
    rng = np.random.default_rng(6)
    ms = 1_700_000_000_000 + rng.integers(0, 86_400_000, N)
    good = pd.DataFrame({"t": pd.to_datetime(ms, unit="ms")})
    bad = pd.DataFrame({"t": pd.Timestamp("1970-01-01") + pd.to_timedelta(ms // 1000, "s") * 1000})
    report = guard(mg.build_profile(good)).run(bad)
    f = only(report, "time.out_of_window")
    assert f.causes[0].code == "cause.epoch_unit" and "milliseconds read as seconds" in f.causes[0].summary


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_a_five_hour_shift_is_a_timezone_mismatch(tz: str | None) -> None:
    ref = mg.build_profile(events(JAN, 31, 7, tz=tz), logical_date=datetime(2024, 2, 1, tzinfo=UTC))
    shifted = events(datetime(2024, 2, 1), 29, 8, tz=tz, hour_shift=5)
    report = guard(ref).run(shifted, logical_date=datetime(2024, 3, 1, tzinfo=UTC))
    f = only(report, "time.hour_shift")
    assert f.value == 5 and f.severity == "fail"
    assert f.causes[0].code == "cause.timezone_mismatch" and "+5 h" in f.causes[0].summary


def test_daily_timestamps_shifted_to_the_previous_evening() -> None:
    days = pd.date_range("2024-01-01", periods=365, freq="D").repeat(100)
    ref = mg.build_profile(pd.DataFrame({"day": days[: 180 * 100]}))
    shifted = pd.DataFrame({"day": days[180 * 100:] - timedelta(hours=5)})
    report = mg.Guard("d", [mg.TimeDrift(window=5)], reference=ref).run(shifted)
    assert only(report, "time.hour_shift").value == -5


def test_text_timestamps_are_time(jan_ref: mg.TableProfile) -> None:
    text = events(JAN, 31, 9).assign(event_time=lambda d: d["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    prof = mg.build_profile(text, logical_date=datetime(2024, 2, 1, tzinfo=UTC))
    assert prof.columns["event_time"].role == "temporal"
    moved = text.assign(event_time="1970-01-01 00:00:00")
    report = guard(prof).run(moved, logical_date=datetime(2024, 2, 1, tzinfo=UTC))
    assert only(report, "time.out_of_window").columns == ["event_time"]
