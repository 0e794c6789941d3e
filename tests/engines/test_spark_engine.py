"""The Spark engine on the real local Spark session: every request and predicate on one generated table with
hostile column names, NaN, ±Inf and NULL apart, naive and zoned timestamps, dates and timestamp text, each
answer compared with numpy/pandas computed here. Spark is slow on a shared 2-core machine, so the table is
built once and almost every request is answered by ONE `measure` call (one scan, plus its probes)."""

from __future__ import annotations

import datetime as dt
import math
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from mlguard_orchestration.engines import (
    And,
    Col,
    Compare,
    CompareColumns,
    Count,
    Counted,
    CountIf,
    Distinct,
    DistinctRows,
    DuplicateRows,
    Histogram,
    IsIn,
    IsInf,
    IsNaN,
    IsNull,
    Matches,
    MaxGap,
    MinMax,
    Moments,
    Not,
    NullCount,
    Or,
    Quantiles,
    TopK,
    ValueCounts,
)
from mlguard_orchestration.engines.requests import category_key
from mlguard_orchestration.engines.spark import (
    APPROX_DISTINCT_RSD,
    APPROX_QUANTILE_ACCURACY,
    columns,
    measure,
)
from mlguard_orchestration.errors import SourceError, SpecError

N = 2_000
X, I, S, NTZ, TZ, DAY, TEXT = "select", 'a "quoted" name', "prix €", "a.b", "back`tick", "day", "when text"
ZONE, NY = "Europe/Paris", "America/New_York"
UTC = dt.UTC
STRINGS = ["ann", "bob", "éva", "zoë", "日本", "a b", "", "abc", "abc\n", "c'ed", 'd"an', " 12.5 ", "NaN"]
START = dt.datetime(2024, 3, 20)  # a month that spans Paris's and New York's spring DST change
T_APR = dt.datetime(2024, 4, 1, tzinfo=UTC).timestamp()


@dataclass
class Truth:
    """The table as numpy/Python values: what every expected answer is computed from."""

    frame: pd.DataFrame
    x: np.ndarray  # floats with NaN and ±Inf; NULL rows are x_null
    x_null: np.ndarray
    i: list[int | None]
    s: list[str | None]
    ntz: list[dt.datetime | None]
    tz: list[dt.datetime | None]
    day: list[dt.date | None]
    text: list[str | None]
    text_epoch: list[float | None]  # what `text` means as an instant (None: NULL or unparsable)


def _nulls(rng: np.random.Generator, values: list[Any], share: float) -> list[Any]:
    return [None if rng.random() < share else v for v in values]


