"""The SQL compiler: one statement per table, the same values on DuckDB and a real PostgreSQL, and for the
dialects without a server here, statements that parse in the dialect, keep hostile identifiers intact and
call only functions the dialect has."""

from __future__ import annotations

import itertools
import math
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from mlguard_orchestration.engines import (
    And,
    Compare,
    Count,
    CountIf,
    Distinct,
    Histogram,
    IsIn,
    IsNull,
    MinMax,
    Moments,
    Not,
    NullCount,
    Or,
    Quantiles,
    TopK,
)
from mlguard_orchestration.engines.sql import DIALECTS, compile_scan, compile_top_k
from mlguard_orchestration.errors import SpecError
from tests._postgres import PostgresServer, load_frame

TABLE = "guard input"
KEYWORD, QUOTE, UNICODE, SPACE = "select", 'a "quoted" name', "prix €", "user name"
LEVELS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(14)
    quoted = rng.gamma(2.0, 3.0, 5_000)
    quoted[rng.random(5_000) < 0.1] = np.nan
    return pd.DataFrame({
        KEYWORD: rng.integers(0, 100, 5_000).astype(np.int64),
        QUOTE: quoted,
        UNICODE: np.round(rng.lognormal(2.5, 0.8, 5_000), 2),
        SPACE: rng.choice(np.array(["ann", "bob", "c'ed", 'd"an', "éva", "x y"]), 5_000, p=[.4, .2, .15, .1, .1, .05]),
    })


def requests(exact_quantiles: bool = True, approx: bool = True) -> list[Any]:
    out: list[Any] = [
        Count(), NullCount(QUOTE), CountIf(Compare(KEYWORD, ">", 10)),
        CountIf(And(Or(IsIn(SPACE, ["c'ed", 'd"an']), IsNull(QUOTE)), Not(Compare(UNICODE, "<", 5.0)))),
        MinMax(UNICODE), Moments(UNICODE), Distinct(SPACE), Histogram(UNICODE, [0, 10, 20, 50]),
    ]
    if exact_quantiles:
        out.append(Quantiles(UNICODE, LEVELS))
    if approx:
        out += [Quantiles(UNICODE, LEVELS, exact=False), Distinct(SPACE, exact=False)]
    return out


def expected(df: pd.DataFrame) -> dict[Any, Any]:
    x, name, quoted = df[UNICODE].to_numpy(), df[SPACE], df[QUOTE]
    hist = np.histogram(x[(x >= 0) & (x <= 50)], bins=[0, 10, 20, 50])[0]
    quantiles = tuple(float(np.quantile(x, q)) for q in LEVELS)
    return {
        Count(): len(df), NullCount(QUOTE): int(quoted.isna().sum()),
        CountIf(Compare(KEYWORD, ">", 10)): int((df[KEYWORD] > 10).sum()),
        requests()[3]: int(((name.isin(["c'ed", 'd"an']) | quoted.isna()) & ~(df[UNICODE] < 5.0)).sum()),
        MinMax(UNICODE): (x.min(), x.max()), Moments(UNICODE): (x.mean(), x.std(ddof=1)),
        Distinct(SPACE): name.nunique(), Histogram(UNICODE, [0, 10, 20, 50]): tuple(int(h) for h in hist),
        Quantiles(UNICODE, LEVELS): quantiles, Quantiles(UNICODE, LEVELS, exact=False): quantiles,
        Distinct(SPACE, exact=False): name.nunique(),
    }


