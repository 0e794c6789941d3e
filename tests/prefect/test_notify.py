"""Failure hooks end to end: a real Prefect flow fails, the hook posts to real servers on loopback (HTTP and
SMTP), and the payloads received are asserted exactly. Notifier trouble (a hang, a 500, a refused connection)
leaves the run's own failure intact, and no secret reaches a log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
import pytest
from prefect import flow, task
from prefect.settings import get_current_settings

import mlguard_orchestration as mg
from mlguard_orchestration.notify import SlackNotifier, WebhookNotifier
from mlguard_orchestration.notify.alert import Alert, clip
from mlguard_orchestration.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from mlguard_orchestration.prefect import (
    EmailNotifierBlock,
    GuardCheckFailed,
    SlackNotifierBlock,
    WebhookNotifierBlock,
    guard_output,
    notify_on_failure,
)
from tests._servers import RecordingHTTPServer
from tests.prefect.conftest import client, flow_logs, task_runs

HMAC_KEY = "hmac-key-SECRET-1"
SLACK_PATH = "/services/T000/B000/slack-token-SECRET-2"
HOOK_PATH = "/hooks/mlguard-SECRET-3"


@task(name="spend_task")
@guard_output(checks=[mg.NullRate(column="spend", max=0.0)], name="spend_guard")
def spend(nulls: int) -> pd.DataFrame:
    return pd.DataFrame({"spend": [None] * nulls + [1.0] * (10 - nulls)})


@task(name="plain_task")
def boom() -> None:
    raise ValueError("the warehouse said no")


@pytest.fixture(scope="module", autouse=True)
def reference() -> None:
    """A clean batch first, so the guard has a reference and its failures a ranked cause to lead with."""
    assert flow(name="warm-up")(lambda: spend(0))(return_state=True).is_completed()


def ui(path: str) -> str | None:
    base = get_current_settings().ui_url
    return None if base is None else f"{base.rstrip('/')}{path}"


def bodies(server: RecordingHTTPServer, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests if r.path == path]


def saved(block: Any, name: str) -> Any:
    """`block` saved to the API and loaded back by name, as a flow would load it."""
    block.save(name, overwrite=True)
    return type(block).load(name)


def test_task_failure_posts_the_guard_report_to_slack_webhook_and_email(http_server, smtp_server) -> None:  # type: ignore[no-untyped-def]
    slack = saved(SlackNotifierBlock(webhook_url=http_server.url(SLACK_PATH), retries=0), "t-slack")
    hook_block = saved(WebhookNotifierBlock(url=http_server.url(HOOK_PATH), secret=HMAC_KEY, retries=0), "t-hook")
    mail = saved(EmailNotifierBlock(host="127.0.0.1", port=smtp_server.port, sender="mlguard@example.com",
                                    recipients=["ml-oncall@example.com"], username=smtp_server.username,
                                    password=smtp_server.password, retries=0), "t-mail")
    alerting = spend.with_options(on_failure=[notify_on_failure(slack, hook_block, mail)])
    state = flow(name="alerting")(lambda: alerting(3))(return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed)
    report, run = error.report, task_runs(state.state_details.flow_run_id)["spend_task"]
    cause, top = report.top_cause, report.top_finding
    headline = f"{cause.summary} — [{top.code}] {top.message}"
    where = {"orchestrator": "prefect", "flow_name": "alerting", "flow_run_name": report.context["flow_run_name"],
             "flow_run_id": str(state.state_details.flow_run_id), "task_name": "spend_task",
             "task_run_name": run.name, "task_run_id": str(run.id), "run_count": "1"}
    assert report.context == where  # the report says where it ran, in the same words

    (hook,) = [r for r in http_server.requests if r.path == HOOK_PATH]
    assert json.loads(hook.body) == {"event": "mlguard.guard_failed", "headline": headline, "where": where,
                                     "url": ui(f"/runs/task-run/{run.id}"), "error": f"GuardCheckFailed: {error}",
                                     "news": Alert.of(report).news,  # with the store's previous run, what is new
                                     "report": report.compact()}
    assert hook.headers[SIGNATURE_HEADER] == signature(HMAC_KEY, hook.headers[TIMESTAMP_HEADER], hook.body)

    (slack_body,) = bodies(http_server, SLACK_PATH)
    assert slack_body["text"] == f"Guard 'spend_guard' failed in alerting.spend_task: {headline}"
    assert any(cause.summary in json.dumps(b) for b in slack_body["blocks"])

    (message,) = smtp_server.messages
    assert smtp_server.envelopes == [("mlguard@example.com", ["ml-oncall@example.com"])]
    # (non-ASCII subjects travel as folded encoded words; unfolding may double a space)
    assert " ".join(message["Subject"].split()) == clip(f"[mlguard] {headline}", 150)
    assert cause.fix in message.get_body(("plain",)).get_content()


def test_flow_hook_posts_the_failed_tasks_report_or_the_plain_error(http_server) -> None:  # type: ignore[no-untyped-def]
    hook = notify_on_failure(WebhookNotifier(http_server.url(HOOK_PATH), retries=0))
    guarded = flow(name="guarded-flow", on_failure=[hook])(lambda: spend(2))(return_state=True)
    plain = flow(name="plain-flow", on_failure=[hook])(lambda: boom())(return_state=True)
    fine = flow(name="fine-flow", on_failure=[hook])(lambda: spend(0))(return_state=True)

    assert guarded.is_failed() and plain.is_failed() and fine.is_completed()
    first, second = bodies(http_server, HOOK_PATH)  # none for the flow that passed
    assert first["event"] == "mlguard.guard_failed"
    assert first["where"] == {"orchestrator": "prefect", "flow_name": "guarded-flow",
                              "flow_run_name": first["where"]["flow_run_name"],
                              "flow_run_id": str(guarded.state_details.flow_run_id)}
    assert first["report"] == guarded.result(raise_on_failure=False).report.compact()
    assert first["url"] == ui(f"/runs/flow-run/{guarded.state_details.flow_run_id}")
    assert second["event"] == "mlguard.task_failed" and second["report"] is None
    assert second["error"] == second["headline"] == "ValueError: the warehouse said no"
    assert second["where"]["flow_name"] == "plain-flow"


def test_notifier_failures_leave_the_tasks_failure_intact(http_server, refused_url) -> None:  # type: ignore[no-untyped-def]
    hanging, broken = RecordingHTTPServer(), RecordingHTTPServer()
    hanging.mode, broken.mode = "hang", "500"
    try:
        hook = notify_on_failure(
            WebhookNotifier(hanging.url(), timeout_s=0.5, retries=0, name="hanging"),
            WebhookNotifier(broken.url(), retries=1, backoff_s=0.01, name="broken"),
            WebhookNotifier(refused_url, timeout_s=0.5, retries=0, name="refused"),
            WebhookNotifier(http_server.url(HOOK_PATH), retries=0, name="fine"))
        state = flow(name="noisy")(lambda: spend.with_options(on_failure=[hook])(4))(return_state=True)
    finally:
        hanging.close()
        broken.close()
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed) and error.report.top_finding.code == "schema.null_rate"
    assert task_runs(state.state_details.flow_run_id)["spend_task"].state.name == "Failed"
    assert len(hanging.requests) == 1 and len(broken.requests) == 2  # tried, within their budgets
    (delivered,) = bodies(http_server, HOOK_PATH)
    assert delivered["report"]["guard"] == "spend_guard"


def test_no_secret_reaches_a_log(http_server, refused_url, smtp_server, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    http_server.mode = "404"  # a server that quotes the secret path back in its reply
    password = "smtp-pass-SECRET-4"
    blocks = [saved(SlackNotifierBlock(webhook_url=http_server.url(SLACK_PATH), retries=0), "s-slack"),
              saved(WebhookNotifierBlock(url=http_server.url(HOOK_PATH), secret=HMAC_KEY, retries=0), "s-hook"),
              saved(EmailNotifierBlock(host="127.0.0.1", port=smtp_server.port, sender="mlguard@example.com",
                                       recipients=["ml@example.com"], username=smtp_server.username,
                                       password=password, retries=0), "s-mail")]  # wrong password: refused
    secrets = [SLACK_PATH, HOOK_PATH, HMAC_KEY, password]
    with caplog.at_level(logging.DEBUG):
        state = flow(name="secretive")(lambda: spend.with_options(on_failure=[notify_on_failure(*blocks)])(5))(
            return_state=True)
    assert state.is_failed() and len(http_server.requests) == 2 and not smtp_server.messages
    assert "not delivered" in caplog.text or "404" in caplog.text  # the failures were logged …
    stored = flow_logs(state.state_details.flow_run_id)
    for secret in secrets:  # … without the secrets, locally and in the API
        assert secret not in caplog.text and secret not in stored, secret
        assert secret not in repr(blocks)
    with client() as c:
        doc = c.read_block_document_by_name("s-hook", "mlguard-webhook-notifier", include_secrets=False)
    assert doc.data["secret"] != HMAC_KEY and HOOK_PATH not in json.dumps(doc.data, default=str)


def test_blocks_build_their_notifiers_and_the_hook_checks_its_arguments() -> None:
    notifier = SlackNotifierBlock(webhook_url="https://hooks.slack.com/services/T/B/x").notifier()
    assert isinstance(notifier, SlackNotifier)
    with pytest.raises(ValueError, match="at least one notifier"):
        notify_on_failure()
    with pytest.raises(TypeError, match="got str"):
        notify_on_failure("https://hooks.slack.com/services/T/B/x")  # type: ignore[arg-type]


def test_the_example_flow_delivers_the_diagnosis_of_the_task_that_stopped_it(http_server, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from dags_examples.churn_flow import churn_pipeline

    hook = notify_on_failure(
        WebhookNotifier(http_server.url(HOOK_PATH), secret=HMAC_KEY, retries=0),
        EmailNotifierBlock(host="127.0.0.1", port=smtp_server.port, sender="mlguard@example.com",
                           recipients=["ml-oncall@example.com"], username=smtp_server.username,
                           password=smtp_server.password, retries=0))
    state = churn_pipeline.with_options(on_failure=[hook])("wrong_join_key", return_state=True)

    assert state.is_failed()
    report = state.result(raise_on_failure=False).report
    assert report.top_cause.code == "cause.missing_join_key" and report.context["task_name"] == "guard_join"
    assert task_runs(state.state_details.flow_run_id)["guard_join"].state.name == "Failed"
    (body,) = bodies(http_server, HOOK_PATH)
    assert body["event"] == "mlguard.guard_failed" and body["report"] == report.compact()
    assert body["where"]["flow_name"] == "mlguard-churn"
    assert body["where"]["flow_run_id"] == str(state.state_details.flow_run_id)
    assert body["headline"].startswith(report.top_cause.summary)
    (message,) = smtp_server.messages
    assert " ".join(message["Subject"].split()).startswith(f"[mlguard] {report.top_cause.summary}"[:90])
