"""A notifier never hurts the task: it retries only what may pass, returns within its budget, never raises, and
never shows a secret — tested against servers that fail for real."""

from __future__ import annotations

import logging
import time

import pytest

from mlguard_orchestration.notify import (
    Alert,
    Delivery,
    EmailNotifier,
    SlackNotifier,
    WebhookNotifier,
    notify,
)
from tests._servers import RecordingHTTPServer, SmtpServer, refused_port
from tests.notify._reports import join_report

SLACK_PATH = "/services/T0001/B0001/xoxb-SLACK-SECRET-token"
FAST = {"timeout_s": 0.5, "retries": 2, "backoff_s": 0.05}  # for servers that never answer: the budget is short
# For servers that do answer: a timeout a loaded machine never reaches, so only the server's answers decide.
PATIENT = {"timeout_s": 15.0, "retries": 2, "backoff_s": 0.05}
MARGIN_S = 3.0  # generous: the bound is the budget, the margin absorbs a loaded CI machine


def _no_secret_anywhere(caplog: pytest.LogCaptureFixture, *deliveries: Delivery, secrets: tuple[str, ...]) -> None:
    shown = [r.getMessage() for r in caplog.records] + [str(d.error) for d in deliveries]
    for secret in secrets:
        assert not [line for line in shown if secret in line], secret


@pytest.fixture(autouse=True)
def _capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything: the secret must not reach any logger
    for name in ("httpx", "httpcore"):  # whatever level someone else set (importing Airflow sets WARNING)
        caplog.set_level(logging.DEBUG, logger=name)


def test_transient_failures_are_retried_until_the_server_recovers(http_server: RecordingHTTPServer) -> None:
    http_server.script = [500, 429]
    delivery = SlackNotifier(http_server.url(SLACK_PATH), **PATIENT).send(Alert.of(join_report()))
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (True, 3, 200, None)
    assert len(http_server.requests) == 3 and len({r.body for r in http_server.requests}) == 1


