"""The real engines start, take a generated table and answer an aggregate: PostgreSQL through COPY and
SQLAlchemy, Spark through the DataFrame API. What the guards compute on them is tested beside the engines."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from tests._data import churn_frame
from tests._postgres import PostgresServer, load_frame
from tests._required import required, unavailable


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(20_000, seed=7)


def test_postgres_table_loaded_through_copy_reads_back(postgres: PostgresServer, churn: pd.DataFrame) -> None:
    with postgres.connect() as con:
        assert load_frame(con, "churn", churn) == len(churn)
        n, nulls, spend, plans = con.execute(
            'SELECT count(*), count(*) - count(avg_session_min), sum(monthly_spend_usd), '
            'count(DISTINCT plan) FROM churn').fetchone()
    assert n == len(churn)
    assert nulls == churn["avg_session_min"].isna().sum() > 0  # NaN went in as NULL
    assert math.isclose(spend, churn["monthly_spend_usd"].sum(), rel_tol=1e-9)
    assert plans == churn["plan"].nunique()


def test_postgres_through_sqlalchemy_with_hostile_identifiers(postgres: PostgresServer) -> None:
    import sqlalchemy as sa

    frame = pd.DataFrame({"select": [1, 2, None], 'a "quoted" name': ["x", None, "z"], "prix €": [1.5, 2.5, 3.0]})
    with postgres.connect() as con:
        load_frame(con, ("public", "odd table"), frame)
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect() as con:
            row = con.execute(sa.text('SELECT count("select"), count("a ""quoted"" name"), sum("prix €") '
                                      'FROM public."odd table"')).one()
    finally:
        engine.dispose()
    assert tuple(row) == (2, 2, 7.0)


def test_spark_dataframe_aggregates(spark: Any, churn: pd.DataFrame) -> None:
    from pyspark.sql import functions as F

    df = spark.createDataFrame(churn)
    rows = {r["plan"]: r for r in df.groupBy("plan").agg(F.count("*").alias("n"),
                                                         F.avg("monthly_spend_usd").alias("spend")).collect()}
    expected = churn.groupby("plan")["monthly_spend_usd"].agg(["size", "mean"])
    assert set(rows) == set(expected.index)
    for plan, (size, mean) in expected.iterrows():
        assert rows[plan]["n"] == size
        assert math.isclose(rows[plan]["spend"], mean, rel_tol=1e-9)
    # pandas NaN arrives in Spark as NaN, not NULL: an engine must count both as missing
    assert df.filter(F.isnan("avg_session_min") | F.col("avg_session_min").isNull()).count() == \
        churn["avg_session_min"].isna().sum()


def test_missing_engine_fails_in_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CI", "MLGUARD_REQUIRE_REAL"):
        monkeypatch.delenv(var, raising=False)
    assert not required()
    with pytest.raises(pytest.skip.Exception):
        unavailable("PostgreSQL", "no initdb")
    monkeypatch.setenv("CI", "true")
    assert required()
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required here"):
        unavailable("PostgreSQL", "no initdb")
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv("MLGUARD_REQUIRE_REAL", "1")
    assert required()
