"""One real Prefect API for the session (`prefect_test_harness`: a SQLite-backed server in a subprocess, ~15-25 s
to start), and helpers that read what a run left behind back from that API — task runs, artifacts, events —
rather than from memory."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import http_server, refused_url, smtp_server  # noqa: F401 (loopback servers, shared)

# Before Prefect reads its settings: results, local storage and the harness's files stay out of ~/.prefect.
_HOME = Path(tempfile.mkdtemp(prefix="mlguard-prefect-"))
os.environ["PREFECT_HOME"] = str(_HOME)
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_HOME / "storage")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

EVENT_WAIT_S = 60  # events are persisted asynchronously by the server; this bounds the wait, not a speed claim


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def client() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def task_runs(flow_run_id: Any) -> dict[str, Any]:
    """{task name: TaskRun} of a flow run, read from the API (a task name is its run's name without the suffix)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r for r in runs}


def artifacts(task_run_id: Any) -> dict[str, Any]:
    """{artifact type: Artifact} attached to a task run, from the API; the report page's link artifact (which
    Prefect stores as Markdown: `[text](url)`) under "link"."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId

    with client() as c:
        found = c.read_artifacts(artifact_filter=ArtifactFilter(task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id])))
    return {"link" if (a.key or "").endswith("-page") else a.type: a for a in found}


def linked(artifact: Any) -> str:
    """The URL of a link artifact (`[text](url)`)."""
    data = artifact.data or ""
    return data[data.rindex("(") + 1: data.rindex(")")]


def guard_events(related_ids: list[str], expected: int) -> list[Any]:
    """The `mlguard.guard.failed` events related to any of `related_ids` (e.g. 'prefect.flow-run.<id>'), waiting
    until `expected` of them are stored (or EVENT_WAIT_S passed: then the assertion shows what arrived)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
    from prefect.events.worker import EventsWorker

    from mlguard_orchestration.prefect import EVENT_FAILED

    EventsWorker.drain_all()
    query = EventFilter(event=EventNameFilter(name=[EVENT_FAILED]), related=EventRelatedFilter(id=related_ids))
    deadline = time.monotonic() + EVENT_WAIT_S
    while True:
        with client() as c:
            page = c.read_events(query, limit=50)
        if len(page.events) >= expected or time.monotonic() > deadline:
            return page.events
        time.sleep(0.5)


def write_parquet(path: Path, **columns: list[Any]) -> str:
    import pandas as pd

    pd.DataFrame(columns).to_parquet(path)
    return str(path)


def flow_logs(flow_run_id: Any) -> str:
    """Every log line the API stored for a flow run (its tasks' included)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client() as c:
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    return "\n".join(entry.message for entry in logs)