def make_truth() -> Truth:
    rng = np.random.default_rng(14)
    x = np.round(rng.normal(10, 4, N), 1)  # multiples of 0.1: many values sit exactly on histogram edges
    x[rng.random(N) < 0.03] = np.nan
    x[rng.choice(N, 8, replace=False)] = np.inf
    x[rng.choice(N, 5, replace=False)] = -np.inf
    x_null = rng.random(N) < 0.05
    i = _nulls(rng, [int(v) for v in rng.integers(0, 50, N)], 0.1)
    s = _nulls(rng, list(rng.choice(np.array(STRINGS, dtype=object), N, p=[.16, .15, .1, .1, .1, .08, .05, .07,
                                                                          .05, .05, .05, .02, .02])), 0.08)
    ntz = _nulls(rng, [START + dt.timedelta(seconds=int(a), microseconds=int(b))
                       for a, b in zip(rng.integers(0, 30 * 86_400, N), rng.integers(0, 10**6, N), strict=True)], 0.07)
    tz = _nulls(rng, [START.replace(tzinfo=UTC) + dt.timedelta(seconds=int(a)) for a in rng.integers(0, 30 * 86_400, N)],
                0.07)
    day = _nulls(rng, [dt.date(2024, 3, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 60, N)], 0.07)
    text, text_epoch = [], []
    for secs, form in zip(rng.integers(0, 30 * 86_400, N), rng.integers(0, 9, N), strict=True):
        t = START.replace(tzinfo=UTC) + dt.timedelta(seconds=int(secs))
        wall = t.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)  # naive text is read in ZONE
        shown, epoch = [
            (wall.strftime("%Y-%m-%d %H:%M:%S"), t.timestamp()),
            (wall.isoformat(), t.timestamp()),
            (t.strftime("%Y-%m-%dT%H:%M:%SZ"), t.timestamp()),
            (t.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat(), t.timestamp()),
            (wall.strftime("%Y-%m-%d"), wall_epoch(dt.datetime.combine(wall.date(), dt.time()), ZONE)),
            (t.strftime("%Y-%m-%d %H:%M:%S UTC"), None),  # a zone name is not in the engines' grammar
            ("2024-02-30 10:00:00", None),  # no such day
            ("nope", None),
            ("", None),
        ][int(form)]
        text.append(shown)
        text_epoch.append(epoch)
    for k in range(N):
        if rng.random() < 0.05:
            text[k], text_epoch[k] = None, None
    frame = pd.DataFrame({
        X: pd.Series([None if n else float(v) for v, n in zip(x, x_null, strict=True)], dtype=object),
        I: pd.array(i, dtype="Int64"),
        S: pd.Series(s, dtype=object),
        NTZ: pd.Series(ntz, dtype="datetime64[us]"),
        TZ: pd.Series(tz, dtype="datetime64[us, UTC]"),
        DAY: pd.Series(day, dtype=object),
        TEXT: pd.Series(text, dtype=object),
    })
    return Truth(frame, x, x_null, i, s, ntz, tz, day, text, text_epoch)


def to_spark(spark: Any, frame: pd.DataFrame) -> Any:
    """Rows through Python, not Arrow: Arrow would turn a NaN into NULL, and the two must stay apart here."""
    from pyspark.sql import types as T

    def py(v: Any) -> Any:
        if v is None or v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.to_pydatetime()
        return v.item() if isinstance(v, np.generic) else v

    schema = T.StructType([T.StructField(X, T.DoubleType()), T.StructField(I, T.LongType()),
                           T.StructField(S, T.StringType()), T.StructField(NTZ, T.TimestampNTZType()),
                           T.StructField(TZ, T.TimestampType()), T.StructField(DAY, T.DateType()),
                           T.StructField(TEXT, T.StringType())])
    rows = [tuple(py(v) for v in row) for row in frame.itertuples(index=False, name=None)]
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return make_truth()


@pytest.fixture(scope="module")
def df(spark: Any, truth: Truth) -> Any:
    return to_spark(spark, truth.frame)


@pytest.fixture(scope="module")
def kinds(df: Any) -> dict[str, str]:
    return {name: kind for name, (_, kind) in columns(df).items()}


# -- expected values --------------------------------------------------------------------------------------


def arr(values: list[Any], f: Any = lambda v: v) -> np.ndarray:
    """A float array of f(value), NaN where the value is NULL (for masks; NULL never satisfies a compare)."""
    return np.array([np.nan if v is None else float(f(v)) for v in values])


def wall_epoch(t: dt.datetime, zone: str) -> float:
    return t.replace(tzinfo=ZoneInfo(zone)).timestamp()


