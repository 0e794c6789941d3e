"""One corpus, every engine: each single-table check and the default suite give the same verdicts and codes
whether the table is a DataFrame in the embedded DuckDB, a table in a real PostgreSQL (guarded in place
through `mg.SqlTable` and `mg.Sql(..., connection=url)`), or a Spark DataFrame in a local Spark session.

Each case plants one fault in a batch of the churn table (or none) and names the codes it must produce; the
reference profile is built on the same engine as the batch, as a user of that engine would build it. The
tables are small enough (3,000 rows) that every quantile is exact on every engine, so no tolerance applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlguard_orchestration as mg
from tests._data import churn_frame
from tests._postgres import PostgresServer, load_frame

N = 3_000
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
_names = itertools.count()


def batch(seed: int = 1) -> pd.DataFrame:
    df = churn_frame(N, seed)
    rng = np.random.default_rng(seed)
    df["email"] = [f"user{i}@example.org" for i in range(N)]
    df["event_time"] = pd.Timestamp(NOW) - pd.to_timedelta(rng.integers(3_600, 86_400 * 3, N), unit="s")
    df["label_time"] = (df["event_time"] + pd.to_timedelta(rng.integers(60, 86_400, N), unit="s")).dt.tz_localize(None)
    return df


def _scale(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["monthly_spend_usd"] *= 100  # dollars to cents
    return df


def _nulls(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[: N // 4], "country"] = None
    return df


def _new_plan(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[: N // 5], "plan"] = "enterprise"
    return df


def _duplicated(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[: N // 10]], ignore_index=True)


def _bad_email(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[:30], "email"] = "n/a"
    return df


def _stale(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["event_time"] -= pd.Timedelta(days=30)
    df["label_time"] -= pd.Timedelta(days=30)
    return df


def _leak(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[:200], "label_time"] = (df["event_time"].iloc[:200] - pd.Timedelta(hours=1)).dt.tz_localize(None)
    return df


CHECKS: list[Any] = [
    mg.RowCount(min=100),
    mg.NullRate(column="country", max=0.05),
    mg.Range(column="tenure_months", min=0, max=119),
    mg.AllowedValues(column="plan", values=["basic", "standard", "premium"]),
    mg.Pattern(column="email", regex=r"[a-z0-9.]+@[a-z0-9.-]+"),
    mg.Unique(columns=["user_id"]),
    mg.Unique(columns=["plan", "user_id"]),
    mg.DuplicateRows(),
    mg.Freshness(column="event_time", max_age="1d"),
    mg.PointInTime(feature_time="event_time", label_time="label_time"),
]

def _every_fault(df: pd.DataFrame) -> pd.DataFrame:
    for plant in (_stale, _leak, _scale, _nulls, _new_plan, _bad_email, _duplicated):
        df = plant(df)
    return df


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[str]]] = {
    "healthy": (lambda df: df, set()),
    "unit_change": (_scale, {"drift.numeric", "schema.out_of_range"}),
    "nulls": (_nulls, {"schema.null_rate", "drift.null_rate"}),
    "new_category": (_new_plan, {"schema.not_allowed", "drift.categorical", "drift.unseen_categories"}),
    "duplicated_rows": (_duplicated, {"schema.not_unique", "volume.duplicate_rows"}),
    "bad_pattern": (_bad_email, {"schema.pattern_mismatch", "schema.not_unique"}),  # emails were unique
    "stale": (_stale, {"freshness.stale", "time.out_of_window"}),
    "leak": (_leak, {"leakage.point_in_time"}),
}
CASES["every_fault"] = (_every_fault, set().union(*(codes for _, codes in CASES.values())))
SPARK_CASES = ("healthy", "every_fault")  # a Spark job per metric pass is slow: every check quiet, then firing


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _postgres(server: PostgresServer, form: str) -> Callable[[pd.DataFrame], Any]:
    def load(df: pd.DataFrame) -> Any:
        name = f"verdicts {next(_names)}"
        with server.connect() as con:
            load_frame(con, name, df)
        if form == "table":
            return mg.SqlTable(("public", name), connection=server.url)
        return mg.Sql(f'SELECT * FROM "{name}" WHERE user_id >= 0', connection=server.url)
    return load


def _spark(session: Any) -> Callable[[pd.DataFrame], Any]:
    def load(df: pd.DataFrame) -> Any:
        # through Arrow, where a pandas NaN is NULL (as DuckDB reads it and as the PostgreSQL load writes it);
        # the naive label time stays naive (TimestampNTZ)
        frame = df.astype({"event_time": "datetime64[us, UTC]", "label_time": "datetime64[us]"})
        return session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
    return load


ENGINES = ("duckdb", "postgres_table", "postgres_sql", "spark")


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Callable[[pd.DataFrame], Any]:
    if request.param == "duckdb":
        return _frame
    if request.param == "spark":
        return _spark(request.getfixturevalue("spark"))
    server = request.getfixturevalue("postgres")
    return _postgres(server, request.param.removeprefix("postgres_"))


@pytest.fixture(scope="module")
def reference(engine: Callable[[pd.DataFrame], Any]) -> mg.TableProfile:
    return mg.build_profile(engine(batch(seed=0)), logical_date=NOW)


def verdict(report: mg.Report) -> tuple[str, set[str]]:
    assert report.error is None, report.error
    return report.status, {f.code for f in report.findings}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every case on every engine, but Spark only on SPARK_CASES (a Spark job a metric pass is slow; the batch
    with every fault makes each check fire there too), so nothing is skipped."""
    if metafunc.definition.name == "test_each_engine_gives_the_planted_verdict":
        pairs = [(e, c) for e in ENGINES for c in sorted(CASES) if e != "spark" or c in SPARK_CASES]
        metafunc.parametrize(("engine", "case"), pairs, indirect=["engine"], ids=[f"{e}-{c}" for e, c in pairs],
                             scope="module")
    elif "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", ENGINES, indirect=True, scope="module")


