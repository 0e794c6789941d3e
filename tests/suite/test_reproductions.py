"""The four reproductions of "trust on real data", as a user met them, now passing:

1. identical data fails (day-of-month PSI 0.30, ±Inf out of range, duplicate rows);
2. a scheduled guard fails every month from the second on (partition columns as unseen categories);
3. numbers that arrive as text make the guard report its own error instead of the data's type change;
4. a seconds-read-as-milliseconds bug moves every timestamp to 1970 and passes silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from tests._data import assert_quiet, only


def mlguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlguard_orchestration.cli", *args], capture_output=True,
                          check=False, text=True, env={"COLUMNS": "160", "PATH": ""})


# -- 1. identical data -------------------------------------------------------------------------------------


def test_identical_day_of_month_passes_through_the_cli(tmp_path: Path) -> None:
    """The issue's ten lines: 300k rows of rng.integers(1, 32), `mlguard profile`, then check the same file."""
    rng = np.random.default_rng(0)
    data = tmp_path / "days.parquet"
    pd.DataFrame({"day": rng.integers(1, 32, 300_000), "minute": rng.integers(0, 60, 300_000)}).to_parquet(data)
    assert mlguard("profile", str(data), "-o", str(tmp_path / "ref.json")).returncode == 0
    proc = mlguard("check", str(data), "--reference", str(tmp_path / "ref.json"), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["status"] == "pass" and report["findings"] == []
    assert report["checks_run"] >= 8  # --reference implies the default suite: drift ran, and found nothing


def test_identical_data_with_inf_and_duplicate_rows_passes() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.01] = np.inf
    with_inf = pd.DataFrame({"x": x})
    assert_quiet(mg.Guard("g", default_suite=True, reference=mg.build_profile(with_inf)).run(with_inf))
    keyless = pd.DataFrame({"a": rng.integers(0, 5, n), "b": rng.integers(0, 5, n), "c": rng.integers(0, 50, n)})
    assert keyless.duplicated().mean() > 0.05
    assert_quiet(mg.Guard("g", default_suite=True, reference=mg.build_profile(keyless)).run(keyless))


def test_discrete_drift_is_zero_on_identical_data_whatever_the_ties() -> None:
    rng = np.random.default_rng(2)
    for levels in (21, 31, 60, 365, 1000):
        df = pd.DataFrame({"x": rng.integers(1, levels + 1, 300_000)})
        prof = mg.build_profile(df)
        col = prof.columns["x"]
        assert col.role == "numeric" and col.bins is not None
        assert all(e % 1 == 0.5 for e in col.bins.edges), "integer edges sit on the half-integer lattice"
        assert mg.Guard("g", [mg.Drift()], reference=prof).run(df).findings == []


def test_the_old_quantile_level_bins_would_have_cried_wolf() -> None:
    """The measurement behind (1): shares read off quantile levels are wrong for ties; counted bins are not."""
    from mlguard_orchestration.checks.drift import psi

    rng = np.random.default_rng(3)
    days = rng.integers(1, 32, 300_000)
    levels = np.linspace(0, 1, 21)
    edges = np.quantile(days, levels)[1:-1]
    level_shares = np.diff(np.r_[0.0, levels[1:-1], 1.0])
    counted = np.bincount(np.searchsorted(edges, days, side="left"), minlength=len(edges) + 1)
    assert psi(list(level_shares), list(counted / counted.sum())) > 0.1  # the old comparison
    prof = mg.build_profile(pd.DataFrame({"day": days}))
    assert prof.columns["day"].bins is not None
    shares = np.asarray(prof.columns["day"].bins.counts, float)
    assert psi(list(shares), list(shares)) == pytest.approx(0.0, abs=1e-12)


# -- 2. scheduled partitions --------------------------------------------------------------------------------


