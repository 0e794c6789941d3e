"""The one place that translates a Report into Airflow: XCom, log, and which exception ends the task.

- pass / warn      → the task succeeds; warnings stay visible in the log and in XCom.
- fail             → GuardCheckFailed (an AirflowFailException): retrying will not fix data.
- error, source    → GuardSourceUnavailable (an AirflowException): retried as configured (the file may
                     not be written yet, the database may be back).
- error, spec      → GuardSpecInvalid (an AirflowFailException): the DAG must change.
The compact report is pushed under XCOM_KEY *before* the decision, so callbacks and later tasks can read it.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlguard_orchestration.notify.render import to_text
from mlguard_orchestration.report import Report

XCOM_KEY = "mlguard_report"


class GuardCheckFailed(AirflowFailException):
    """A check failed; `.report` is the full Report (also in XCom under XCOM_KEY)."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


class GuardSpecInvalid(AirflowFailException):
    """The guard cannot run as configured (unknown column, bad spec): fix the DAG."""


class GuardSourceUnavailable(AirflowException):
    """The data could not be read; retryable."""


def run_context(context: Any) -> dict[str, str]:
    """Where the guard ran, for the report: dag, task, run, try."""
    ti = context["ti"]
    return {"orchestrator": "airflow", "dag_id": str(ti.dag_id), "task_id": str(ti.task_id),
            "run_id": str(ti.run_id), "try_number": str(ti.try_number)}


def dag_file(context: Any) -> str | None:
    """The DAG's file, so a report's fingerprint holds the DAG's git commit."""
    return getattr(context.get("dag"), "fileloc", None)


def logical_date(context: Any) -> Any:
    dag_run = context.get("dag_run")
    return context.get("logical_date") or (dag_run.run_after if dag_run is not None else None)


def publish(report: Report, context: Any, log: logging.Logger | Any) -> Report:
    """Push the compact report to XCom, log it, and end the task the way its status says."""
    context["ti"].xcom_push(key=XCOM_KEY, value=report.compact())
    (log.info if report.passed else log.error)("%s", to_text(report))
    if report.status == "fail":
        raise GuardCheckFailed(report)
    if report.error is not None:
        if report.error.retryable:
            raise GuardSourceUnavailable(report.headline())
        raise GuardSpecInvalid(report.headline())
    return report


def read_report(dag_run: Any, task_id: str) -> Report | None:
    """A guard task's report as stored in the metadata DB, from outside any task (a notebook, a test,
    `dag.test()`'s returned DagRun)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id,
                                                 key=XCOM_KEY)).first()
        return None if row is None else Report.model_validate(XComModel.deserialize_value(row))


def report_from_context(context: Any) -> Report | None:
    """The guard's report from a task's context — for `on_failure_callback`s and downstream tasks.

    Reads the raised GuardCheckFailed when there is one, else the XCom the guard pushed."""
    exc = context.get("exception")
    if isinstance(exc, GuardCheckFailed):
        return exc.report
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return None
    raw = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_KEY)
    return Report.model_validate(raw) if raw else None
