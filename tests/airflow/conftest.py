"""A real Airflow 3 metadata DB (SQLite) for the session, and a way to register DAGs defined in tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> None:
    from airflow.utils import db

    db.initdb()


def register(dag):  # type: ignore[no-untyped-def]
    """Serialize a DAG built inside a test into the metadata DB, as the dag-processor would, so that
    `dag.test()` accepts it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db("dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(),
                                         session=session)
    return dag


def states(dag_run):  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def xcom_report(dag_run, task_id: str):  # type: ignore[no-untyped-def]
    """The guard's report as stored in the metadata DB (not as held in memory)."""
    from mlguard_orchestration.airflow import read_report

    return read_report(dag_run, task_id)
