"""An Airflow DAG waits for and guards a PostgreSQL table through a connection, in place: the connection's
own hook gives the SQLAlchemy engine, the sensor's readiness checks and the guard's statements run in
PostgreSQL, and the report names the table as a postgres source (a fetched table would be an Arrow table on
the worker)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG

import mlguard_orchestration as mg
from mlguard_orchestration.airflow import DataGuardOperator, DatasetReadySensor
from tests._postgres import PostgresServer, load_frame
from tests.airflow.conftest import register, states, xcom_report


@pytest.fixture(scope="module")
def airflow_db() -> None:
    from airflow.utils import db

    db.initdb()


@pytest.mark.usefixtures("airflow_db")
def test_a_dag_guards_a_postgres_table_where_it_lives(postgres: PostgresServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({"order_id": np.arange(n), "amount": rng.lognormal(3, 0.5, n),
                          "day": np.where(np.arange(n) < 4_000, "2026-11-01", "2026-11-02")})
    frame.loc[4_500:, "amount"] = np.nan  # the second day's late rows lost their amount
    with postgres.connect() as con:
        load_frame(con, ("public", "orders"), frame)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_PG", json.dumps({
        "conn_type": "postgres", "host": postgres.host, "port": postgres.port, "login": postgres.user,
        "schema": postgres.dbname}))
    checks = [mg.RowCount(min=1), mg.NullRate(column="amount"), mg.Unique(columns=["order_id"])]
    with DAG("t_pushdown", schedule=None, catchup=False, default_args={"retries": 0},
             params={"day": "2026-11-01"}) as dag:
        ready = DatasetReadySensor(task_id="ready", source={"table": "public.orders", "conn_id": "warehouse_pg"},
                                   min_rows=n, columns={"order_id": "integer", "amount": "float"},
                                   poke_interval=0.2, timeout=120, mode="poke")
        ready >> DataGuardOperator(task_id="whole_table", checks=checks[::2],
                                   tables={"data": {"table": "public.orders", "conn_id": "warehouse_pg"}})
        DataGuardOperator(task_id="good_day", checks=checks,
                          tables={"data": {"sql": "SELECT * FROM orders WHERE day = '{{ params.day }}'",
                                           "conn_id": "warehouse_pg"}})
        DataGuardOperator(task_id="bad_day", checks=checks,
                          tables={"data": {"sql": "SELECT * FROM orders WHERE day = '2026-11-02'",
                                           "conn_id": "warehouse_pg"}})
    run = register(dag).test()
    assert states(run) == {"ready": "success", "whole_table": "success", "good_day": "success", "bad_day": "failed"}
    whole, good, bad = (xcom_report(run, t) for t in ("whole_table", "good_day", "bad_day"))
    assert whole.tables["data"].rows == n and good.tables["data"].rows == 4_000
    assert "(postgres)" in whole.tables["data"].source and "(postgres)" in good.tables["data"].source
    assert [f.code for f in bad.findings] == ["schema.null_rate"]
    assert bad.findings[0].evidence or bad.findings[0].value == pytest.approx(500 / 1_000)
