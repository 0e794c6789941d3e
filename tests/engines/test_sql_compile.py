"""The SQL compiler: every request and predicate gives numpy's answer on a real PostgreSQL and in DuckDB (NaN,
±Inf, NULLs, naive and zone-aware timestamps, dates, text that is and is not a timestamp, hostile names),
and for the dialects without a server here, statements that parse in the dialect, keep hostile identifiers
intact and call only functions the dialect has.

Tolerances: exact answers within 1e-9 (relative) of numpy's; approximate ones (DuckDB's t-digest and
HyperLogLog) within 2 %; sampled ones within the binomial spread stated where they are checked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

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
    Measured,
    MinMax,
    Moments,
    Not,
    NullCount,
    Or,
    Quantiles,
    TopK,
    ValueCounts,
)
from mlguard_orchestration.engines.sql import DIALECTS, compile_scan, compile_top_k
from mlguard_orchestration.errors import SpecError
from tests._postgres import PostgresServer

TABLE = "guard input"
ID, KEYWORD, QUOTE, UNICODE, SPACE = "id", "select", 'a "quoted" name', "prix €", "user name"
NAIVE, AWARE, DAY, TEXT, FLAG = "naive", "aware", "day", "stamp text", "flag"
PG_TYPES = {ID: "BIGINT", KEYWORD: "BIGINT", QUOTE: "DOUBLE PRECISION", UNICODE: "NUMERIC(10, 2)", SPACE: "TEXT",
            NAIVE: "TIMESTAMP", AWARE: "TIMESTAMPTZ", DAY: "DATE", TEXT: "TEXT", FLAG: "BOOLEAN"}
KINDS = {ID: "integer", KEYWORD: "integer", QUOTE: "float", UNICODE: "decimal", SPACE: "string",
         NAIVE: "timestamp", AWARE: "timestamp_tz", DAY: "date", TEXT: "string", FLAG: "boolean"}
N = 2_000
LEVELS = (0.1, 0.5, 0.9)
PARIS, NEW_YORK, KOLKATA = "Europe/Paris", "America/New_York", "Asia/Kolkata"
UTC = dt.UTC
# text -> the instant it names, read in Kolkata where it names no offset (None: not a timestamp)
_K = ZoneInfo(KOLKATA)
STAMPS: dict[str, float | None] = {
    "2024-03-05 10:11:12": dt.datetime(2024, 3, 5, 10, 11, 12, tzinfo=_K).timestamp(),
    "2024-03-05T10:11:12+05:30": dt.datetime(2024, 3, 5, 4, 41, 12, tzinfo=UTC).timestamp(),
    "2024-03-05T10:11:12-0200": dt.datetime(2024, 3, 5, 12, 11, 12, tzinfo=UTC).timestamp(),
    "2024-03-06T23:00:00Z": dt.datetime(2024, 3, 6, 23, tzinfo=UTC).timestamp(),
    "2024-01-31": dt.datetime(2024, 1, 31, tzinfo=_K).timestamp(),
    "2024-02-29T23:59:59.5": dt.datetime(2024, 2, 29, 23, 59, 59, 500_000, tzinfo=_K).timestamp(),
    "2024-03-05 10:11": dt.datetime(2024, 3, 5, 10, 11, tzinfo=_K).timestamp(),
    "2023-02-29 10:00:00": None, "2024-04-31": None, "2024-13-01": None, "not a time": None, "": None,
    "2024-03-05 24:00:00": dt.datetime(2024, 3, 6, tzinfo=_K).timestamp(),  # ISO 8601's end of day
}


def make_frame() -> pd.DataFrame:
    """The generated table, object columns: None is NULL, float('nan') a NaN."""
    rng = np.random.default_rng(14)

    def nulls(share: float, values: Sequence[Any]) -> list[Any]:
        return [None if m else v for v, m in zip(values, rng.random(N) < share, strict=True)]

    quoted = rng.gamma(2.0, 3.0, N).round(3)
    u = rng.random(N)
    quoted[u < 0.03] = np.nan
    quoted[(u >= 0.03) & (u < 0.04)] = np.inf
    quoted[(u >= 0.04) & (u < 0.05)] = -np.inf
    quoted[rng.integers(0, N, 20)] = 5.0  # some on the compared value
    seconds = rng.integers(0, 60 * 86_400, N)
    naive = [dt.datetime(2024, 3, 1) + dt.timedelta(seconds=int(s)) for s in seconds]
    naive = [t + dt.timedelta(hours=2) if t.date() == dt.date(2024, 3, 31) and t.hour == 2 else t
             for t in naive]  # no local time in Paris' spring-forward gap (each engine resolves it its own way)
    aware = [t.replace(tzinfo=UTC) + dt.timedelta(seconds=int(s) - 43_200)
             for t, s in zip(naive, rng.integers(0, 86_400, N), strict=True)]
    return pd.DataFrame({
        ID: list(range(N)),
        KEYWORD: nulls(0.05, [int(v) for v in rng.integers(0, 100, N)]),
        QUOTE: nulls(0.08, [float(v) for v in quoted]),
        UNICODE: nulls(0.05, [Decimal(f"{v:.2f}") for v in rng.lognormal(2.5, 0.8, N)]),
        SPACE: nulls(0.05, list(rng.choice(np.array(["ann", "bob", "c'ed", 'd"an', "éva", "x y"]), N,
                                           p=[.4, .2, .15, .1, .1, .05]))),
        NAIVE: nulls(0.05, naive),
        AWARE: nulls(0.05, aware),
        DAY: [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 366, N)],
        TEXT: nulls(0.05, list(rng.choice(np.array(list(STAMPS), dtype=object), N))),
        FLAG: nulls(0.1, [bool(b) for b in rng.random(N) < 0.3]),
    }, dtype=object)


Run = Callable[[str], list[tuple[Any, ...]]]


def load_postgres(con: Any, table: str, frame: pd.DataFrame) -> None:
    from psycopg import sql

    name = sql.Identifier("public", table)
    cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(PG_TYPES[c])) for c in frame)
    with con.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(name, cols))
        with cur.copy(sql.SQL("COPY {} FROM STDIN").format(name)) as copy:
            for row in frame.itertuples(index=False, name=None):
                copy.write_row(row)


def load_duckdb(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    types = {ID: pa.int64(), KEYWORD: pa.int64(), QUOTE: pa.float64(), UNICODE: pa.decimal128(10, 2),
             SPACE: pa.string(), NAIVE: pa.timestamp("us"), AWARE: pa.timestamp("us", tz="UTC"), DAY: pa.date32(),
             TEXT: pa.string(), FLAG: pa.bool_()}
    arrow = pa.table({c: pa.array(list(frame[c]), type=types[c]) for c in frame})  # NaN stays NaN, None is NULL
    con.register("arrow input", arrow)
    con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM "arrow input"')


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module", params=["postgres", "duckdb"])
def engine(request: pytest.FixtureRequest, frame: pd.DataFrame) -> Iterator[tuple[str, Run, Any]]:
    """(dialect, run a statement, the table as compile_scan names it) with the frame loaded."""
    if request.param == "duckdb":
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        load_duckdb(con, TABLE, frame)
        yield "duckdb", lambda sql: con.execute(sql).fetchall(), TABLE
        con.close()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.connect(autocommit=True) as pg:
        load_postgres(pg, TABLE, frame)
        yield "postgres", lambda sql: pg.execute(sql).fetchall(), ("public", TABLE)


def measure(dialect: str, run: Run, table: Any, requests: Sequence[Any], **kw: Any) -> dict[Any, Measured]:
    scan = compile_scan(table, requests, dialect, KINDS, **kw)
    row = run(scan.sql)[0] if scan.sql else None
    return scan.decode(row, [run(p) for p in scan.probes])


# -- what numpy says -----------------------------------------------------------------------------------------


def arr(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values as floats, NULL mask)."""
    null = frame[name].map(lambda v: v is None).to_numpy(bool)
    return np.array([np.nan if v is None else float(v) for v in frame[name]]), null


