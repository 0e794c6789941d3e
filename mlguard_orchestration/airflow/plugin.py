"""The Airflow plugin (entry point `airflow.plugins`): a "Guard report" tab on the task-instance page and a
"Guard reports" tab on the DAG-run page of the Airflow 3 UI, each an external view of the report app that
`views.py` serves under /mlguard (authorised like Airflow's own API: DAG read on every route).

Every Airflow process loads plugins (scheduler, workers, `dag.test()`), so this module imports nothing
heavy: the FastAPI app is built on the first request the api-server routes to it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/mlguard"


class _LazyApp:
    """An ASGI app that builds the report app on its first call (in the api-server only)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from mlguard_orchestration.airflow.views import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class MlguardPlugin(AirflowPlugin):
    name = "mlguard"
    # plain attributes, not ClassVar: AirflowPlugin declares them so, and a subclass may not change that
    fastapi_apps: list[dict[str, Any]] = [  # noqa: RUF012
        {"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "mlguard reports"}]
    external_views: list[dict[str, Any]] = [  # noqa: RUF012
        {"name": "Guard report",
         "href": f"{URL_PREFIX}/report/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}?map_index={{MAP_INDEX}}",
         "destination": "task_instance", "url_route": "mlguard_report", "category": "mlguard"},
        {"name": "Guard reports", "href": f"{URL_PREFIX}/run/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "mlguard_run_report", "category": "mlguard"},
    ]
