"""The one place in the core that knows the orchestrators: the keys their adapters put in an alert's `where`
(`airflow/_report.run_context`, `prefect/_report.run_context`), their UIs' names, and the UI routes, so a
notification can say where a task failed and link to it. Everything else in `notify/` reads `where` through
these functions.

- Airflow 3 (the React UI; the same route as `TaskInstance.log_url`):
  `{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}[/mapped/{map_index}]?try_number={try_number}`
- Prefect 3 (`prefect.utilities.urls.UI_URL_FORMATS`): `{ui}/runs/task-run/{task_run_id}`, else
  `{ui}/runs/flow-run/{flow_run_id}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

# The keys adapters put in `where`, in the order people read them; any other key follows.
WHERE_ORDER = ("orchestrator", "dag_id", "flow_name", "task_id", "task_name", "run_id", "flow_run_name",
               "flow_run_id", "task_run_name", "task_run_id", "try_number", "run_count", "map_index")
_UI_NAMES = {"airflow": "Airflow", "prefect": "Prefect"}


def place(where: Mapping[str, str]) -> str:
    """'dag.task' or 'flow.task': where it failed, in one short phrase ('' when `where` does not say)."""
    return ".".join(p for p in (where.get("dag_id") or where.get("flow_name"),
                                where.get("task_id") or where.get("task_name")) if p)


def open_label(where: Mapping[str, str]) -> str:
    """The text of a button that opens the run: 'Open in Airflow', 'Open in Prefect', else 'Open the run'."""
    name = _UI_NAMES.get(where.get("orchestrator", ""))
    return f"Open in {name}" if name else "Open the run"


def run_url(base_url: str | None, where: Mapping[str, str]) -> str | None:
    """A link to the failed task (or run) in the UI at `base_url`; None when `where` cannot address one."""
    if not base_url:
        return None
    base = base_url.rstrip("/")
    orchestrator = where.get("orchestrator")
    if orchestrator == "airflow" and where.get("dag_id") and where.get("run_id"):
        url = f"{base}/dags/{_seg(where['dag_id'])}/runs/{_seg(where['run_id'])}"
        if not where.get("task_id"):
            return url
        url += f"/tasks/{_seg(where['task_id'])}"
        if where.get("map_index", "-1") not in ("", "-1"):
            url += f"/mapped/{_seg(where['map_index'])}"
        return url + (f"?{urlencode({'try_number': where['try_number']})}" if where.get("try_number") else "")
    if orchestrator == "prefect":
        if where.get("task_run_id"):
            return f"{base}/runs/task-run/{_seg(where['task_run_id'])}"
        if where.get("flow_run_id"):
            return f"{base}/runs/flow-run/{_seg(where['flow_run_id'])}"
    return None


def _seg(value: str) -> str:
    return quote(value, safe="")
