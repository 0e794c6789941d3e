"""`SqlEngine` on a real PostgreSQL through SQLAlchemy: column kinds without fetching a row, a scan with its
probes on a table and on a SELECT, a head sample, database errors as SourceError, and a connection you pass
left usable."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest

from mlguard_orchestration.engines import (
    Col,
    Compare,
    Count,
    Counted,
    CountIf,
    DuplicateRows,
    IsNaN,
    MinMax,
    Moments,
    NullCount,
    Quantiles,
    TopK,
    ValueCounts,
)
from mlguard_orchestration.engines.sql import SqlEngine
from mlguard_orchestration.errors import SourceError, SpecError
from tests._postgres import PostgresServer

TABLE = "odd table"
KEYWORD, QUOTE, UNICODE, PERCENT = "select", 'a "quoted" name', "prix €", "50% off"


@pytest.fixture(scope="module")
def engine(postgres: PostgresServer) -> Iterator[SqlEngine]:
    with postgres.connect(autocommit=True) as pg:
        pg.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
        pg.execute(f'CREATE TABLE "{TABLE}" ("{KEYWORD}" BIGINT, "a ""quoted"" name" DOUBLE PRECISION, '
                   f'"{UNICODE}" NUMERIC(10, 2), "{PERCENT}" TEXT, "at" TIMESTAMPTZ, "local" TIMESTAMP, "day" DATE, '
                   '"ok" BOOLEAN, "blob" BYTEA, "tags" TEXT[], "n0" NUMERIC(12, 0))')
        pg.execute(f'INSERT INTO "{TABLE}" SELECT g, CASE WHEN g % 10 = 0 THEN \'NaN\'::float8 ELSE g / 4.0 END, '
                   f'g * 1.25, CASE WHEN g % 3 = 0 THEN NULL ELSE \'v\' || (g % 4) END, '
                   "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', "
                   "timestamp '2024-01-01' + g * interval '1 day', date '2024-01-01' + g, g % 2 = 0, NULL, NULL, g "
                   "FROM generate_series(1, 100) g")
    with SqlEngine(postgres.url) as e:
        yield e


def test_dialect_comes_from_sqlalchemy(postgres: PostgresServer) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url)
    try:
        assert SqlEngine(engine).dialect == "postgres"
        assert SqlEngine(engine, dialect="duckdb").dialect == "duckdb"
    finally:
        engine.dispose()
    with pytest.raises(SpecError, match="no SQL dialect for SQLAlchemy's 'sqlite'"):
        SqlEngine("sqlite://")
    with pytest.raises(SpecError, match="not a usable database URL"):
        SqlEngine("nosuchdb+driver://x")


def test_columns_name_types_and_kinds_without_fetching_a_row(engine: SqlEngine) -> None:
    cols = engine.columns(TABLE)
    assert {n: k for n, (_, k) in cols.items()} == {
        KEYWORD: "integer", QUOTE: "float", UNICODE: "decimal", PERCENT: "string", "at": "timestamp_tz",
        "local": "timestamp", "day": "date", "ok": "boolean", "blob": "binary", "tags": "nested", "n0": "integer"}
    assert (cols["at"][0], cols[QUOTE][0], cols[UNICODE][0]) == ("timestamptz", "float8", "numeric(10,2)")  # psycopg's names
    # a SELECT whose rows would fail (division by zero on every row) lists its columns all the same
    query = f'SELECT "{KEYWORD}" AS k, 1 / ("{KEYWORD}" - "{KEYWORD}") AS boom, "at" FROM "{TABLE}"'
    assert {n: k for n, (_, k) in engine.columns(query).items()} == {"k": "integer", "boom": "integer",
                                                                    "at": "timestamp_tz"}


def test_measure_a_table_with_its_probes(engine: SqlEngine) -> None:
    requests = [Count(), NullCount(PERCENT), CountIf(IsNaN(QUOTE)), CountIf(Compare(QUOTE, ">", 20)),
                MinMax(Col("at", "epoch")), Moments(Col(QUOTE, "number")), Quantiles(KEYWORD, [0.5]),
                ValueCounts(PERCENT, top=2), DuplicateRows([PERCENT, "ok"]), TopK(PERCENT, 1, where=Compare("ok", "=", True)),
                MinMax("ok")]
    got = engine.measure(TABLE, requests)
    finite = [g / 4.0 for g in range(1, 101) if g % 10]
    assert got[Count()].value == 100 and got[NullCount(PERCENT)].value == 33
    assert got[CountIf(IsNaN(QUOTE))].value == 10
    assert got[CountIf(Compare(QUOTE, ">", 20))].value == sum(1 for g in range(81, 101) if g % 10)  # no NaN
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    assert got[MinMax(Col("at", "epoch"))].value == (start + 3600, start + 100 * 3600)
    n, mean, _ = got[Moments(Col(QUOTE, "number"))].value
    assert n == 90 and abs(mean - sum(finite) / 90) < 1e-9
    assert got[Quantiles(KEYWORD, [0.5])].value == (50.5,)
    values = [f"v{g % 4}" for g in range(1, 101) if g % 3]
    top = sorted({(v, values.count(v)) for v in values}, key=lambda vc: (-vc[1], vc[0]))[:2]
    assert got[ValueCounts(PERCENT, top=2)].value == Counted(top=tuple(top), distinct=4,
                                                             other=len(values) - sum(n for _, n in top))
    pairs = {(None if g % 3 == 0 else f"v{g % 4}", g % 2 == 0) for g in range(1, 101)}
    assert got[DuplicateRows([PERCENT, "ok"])].value == 100 - len(pairs)
    assert got[TopK(PERCENT, 1, where=Compare("ok", "=", True))].value == (("v0", 17),)  # v0 and v2 tie: by value
    assert got[MinMax("ok")].value == (False, True)
    assert all(m.exact for m in got.values())


def test_measure_a_select_and_a_head_sample(engine: SqlEngine) -> None:
    query = f'SELECT "{KEYWORD}" * 2 AS "twice €", "{PERCENT}" FROM "{TABLE}" WHERE "{KEYWORD}" <= 50'
    got = engine.measure(query, [Count(), MinMax("twice €"), NullCount(PERCENT)])  # kinds looked up
    assert got[Count()].value == 50 and got[MinMax("twice €")].value == (2, 100)
    head = engine.measure(TABLE, [Count(), ValueCounts(PERCENT, top=1)], kinds={PERCENT: "string"}, limit=12)
    assert head[Count()].value == 12
    counted = head[ValueCounts(PERCENT, top=1)].value
    assert counted.top[0][1] + counted.other == 8  # 12 rows, 4 of them NULL (in insertion order)


def test_database_errors_are_source_errors_with_the_first_line(engine: SqlEngine, postgres: PostgresServer) -> None:
    with pytest.raises(SourceError) as raised:
        engine.measure("no such table", [Count()], kinds={})
    message = raised.value.message
    assert 'relation "no such table" does not exist' in message and "\n" not in message
    assert "Traceback" not in message and "SELECT" not in message
    with pytest.raises(SourceError, match="division by zero"):
        engine.measure(f'SELECT 1 / ("{KEYWORD}" - "{KEYWORD}") AS boom FROM "{TABLE}"', [MinMax("boom")])
    with SqlEngine(postgres.url, dialect="trino") as trino, pytest.raises(SpecError, match="trino has no aggregate"):
        trino.measure(TABLE, [Quantiles(KEYWORD, [0.5])], kinds={KEYWORD: "integer"})  # refused before it runs
    import sqlalchemy as sa

    sa_engine = sa.create_engine(postgres.url)
    try:
        with sa_engine.connect() as con:
            on_con = SqlEngine(con)
            with pytest.raises(SourceError):
                on_con.measure("no such table", [Count()], kinds={})
            # the failed statement did not leave the connection in an aborted transaction
            assert on_con.measure(TABLE, [Count()], kinds={})[Count()].value == 100
            assert not con.in_transaction()
    finally:
        sa_engine.dispose()


def test_unreachable_database_is_a_source_error() -> None:
    with SqlEngine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2") as e, \
            pytest.raises(SourceError, match=r"table 't' could not be read \(postgres\)"):
        e.measure("t", [Count()], kinds={})


def test_decimals_come_back_as_floats_and_numbers(engine: SqlEngine) -> None:
    got = engine.measure(TABLE, [MinMax(UNICODE), MinMax("n0")])
    assert got[MinMax(UNICODE)].value == (1.25, 125.0)
    assert not any(isinstance(v, Decimal) for m in got.values() for v in m.value)


def test_engines_import_neither_sqlglot_nor_sqlalchemy() -> None:
    code = ("import sys, mlguard_orchestration.engines; "
            "assert 'sqlglot' not in sys.modules and 'sqlalchemy' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
