"""DatasetReadySensor in poke and deferrable mode: it waits for data that arrives, and times out cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
from airflow.sdk import DAG

from mlguard_orchestration.airflow import DatasetReadySensor
from tests.airflow.conftest import register, states, xcom_report


def _write_later(path: Path, rows: int, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, lambda: pd.DataFrame({"user_id": range(rows)}).to_parquet(path))
    timer.start()
    return timer


def _sensor_dag(dag_id: str, path: Path, *, deferrable: bool, timeout: float) -> DAG:
    with DAG(dag_id, schedule=None, catchup=False, default_args={"retries": 2}) as dag:
        DatasetReadySensor(task_id="wait", source=str(path), min_rows=10, columns={"user_id": "integer"},
                           deferrable=deferrable, poke_interval=0.2, timeout=timeout, mode="poke")
    return register(dag)


def test_poke_mode_waits_until_the_data_arrives(tmp_path: Path) -> None:
    path = tmp_path / "late.parquet"
    _write_later(path, 100, 0.5)
    run = _sensor_dag("s_poke", path, deferrable=False, timeout=20).test()
    assert states(run) == {"wait": "success"}
    assert xcom_report(run, "wait").tables["data"].rows == 100


def test_poke_mode_times_out_cleanly_without_retry(tmp_path: Path) -> None:
    path = tmp_path / "too-small.parquet"
    pd.DataFrame({"user_id": range(3)}).to_parquet(path)  # there, but not enough rows
    run = _sensor_dag("s_poke_timeout", path, deferrable=False, timeout=1).test()
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1)


def test_deferrable_mode_waits_in_the_trigger(tmp_path: Path) -> None:
    path = tmp_path / "late.parquet"
    _write_later(path, 100, 0.6)
    run = _sensor_dag("s_defer", path, deferrable=True, timeout=20).test()
    assert states(run) == {"wait": "success"}
    assert xcom_report(run, "wait").status == "pass"


def test_deferrable_mode_times_out_cleanly(tmp_path: Path) -> None:
    run = _sensor_dag("s_defer_timeout", tmp_path / "never.parquet", deferrable=True, timeout=1).test()
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1)