def test_a_client_error_is_final(http_server: RecordingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    http_server.mode = "400"
    delivery = SlackNotifier(http_server.url(SLACK_PATH), **PATIENT).send(Alert.of(join_report()))
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 400)
    assert delivery.error == "HTTP 400: invalid_payload" and len(http_server.requests) == 1
    [warning] = [r for r in caplog.records if r.name == "mlguard.notify"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (f"slack notification to http://127.0.0.1:{http_server.port} failed after 1 "
                                    "attempt(s): HTTP 400: invalid_payload")


def test_success_logs_nothing_of_ours(http_server: RecordingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    delivery = SlackNotifier(http_server.url(SLACK_PATH), **PATIENT).send(Alert.of(join_report()))
    assert delivery.ok and delivery.attempts == 1
    assert not [r for r in caplog.records if r.name == "mlguard.notify"]


@pytest.mark.parametrize("server", ["hang", "drip", "500", "refused"])
def test_a_broken_server_costs_at_most_the_budget(server: str, http_server: RecordingHTTPServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{refused_port()}{SLACK_PATH}" if server == "refused" else http_server.url(SLACK_PATH)
    http_server.mode = server
    slack = SlackNotifier(url, **FAST)
    start = time.monotonic()
    delivery = slack.send(Alert.of(join_report()))
    elapsed = time.monotonic() - start
    assert slack.budget_s == pytest.approx(3 * 0.5 + 0.05 + 0.1)
    assert elapsed < slack.budget_s + MARGIN_S and delivery.elapsed_s < slack.budget_s + MARGIN_S
    assert not delivery.ok and delivery.attempts == 3  # each failure is transient: all retries used
    assert delivery.error is not None and delivery.error.startswith(
        {"hang": "timed out after", "drip": "timed out after", "500": "HTTP 500: server_error",
         "refused": "ConnectError"}[server])
    _no_secret_anywhere(caplog, delivery, secrets=("SLACK-SECRET",))


def test_the_url_is_scrubbed_from_logs_and_errors(http_server: RecordingHTTPServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    http_server.mode = "404"  # the reply quotes the secret path
    slack = SlackNotifier(http_server.url(SLACK_PATH), **PATIENT)
    delivery = slack.send(Alert.of(join_report()))
    assert delivery.error == "HTTP 404: no hook at /***"
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines and all(f"http://127.0.0.1:{http_server.port}/***" in line for line in httpx_lines)
    assert "SLACK-SECRET" not in repr(slack)
    _no_secret_anywhere(caplog, delivery, secrets=("SLACK-SECRET",))


def test_webhook_secrets_never_show(http_server: RecordingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    http_server.mode = "404"
    hook = WebhookNotifier(http_server.url("/in/WEBHOOK-SECRET-path"), secret="HMAC-SECRET-key",
                           headers={"Authorization": "Bearer HEADER-SECRET-token"}, **PATIENT)
    delivery = hook.send(Alert.of(join_report()))
    assert not delivery.ok and delivery.attempts == 1
    assert http_server.requests[0].headers["Authorization"] == "Bearer HEADER-SECRET-token"  # sent, not shown
    _no_secret_anywhere(caplog, delivery, secrets=("WEBHOOK-SECRET", "HMAC-SECRET", "HEADER-SECRET"))
    assert "SECRET" not in repr(hook)


def test_email_logs_in_and_never_shows_the_password(smtp_server: SmtpServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    good = EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"],
                         username=smtp_server.username, password=smtp_server.password, **PATIENT)
    assert good.send(Alert.of(join_report())).ok and len(smtp_server.messages) == 1
    bad = EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"],
                        username=smtp_server.username, password="WRONG-SMTP-SECRET", **PATIENT)
    delivery = bad.send(Alert.of(join_report()))
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 535)  # bad credentials: final
    assert delivery.error is not None and delivery.error.startswith("SMTPAuthenticationError: SMTP 535")
    _no_secret_anywhere(caplog, delivery, secrets=(smtp_server.password, "WRONG-SMTP-SECRET"))
    assert "SECRET" not in repr(bad)


def test_email_retries_a_temporary_refusal(smtp_server: SmtpServer) -> None:
    smtp_server.data_replies.append("451 4.3.0 try again later")
    delivery = EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"],
                             **PATIENT).send(Alert.of(join_report()))
    assert (delivery.ok, delivery.attempts, delivery.status) == (True, 2, 250) and len(smtp_server.messages) == 1


@pytest.mark.parametrize("server", ["silent", "refused"])
def test_an_unreachable_mail_server_costs_at_most_the_budget(server: str, silent_port: int) -> None:
    mail = EmailNotifier("127.0.0.1", silent_port if server == "silent" else refused_port(),
                         sender="a@example.com", recipients=["b@example.com"], **FAST)
    start = time.monotonic()
    delivery = mail.send(Alert.of(join_report()))
    assert time.monotonic() - start < mail.budget_s + MARGIN_S
    assert not delivery.ok and delivery.attempts == 3
    assert ("timed out" if server == "silent" else "ConnectionRefusedError") in str(delivery.error)


def test_notify_sends_to_each_and_survives_a_notifier_that_breaks_the_rules(http_server: RecordingHTTPServer,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> Delivery:
            raise RuntimeError("a third-party notifier bug")

    deliveries = notify(Alert.of(join_report()), [SlackNotifier(http_server.url(SLACK_PATH), **PATIENT), Broken(),
                                                  WebhookNotifier(http_server.url(), **PATIENT)])
    assert [(d.notifier, d.ok) for d in deliveries] == [("slack", True), ("broken", False), ("webhook", True)]
    assert deliveries[1].error == "RuntimeError: a third-party notifier bug"
    assert len(http_server.requests) == 2
    assert [r.getMessage() for r in caplog.records if r.name == "mlguard.notify"] == [
        "broken notification not sent: RuntimeError: a third-party notifier bug"]
    assert notify(Alert.of(join_report()), []) == []