def epochs(values: Sequence[Any], zone: str = "UTC", end_of_day: bool = False) -> np.ndarray:
    z = ZoneInfo(zone)
    out = []
    for v in values:
        if v is None:
            out.append(np.nan)
        elif isinstance(v, dt.datetime):
            out.append(v.timestamp() if v.tzinfo else v.replace(tzinfo=z).timestamp())
        else:
            day = v + dt.timedelta(days=1) if end_of_day else v
            out.append(dt.datetime(day.year, day.month, day.day, tzinfo=z).timestamp())
    return np.array(out)


def counts(values: pd.Series, top: int) -> Counted:
    vc = values.dropna().value_counts()
    pairs = sorted(vc.items(), key=lambda kv: (-kv[1], str(kv[0]).lower() if isinstance(kv[0], bool) else str(kv[0])))
    return Counted(top=tuple((v, int(n)) for v, n in pairs[:top]), distinct=len(vc),
                   other=int(vc.sum()) - sum(int(n) for _, n in pairs[:top]))


def expected(f: pd.DataFrame) -> dict[Any, Any]:
    q, q_null = arr(f, QUOTE)
    q_nan, q_inf = ~q_null & np.isnan(q), np.isinf(q)
    finite = q[np.isfinite(q)]
    known = ~q_null & ~q_nan  # a NaN satisfies no comparison (and so satisfies its Not)
    price, p_null = arr(f, UNICODE)
    key, k_null = arr(f, KEYWORD)
    name = f[SPACE]
    naive_paris = epochs(f[NAIVE], PARIS)
    aware = epochs(f[AWARE])
    day_ny = epochs(f[DAY], NEW_YORK, end_of_day=True)
    text = np.array([np.nan if v is None or STAMPS[v] is None else STAMPS[v] for v in f[TEXT]])
    hours = np.floor(np.mod(aware[~np.isnan(aware)], 86_400) / 3_600)
    lengths = name.dropna().map(len)
    words = name.dropna()
    quantiles = tuple(float(np.quantile(finite, lv)) for lv in LEVELS)
    price_ok = price[~p_null]
    pairs = f[[SPACE, FLAG]]
    both = pairs.dropna()
    with np.errstate(invalid="ignore"):
        out = {
            Count(): N, NullCount(QUOTE): int(q_null.sum()),
            NullCount(Col(QUOTE, "number")): int((q_null | ~np.isfinite(q)).sum()),
            CountIf(Compare(QUOTE, ">", 5)): int((known & (q > 5)).sum()),
            CountIf(Not(Compare(QUOTE, ">", 5))): int((~q_null & ~(q > 5)).sum()),
            CountIf(Compare(QUOTE, "!=", 5.0)): int((known & (q != 5)).sum()),
            CountIf(Compare(Col(QUOTE, "number"), ">=", 5)): int((np.isfinite(q) & (q >= 5)).sum()),
            CountIf(IsIn(SPACE, ["c'ed", 'd"an'])): int(name.isin(["c'ed", 'd"an']).sum()),
            CountIf(Not(IsIn(SPACE, ["c'ed", 'd"an']))): int((name.notna() & ~name.isin(["c'ed", 'd"an'])).sum()),
            CountIf(IsIn(SPACE, [])): 0,
            CountIf(IsNull(Col(QUOTE, "number"))): int((q_null | ~np.isfinite(q)).sum()),
            CountIf(IsNaN(QUOTE)): int(q_nan.sum()), CountIf(IsInf(QUOTE)): int(q_inf.sum()),
            CountIf(IsNaN(KEYWORD)): 0,
            CountIf(Matches(SPACE, "[a-z]+")): int(words.str.fullmatch("[a-z]+").sum()),
            CountIf(Matches(SPACE, "ann|bob")): int(name.isin(["ann", "bob"]).sum()),
            CountIf(Matches(SPACE, "an")): 0,
            CountIf(Matches(KEYWORD, "[0-9]")): int((~k_null & (key < 10)).sum()),
            CountIf(CompareColumns(Col(NAIVE, "epoch"), "<", Col(AWARE, "epoch"), shift=3_600)):
                int((epochs(f[NAIVE]) + 3_600 < aware).sum()),
            CountIf(CompareColumns(KEYWORD, ">", UNICODE)): int((key > price).sum()),
            CountIf(And(Or(IsIn(SPACE, ["c'ed", 'd"an']), IsNull(QUOTE)), Not(Compare(UNICODE, "<", 5.0)))):
                int(((name.isin(["c'ed", 'd"an']).to_numpy() | q_null) & ~p_null & ~(price < 5.0)).sum()),
            MinMax(UNICODE): (price_ok.min(), price_ok.max()),
            MinMax(Col(QUOTE, "number")): (finite.min(), finite.max()),
            MinMax(FLAG): (False, True), MinMax(SPACE): (words.min(), words.max()),
            MinMax(NAIVE): (min(v for v in f[NAIVE] if v), max(v for v in f[NAIVE] if v)),
            MinMax(Col(NAIVE, "epoch", zone=PARIS)): (np.nanmin(naive_paris), np.nanmax(naive_paris)),
            MinMax(Col(AWARE, "epoch")): (np.nanmin(aware), np.nanmax(aware)),
            MinMax(Col(DAY, "epoch", zone=NEW_YORK, end_of_day=True)): (day_ny.min(), day_ny.max()),
            MinMax(Col(TEXT, "epoch", zone=KOLKATA)): (np.nanmin(text), np.nanmax(text)),
            CountIf(IsNull(Col(TEXT, "epoch", zone=KOLKATA))): int(np.isnan(text).sum()),
            MinMax(Col(AWARE, "hour")): (hours.min(), hours.max()),
            CountIf(Compare(Col(AWARE, "hour"), "=", 13)): int((hours == 13).sum()),
            MinMax(Col(SPACE, "length")): (lengths.min(), lengths.max()),
            MinMax(Col(KEYWORD, "text")): (min(str(int(v)) for v in key[~k_null]),
                                           max(str(int(v)) for v in key[~k_null])),
            Moments(Col(QUOTE, "number")): (len(finite), finite.mean(), finite.std(ddof=1)),
            Moments(UNICODE, center=12.0): (len(price_ok), price_ok.mean(), price_ok.std(ddof=1)),
            Moments(Col(NAIVE, "epoch", zone=PARIS), center=1.71e9):
                (int((~np.isnan(naive_paris)).sum()), np.nanmean(naive_paris), np.nanstd(naive_paris, ddof=1)),
            Quantiles(Col(QUOTE, "number"), LEVELS): quantiles,
            Quantiles(QUOTE, LEVELS): quantiles,  # a float's quantiles are its finite values
            Quantiles(UNICODE, LEVELS): tuple(float(np.quantile(price_ok, lv)) for lv in LEVELS),
            Quantiles(Col(QUOTE, "number"), LEVELS, exact=False): quantiles,
            Distinct(SPACE): words.nunique(), Distinct(SPACE, exact=False): words.nunique(),
            Distinct(KEYWORD, bounds=(0, 99)): len(set(key[~k_null])),
            Distinct(QUOTE): len(set(q[known])) + int(q_nan.any()),
            Histogram(Col(QUOTE, "number"), [0, 2, 5, 10]): tuple(int(c) for c in (
                (finite <= 0).sum(), ((finite > 0) & (finite <= 2)).sum(), ((finite > 2) & (finite <= 5)).sum(),
                ((finite > 5) & (finite <= 10)).sum(), (finite > 10).sum())),
            Histogram(QUOTE, [5]): (int((finite <= 5).sum()), int((finite > 5).sum())),  # finite values only
            MaxGap(Col(AWARE, "epoch"), Col(NAIVE, "epoch")): float(np.nanmax(aware - epochs(f[NAIVE]))),
            MaxGap(KEYWORD, UNICODE): float(np.nanmax(key - price)),
            MaxGap(Col(AWARE, "epoch"), Col(AWARE, "epoch")): 0.0,
            Histogram(KEYWORD, [9.5, 49.5]): (int((key[~k_null] <= 9.5).sum()),
                                              int(((key > 9.5) & (key <= 49.5)).sum()), int((key > 49.5).sum())),
            DistinctRows([SPACE, FLAG]): len(set(map(tuple, both.itertuples(index=False)))),
            DistinctRows([SPACE]): words.nunique(),
            DuplicateRows([SPACE, FLAG]): N - len(set(map(tuple, pairs.itertuples(index=False)))),
            DuplicateRows([KEYWORD]): N - len(set(f[KEYWORD])),
            ValueCounts(SPACE, top=3): counts(name, 3),
            ValueCounts(FLAG, top=5): counts(f[FLAG], 5),
            ValueCounts(Col(KEYWORD, "text"), top=4): counts(f[KEYWORD].map(lambda v: None if v is None else str(v)), 4),
        }
    return out


