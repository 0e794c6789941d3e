"""The one place that translates a Report into Airflow: XCom, log, and which exception ends the task.

- pass / warn      → the task succeeds; warnings stay visible in the log and in XCom.
- fail             → GuardCheckFailed (an AirflowFailException): retrying will not fix data.
- error, source    → GuardSourceUnavailable (an AirflowException): retried as configured (the file may
                     not be written yet, the database may be back).
- error, spec      → GuardSpecInvalid (an AirflowFailException): the DAG must change.
The compact report is pushed under XCOM_KEY *before* the decision, so callbacks and later tasks can read it;
when the full report is larger, it goes to the guard's store and XCOM_FULL_KEY holds where ({"store", "path"}),
which the report view (`plugin.py`) reads. A passing guard's summary rides on its task's asset events
(`extra["mlguard"]`). The log carries the report once (`adapters.log_text`).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlguard_orchestration.adapters import keep_full_report, log_text, store_of, summary
from mlguard_orchestration.errors import GuardFailed
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import ProfileStore

XCOM_KEY = "mlguard_report"
XCOM_FULL_KEY = "mlguard_report_full"
ASSET_EXTRA_KEY = "mlguard"


class GuardCheckFailed(GuardFailed[Report], AirflowFailException):
    """A check failed; `.report` is the full Report (also in XCom under XCOM_KEY). A `GuardFailed`, as the
    Prefect adapter's is, and an AirflowFailException, so Airflow does not retry it."""


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


def run_key(context: Any) -> str:
    """The task try a kept report belongs to: dag, run, task, map index and try."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}/{ti.try_number}"


def publish(report: Report, context: Any, log: logging.Logger | Any,
            store: ProfileStore | str | None = None) -> Report:
    """Push the compact report to XCom (and the full one to `store` when larger), log it once, put the summary
    on the task's asset events, and end the task the way its status says."""
    ti, where = context["ti"], store_of(store)
    kept, note = keep_full_report(report, where, run_key(context))
    if note is not None:
        report = report.model_copy(update={"notes": [*report.notes, note]})
    ti.xcom_push(key=XCOM_KEY, value=report.compact())
    if kept is not None and where is not None:
        ti.xcom_push(key=XCOM_FULL_KEY, value={"store": where.root, "path": kept})
    if report.passed:
        try:
            _annotate_outlets(report, context, kept)
        except Exception as exc:  # noqa: BLE001 (observability never fails the task)
            log.warning("mlguard could not put the guard's summary on the asset events: %s", exc)
    (log.info if report.passed else log.error)("%s", log_text(report, kept))
    if report.status == "fail":
        raise GuardCheckFailed(report)
    if report.error is not None:
        if report.error.retryable:
            raise GuardSourceUnavailable(report.headline())
        raise GuardSpecInvalid(report.headline())
    return report


def _annotate_outlets(report: Report, context: Any, kept: str | None) -> None:
    """The guard's summary in the `extra` of every asset event the task emits (only a task that succeeds
    emits them: a passing or warning guard)."""
    from airflow.sdk import Asset

    task, events = context.get("task"), context.get("outlet_events")
    if task is None or events is None:
        return
    for outlet in getattr(task, "outlets", None) or []:
        if isinstance(outlet, Asset):
            events[outlet].extra[ASSET_EXTRA_KEY] = summary(report, kept)


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
