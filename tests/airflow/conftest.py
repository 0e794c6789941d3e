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
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from mlguard_orchestration.airflow import XCOM_KEY
    from mlguard_orchestration.report import Report

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id,
                                                 key=XCOM_KEY)).first()
        return None if row is None else Report.model_validate(XComModel.deserialize_value(row))
