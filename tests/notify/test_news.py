"""What's new since the previous run reaches every notification: Slack, the webhook and email say which findings
are new, resolved and persisting, from a real guard run with a store, as received by loopback servers."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.notify import Alert, EmailNotifier, SlackNotifier, WebhookNotifier
from mlguard_orchestration.report import Report
from tests._servers import RecordingHTTPServer, SmtpServer


def _frame(**overrides: object) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1_000
    return pd.DataFrame({"spend": rng.lognormal(3, 0.5, n), "plan": rng.choice(["a", "b"], n)}).assign(**overrides)


@pytest.fixture
def second_failure(tmp_path: Path) -> Report:
    """A guard that failed last night on `spend` and tonight on `spend` and `plan`: one new, one persisting."""
    guard = mg.Guard("nightly", [mg.NullRate(column="spend", max=0.01), mg.NullRate(column="plan", max=0.01)],
                     store=tmp_path / "store")
    guard.run(_frame(spend=np.nan))
    report = guard.run(_frame(spend=np.nan, plan=None))
    assert report.since_last_run is not None and report.since_last_run.new_count == 1
    return report


NEWS = "1 new, 0 resolved, 1 persisting — new: schema.null_rate(plan)"


def test_slack_says_what_is_new(http_server: RecordingHTTPServer, second_failure: Report) -> None:
    assert SlackNotifier(http_server.url("/services/T0/B0/x")).send(Alert.of(second_failure)).ok
    blocks = json.loads(http_server.requests[0].body)["blocks"]
    assert [b["type"] for b in blocks[:3]] == ["header", "section", "context"]
    news = blocks[2]["elements"][0]["text"]
    assert news.startswith("since the previous run (fail, ") and NEWS in news


def test_the_webhook_says_what_is_new(http_server: RecordingHTTPServer, second_failure: Report) -> None:
    assert WebhookNotifier(http_server.url()).send(Alert.of(second_failure)).ok
    body = json.loads(http_server.requests[0].body)
    assert NEWS in body["news"]
    assert body["report"]["since_last_run"]["new"][0]["columns"] == ["plan"]


def test_email_says_what_is_new(smtp_server: SmtpServer, second_failure: Report) -> None:
    mail = EmailNotifier("127.0.0.1", smtp_server.port, sender="mlguard@example.org", recipients=["ml@example.org"])
    assert mail.send(Alert.of(second_failure)).ok
    [msg] = smtp_server.messages
    text, html = (_part(msg, "plain"), _part(msg, "html"))
    assert "Since the previous run (fail, " in text and NEWS in text
    assert "<p><em>Since the previous run (fail, " in html and NEWS in html


def _part(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    return str(part.get_content())


def test_no_history_no_news(http_server: RecordingHTTPServer) -> None:
    report = mg.Guard("once", [mg.NullRate(column="spend", max=0.01)]).run(_frame(spend=np.nan))
    alert = Alert.of(report)
    assert alert.news is None
    assert SlackNotifier(http_server.url("/services/T0/B0/x")).send(alert).ok
    body = http_server.requests[0].body.decode()
    assert "since the previous run" not in body.lower() and "'spend' is 100.00% NULL" in body