def predicates(t: Truth) -> dict[Any, int]:
    """Every predicate kind, with the number of rows numpy says satisfy it."""
    x, valid = t.x, ~t.x_null
    i, s_ok = arr(t.i), np.array([v is not None for v in t.s])
    s = np.array([v if v is not None else "" for v in t.s], dtype=object)
    ntz_epoch = arr(t.ntz, lambda v: wall_epoch(v, ZONE))
    ntz_utc = arr(t.ntz, lambda v: wall_epoch(v, "UTC"))
    tz_epoch = arr(t.tz, lambda v: v.timestamp())
    day_end_ny = arr(t.day, lambda d: dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), ZoneInfo(NY)).timestamp())
    text_epoch = arr(t.text_epoch)
    with np.errstate(invalid="ignore"):
        gt10 = valid & (x > 10)
        i_ge40 = i >= 40
        return {
            Compare(X, ">", 10): gt10.sum(),
            Compare(X, "!=", 10): (valid & ~np.isnan(x) & (x != 10)).sum(),  # a NaN is not even != 10
            Compare(X, "=", 10.5): (valid & (x == 10.5)).sum(),
            Compare(Col(X, "number"), "<=", 5): (valid & np.isfinite(x) & (x <= 5)).sum(),
            Compare(I, "<", 20): (i < 20).sum(),
            Compare(S, "=", "éva"): (s_ok & (s == "éva")).sum(),
            Compare(Col(S, "number"), ">", 12): sum(v == " 12.5 " for v in t.s),  # blanks ignored
            IsNull(Col(S, "number")): sum(v != " 12.5 " for v in t.s),  # NULL, no number, or NaN
            Compare(Col(S, "length"), ">=", 3): sum(v is not None and len(v) >= 3 for v in t.s),
            Compare(NTZ, ">", "2024-04-01 00:00:00"): sum(v is not None and v > dt.datetime(2024, 4, 1) for v in t.ntz),
            Compare(Col(NTZ, "epoch", zone=ZONE), ">", T_APR): (ntz_epoch > T_APR).sum(),
            Compare(Col(NTZ, "hour", zone=ZONE), "<", 6): (np.floor(ntz_epoch % 86_400 / 3600) < 6).sum(),
            Compare(Col(TZ, "hour"), "=", 13): sum(v is not None and v.hour == 13 for v in t.tz),
            Compare(Col(DAY, "epoch", zone=NY, end_of_day=True), "<=", T_APR): (day_end_ny <= T_APR).sum(),
            Compare(Col(TEXT, "epoch", zone=ZONE), ">=", T_APR): (text_epoch >= T_APR).sum(),
            IsNull(Col(TEXT, "epoch", zone=ZONE)): np.isnan(text_epoch).sum(),
            CompareColumns(Col(NTZ, "epoch"), "<", Col(TZ, "epoch"), shift=3600): (ntz_utc + 3600 < tz_epoch).sum(),
            CompareColumns(X, ">", I): (valid & (x > i)).sum(),
            IsNull(X): t.x_null.sum(),
            IsNull(Col(X, "number")): (t.x_null | ~np.isfinite(x)).sum(),
            IsIn(S, ["ann", "日本"]): (s_ok & np.isin(s, ["ann", "日本"])).sum(),
            Not(IsIn(S, ["ann", "日本"])): (s_ok & ~np.isin(s, ["ann", "日本"])).sum(),  # NULL: not in, not out
            IsIn(I, []): 0,
            IsNaN(X): (valid & np.isnan(x)).sum(),
            IsInf(X): (valid & np.isinf(x)).sum(),
            IsNaN(S): 0,
            Not(IsNaN(X)): N - (valid & np.isnan(x)).sum(),  # IsNaN is false (not NULL) on a NULL
            Matches(S, "[a-z]+"): sum(v is not None and re.fullmatch("[a-z]+", v) is not None for v in t.s),
            Matches(S, "abc"): sum(v == "abc" for v in t.s),  # not "abc\n": Java's $ would take it
            Matches(S, "b"): 0,  # in full, not found inside "bob"
            Matches(I, r"1\d"): sum(v is not None and 10 <= v <= 19 for v in t.i),
            Matches(X, r"1\d\.5"): sum(n == 0 and 10 <= v < 20 and round(v % 1, 1) == 0.5
                                       for v, n in zip(x, t.x_null, strict=True)),
            And(Compare(X, ">", 10), Not(IsNull(I))): (gt10 & ~np.isnan(i)).sum(),
            Or(IsNull(X), Compare(I, ">=", 40)): (t.x_null | i_ge40).sum(),
            Not(Compare(X, ">", 10)): (valid & ~(x > 10)).sum(),  # NaN > 10 is false, so NOT holds
            Not(Or(IsNull(X), Compare(I, ">=", 40))): (valid & (i < 40)).sum(),  # NULL i: unknown, not counted
        }