def flights_month(month: int, seed: int) -> pd.DataFrame:
    """A month of flight-like records: partition columns, day of month, clock times, delays, carriers."""
    rng = np.random.default_rng(seed)
    days = pd.Period(f"2023-{month:02d}").days_in_month
    n = 900 * days
    day = rng.integers(1, days + 1, n)
    hour = np.clip(rng.normal(14, 4, n), 5, 23).astype(int)
    minute = rng.integers(0, 60, n)
    when = pd.to_datetime({"year": np.full(n, 2023), "month": np.full(n, month), "day": day, "hour": hour})
    season = 1.0 + 0.3 * np.sin(2 * np.pi * month / 12)
    return pd.DataFrame({
        "year": 2023, "month": month, "day": day, "hour": hour, "minute": minute,
        "dep_time": hour * 100 + minute,
        "dep_delay": np.round(rng.gamma(1.2, 12 * season, n) - 8),
        "carrier": rng.choice(["AA", "DL", "UA", "B6", "WN"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
        "distance": rng.choice([213.0, 733.0, 1089.0, 2475.0], n),
        "time_hour": when,
        "time_hour_text": when.dt.strftime("%Y-%m-%d %H:%M:%S"),
        "month_key": f"2023-{month:02d}",
    })


def test_a_scheduled_guard_passes_every_month_and_its_reference_follows(tmp_path: Path) -> None:
    guard = mg.Guard("flights", default_suite=True, store=tmp_path / "store")
    months = range(1, 13)
    for month in months:
        report = guard.run(flights_month(month, seed=month), logical_date=datetime(2023, month, 28, tzinfo=UTC))
        assert report.status != "fail", (month, [(f.code, f.columns, f.message) for f in report.findings])
        assert report.error is None
    ref = guard.store.load("flights")
    assert ref is not None and ref.columns["month"].constant_value == "12"  # promoted every month
    assert ref.columns["time_hour_text"].role == "temporal"  # text timestamps are time, not categories
    assert any("partition column 'month'" in n and "11 → 12" in n for n in report.notes)


def test_a_scheduled_guard_without_logical_dates_passes_too(tmp_path: Path) -> None:
    """A loop over historical months in Python, no logical date: the time window still moves along."""
    guard = mg.Guard("flights", default_suite=True, store=tmp_path / "store")
    for month in range(1, 5):
        report = guard.run(flights_month(month, seed=100 + month))
        assert report.status != "fail", (month, [(f.code, f.columns, f.message) for f in report.findings])


def test_declared_partition_and_excluded_columns(tmp_path: Path) -> None:
    """`partition_by` makes a column a partition key even when a batch holds a stray second value;
    `exclude` leaves a column out of the suite altogether."""
    store = tmp_path / "store"
    jan, feb = flights_month(1, 1), flights_month(2, 2)
    feb.loc[feb.index[:2000], "month_key"] = "2023-03"  # a few rows of the next month spill over
    feb["carrier"] = feb["carrier"].str.lower()  # a real break, in a column we exclude below
    loose = mg.Guard("f", default_suite=True, store=store)
    loose.run(jan, logical_date=datetime(2023, 1, 28, tzinfo=UTC))
    strict = loose.run(feb, logical_date=datetime(2023, 2, 28, tzinfo=UTC), promote=False)
    assert {"drift.unseen_categories"} <= {f.code for f in strict.findings if "carrier" in f.columns}
    told = mg.Guard("f", default_suite=True, store=store,
                    suite={"partition_by": ["month_key"], "exclude": ["carrier"]})
    report = told.run(feb, logical_date=datetime(2023, 2, 28, tzinfo=UTC))
    assert report.status == "pass", [(f.code, f.columns) for f in report.findings]


# -- 3. numbers as text ----------------------------------------------------------------------------------------


def test_numbers_arriving_as_text_are_a_type_finding_about_the_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"amount": rng.gamma(2, 30, 20_000), "n": rng.integers(0, 100, 20_000)})
    csv = tmp_path / "export.csv"
    ref.round(2).to_csv(csv, index=False)
    hop = tmp_path / "hop.parquet"  # the next step read the CSV as text and wrote parquet
    pd.read_csv(csv, dtype=str).to_parquet(hop)
    report = mg.Guard("g", default_suite=True, reference=mg.build_profile(ref)).run(str(hop))
    assert report.error is None, report.error
    assert report.status == "fail"
    found = {f.columns[0]: f for f in report.findings if f.code == "schema.type_mismatch"}
    assert set(found) == {"amount", "n"}  # dtype=str turned every column into text
    f = found["amount"]
    assert f.causes[0].code == "cause.numbers_as_text"
    assert "100% of 'amount'" in f.causes[0].summary
    assert report.top_cause is not None and report.top_cause.code == "cause.numbers_as_text"


# -- 4. timestamps moved to 1970 ---------------------------------------------------------------------------------


def test_seconds_read_as_milliseconds_fail_with_the_unit_named() -> None:
    rng = np.random.default_rng(5)
    epoch_s = 1_700_000_000 + rng.integers(0, 30 * 86_400, 50_000)
    good = pd.DataFrame({"event_time": pd.to_datetime(epoch_s, unit="s"), "v": rng.normal(size=50_000)})
    broken = good.assign(event_time=pd.to_datetime(epoch_s, unit="ms"))  # the bug: the unit is wrong
    guard = mg.Guard("events", default_suite=True, reference=mg.build_profile(good))
    assert_quiet(guard.run(good))
    report = guard.run(broken)
    assert report.status == "fail"
    f = only(report, "time.out_of_window")
    assert f.columns == ["event_time"] and "1970-01-" in f.message
    assert f.causes[0].code == "cause.epoch_unit"
    assert "seconds read as milliseconds" in f.causes[0].summary
    assert report.top_finding is f or report.top_finding == f


def test_a_number_that_moves_on_to_its_next_stretch_is_a_partition_not_drift(tmp_path: Path) -> None:
    """A year-fraction date (2000.0 … 2000.917, then 2001.0 …) is the schedule moving on; the same column
    multiplied by 1000 is not (its range stretches), nor shifted far past its end (a gap)."""
    rng = np.random.default_rng(9)

    def year(y: int) -> pd.DataFrame:
        return pd.DataFrame({"date": y + rng.integers(0, 12, 5_000) / 12, "sales": rng.gamma(3, 100, 5_000)})

    guard = mg.Guard("housing", default_suite=True, store=tmp_path)
    guard.run(year(2000))
    assert_quiet(guard.run(year(2001)))
    ref = guard.store.load("housing")
    broken = mg.Guard("housing", default_suite=True, reference=ref)
    assert "date" in {c for f in broken.run(year(2002).assign(date=lambda d: d["date"] * 1000)).findings
                      for c in f.columns}
    assert "date" in {c for f in broken.run(year(2009)).findings for c in f.columns}