def same(got: Any, want: Any, tol: float) -> bool:
    if isinstance(want, Counted):
        return isinstance(got, Counted) and got.distinct == want.distinct and got.other == want.other and \
            len(got.top) == len(want.top) and all(same(g, w, tol) for g, w in zip(got.top, want.top, strict=True))
    if isinstance(want, tuple):
        return isinstance(got, tuple) and len(got) == len(want) and all(same(g, w, tol) for g, w in
                                                                         zip(got, want, strict=True))
    if isinstance(want, bool | str | dt.datetime | dt.date) or want is None:
        if isinstance(got, dt.datetime) and isinstance(want, dt.datetime) and got.tzinfo:
            return got == want.replace(tzinfo=UTC)
        return bool(got == want)
    return math.isclose(float(got), float(want), rel_tol=tol, abs_tol=1e-9)


def test_every_request_gives_numpys_answer(engine: tuple[str, Run, Any], frame: pd.DataFrame) -> None:
    dialect, run, table = engine
    want = expected(frame)
    got = measure(dialect, run, table, list(want))
    approximate = {r for r, m in got.items() if not m.exact}
    wrong = {r: (m.value, want[r]) for r, m in got.items() if not same(m.value, want[r], 1e-9 if m.exact else 0.02)}
    assert not wrong, "\n".join(f"{r!r}: got {g!r}, want {w!r}" for r, (g, w) in wrong.items())
    if dialect == "postgres":  # no sketches: computed exactly, and said so
        assert not approximate
    else:
        assert approximate == {Quantiles(Col(QUOTE, "number"), LEVELS, exact=False), Distinct(SPACE, exact=False)}