def finite(t: Truth) -> np.ndarray:
    return t.x[~t.x_null & np.isfinite(t.x)]


def bins(values: np.ndarray, edges: tuple[float, ...]) -> tuple[int, ...]:
    """Counts in (-inf, e0], (e0, e1], ..., (en, inf): upper edges closed."""
    return tuple(np.bincount(np.searchsorted(np.array(edges), values, side="left"), minlength=len(edges) + 1))


def ranked(counts: Counter[Any], top: int, text: Any = str) -> list[tuple[Any, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], text(kv[0])))[:top]


def counted(values: list[Any], top: int, text: Any = category_key) -> Counted:
    counts = Counter(v for v in values if v is not None)
    best = ranked(counts, top, text)
    return Counted(top=tuple(best), distinct=len(counts), other=counts.total() - sum(c for _, c in best))


# -- one scan ---------------------------------------------------------------------------------------------

EDGES = (5.0, 10.0, 15.0)
SCAN = [
    Count(), NullCount(X), NullCount(Col(X, "number")), NullCount(I),
    MinMax(X), MinMax(Col(X, "number")), MinMax(I), MinMax(S), MinMax(NTZ), MinMax(TZ), MinMax(DAY),
    MinMax(Col(NTZ, "epoch", zone=ZONE)), MinMax(Col(TEXT, "epoch", zone=ZONE)),
    MinMax(Col(DAY, "epoch", zone=NY)), MinMax(Col(DAY, "epoch", zone=NY, end_of_day=True)),
    Moments(Col(X, "number")), Moments(I, center=25.0),
    Quantiles(Col(X, "number"), (0.0, 0.1, 0.5, 0.9, 1.0)), Quantiles(I, (0.25, 0.5)),
    Quantiles(Col(X, "number"), (0.1, 0.5, 0.9), exact=False),
    Quantiles(Col(X, "number"), (0.0, 0.5, 1.0), sample=0.5),
    Distinct(I), Distinct(I, exact=False), Distinct(X), Distinct(S, exact=False), Distinct(NTZ, exact=False),
    Histogram(Col(X, "number"), EDGES), Histogram(X, (0.0, 20.0)), Histogram(I, (9.5, 19.5)),
    Histogram(Col(X, "number"), EDGES, sample=0.5), Histogram(Col(X, "number"), (0.0, 20.0), sample=0.5),
    Histogram(Col(X, "number"), (0.0, 20.0), sample=0.2),
    MaxGap(Col(TZ, "epoch"), Col(NTZ, "epoch", zone=ZONE)), MaxGap(Col(X, "number"), I), MaxGap(X, I),
    MinMax(Col(I, "epoch")), MinMax(Col(I, "length")), ValueCounts(Col(X, "number"), top=300),
    DistinctRows([I, S]), DuplicateRows([I, S]), DuplicateRows([X]), DuplicateRows([TEXT]),
    ValueCounts(S, top=3), ValueCounts(TZ, top=2), ValueCounts(Col(NTZ, "hour", zone=ZONE), top=4),
    TopK(S, 2), TopK(Col(I), 3, where=Compare(X, ">", 10)),
]


@pytest.fixture(scope="module")
def measured(df: Any, kinds: dict[str, str], truth: Truth) -> dict[Any, Any]:
    return measure(df, [*SCAN, *(CountIf(p) for p in predicates(truth))], kinds=kinds)


def value(measured: dict[Any, Any], request: Any, exact: bool = True) -> Any:
    got = measured[request]
    assert got.exact is exact, request
    return got.value