def assert_values(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    for request, measured in got.items():
        tol = 1e-9 if measured.exact else 0.02  # approximate: DuckDB's t-digest and HyperLogLog, stated here
        values = measured.value if isinstance(measured.value, tuple) else (measured.value,)
        wanted = want[request] if isinstance(want[request], tuple) else (want[request],)
        assert len(values) == len(wanted), request
        for v, w in zip(values, wanted, strict=True):
            assert math.isclose(v, w, rel_tol=tol, abs_tol=1e-9), (request, v, w)


def test_duckdb_and_postgres_give_the_same_values(frame: pd.DataFrame, postgres: PostgresServer) -> None:
    want = expected(frame)
    con = duckdb.connect()
    con.register(TABLE, frame)
    duck_scan = compile_scan(TABLE, requests(), "duckdb")
    on_duckdb = duck_scan.decode(con.execute(duck_scan.sql).fetchone())
    pg_scan = compile_scan(("public", TABLE), requests(), "postgres")
    with postgres.connect() as pg:
        load_frame(pg, TABLE, frame)
        on_postgres = pg_scan.decode(pg.execute(pg_scan.sql).fetchone())
    assert_values(on_duckdb, want)
    assert_values(on_postgres, want)
    approximate = {Quantiles(UNICODE, LEVELS, exact=False), Distinct(SPACE, exact=False)}
    assert {r for r, m in on_duckdb.items() if not m.exact} == approximate
    assert all(m.exact for m in on_postgres.values())  # postgres has no sketches: computed exactly, said so
    # the approximate quantiles share the exact ones' expressions on postgres: computed once
    assert pg_scan.sql.count("PERCENTILE_CONT(0.5)") == 1


def test_top_k_probe_on_duckdb_and_postgres(frame: pd.DataFrame, postgres: PostgresServer) -> None:
    want = list(frame[SPACE].value_counts().head(3).items())
    con = duckdb.connect()
    con.register(TABLE, frame)
    assert con.execute(compile_top_k(TABLE, TopK(SPACE, 3), "duckdb")).fetchall() == want
    with postgres.connect() as pg:
        load_frame(pg, "top k", frame)
        assert pg.execute(compile_top_k("top k", TopK(SPACE, 3), "postgres")).fetchall() == want


def test_an_empty_table_counts_zero_not_null(postgres: PostgresServer) -> None:
    scan = compile_scan("empty", [Count(), NullCount("x"), CountIf(Compare("x", ">", 1)), Histogram("x", [0, 1])],
                        "postgres")
    with postgres.connect() as pg:
        pg.execute('CREATE TABLE IF NOT EXISTS "empty" ("x" DOUBLE PRECISION)')
        got = scan.decode(pg.execute(scan.sql).fetchone())
    assert [m.value for m in got.values()] == [0, 0, 0, (0,)]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_one_scan_that_parses_with_identifiers_intact(dialect: str) -> None:
    caps = DIALECTS[dialect]
    scan = compile_scan(("analytics", TABLE), requests(exact_quantiles=caps.exact_quantile,
                                                        approx=caps.approx_quantile), dialect)
    tree = sqlglot.parse_one(scan.sql, read=dialect)
    assert isinstance(tree, exp.Select) and len(list(tree.find_all(exp.Select))) == 1  # one scan, no subquery
    assert [t.name for t in tree.find_all(exp.Table)] == [TABLE]
    assert {KEYWORD, QUOTE, UNICODE, SPACE, TABLE, "analytics"} <= {i.name for i in tree.find_all(exp.Identifier)}
    # the functions as the statement spells them: a word before "(" that is not a quoted name or a string
    tokens = sqlglot.tokenize(scan.sql, read=dialect)
    called = {t.text.upper() for t, nxt in itertools.pairwise(tokens) if nxt.token_type == TokenType.L_PAREN
              and t.token_type not in (TokenType.IDENTIFIER, TokenType.STRING)}
    assert {"COUNT", "MIN", "MAX", "AVG"} <= called
    assert not called & caps.missing_functions, (dialect, called & caps.missing_functions, scan.sql)
    top = sqlglot.parse_one(compile_top_k(TABLE, TopK(SPACE, 5), dialect), read=dialect)
    assert SPACE in {i.name for i in top.find_all(exp.Identifier)}


@pytest.mark.parametrize("dialect", ["bigquery", "trino", "tsql", "mysql"])
def test_an_exact_quantile_is_refused_never_approximated(dialect: str) -> None:
    with pytest.raises(SpecError, match=f"{dialect} has no aggregate for"):
        compile_scan(TABLE, [Quantiles(UNICODE, [0.5])], dialect)


def test_unknown_dialect_and_empty_requests_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="unknown SQL dialect 'oracle9'"):
        compile_scan(TABLE, [Count()], "oracle9")
    with pytest.raises(SpecError, match="no metric requests"):
        compile_scan(TABLE, [], "duckdb")


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
