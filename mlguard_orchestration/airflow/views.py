"""The report page inside the Airflow 3 UI: a FastAPI app the api-server mounts under /mlguard (see plugin.py).

    GET /mlguard/report/{dag_id}/{run_id}/{task_id}?map_index=-1   one guard task's report page
    GET /mlguard/run/{dag_id}/{run_id}                             every guard of a DAG run, the worst in full

Airflow does not authenticate plugin routes: every route here depends on Airflow's own
`requires_access_dag("GET", XCOM)` — the user comes from the request's JWT (the `Authorization: Bearer`
header or the UI's session cookie, as for Airflow's own API) and the auth manager must allow reading that
DAG's XComs; otherwise 401/403 and no report. The report is the compact one in XCom (`mlguard_report`), or the
full one from the guard's store when XCom holds a pointer (`mlguard_report_full`). Pages are sent with a
content security policy that allows no script and no fetch.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from mlguard_orchestration.airflow._report import XCOM_FULL_KEY, XCOM_KEY
from mlguard_orchestration.errors import MlguardError
from mlguard_orchestration.html import to_html
from mlguard_orchestration.report import STATUS_RANK, Report
from mlguard_orchestration.store import ProfileStore

log = logging.getLogger("mlguard_orchestration")
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def create_app() -> FastAPI:
    """The app, with Airflow's DAG read permission on every route (this module is imported by the api-server
    only, on the first request: see plugin.py)."""
    app = FastAPI(title="mlguard reports", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.XCOM))])

    @app.get("/report/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse)
    def task_report(dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: str = "-1") -> HTMLResponse:
        index = int(map_index) if map_index.lstrip("-").isdigit() else -1  # the UI leaves {MAP_INDEX} unmapped
        rows = _xcoms(session, dag_id, run_id, task_id, index)
        report = _report(rows.get((task_id, index, XCOM_KEY)), rows.get((task_id, index, XCOM_FULL_KEY)))
        if report is None:
            return _page(f"<p>Task <code>{escape(task_id)}</code> of run <code>{escape(run_id)}</code> has no mlguard "
                         "report: it is no guard, or it has not run yet.</p>", 404)
        return _page(to_html(report), 200)

    @app.get("/run/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_report(dag_id: str, run_id: str, session: SessionDep) -> HTMLResponse:
        rows = _xcoms(session, dag_id, run_id)
        reports = [(task, r) for (task, index, key), value in rows.items() if key == XCOM_KEY
                   and (r := _report(value, rows.get((task, index, XCOM_FULL_KEY)))) is not None]
        if not reports:
            return _page(f"<p>Run <code>{escape(run_id)}</code> has no mlguard report yet.</p>", 404)
        reports.sort(key=lambda tr: (-STATUS_RANK[tr[1].status], tr[0]))
        worst = reports[0][1]
        return _page(to_html(worst, runs=[(task, r.status, r.headline()) for task, r in reports]), 200)

    return app


def _xcoms(session: Any, dag_id: str, run_id: str, task_id: str | None = None,
           map_index: int | None = None) -> dict[tuple[str, int, str], Any]:
    """{(task, map index, key): value} of the run's mlguard XComs (one query)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import or_

    query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id, map_indexes=map_index)
    query = query.where(or_(XComModel.key == XCOM_KEY, XComModel.key == XCOM_FULL_KEY)).limit(2_000)
    return {(row.task_id, row.map_index, row.key): XComModel.deserialize_value(row) for row in session.scalars(query)}


def _report(compact: Any, pointer: Any) -> Report | None:
    """The full report from the store when XCom points at one (and it can be read), else the compact one."""
    if isinstance(pointer, dict) and isinstance(pointer.get("store"), str) and isinstance(pointer.get("path"), str):
        try:
            return Report.model_validate_json(ProfileStore(pointer["store"]).read_report(pointer["path"]))
        except (MlguardError, OSError, ValueError) as exc:
            log.warning("mlguard: the full report %r could not be read (%s); showing the compact one",
                        pointer["path"], exc)
    if not isinstance(compact, dict):
        return None
    try:
        return Report.model_validate(compact)
    except ValueError:
        return None


def _page(html: str, status: int) -> HTMLResponse:
    if not html.startswith("<!DOCTYPE"):
        html = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlguard</title></head>"
                f"<body style=\"font-family:system-ui,sans-serif\">{html}</body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)