def test_columns_map_spark_types_to_logical_kinds(spark: Any, df: Any) -> None:
    from pyspark.sql import types as T

    assert columns(df) == {X: ("double", "float"), I: ("bigint", "integer"), S: ("string", "string"),
                           NTZ: ("timestamp_ntz", "timestamp"), TZ: ("timestamp", "timestamp_tz"),
                           DAY: ("date", "date"), TEXT: ("string", "string")}
    others = spark.createDataFrame([], T.StructType([
        T.StructField("d", T.DecimalType(10, 2)), T.StructField("f", T.FloatType()), T.StructField("b", T.BooleanType()),
        T.StructField("y", T.BinaryType()), T.StructField("l", T.ArrayType(T.LongType())),
        T.StructField("m", T.MapType(T.StringType(), T.LongType())), T.StructField("n", T.NullType()),
        T.StructField("iv", T.DayTimeIntervalType()), T.StructField("sh", T.ShortType())]))
    assert {k: kind for k, (_, kind) in columns(others).items()} == {
        "d": "decimal", "f": "float", "b": "boolean", "y": "binary", "l": "nested", "m": "nested", "n": "other",
        "iv": "interval", "sh": "integer"}
    assert columns(others)["d"][0] == "decimal(10,2)"


def test_counts_and_null_counts(measured: dict[Any, Any], truth: Truth) -> None:
    assert value(measured, Count()) == N
    assert value(measured, NullCount(X)) == truth.x_null.sum()  # a NaN is not NULL ...
    assert value(measured, NullCount(Col(X, "number"))) == (truth.x_null | ~np.isfinite(truth.x)).sum()  # ... here
    assert value(measured, NullCount(I)) == sum(v is None for v in truth.i)


def test_every_predicate_counts_what_numpy_counts(measured: dict[Any, Any], truth: Truth) -> None:
    wrong = {p: (value(measured, CountIf(p)), want) for p, want in predicates(truth).items()
             if value(measured, CountIf(p)) != want}
    assert not wrong


def test_min_max_of_every_kind(measured: dict[Any, Any], truth: Truth) -> None:
    lo, hi = value(measured, MinMax(X))
    assert lo == -math.inf and math.isnan(hi)  # Spark orders NaN above +Inf; of="number" is the finite view
    assert value(measured, MinMax(Col(X, "number"))) == (finite(truth).min(), finite(truth).max())
    for column, values in ((I, truth.i), (S, truth.s), (NTZ, truth.ntz), (TZ, truth.tz), (DAY, truth.day)):
        present = [v for v in values if v is not None]
        assert value(measured, MinMax(column)) == (min(present), max(present)), column
    assert value(measured, MinMax(TZ))[0].tzinfo is not None  # an instant comes back aware (UTC)


def test_epochs_read_naive_times_in_their_zone(measured: dict[Any, Any], truth: Truth) -> None:
    ntz = [wall_epoch(v, ZONE) for v in truth.ntz if v is not None]
    assert value(measured, MinMax(Col(NTZ, "epoch", zone=ZONE))) == pytest.approx((min(ntz), max(ntz)), abs=1e-6)
    parsed = [v for v in truth.text_epoch if v is not None]
    assert value(measured, MinMax(Col(TEXT, "epoch", zone=ZONE))) == (min(parsed), max(parsed))
    days = [d for d in truth.day if d is not None]
    start = dt.datetime.combine(min(days), dt.time(), ZoneInfo(NY)).timestamp()
    end = dt.datetime.combine(max(days) + dt.timedelta(days=1), dt.time(), ZoneInfo(NY)).timestamp()
    assert value(measured, MinMax(Col(DAY, "epoch", zone=NY)))[0] == start
    assert value(measured, MinMax(Col(DAY, "epoch", zone=NY, end_of_day=True)))[1] == end


def test_moments_are_n_mean_and_sample_sd(measured: dict[Any, Any], truth: Truth) -> None:
    v = finite(truth)
    n, mean, sd = value(measured, Moments(Col(X, "number")))
    assert n == len(v) and mean == pytest.approx(v.mean(), rel=1e-12) and sd == pytest.approx(v.std(ddof=1), rel=1e-9)
    ints = np.array([k for k in truth.i if k is not None], dtype=float)
    assert value(measured, Moments(I, center=25.0)) == pytest.approx((len(ints), ints.mean(), ints.std(ddof=1)),
                                                                       rel=1e-12)