def test_a_nan_satisfies_no_comparison_and_is_null_as_a_number(engine: tuple[str, Run, Any]) -> None:
    dialect, run, table = engine
    nans = CountIf(IsNaN(QUOTE))
    compared = CountIf(And(IsNaN(QUOTE), Or(Compare(QUOTE, ">", 0), Compare(QUOTE, "<", 0), Compare(QUOTE, "!=", 1),
                                            Compare(QUOTE, "=", 1), IsIn(QUOTE, [1.0]),
                                            CompareColumns(QUOTE, "<", KEYWORD), CompareColumns(KEYWORD, "!=", QUOTE),
                                            IsNull(QUOTE))))
    negated = CountIf(And(IsNaN(QUOTE), Not(Compare(QUOTE, ">", 0)), Not(Compare(QUOTE, "<=", 0)),
                          Not(IsIn(QUOTE, [1.0]))))
    as_number = CountIf(And(Or(IsNaN(QUOTE), IsInf(QUOTE)), Not(IsNull(Col(QUOTE, "number")))))
    infinite = CountIf(And(IsInf(QUOTE), Or(Compare(QUOTE, ">", 1e300), Compare(QUOTE, "<", -1e300))))
    got = measure(dialect, run, table, [nans, compared, negated, as_number, infinite, CountIf(IsInf(QUOTE))])
    assert got[nans].value > 0 and got[compared].value == 0 and got[negated].value == got[nans].value
    assert got[as_number].value == 0 and got[infinite].value == got[CountIf(IsInf(QUOTE))].value > 0


