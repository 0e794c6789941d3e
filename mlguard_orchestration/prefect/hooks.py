"""`notify_on_failure`: a state hook that posts a failed task's (or flow's) guard report with the notifiers.

    alerts = notify_on_failure(SlackNotifierBlock.load("ml-alerts"), WebhookNotifier(url, secret=key))
    @task(on_failure=[alerts])  /  @flow(on_failure=[alerts])

The report comes from the exception the run failed with (the guards raise it with `.report`; a flow fails with
its failed task's exception); any other failure is posted as the plain error. Sending never raises and never
outlives the notifiers' time budget, so the run's own failure stays what it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mlguard_orchestration.notify import Alert, Notifier, notify, run_url
from mlguard_orchestration.prefect.blocks import NotifierBlock
from mlguard_orchestration.report import Report

log = logging.getLogger("mlguard.notify")

Hook = Callable[[Any, Any, Any], None]


def _failure(state: Any) -> BaseException | None:
    """The exception a Failed state holds, read in memory (a ResultRecord wraps it): `state.result()` would be
    a coroutine in an async run's hook."""
    data = state.data
    data = getattr(data, "result", data)
    return data if isinstance(data, BaseException) else None


def _where(obj: Any, run: Any) -> dict[str, str]:
    """Where it failed: the flow (and task) and their run ids, as the notifiers' `where` keys say."""
    from prefect import Flow
    from prefect.context import FlowRunContext

    if isinstance(obj, Flow):
        return {"orchestrator": "prefect", "flow_name": obj.name, "flow_run_name": run.name,
                "flow_run_id": str(run.id)}
    where = {"orchestrator": "prefect"}
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None and ctx.flow is not None:
        where |= {"flow_name": ctx.flow.name, "flow_run_name": ctx.flow_run.name}
    if run.flow_run_id is not None:
        where["flow_run_id"] = str(run.flow_run_id)
    return where | {"task_name": obj.name, "task_run_name": run.name, "task_run_id": str(run.id),
                    "run_count": str(run.run_count)}


def alert_for(obj: Any, run: Any, state: Any) -> Alert:
    """The Alert for a failed task or flow run: its guard report when a guard stopped it, and a link to the run
    in the UI at PREFECT_UI_URL (built as every link is, by `notify.run_url`)."""
    from prefect.settings import get_current_settings

    error = _failure(state)
    report = getattr(error, "report", None)
    where = _where(obj, run)
    return Alert.of(report if isinstance(report, Report) else None, where=where,
                    error=error if error is not None else state.message,
                    url=run_url(get_current_settings().ui_url, where))


def notify_on_failure(*targets: Notifier | NotifierBlock) -> Hook:
    """A hook for `@task(on_failure=[…])` and `@flow(on_failure=[…])` that sends the failure to every target
    (core notifiers, or notifier Blocks — built at send time, so a block saved later is picked up)."""
    if not targets:
        raise ValueError("notify_on_failure needs at least one notifier or notifier block, e.g. "
                         "notify_on_failure(SlackNotifierBlock.load('ml-alerts'))")
    wrong = [t for t in targets if not isinstance(t, NotifierBlock | Notifier)]
    if wrong:
        raise TypeError(f"notify_on_failure takes notifiers (SlackNotifier, WebhookNotifier, EmailNotifier) or "
                        f"their Blocks; got {', '.join(type(t).__name__ for t in wrong)}")

    def hook(obj: Any, run: Any, state: Any) -> None:
        try:
            alert = alert_for(obj, run, state)
            notifiers = [t.notifier() if isinstance(t, NotifierBlock) else t for t in targets]
        except Exception as exc:  # noqa: BLE001 (a hook must not turn a failure into a crash)
            log.error("mlguard could not build the failure alert: %s: %s", type(exc).__name__, exc)
            return
        notify(alert, notifiers)  # never raises; logs what it could not deliver, secrets scrubbed

    hook.__name__ = "mlguard_notify_on_failure"
    return hook