def test_max_gaps_and_numbers_read_as_times_or_lengths(measured: dict[Any, Any], truth: Truth) -> None:
    gaps = [a.timestamp() - wall_epoch(b, ZONE) for a, b in zip(truth.tz, truth.ntz, strict=True)
            if a is not None and b is not None]
    assert value(measured, MaxGap(Col(TZ, "epoch"), Col(NTZ, "epoch", zone=ZONE))) == pytest.approx(max(gaps), abs=1e-6)
    pairs = [(x, k) for x, n, k in zip(truth.x, truth.x_null, truth.i, strict=True) if not n and k is not None]
    assert value(measured, MaxGap(Col(X, "number"), I)) == max(x - k for x, k in pairs if math.isfinite(x))
    assert math.isnan(value(measured, MaxGap(X, I)))  # as stored: Spark's max is NaN
    ints = [k for k in truth.i if k is not None]
    assert value(measured, MinMax(Col(I, "epoch"))) == (min(ints), max(ints))  # a number is seconds already
    assert value(measured, MinMax(Col(I, "length"))) == (min(len(str(k)) for k in ints), max(len(str(k)) for k in ints))


def test_exact_quantiles_interpolate_like_numpy(measured: dict[Any, Any], truth: Truth) -> None:
    levels = (0.0, 0.1, 0.5, 0.9, 1.0)
    assert value(measured, Quantiles(Col(X, "number"), levels)) == pytest.approx(
        tuple(np.quantile(finite(truth), levels)), rel=1e-12)
    ints = np.array([k for k in truth.i if k is not None], dtype=float)
    assert value(measured, Quantiles(I, (0.25, 0.5))) == pytest.approx(tuple(np.quantile(ints, (0.25, 0.5))))


def test_approximate_quantiles_are_within_their_rank_error(measured: dict[Any, Any], truth: Truth) -> None:
    """percentile_approx answers a value of the data whose rank is within n / accuracy of q·n (plus one for the
    rank's rounding): marked exact=False."""
    v = finite(truth)
    slack = len(v) / APPROX_QUANTILE_ACCURACY + 1
    levels = (0.1, 0.5, 0.9)
    for q, got in zip(levels, value(measured, Quantiles(Col(X, "number"), levels, exact=False), exact=False),
                      strict=True):
        assert got in v
        assert (v < got).sum() <= q * len(v) + slack and (v <= got).sum() >= q * len(v) - slack


def test_distinct_exact_and_sketched(measured: dict[Any, Any], truth: Truth) -> None:
    ints = {k for k in truth.i if k is not None}
    assert value(measured, Distinct(I)) == len(ints)
    assert value(measured, Distinct(I, exact=False)) == len(ints)  # the exact count is there anyway: exact
    floats = {("nan" if math.isnan(v) else v) for v, n in zip(truth.x, truth.x_null, strict=True) if not n}
    assert value(measured, Distinct(X)) == len(floats)  # NaN is one value, as are +Inf and -Inf
    assert value(measured, Distinct(S, exact=False)) == len({v for v in truth.s if v is not None})  # ValueCounts(S)
    stamps = len({v for v in truth.ntz if v is not None})
    assert value(measured, Distinct(NTZ, exact=False), exact=False) == pytest.approx(stamps, rel=5 * APPROX_DISTINCT_RSD)


def test_histograms_close_bins_on_the_upper_edge(measured: dict[Any, Any], truth: Truth) -> None:
    assert value(measured, Histogram(Col(X, "number"), EDGES)) == bins(finite(truth), EDGES)
    assert (finite(truth) == 10.0).sum() > 0  # values on an edge exist and went to the lower bin
    assert value(measured, Histogram(X, (0.0, 20.0))) == bins(finite(truth), (0.0, 20.0))  # a float value: finite
    ints = np.array([k for k in truth.i if k is not None], dtype=float)
    assert value(measured, Histogram(I, (9.5, 19.5))) == bins(ints, (9.5, 19.5))