def test_sampled_requests_share_one_draw_and_are_marked_approximate(engine: tuple[str, Run, Any],
                                                                   frame: pd.DataFrame) -> None:
    dialect, run, table = engine
    by_id = Histogram(ID, [N / 2], sample=0.3)
    by_day = Histogram(Col(DAY, "epoch"), [1.72e9], sample=0.3)
    wider = Histogram(ID, [N / 2], sample=0.6)
    q = Quantiles(ID, [0.5], sample=0.3)
    got = measure(dialect, run, table, [by_id, by_day, wider, q, Count()])
    assert not any(got[r].exact for r in (by_id, by_day, wider, q)) and got[Count()].exact
    n30, n60 = sum(got[by_id].value), sum(got[wider].value)
    assert n30 == sum(got[by_day].value)  # the same rows: both columns have no NULL
    assert n30 <= n60  # a smaller share's rows are among a larger one's
    spread = 5 * math.sqrt(N * 0.3 * 0.7)  # five binomial standard deviations
    assert abs(n30 - 0.3 * N) < spread and abs(n60 - 0.6 * N) < 5 * math.sqrt(N * 0.6 * 0.4)
    assert abs(got[q].value[0] - N / 2) < 0.1 * N
    sql = compile_scan(table, [by_id, by_day, wider, q], dialect, KINDS).sql or ""
    assert sql.upper().count("RANDOM()") == 1  # one draw per row, in the one derived table


