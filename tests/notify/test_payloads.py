"""What each service receives, exactly, from a real loopback server; and that it stays within the limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.message import EmailMessage

import pytest

from mlguard_orchestration.notify import Alert, EmailNotifier, SlackNotifier, WebhookNotifier
from tests._servers import RecordingHTTPServer, SmtpServer
from tests.notify._reports import MISSING_KEY, TWICE, WHERE, huge_report, join_report

LINK = "http://ui:8080/dags/churn/runs/manual__2026-11-01T00%3A00%3A00%2B00%3A00/tasks/guard_join?try_number=1"
HEADLINE = f"{MISSING_KEY.summary} — [join.fan_out] join multiplies rows 3.0x (labels 1000 -> 3000)"


def test_slack_receives_a_block_kit_message(http_server: RecordingHTTPServer) -> None:
    slack = SlackNotifier(http_server.url("/services/T0/B0/token"), base_url="http://ui:8080")
    delivery = slack.send(Alert.of(join_report(), error="GuardCheckFailed: guard 'churn_join' fail"))
    assert delivery.ok and delivery.attempts == 1 and delivery.status == 200 and delivery.notifier == "slack"
    [request] = http_server.requests
    assert request.path == "/services/T0/B0/token" and request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "text": f"Guard 'churn_join' failed in churn.guard_join: {HEADLINE}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Guard 'churn_join' failed in churn.guard_join",
                                        "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{HEADLINE.replace('>', '&gt;')}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "*Likely causes*\n"
                f"1. {MISSING_KEY.summary} _(90%, `cause.missing_join_key`)_\n"
                f"     *Next check:* {MISSING_KEY.next_check}\n"
                f"2. {TWICE.summary} _(30%, `cause.duplicated_partition`)_\n"
                f"     *Next check:* {TWICE.next_check}")}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "*orchestrator:* airflow"}, {"type": "mrkdwn", "text": "*dag_id:* churn"},
                {"type": "mrkdwn", "text": "*task_id:* guard_join"},
                {"type": "mrkdwn", "text": "*run_id:* manual__2026-11-01T00:00:00+00:00"},
                {"type": "mrkdwn", "text": "*try_number:* 1"}]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in Airflow"}, "url": LINK}]},
        ]}


def test_slack_shows_the_error_when_no_guard_failed_and_no_button_without_a_link(
        http_server: RecordingHTTPServer) -> None:
    alert = Alert.of(None, where={"orchestrator": "prefect", "flow_name": "f"}, error=KeyError("<user_id>"))
    assert SlackNotifier(http_server.url()).send(alert).ok
    blocks = json.loads(http_server.requests[0].body)["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context"]
    assert blocks[2]["text"]["text"] == "*Error*\n```KeyError: '&lt;user_id&gt;'```"  # mrkdwn escaped


def test_webhook_receives_the_alert_as_json(http_server: RecordingHTTPServer) -> None:
    report = join_report()
    hook = WebhookNotifier(http_server.url("/in/abc"), headers={"X-Team": "ml"}, base_url="http://ui:8080")
    assert hook.send(Alert.of(report, error="GuardCheckFailed: x")).ok
    [request] = http_server.requests
    assert request.headers["X-Team"] == "ml" and request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("mlguard-orchestration/")
    assert "X-Mlguard-Signature" not in request.headers  # unsigned without a secret
    assert json.loads(request.body) == {"event": "mlguard.guard_failed", "headline": HEADLINE, "where": WHERE,
                                        "url": LINK, "error": "GuardCheckFailed: x", "news": None,
                                        "report": report.compact()}


def test_webhook_for_a_task_failure_has_no_report(http_server: RecordingHTTPServer) -> None:
    assert WebhookNotifier(http_server.url()).send(Alert.of(None, where={}, error="OSError: disk full")).ok
    assert json.loads(http_server.requests[0].body) == {
        "event": "mlguard.task_failed", "headline": "OSError: disk full", "where": {}, "url": None,
        "error": "OSError: disk full", "news": None, "report": None}


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What docs/notifiers.md tells receivers to do, with the standard library only."""
    stamp = headers["X-Mlguard-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return abs(time.time() - int(stamp)) < 300 and hmac.compare_digest(expected, headers["X-Mlguard-Signature"])


def test_webhook_signature_verifies_with_the_secret_only(http_server: RecordingHTTPServer) -> None:
    assert WebhookNotifier(http_server.url(), secret="whsec-correct-horse").send(Alert.of(join_report())).ok
    [request] = http_server.requests
    assert _verify("whsec-correct-horse", request.headers, request.body)
    assert not _verify("whsec-wrong", request.headers, request.body)
    assert not _verify("whsec-correct-horse", request.headers, request.body.replace(b"churn", b"chum"))


def _part(msg: EmailMessage, subtype: str) -> str:
    """A body part as sent, with SMTP's CRLF line endings back to newlines."""
    return msg.get_body((subtype,)).get_content().replace("\r\n", "\n")


def test_email_is_text_and_html_with_the_same_story(smtp_server: SmtpServer) -> None:
    mail = EmailNotifier("127.0.0.1", smtp_server.port, sender="mlguard@example.com",
                         recipients=["oncall@example.com", "ml@example.com"], base_url="http://ui:8080")
    delivery = mail.send(Alert.of(join_report()))
    assert delivery.ok and delivery.status == 250 and delivery.notifier == "email"
    [msg] = smtp_server.messages
    assert smtp_server.envelopes == [("mlguard@example.com", ["oncall@example.com", "ml@example.com"])]
    assert msg["Subject"] == f"[mlguard] {HEADLINE}"[:149] + "…"
    assert (msg["From"], msg["To"]) == ("mlguard@example.com", "oncall@example.com, ml@example.com")
    assert msg["Message-ID"].endswith("@example.com>") and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text, page = (_part(msg, "plain"), _part(msg, "html"))
    assert text.startswith(f"Guard 'churn_join' failed in churn.guard_join\n\n{HEADLINE}\n\nLikely causes:\n"
                           f"  1. {MISSING_KEY.summary} (90%, cause.missing_join_key)\n"
                           f"     next check: {MISSING_KEY.next_check}\n     fix: {MISSING_KEY.fix}\n")
    assert "  run_id: manual__2026-11-01T00:00:00+00:00\n" in text and f"Open the run: {LINK}\n" in text
    assert "Report:\nFAIL guard 'churn_join'" in text
    assert "<h2>Guard &#x27;churn_join&#x27; failed in churn.guard_join</h2>" in page
    assert f'<a href="{LINK}">Open the run</a>' in page
    assert "<th align=\"left\">task_id</th><td>guard_join</td>" in page


def test_email_escapes_what_came_from_the_data(smtp_server: SmtpServer) -> None:
    report = join_report()
    evil = report.findings[0].model_copy(update={"message": "value <script>alert(1)</script> & more"})
    alert = Alert.of(report.model_copy(update={"findings": [evil]}))
    EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"]).send(alert)
    page = _part(smtp_server.messages[0], "html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page


def test_huge_reports_stay_within_every_service_limit(http_server: RecordingHTTPServer,
                                                      smtp_server: SmtpServer) -> None:
    alert = Alert.of(huge_report(), error="e" * 100_000, url="http://ui/" + "p" * 10_000)
    assert SlackNotifier(http_server.url()).send(alert).ok
    payload = json.loads(http_server.requests[0].body)
    assert len(payload["blocks"]) <= 50 and len(payload["blocks"][0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3_000 for b in payload["blocks"] if b["type"] == "section")
    assert "actions" not in [b["type"] for b in payload["blocks"]]  # a link longer than Slack allows is left out
    assert len(http_server.requests[0].body) < 12_000 and len(payload["text"]) <= 3_000
    for max_bytes in (64_000, 8_000):
        assert WebhookNotifier(http_server.url(), max_bytes=max_bytes).send(alert).ok
        body = http_server.requests[-1].body
        assert len(body) <= max_bytes
        assert json.loads(body)["report"]["notes"][-1].startswith("report trimmed to stay under")
    assert EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"]
                         ).send(alert).ok
    msg = smtp_server.messages[0]
    assert len(msg["Subject"]) <= 150
    assert len(_part(msg, "plain")) <= 24_000 and len(_part(msg, "html")) < 40_000


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SlackNotifier("hooks.slack.com/services/T/B/x"), r"must be an http\(s\) URL"),
    (lambda: WebhookNotifier("ftp://example.com/x"), "scheme 'ftp'"),
    (lambda: WebhookNotifier("https://example.com/x", max_bytes=100), "at least 8000"),
    (lambda: SlackNotifier("https://hooks.slack.com/x", timeout_s=0), "greater than 0"),
    (lambda: EmailNotifier("smtp", 25, sender="a@example.com", recipients="b@example.com"), "list of addresses"),
    (lambda: EmailNotifier("smtp", 25, sender="a@example.com", recipients=[]), "at least one recipient"),
    (lambda: EmailNotifier("smtp", 25, sender="nobody", recipients=["b@example.com"]), "not an address"),
    (lambda: EmailNotifier("smtp", 465, sender="a@example.com", recipients=["b@x.org"], ssl=True, starttls=True),
     "not both"),
])
def test_bad_settings_fail_early_and_clearly(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ValueError, TypeError), match=message) as info:
        make()
    assert "slack.com/services/T/B/x" not in str(info.value)  # never echoes the URL