def test_requests_with_the_same_share_read_the_same_sample(measured: dict[Any, Any], df: Any,
                                                          kinds: dict[str, str], truth: Truth) -> None:
    n = len(finite(truth))
    half = value(measured, Histogram(Col(X, "number"), EDGES, sample=0.5), exact=False)
    half_too = value(measured, Histogram(Col(X, "number"), (0.0, 20.0), sample=0.5), exact=False)
    fifth = value(measured, Histogram(Col(X, "number"), (0.0, 20.0), sample=0.2), exact=False)
    assert sum(half) == sum(half_too)  # the same rows
    sd = math.sqrt(n * 0.25)
    assert abs(sum(half) - n / 2) < 5 * sd and abs(sum(fifth) - n / 5) < 5 * sd
    q0, median, q1 = value(measured, Quantiles(Col(X, "number"), (0.0, 0.5, 1.0), sample=0.5), exact=False)
    assert median == pytest.approx(np.median(finite(truth)), abs=0.6)  # ~5 standard errors of a median
    # again (a fixed seed: the same sample), binned around that sample's min and max: nothing outside them
    edges = (q0 - 0.05, q0, q1 - 0.05, q1)
    got = measure(df, [Histogram(Col(X, "number"), edges, sample=0.5)], kinds=kinds)
    counts = next(iter(got.values())).value
    assert counts[0] == 0 and counts[1] >= 1 and counts[3] >= 1 and counts[4] == 0
    assert sum(counts) == sum(half)


def test_distinct_and_duplicate_rows(measured: dict[Any, Any], truth: Truth) -> None:
    pairs = list(zip(truth.i, truth.s, strict=True))
    assert value(measured, DistinctRows([I, S])) == len({p for p in pairs if None not in p})
    assert value(measured, DuplicateRows([I, S])) == N - len(set(pairs))  # NULLs equal here
    keys = [None if n else ("nan" if math.isnan(v) else v) for v, n in zip(truth.x, truth.x_null, strict=True)]
    assert value(measured, DuplicateRows([X])) == N - len(set(keys))  # NaN repeats NaN, NULL repeats NULL
    assert value(measured, DuplicateRows([TEXT])) == N - len(set(truth.text))