def test_limit_aggregates_the_first_rows_only(engine: tuple[str, Run, Any]) -> None:
    dialect, run, table = engine
    got = measure(dialect, run, table, [Count(), MinMax(ID), ValueCounts(SPACE, top=1)], limit=100)
    assert got[Count()].value == 100
    lo, hi = got[MinMax(ID)].value
    assert hi - lo >= 99
    counted = got[ValueCounts(SPACE, top=1)].value
    assert counted.other + counted.top[0][1] <= 100


def test_top_k_probe_with_and_without_a_predicate(engine: tuple[str, Run, Any], frame: pd.DataFrame) -> None:
    dialect, run, table = engine
    name, flag = frame[SPACE], frame[FLAG]
    want = [(v, int(n)) for v, n in sorted(name.dropna().value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    assert run(compile_top_k(table, TopK(SPACE, 3), dialect, KINDS)) == want
    where = name[flag.map(lambda v: v is True)].dropna().value_counts()
    want_where = [(v, int(n)) for v, n in sorted(where.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    assert run(compile_top_k(table, TopK(SPACE, 2, where=Compare(FLAG, "=", True)), dialect, KINDS)) == want_where
    as_text = run(compile_top_k(table, TopK(KEYWORD, 1), dialect, KINDS))
    assert isinstance(as_text[0][0], str)  # values come back as text


def test_a_select_as_the_source(engine: tuple[str, Run, Any], frame: pd.DataFrame) -> None:
    dialect, run, _ = engine
    source = f'SELECT "{SPACE}" AS "{KEYWORD}", "{QUOTE.replace(chr(34), chr(34) * 2)}" * 2 AS "x €" ' \
             f'FROM "{TABLE}" WHERE "{ID}" < 500'
    kinds = {KEYWORD: "string", "x €": "float"}
    scan = compile_scan(source, [Count(), NullCount(KEYWORD), ValueCounts(KEYWORD, top=2),
                                 Moments(Col("x €", "number"))], dialect, kinds, limit=400)
    got = scan.decode(run(scan.sql or "")[0], [run(p) for p in scan.probes])
    head = frame[frame[ID] < 500].head(400)
    x = np.array([np.nan if v is None else 2 * v for v in head[QUOTE]], dtype=float)
    assert got[Count()].value == 400
    assert got[NullCount(KEYWORD)].value == head[SPACE].map(lambda v: v is None).sum()
    assert got[ValueCounts(KEYWORD, top=2)].value == counts(head[SPACE], 2)
    assert same(got[Moments(Col("x €", "number"))].value, (int(np.isfinite(x).sum()), x[np.isfinite(x)].mean(),
                                                          x[np.isfinite(x)].std(ddof=1)), 1e-9)


def test_an_empty_table_counts_zero_not_null(postgres: PostgresServer) -> None:
    requests = [Count(), NullCount("x"), CountIf(Compare("x", ">", 1)), Histogram("x", [0, 1]), Moments("x"),
                Moments("x", center=1.0), Quantiles("x", [0.5]), MinMax("x"), ValueCounts("x"),
                DuplicateRows(["x"]), DistinctRows(["x", "y"])]
    scan = compile_scan("empty", requests, "postgres", {"x": "float", "y": "string"})
    with postgres.connect(autocommit=True) as pg:
        pg.execute('CREATE TABLE IF NOT EXISTS "empty" ("x" DOUBLE PRECISION, "y" TEXT)')
        got = scan.decode(pg.execute(scan.sql or "").fetchone(), [pg.execute(p).fetchall() for p in scan.probes])
    assert [m.value for m in got.values()] == [0, 0, 0, (0, 0, 0), (0, None, None), (0, None, None), (None,),
                                               (None, None), Counted(top=(), distinct=0, other=0), 0, 0]


# -- every dialect, without its server ------------------------------------------------------------------------


def portable(dialect: str) -> list[Any]:
    """Every request and predicate a dialect can serve (quantiles as its table allows)."""
    caps = DIALECTS[dialect]
    out: list[Any] = [
        Count(), NullCount(Col(QUOTE, "number")), CountIf(Compare(KEYWORD, ">", 10)),
        CountIf(And(Or(IsIn(SPACE, ["c'ed", 'd"an']), IsNull(QUOTE)), Not(Compare(UNICODE, "<", 5.0)))),
        CountIf(Or(IsNaN(QUOTE), IsInf(QUOTE), Matches(SPACE, r"a\d+|é"))),
        CountIf(CompareColumns(Col(NAIVE, "epoch", zone=PARIS), "<", Col(AWARE, "epoch"), shift=60)),
        MinMax(UNICODE), MinMax(FLAG), MinMax(Col(TEXT, "epoch", zone=KOLKATA)), MinMax(Col(AWARE, "hour")),
        MinMax(Col(DAY, "epoch", end_of_day=True)), MinMax(Col(SPACE, "length")), MinMax(Col(KEYWORD, "text")),
        Moments(UNICODE), Moments(Col(QUOTE, "number"), center=3.0), Distinct(SPACE), Distinct(SPACE, exact=False),
        Histogram(UNICODE, [0, 10, 20, 50], sample=0.5), DistinctRows([SPACE, FLAG]), DuplicateRows([SPACE, FLAG]),
        DuplicateRows([KEYWORD]), ValueCounts(SPACE, top=3), MaxGap(Col(AWARE, "epoch"), Col(DAY, "epoch")),
    ]
    if caps.exact_quantile:
        out.append(Quantiles(UNICODE, LEVELS))
    if caps.approx_quantile:
        out.append(Quantiles(Col(QUOTE, "number"), LEVELS, exact=False, sample=0.5))
    return out


def called(sql: str, dialect: str) -> set[str]:
    """The functions a statement calls, as it spells them: a word before "(" that is no quoted name or string."""
    tokens = sqlglot.tokenize(sql, read=dialect)
    return {t.text.upper() for t, nxt in itertools.pairwise(tokens) if nxt.token_type == TokenType.L_PAREN
            and t.token_type not in (TokenType.IDENTIFIER, TokenType.STRING)}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_one_scan_that_parses_with_identifiers_intact(dialect: str) -> None:
    caps = DIALECTS[dialect]
    scan = compile_scan(("analytics", TABLE), portable(dialect), dialect, KINDS, limit=10_000)
    tree = sqlglot.parse_one(scan.sql or "", read=dialect)
    assert isinstance(tree, exp.Select)
    selects = list(tree.find_all(exp.Select))
    assert len(selects) == 2  # the aggregate over one derived table (the head and the sample's draw)
    assert [t.name for t in tree.find_all(exp.Table)] == [TABLE]
    assert {KEYWORD, QUOTE, UNICODE, SPACE, TABLE, "analytics"} <= {i.name for i in tree.find_all(exp.Identifier)}
    functions = called(scan.sql or "", dialect)
    assert {"COUNT", "MIN", "MAX"} <= functions
    assert not functions & caps.missing_functions, (dialect, functions & caps.missing_functions, scan.sql)
    assert scan.probes  # ValueCounts at least; tuples too where the dialect cannot count them in the scan
    for probe in scan.probes:
        parsed = sqlglot.parse_one(probe, read=dialect)
        assert isinstance(parsed, exp.Select) and [t.name for t in parsed.find_all(exp.Table)] == [TABLE]
        assert not called(probe, dialect) & caps.missing_functions
    plain = compile_scan(TABLE, [Count(), MinMax(KEYWORD)], dialect, KINDS).sql or ""
    assert len(list(sqlglot.parse_one(plain, read=dialect).find_all(exp.Select))) == 1  # no subquery needed
    top = compile_top_k(TABLE, TopK(SPACE, 5, where=Matches(KEYWORD, "[0-9]+")), dialect, KINDS)
    assert SPACE in {i.name for i in sqlglot.parse_one(top, read=dialect).find_all(exp.Identifier)}
    assert not called(top, dialect) & caps.missing_functions


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_reads_a_select_as_a_derived_table(dialect: str) -> None:
    source = "SELECT a AS x, b FROM analytics.events WHERE b > 1"
    scan = compile_scan(source, [Count(), MinMax("x")], dialect, {"x": "integer", "b": "integer"})
    tree = sqlglot.parse_one(scan.sql or "", read=dialect)
    assert [t.name for t in tree.find_all(exp.Table)] == ["events"]
    assert len(list(tree.find_all(exp.Subquery))) == 1


@pytest.mark.parametrize("source", ["DELETE FROM t", "SELECT 1; SELECT 2", "SELECT * INTO t2 FROM t",
                                    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                                    "SELECT * FROM t FOR UPDATE", "SELECT FROM WHERE ("])
def test_a_source_that_is_not_one_read_only_select_is_refused(source: str) -> None:
    with pytest.raises(SpecError, match="source query"):
        compile_scan(source, [Count()], "postgres", {})


@pytest.mark.parametrize("dialect", ["bigquery", "trino", "tsql", "mysql"])
def test_an_exact_quantile_is_refused_never_approximated(dialect: str) -> None:
    with pytest.raises(SpecError, match=f"{dialect} has no aggregate for"):
        compile_scan(TABLE, [Quantiles(UNICODE, [0.5])], dialect, KINDS)
    with pytest.raises(SpecError, match=f"{dialect} has no aggregate for"):
        compile_scan(TABLE, [Quantiles(UNICODE, [0.5], sample=0.1)], dialect, KINDS)  # a sample is no sketch


def test_spec_errors_before_anything_runs() -> None:
    with pytest.raises(SpecError, match="unknown SQL dialect 'oracle9'"):
        compile_scan(TABLE, [Count()], "oracle9", KINDS)
    with pytest.raises(SpecError, match="no metric requests"):
        compile_scan(TABLE, [], "duckdb", KINDS)
    with pytest.raises(SpecError, match="column 'prix' not found .* Did you mean 'prix €'"):
        compile_scan(TABLE, [NullCount("prix")], "postgres", KINDS)
    with pytest.raises(SpecError, match="cannot be read as a number"):
        compile_scan(TABLE, [MinMax(Col(SPACE, "number"))], "postgres", KINDS)
    with pytest.raises(SpecError, match="Moments needs numbers"):
        compile_scan(TABLE, [Moments(NAIVE)], "postgres", KINDS)
    with pytest.raises(SpecError, match="cannot be read as a time"):
        compile_scan(TABLE, [MinMax(Col(FLAG, "epoch"))], "postgres", KINDS)


def test_requests_are_frozen_hashable_values_that_round_trip() -> None:
    r = CountIf(And(Compare("a", ">=", 1), Not(IsIn("b", ["x"]))))
    assert r == CountIf(And(Compare("a", ">=", 1), Not(IsIn("b", ("x",))))) and hash(r) == hash(CountIf(r.where))
    assert CountIf.model_validate(r.model_dump()) == r
    with pytest.raises(ValueError, match="frozen"):
        r.where = IsNull("a")  # type: ignore[misc]
    with pytest.raises(ValueError, match="finite"):
        Compare("a", "<", math.inf)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Quantiles("a", [1.5])
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("a", [0, 0, 1])
