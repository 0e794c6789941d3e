"""Guard operators, `@task.mlguard` and the provider, each run for real with `dag.test()`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG, task

import mlguard_orchestration as mg
from mlguard_orchestration.airflow import (
    DataGuardOperator,
    JoinGuardOperator,
    RowCountGuardOperator,
    SchemaGuardOperator,
    report_from_context,
)
from tests.airflow.conftest import register, states, xcom_report

CAUGHT: dict[str, Any] = {}


def _on_failure(context: Any) -> None:
    CAUGHT["report"] = report_from_context(context)
    CAUGHT["exception"] = type(context["exception"]).__name__


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("af-data")
    rng = np.random.default_rng(0)
    n = 2_000
    frame = pd.DataFrame({"user_id": np.arange(n), "plan": rng.choice(["basic", "pro"], n),
                          "spend": rng.lognormal(3, 0.4, n), "day": pd.Timestamp("2026-11-01")})
    frame.to_parquet(d / "20261101.parquet")
    frame.assign(spend=frame.spend * 100).to_parquet(d / "cents.parquet")
    pd.DataFrame({"user_id": np.arange(n)}).to_parquet(d / "labels.parquet")
    pd.concat([frame, frame.assign(day=pd.Timestamp("2026-10-01"))]).to_parquet(d / "features.parquet")
    return {"dir": d}


def _dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, catchup=False, default_args={"retries": 0}, **kwargs)


def test_templated_fields_render_and_the_report_reaches_xcom(data: dict[str, Path]) -> None:
    with _dag("t_render", params={"day": "20261101"}) as dag:
        DataGuardOperator(task_id="guard", tables={"data": str(data["dir"]) + "/{{ params.day }}.parquet"},
                          checks=[mg.NullRate(column="spend"), {"kind": "row_count", "min": 1}],
                          guard_name="g_{{ params.day }}")
    run = register(dag).test()
    assert states(run) == {"guard": "success"}
    report = xcom_report(run, "guard")
    assert report is not None and report.guard == "g_20261101" and report.status == "pass"
    assert report.tables["data"].source.endswith("20261101.parquet")  # rendered, not the template


def test_failed_check_is_final_and_reaches_the_failure_callback(data: dict[str, Path]) -> None:
    CAUGHT.clear()
    with _dag("t_fail") as dag:
        guard = SchemaGuardOperator(task_id="guard", table=str(data["dir"] / "20261101.parquet"),
                                    columns={"user_id": "integer", "monthly_spend_usd": "numeric"}, retries=3,
                                    retry_delay=timedelta(0), on_failure_callback=_on_failure)

        @task
        def after() -> None: ...

        guard >> after()
    run = register(dag).test()
    got = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert got["guard"] == ("failed", 1)  # AirflowFailException: no retry although retries=3
    assert got["after"][0] == "upstream_failed"
    assert CAUGHT["exception"] == "GuardCheckFailed"
    assert CAUGHT["report"].findings[0].code == "schema.missing_column"
    assert "monthly_spend_usd" in CAUGHT["report"].findings[0].message


def test_unreadable_source_is_retried_not_failed_as_bad_data(tmp_path: Path) -> None:
    with _dag("t_retry") as dag:
        RowCountGuardOperator(task_id="guard", table=str(tmp_path / "not-yet-written.parquet"), retries=1,
                              retry_delay=timedelta(0))
    run = register(dag).test()
    ti = next(iter(run.get_task_instances()))
    assert (ti.state, ti.try_number) == ("failed", 2)  # retried once: a source may appear
    report = xcom_report(run, "guard")
    assert report is not None and report.status == "error" and report.error.code == "guard.source_error"


def test_drift_against_the_store_promotes_only_passing_batches(data: dict[str, Path], tmp_path: Path) -> None:
    store = str(tmp_path / "store")

    def dag_for(file: str, dag_id: str) -> DAG:
        with _dag(dag_id) as dag:
            DataGuardOperator(task_id="guard", tables={"data": str(data["dir"] / file)}, default_suite=True,
                              store=store, guard_name="spend")
        return register(dag)

    first = dag_for("20261101.parquet", "t_store_1").test()
    assert xcom_report(first, "guard").notes  # no reference yet: says so, passes, promotes
    bad = dag_for("cents.parquet", "t_store_2").test()
    report = xcom_report(bad, "guard")
    assert report.status == "fail" and report.top_cause.code == "cause.unit_change"
    again = dag_for("cents.parquet", "t_store_3").test()  # the failing batch was not promoted
    assert xcom_report(again, "guard").status == "fail"


def test_join_operator_names_the_missing_key(data: dict[str, Path]) -> None:
    with _dag("t_join") as dag:
        JoinGuardOperator(task_id="guard", left=str(data["dir"] / "labels.parquet"),
                          right=str(data["dir"] / "features.parquet"), on="user_id")
    report = xcom_report(register(dag).test(), "guard")
    assert report.top_cause.code == "cause.missing_join_key" and "day" in report.top_cause.summary


def test_task_mlguard_guards_a_taskflow_return_value() -> None:
    with _dag("t_deco") as dag:

        @task.mlguard(checks=[mg.NullRate(column="x")])
        def produce(bad: bool) -> pd.DataFrame:
            return pd.DataFrame({"x": [1.0, None if bad else 2.0]})

        @task
        def consume(frame: pd.DataFrame) -> int:
            return len(frame)

        consume(produce(False))
        consume.override(task_id="consume_bad")(produce.override(task_id="produce_bad")(True))
    run = register(dag).test()
    got = states(run)
    assert got["produce"] == "success" and got["consume"] == "success"
    assert got["produce_bad"] == "failed" and got["consume_bad"] == "upstream_failed"
    assert xcom_report(run, "produce_bad").findings[0].code == "schema.null_rate"


def test_spec_errors_fail_the_dag_at_parse_time() -> None:
    with pytest.raises(ValueError, match="null_rate"):
        DataGuardOperator(task_id="x", tables={}, checks=[{"kind": "null_rate", "colum": "x"}])


def test_provider_is_discoverable() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "mlguard-orchestration" in ProvidersManager().providers
    assert "mlguard" in ProvidersManagerTaskRuntime().taskflow_decorators
    out = subprocess.run([sys.executable, "-m", "airflow", "providers", "list"], capture_output=True, text=True,
                         check=False)
    assert "mlguard-orchestration" in out.stdout, out.stderr[-2000:]


def test_sql_through_an_airflow_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE sales (day TEXT, amount REAL)")
        con.executemany("INSERT INTO sales VALUES (?, ?)", [("2026-11-01", 10.0), ("2026-11-01", 12.5),
                                                           ("2026-11-02", None)])
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f'{{"conn_type": "sqlite", "host": "{db}"}}')
    with _dag("t_sql", params={"day": "2026-11-01"}) as dag:
        for task_id, day in (("good_day", "{{ params.day }}"), ("bad_day", "2026-11-02")):
            DataGuardOperator(task_id=task_id, checks=[mg.RowCount(min=1), mg.NullRate(column="amount")],
                              tables={"data": {"sql": f"SELECT * FROM sales WHERE day = '{day}'",
                                               "conn_id": "warehouse"}})
    run = register(dag).test()
    assert states(run) == {"good_day": "success", "bad_day": "failed"}
    assert xcom_report(run, "good_day").tables["data"].rows == 2
    assert xcom_report(run, "bad_day").findings[0].code == "schema.null_rate"


def test_xcom_source_and_warnings_pass_the_task() -> None:
    with _dag("t_xcom") as dag:

        @task
        def produce() -> pd.DataFrame:
            return pd.DataFrame({"x": [1.0, None, 3.0]})

        guard = DataGuardOperator(task_id="guard", tables={"data": {"xcom": "produce"}},
                                  checks=[mg.NullRate(column="x", severity="warn")])
        produce() >> guard
    run = register(dag).test()
    assert states(run)["guard"] == "success"  # warn: visible, not blocking
    report = xcom_report(run, "guard")
    assert report.status == "warn" and report.findings[0].severity == "warn"


def test_references_go_to_the_default_store_without_configuration(data: dict[str, Path]) -> None:
    with _dag("t_default_store") as dag:
        DataGuardOperator(task_id="guard", tables={"data": str(data["dir"] / "20261101.parquet")},
                          guard_name="default_store_probe")
    assert xcom_report(register(dag).test(), "guard").status == "pass"
    assert mg.ProfileStore(os.environ["MLGUARD_STORE"]).load("default_store_probe") is not None


def test_the_task_log_carries_the_report_once_with_what_is_new(data: dict[str, Path], tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """The log: the report rendered once (the failure's exception message is its one-line headline), then what
    is new since the guard's previous run."""
    store = str(tmp_path / "store")
    with _dag("t_log") as dag:
        DataGuardOperator(task_id="guard", tables=str(data["dir"] / "cents.parquet"), store=store,
                          checks=[mg.Range(column="spend", max=1_000), mg.NullRate(column="plan", max=0.0)])
    register(dag)
    dag.test()
    capfd.readouterr()
    run = dag.test()
    out = capfd.readouterr()
    log = out.out + out.err
    assert states(run) == {"guard": "failed"}
    assert log.count("FAIL guard 'guard'") == 1, log[-3000:]  # the rendered report, once
    assert log.count("likely cause") <= 3 * 5 and "since the previous run (fail" in log
    assert "0 new, 0 resolved, 1 persisting" in log