def test_value_counts_and_top_k(measured: dict[Any, Any], truth: Truth) -> None:
    assert value(measured, ValueCounts(S, top=3)) == counted(truth.s, 3)
    numbers = [None if n or not math.isfinite(v) else float(v) for v, n in zip(truth.x, truth.x_null, strict=True)]
    assert value(measured, ValueCounts(Col(X, "number"), top=300)) == counted(numbers, 300)  # all: ties "10" < "10.1" < "9"
    stamps = value(measured, ValueCounts(TZ, top=2))
    assert stamps == counted(truth.tz, 2, text=lambda v: v.isoformat())  # aware UTC values, ties by time
    hours = [None if v is None else int(wall_epoch(v, ZONE) % 86_400 // 3600) for v in truth.ntz]
    assert value(measured, ValueCounts(Col(NTZ, "hour", zone=ZONE), top=4)) == counted(hours, 4)
    assert value(measured, TopK(S, 2)) == tuple(ranked(Counter(v for v in truth.s if v is not None), 2))
    with np.errstate(invalid="ignore"):
        above = ~truth.x_null & (truth.x > 10)
    where = Counter(str(k) for k, ok in zip(truth.i, above, strict=True) if ok and k is not None)
    assert value(measured, TopK(Col(I), 3, where=Compare(X, ">", 10))) == tuple(ranked(where, 3))


def test_limit_reads_the_first_rows(df: Any, kinds: dict[str, str], truth: Truth) -> None:
    head = make_truth_head(truth, 100)
    got = measure(df, [Count(), NullCount(X), ValueCounts(S, top=2), TopK(I, 1)], kinds=kinds, limit=100)
    assert got[Count()].value == 100
    assert got[NullCount(X)].value == head.x_null.sum()
    assert got[ValueCounts(S, top=2)].value == counted(head.s, 2)
    assert got[TopK(I, 1)].value == tuple(ranked(Counter(str(k) for k in head.i if k is not None), 1))


def make_truth_head(t: Truth, n: int) -> Truth:
    return Truth(t.frame.head(n), t.x[:n], t.x_null[:n], t.i[:n], t.s[:n], t.ntz[:n], t.tz[:n], t.day[:n],
                 t.text[:n], t.text_epoch[:n])


@pytest.fixture
def new_york_session(spark: Any) -> Iterator[None]:
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", NY)
    try:
        yield
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_epochs_do_not_depend_on_the_session_zone(new_york_session: None, df: Any, kinds: dict[str, str],
                                                  measured: dict[Any, Any]) -> None:
    asked = [MinMax(Col(NTZ, "epoch", zone=ZONE)), MinMax(Col(TEXT, "epoch", zone=ZONE)), MinMax(TZ),
             MinMax(Col(DAY, "epoch", zone=NY, end_of_day=True)), CountIf(Compare(Col(TZ, "hour"), "=", 13)),
             CountIf(Compare(Col(TEXT, "epoch", zone=ZONE), ">=", T_APR))]
    got = measure(df, asked, kinds=kinds)
    assert {r: m.value for r, m in got.items()} == {r: measured[r].value for r in asked}


def test_refusals_before_any_job(df: Any, kinds: dict[str, str]) -> None:
    for request, says in [
        (MinMax("nope"), "column 'nope' not found"),
        (Quantiles(S, (0.5,)), "needs numbers"),
        (Moments(NTZ), "of='epoch'"),
        (Moments(Col(X, "text")), "needs numbers"),
        (Histogram(Col(X, "text"), (1.0,)), "needs numbers"),
        (MinMax(Col(DAY, "number")), "cannot be read as a number"),
        (CountIf(Matches(S, "a)|(b")), "closes a group"),
        (CountIf(CompareColumns(NTZ, "<", TZ, shift=3600)), "needs numbers on the left"),
        (TopK(S, 1, where=IsNull("missing")), "column 'missing' not found"),
    ]:
        with pytest.raises(SpecError, match=re.escape(says)):
            measure(df, [request], kinds=kinds)
    with pytest.raises(SpecError, match="cannot be read as a time"):
        measure(df, [MinMax(Col(S, "epoch"))], kinds={**kinds, S: "boolean"})
    with pytest.raises(SpecError, match="limit"):
        measure(df, [Count()], kinds=kinds, limit=-1)


def test_spark_errors_become_ours(df: Any, kinds: dict[str, str]) -> None:
    with pytest.raises(SpecError, match="PatternSyntaxException"):  # an invalid regex: the spec's fault
        measure(df, [CountIf(Matches(S, "[a-"))], kinds=kinds)
    with pytest.raises(SpecError, match="INVALID_TIMEZONE"):
        measure(df, [MinMax(Col(NTZ, "epoch", zone="Mars/Olympus"))], kinds=kinds)
    with pytest.raises(SourceError, match="ghost") as e:  # a column the kinds know and the frame does not
        measure(df, [NullCount("ghost")], kinds={**kinds, "ghost": "integer"})
    assert "\n" not in str(e.value)


def test_duplicate_names_are_a_source_error(spark: Any) -> None:
    with pytest.raises(SourceError, match=r"\['a', 'a'\]"):
        columns(spark.createDataFrame([(1, 2, 3)], ["a", "a", "b"]))
    with pytest.raises(SourceError, match="case-insensitive"):
        columns(spark.createDataFrame([(1, 2)], ["Key", "key"]))


def test_importing_the_engine_does_not_import_pyspark() -> None:
    code = ("import sys, mlguard_orchestration.engines, mlguard_orchestration.engines.spark; "
            "sys.exit('pyspark' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
