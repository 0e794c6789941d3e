"""The one place that translates a Report into Prefect: artifacts, an event, the log, and which exception ends
the task.

- pass / warn    → the task goes on; a markdown artifact (and a findings table when there are warnings).
                   With a store, the report page is written into it (`<store>/<guard>/_reports/…html`) and a
                   link artifact points at it (a file:// URL for a local store, the object URL otherwise); a
                   full report larger than the compact one is kept there too.
- fail           → GuardCheckFailed, whose message leads with the top cause; event `mlguard.guard.failed`.
                   Not retried (`retry_condition`): retrying will not fix data.
- error, source  → GuardSourceUnavailable: retried as the task's `retries` say (the file may not be written
                   yet, the database may be back).
- error, spec    → GuardSpecInvalid: not retried; the flow must change.
Artifacts and the event are published *before* the decision, and observability never fails the task.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mlguard_orchestration.adapters import keep_full_report, keep_page, log_text, page_url, store_of
from mlguard_orchestration.errors import GuardFailed, SourceError, SpecError
from mlguard_orchestration.html.markdown import findings_table, to_markdown
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import ProfileStore

EVENT_FAILED = "mlguard.guard.failed"


def failure_message(report: Report) -> str:
    """The task's failure message: the top cause first (what to fix), then the finding it explains."""
    cause, top = report.top_cause, report.top_finding
    if cause is None or top is None:
        return report.headline()
    more = len(report.findings) - 1
    return (f"{cause.summary} [{cause.code}] — guard {report.guard!r} failed [{top.code}] {top.message}"
            + (f" (+{more} more finding{'s' if more > 1 else ''})" if more else ""))


class GuardCheckFailed(GuardFailed[Report]):
    """A check failed; `.report` is the full Report (also in the task run's artifacts). Never retried."""

    def __init__(self, report: Report) -> None:
        super().__init__(report)
        self.message = failure_message(report)
        self.args = (self.message,)


class GuardSourceUnavailable(SourceError):
    """The data could not be read; retryable. `.report` says which source and why."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


class GuardSpecInvalid(SpecError):
    """The guard cannot run as configured (unknown column, bad spec): fix the flow. Never retried."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn`: retry anything except a guard's verdict on the data (a failed check, a
    stopped training run) and a spec that cannot run. The guard decorators install it on their task when the
    task has none; a task with its own condition should `return retry_condition(...) and mine(...)`."""
    # the engine hands the raised exception over as the Failed state's data (read directly: `state.result()`
    # would be a coroutine inside an async task)
    return not isinstance(state.data, GuardFailed | SpecError)


def artifact_key(guard: str) -> str:
    """An artifact key Prefect accepts (lowercase letters, digits, dashes), stable per guard so the UI shows
    each guard's history under one key."""
    return "mlguard-" + (re.sub(r"[^a-z0-9]+", "-", guard.lower()).strip("-") or "guard")


def run_context() -> dict[str, str]:
    """Where the guard ran, for the report (the notifiers' `where` keys): flow, flow run, task, task run, attempt."""
    from prefect.context import FlowRunContext, TaskRunContext

    out = {"orchestrator": "prefect"}
    flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None and flow_ctx.flow is not None:
        out.update(flow_name=flow_ctx.flow.name, flow_run_name=flow_ctx.flow_run.name,
                   flow_run_id=str(flow_ctx.flow_run.id))
    if task_ctx is not None:
        out.update(task_name=task_ctx.task.name, task_run_name=task_ctx.task_run.name,
                   task_run_id=str(task_ctx.task_run.id), run_count=str(task_ctx.task_run.run_count))
    return out


def flow_file() -> str | None:
    """The running flow's source file, so a report's fingerprint holds the flow's git commit (None outside a
    flow, or for a function without a source file)."""
    import inspect

    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    fn = getattr(getattr(ctx, "flow", None), "fn", None)
    try:
        return inspect.getsourcefile(fn) if fn is not None else None
    except TypeError:  # a builtin or a C function: no file
        return None


def logical_date() -> Any:
    """The flow run's scheduled start — Prefect's nearest thing to Airflow's logical date — or None (now)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx.flow_run.expected_start_time if ctx is not None and ctx.flow_run is not None else None


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:  # called outside a run (a plain function call): still log somewhere
        return get_logger("mlguard")


def _observe(report: Report, log: Any, page: str | None) -> None:
    """Artifacts, and the event on a failed check. Never raises: a broken API must not hide the verdict."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
    from prefect.events import emit_event

    key = artifact_key(report.guard)
    try:
        # _sync: this runs in a worker thread even for an async task, whose context would pick the async
        # variant. Prefect's async_dispatch takes _sync at run time; its typed signature leaves it out: ignores
        link = page_url(page) if page is not None else None
        create_markdown_artifact(to_markdown(report, link), key=key, description=report.headline()[:500],
                                 _sync=True)  # type: ignore[call-arg]
        if link is not None:
            create_link_artifact(link, link_text=f"{report.status.upper()} — report page of guard {report.guard}"[:200],
                                 key=f"{key}-page", description="the report page, with pictures",
                                 _sync=True)  # type: ignore[call-arg]
        if report.findings:
            create_table_artifact(findings_table(report), key=f"{key}-findings",
                                  description=f"findings of guard {report.guard!r}",
                                  _sync=True)  # type: ignore[call-arg]
        if report.status == "fail":
            top, cause = report.top_finding, report.top_cause
            emit_event(event=EVENT_FAILED,
                       resource={"prefect.resource.id": f"mlguard.guard.{report.guard}",
                                 "prefect.resource.name": report.guard},
                       payload={"guard": report.guard, "status": report.status,
                                "code": top.code if top else None, "cause": cause.code if cause else None,
                                "headline": report.headline()[:1000], "page": link})
    except Exception as exc:  # noqa: BLE001 (observability never fails the task)
        log.warning("mlguard could not publish the report of guard %r to Prefect: %s: %s", report.guard,
                    type(exc).__name__, exc)


def publish(report: Report, store: ProfileStore | str | None = None) -> Report:
    """Log the report once, keep its page (and the full report when large) in `store`, attach it to the task
    run as artifacts, and end the task the way its status says."""
    log = _logger()
    where = store_of(store)
    run = "/".join(report.context.get(k, "") for k in ("flow_run_id", "task_run_id")) or report.started_at.isoformat()
    kept, note = keep_full_report(report, where, run)
    page, page_note = keep_page(report, where, run)
    notes = [n for n in (note, page_note) if n is not None]
    if notes:
        report = report.model_copy(update={"notes": [*report.notes, *notes]})
    text = log_text(report, kept) + (f"\n  report page: {page_url(page)}" if page is not None else "")
    if report.status == "pass":
        log.info("%s", text)
    elif report.status == "warn":
        log.warning("%s", text)
    else:
        log.error("%s", text)
    _observe(report, log, page)
    if report.status == "fail":
        raise GuardCheckFailed(report)
    if report.error is not None:
        raise (GuardSourceUnavailable if report.error.retryable else GuardSpecInvalid)(report)
    return report


def install_retry_condition() -> None:
    """Make the running task's retries skip guard verdicts, unless the task already has its own condition.

    Prefect decides retries with the task's `retry_condition_fn`; `@task` sits above the guard decorator, so
    the decorator cannot pass it to `@task` — it sets it on the running task instead (idempotent)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    if ctx is not None and ctx.task.retry_condition_fn is None:
        ctx.task.retry_condition_fn = retry_condition