def test_each_engine_gives_the_planted_verdict(case: str, engine: Callable[[pd.DataFrame], Any],
                                               reference: mg.TableProfile) -> None:
    plant, expected = CASES[case]
    guard = mg.Guard("verdicts", checks=CHECKS, default_suite=True, reference=reference)
    status, found = verdict(guard.run(engine(plant(batch())), logical_date=NOW))
    assert found == expected, (case, found)  # the same codes, nothing more, on every engine
    assert status == ("fail" if expected else "pass"), (case, status, found)


def test_the_reference_profile_is_the_same_on_every_engine(engine: Callable[[pd.DataFrame], Any],
                                                          reference: mg.TableProfile) -> None:
    embedded = mg.build_profile(batch(seed=0), logical_date=NOW)
    for name, col in embedded.columns.items():
        other = reference.columns[name]
        assert (other.role, other.count, other.nulls, other.unique) == (col.role, col.count, col.nulls, col.unique), name
        if col.distinct_exact:
            assert other.distinct == col.distinct, name
        elif col.distinct is not None:  # DuckDB's HyperLogLog; PostgreSQL counts exactly: within 2 %
            assert other.distinct == pytest.approx(col.distinct, rel=0.02), name
        for a, b in [(other.min, col.min), (other.max, col.max), (other.mean, col.mean), (other.std, col.std)]:
            assert a == b or a == pytest.approx(b, rel=1e-9, abs=1e-6), name
        if col.quantiles is None:
            assert other.quantiles is None, name
        else:
            assert other.quantiles == pytest.approx(col.quantiles, rel=1e-9, abs=1e-6), name
        if col.bins is not None:  # edges from interpolated quantiles: equal to the last bits
            assert other.bins is not None and other.bins.counts == col.bins.counts, name
            assert other.bins.edges == pytest.approx(col.bins.edges, rel=1e-12), name
        assert other.hours == col.hours and other.categories == col.categories, name


def test_a_cross_table_check_on_a_database_table_is_a_clear_error(postgres: PostgresServer) -> None:
    remote = _postgres(postgres, "table")(batch())
    guard = mg.Guard("x", checks=[mg.TrainTestOverlap(train="train", test="test", columns=["user_id"])])
    report = guard.run({"train": remote, "test": batch(seed=2)})
    assert report.status == "error" and report.error is not None
    assert "stays in" in report.error.message and "'train'" in report.error.message


def test_no_row_crosses_the_connection(postgres: PostgresServer) -> None:
    """The guard reads aggregates only: a million-row table is guarded while the rows its statements return
    to the worker (counted by SQLAlchemy on every statement) stay a handful."""
    import sqlalchemy as sa

    with postgres.connect(autocommit=True) as con:
        con.execute('DROP TABLE IF EXISTS "big"')
        con.execute('CREATE TABLE "big" AS SELECT g AS id, (g % 97)::float8 AS x, '
                    "CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END AS k FROM generate_series(1, 1000000) g")
    engine = sa.create_engine(postgres.url)
    returned: list[int] = []
    sa.event.listen(engine, "after_cursor_execute", lambda *args: returned.append(max(args[1].rowcount, 0)))
    report = mg.Guard("big", checks=[mg.NullRate(column="x"), mg.Unique(columns=["id"]),
                                     mg.AllowedValues(column="k", values=["a", "b"])]).run(mg.SqlTable("big", connection=engine))
    engine.dispose()
    assert report.status == "pass", report.findings
    assert report.tables["data"].rows == 1_000_000
    assert 0 < len(returned) <= 6 and sum(returned) <= 10, returned  # a few one-row aggregates and probes
