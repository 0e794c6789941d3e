"""The embedded engine answers every metric request as the vocabulary says (engines/requests.py), checked
against numpy/pandas on a frame with NULLs, NaN, ±Inf, three kinds of time, text that parses as time, and
hostile column names."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlguard_orchestration.engines import (
    And,
    Col,
    Compare,
    CompareColumns,
    Count,
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
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.sources import Engine

X, QUOTED, UNICODE, KIND = "select", 'a "quoted" name', "prix €", "kind"
NAIVE, ZONED, DAY, TEXT_TIME = "naive ts", "zoned ts", "day", "when"
N = 4_000
EPOCH = datetime(1970, 1, 1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(50, 10, N)
    x[:40] = np.nan
    x[40:43] = np.inf
    x[43] = -np.inf
    naive = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, N), unit="s")
    text = naive.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)
    text[:10] = "not a time"
    ints = pd.array(rng.integers(0, 500, N), dtype="Int64")
    ints[100:150] = pd.NA
    return pd.DataFrame({
        X: x, QUOTED: ints, UNICODE: rng.choice(["a", "b", "c'd", 'e"f', "€"], N, p=[.4, .3, .15, .1, .05]),
        KIND: rng.choice(["alpha", "beta"], N),
        NAIVE: naive, ZONED: (naive + pd.Timedelta(hours=2)).tz_localize("UTC"),
        DAY: naive.normalize().date, TEXT_TIME: text,
    })


@pytest.fixture(scope="module")
def engine(frame: pd.DataFrame) -> Any:
    # through Arrow, where NaN stays NaN (DuckDB reads a pandas NaN as NULL)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(0, X, pa.array(frame[X].to_numpy(), from_pandas=False))
    with Engine(threads=2) as e:
        yield e, e.add("t", table)


def measure(engine: Any, *requests: Any, limit: int | None = None) -> list[Any]:
    e, table = engine
    got = e.measure(table, requests, limit=limit)
    return [got[r] for r in requests]


def finite(frame: pd.DataFrame) -> np.ndarray:
    x = frame[X].to_numpy()
    return x[np.isfinite(x)]


def epochs(values: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(values) - pd.Timestamp(EPOCH)) / pd.Timedelta(seconds=1)).to_numpy()


def test_counts_and_predicates(engine: Any, frame: pd.DataFrame) -> None:
    x, ints = frame[X], frame[QUOTED]
    requests = [
        Count(), NullCount(QUOTED), NullCount(Col(X, "number")), CountIf(IsNaN(X)), CountIf(IsInf(X)),
        CountIf(Compare(X, ">", 60.0)),  # NaN never satisfies a comparison; +Inf does
        CountIf(Compare(Col(X, "number"), ">", 60.0)),  # ±Inf are NULL as numbers
        CountIf(And(Not(IsNull(QUOTED)), Not(IsIn(QUOTED, [1, 2, 3])))),
        CountIf(Or(IsIn(UNICODE, ["c'd", 'e"f']), Compare(QUOTED, "<=", 10))),
        CountIf(Not(Matches(UNICODE, "[a-c].*"))), CountIf(IsIn(KIND, [])),
    ]
    got = [m.value for m in measure(engine, *requests)]
    valid = ints.notna()
    assert got == [
        N, int(ints.isna().sum()), int((~np.isfinite(x)).sum()), 40, 4,
        int((x > 60).sum()), int(((x > 60) & np.isfinite(x)).sum()),  # pandas: NaN > 60 is False
        int((valid & ~ints.isin([1, 2, 3])).sum()),
        int((frame[UNICODE].isin(["c'd", 'e"f']) | (ints.fillna(10**9) <= 10)).sum()),
        int((~frame[UNICODE].str.fullmatch("[a-c].*")).sum()), 0,
    ]


def test_numbers_moments_quantiles_histogram(engine: Any, frame: pd.DataFrame) -> None:
    v = finite(frame)
    number = Col(X, "number")
    edges = [30.0, 50.0, 70.0]
    mm, mo, q, h, ints = measure(engine, MinMax(number), Moments(number, center=48.0),
                                 Quantiles(number, [0.1, 0.5, 0.9]), Histogram(number, edges),
                                 MinMax(QUOTED))
    assert mm.value == (v.min(), v.max())
    n, mean, sd = mo.value
    assert n == len(v) and math.isclose(mean, v.mean()) and math.isclose(sd, v.std(ddof=1))
    assert np.allclose(q.value, np.quantile(v, [0.1, 0.5, 0.9])) and q.exact
    want = [int((v <= 30).sum()), int(((v > 30) & (v <= 50)).sum()), int(((v > 50) & (v <= 70)).sum()),
            int((v > 70).sum())]
    assert list(h.value) == want and h.exact
    assert ints.value == (frame[QUOTED].min(), frame[QUOTED].max())
    # a float column's quantiles and bins as stored ("value") leave NaN and ±Inf out too
    qv, hv = measure(engine, Quantiles(X, [0.5]), Histogram(X, edges))
    assert math.isclose(qv.value[0], float(np.quantile(v, 0.5))) and list(hv.value) == want


def test_sampled_metrics_share_rows_and_say_they_are_approximate(engine: Any, frame: pd.DataFrame) -> None:
    number = Col(X, "number")
    q, h = measure(engine, Quantiles(number, [0.5], sample=0.5), Histogram(number, [50.0], sample=0.5))
    assert not q.exact and not h.exact
    assert 0.35 * N < sum(h.value) < 0.65 * N  # about half the rows
    assert abs(q.value[0] - float(np.median(finite(frame)))) < 2.0
    approx = measure(engine, Quantiles(number, [0.5], exact=False), Distinct(UNICODE, exact=False))
    assert [m.exact for m in approx] == [False, False]
    assert approx[1].value == 5 and abs(approx[0].value[0] - float(np.median(finite(frame)))) < 1.0


def test_distinct_value_counts_and_rows(engine: Any, frame: pd.DataFrame) -> None:
    ints = frame[QUOTED]
    d, bitmap, vc, rows, dups, dup_all = measure(
        engine, Distinct(QUOTED), Distinct(QUOTED, bounds=(0, 499)), ValueCounts(UNICODE, top=2),
        DistinctRows([UNICODE, KIND]), DuplicateRows([UNICODE, KIND]), DuplicateRows(list(frame.columns)))
    assert d.value == bitmap.value == ints.nunique()
    counts = frame[UNICODE].value_counts()
    assert vc.value.top == tuple(counts.head(2).items())
    assert vc.value.distinct == 5 and vc.value.other == int(counts.iloc[2:].sum())
    pairs = frame[[UNICODE, KIND]].drop_duplicates()
    assert rows.value == len(pairs) and dups.value == N - len(pairs) and dup_all.value == 0


def test_time_as_epoch_hour_and_parsed_text(engine: Any, frame: pd.DataFrame) -> None:
    naive, zoned, day = epochs(frame[NAIVE]), epochs(frame[ZONED].dt.tz_localize(None)), epochs(frame[DAY])
    parsed = epochs(pd.to_datetime(frame[TEXT_TIME], errors="coerce", format="%Y-%m-%d %H:%M:%S").dropna())
    mm_naive, mm_zoned, mm_day, mm_end, mm_paris, mm_text, unparsed, hours = measure(
        engine, MinMax(Col(NAIVE, "epoch")), MinMax(Col(ZONED, "epoch")), MinMax(Col(DAY, "epoch")),
        MinMax(Col(DAY, "epoch", end_of_day=True)), MinMax(Col(NAIVE, "epoch", zone="+02:00")),
        MinMax(Col(TEXT_TIME, "epoch")), NullCount(Col(TEXT_TIME, "epoch")),
        Histogram(Col(NAIVE, "hour"), list(range(23))))
    assert mm_naive.value == (naive.min(), naive.max())
    assert mm_zoned.value == (zoned.min(), zoned.max())
    assert mm_day.value == (day.min(), day.max()) and mm_end.value == (day.min() + 86_400, day.max() + 86_400)
    assert mm_paris.value == (naive.min() - 7_200, naive.max() - 7_200)  # read as local time at +02:00
    assert mm_text.value == (parsed.min(), parsed.max()) and unparsed.value == 10
    want = np.bincount(frame[NAIVE].dt.hour, minlength=24)
    assert list(hours.value) == [int(c) for c in want]


def test_comparing_two_time_columns_with_a_shift(engine: Any, frame: pd.DataFrame) -> None:
    f, lab = Col(NAIVE, "epoch"), Col(ZONED, "epoch")  # the zoned one is the naive one + 2 h
    ahead, shifted, equal_2h, gap = measure(
        engine, CountIf(CompareColumns(f, ">=", lab)), CountIf(CompareColumns(f, ">=", lab, shift=7_200.0)),
        CountIf(CompareColumns(f, "=", lab, shift=7_200.0)), MaxGap(f, lab))
    assert (ahead.value, shifted.value, equal_2h.value) == (0, N, N)
    assert gap.value == -7_200.0


def test_head_rows_and_top_k_probe(engine: Any, frame: pd.DataFrame) -> None:
    count, distinct = measure(engine, Count(), Distinct(UNICODE), limit=100)
    assert count.value == 100 and 1 <= distinct.value <= 5
    e, table = engine
    top = e.top_k(table, TopK(Col(UNICODE, "text"), 2, where=Not(IsIn(UNICODE, ["a"]))))
    want = frame[UNICODE][frame[UNICODE] != "a"].value_counts().head(2)
    assert top == [(str(k), int(v)) for k, v in want.items()]


def test_a_column_the_table_lacks_is_a_spec_error(engine: Any) -> None:
    with pytest.raises(SpecError, match="'nope'"):
        measure(engine, NullCount("nope"))


def test_epoch_of_a_number_is_a_spec_error(engine: Any) -> None:
    with pytest.raises(SpecError, match="not a time column"):
        measure(engine, MinMax(Col(X, "epoch")))


def test_answers_are_keyed_by_request_and_shared(engine: Any) -> None:
    e, table = engine
    got = e.measure(table, [Count(), Count(), NullCount(QUOTED)])
    assert list(got) == [Count(), NullCount(QUOTED)]


def test_freshness_sees_the_newest_time_in_utc(engine: Any, frame: pd.DataFrame) -> None:
    (mm,) = measure(engine, MinMax(Col(ZONED, "epoch")))
    newest = EPOCH + timedelta(seconds=mm.value[1])
    assert newest == frame[ZONED].max().astimezone(UTC).replace(tzinfo=None)
