"""Secrets: nothing that holds a configured secret reaches a log, an error, `repr()` or another service, in any
encoding — tested against real loopback servers that echo what they were sent, the way real ones do.

Each notifier keeps its own secrets (nothing process-wide); a value too short to scrub by value (one
character) is kept out by field, and never turns every occurrence of that character into ***.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from urllib.parse import quote

import pytest

from mlguard_orchestration.notify import (
    Alert,
    Delivery,
    EmailNotifier,
    SlackNotifier,
    WebhookNotifier,
    notify,
)
from mlguard_orchestration.notify._secrets import Secrets, encodings, redact_fields
from mlguard_orchestration.report import Report
from tests._servers import QuotingSmtpServer, RecordingHTTPServer, SmtpServer
from tests.notify._reports import join_report

# Every server here answers: a timeout a loaded machine never reaches, so only the answers decide.
FAST = {"timeout_s": 15.0, "retries": 0, "backoff_s": 0.0}
SLACK_TOKEN = "xoxb-17-SLACKTOKENsecretVALUE"
SLACK_PATH = f"/services/T0SECRET1/B0SECRET2/{SLACK_TOKEN}"


@pytest.fixture(autouse=True)
def _capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mlguard.notify"):
        caplog.set_level(logging.DEBUG, logger=name)


def _forms(secret: str) -> set[str]:
    """What must never be shown: the secret and its encodings (those long enough to recognise)."""
    return encodings(secret) | {secret}


def _shown(caplog: pytest.LogCaptureFixture, *deliveries: Delivery, extra: Iterable[str] = ()) -> str:
    return "\n".join([r.getMessage() for r in caplog.records] + [repr(d) for d in deliveries] + list(extra))


def _assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        leaked = sorted(f for f in _forms(secret) if f in text)
        assert not leaked, (secret, leaked, text[:2_000])


# -- server replies that echo the secret ------------------------------------------------------------------


def _echoes(url: str) -> list[tuple[str, object]]:
    """Replies that quote the URL or its token back in the encodings servers use."""
    return [
        ("json", lambda r: (403, json.dumps({"ok": False, "error": "invalid_auth", "token": SLACK_TOKEN,
                                             "url": url}).encode())),
        ("json-escaped-slashes", lambda r: (401, json.dumps({"error": "bad", "url": url}).replace("/", "\\/")
                                            .encode())),
        ("path", lambda r: (404, f"no route {r.path}".encode())),
        ("percent", lambda r: (404, f"no route {quote(r.path, safe='')}".encode())),
        ("percent-lower", lambda r: (404, quote(r.path, safe="").lower().encode())),
        ("base64", lambda r: (400, base64.b64encode(f"debug:{r.path}".encode()))),
        ("query", lambda r: (403, f"denied ?token={SLACK_TOKEN}&x=1".encode())),
        ("long", lambda r: (500, (b"x" * 150 + SLACK_TOKEN.encode() + b"y" * 20_000))),
        ("header", lambda r: (401, f"Authorization: {r.headers.get('Authorization', '')}".encode())),
    ]


@pytest.mark.parametrize("kind", [k for k, _ in _echoes("")])
def test_a_slack_reply_echoing_the_token(kind: str, http_server: RecordingHTTPServer,
                                         caplog: pytest.LogCaptureFixture) -> None:
    url = http_server.url(SLACK_PATH)
    http_server.replies.append(dict(_echoes(url))[kind])  # type: ignore[arg-type]
    slack = SlackNotifier(url, **FAST)
    delivery = slack.send(Alert.of(join_report()))
    assert not delivery.ok and delivery.error and delivery.error.startswith("HTTP ")
    assert any(r.name == "mlguard.notify" and r.levelno == logging.WARNING for r in caplog.records)
    _assert_hidden(_shown(caplog, delivery, extra=[repr(slack), repr(slack.secrets)]), SLACK_TOKEN, SLACK_PATH, url)


def test_a_webhook_reply_echoing_its_query_token_headers_and_hmac_key(http_server: RecordingHTTPServer,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    url = http_server.url("/in/hook?token=QUERYtoken123456&team=ml")
    http_server.replies.append(lambda r: (403, json.dumps({
        "path": r.path, "token": "QUERYtoken123456", "hmac": "HMAC-key-0987654321", "headers": r.headers}).encode()))
    hook = WebhookNotifier(url, secret="HMAC-key-0987654321", headers={"X-Api-Key": "APIKEY-abcdef-123"}, **FAST)
    delivery = hook.send(Alert.of(join_report()))
    assert not delivery.ok and delivery.status == 403
    _assert_hidden(_shown(caplog, delivery, extra=[repr(hook)]), "QUERYtoken123456", "HMAC-key-0987654321",
                   "APIKEY-abcdef-123", url)


def test_a_non_ascii_webhook_path_never_shows_percent_encoded_in_the_httpx_log(
        http_server: RecordingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    path = "/in/ünï-sécrèt-pâth-🔑"
    http_server.replies.append(lambda r: (404, f"unknown {r.path}".encode()))
    delivery = WebhookNotifier(http_server.url(path), **FAST).send(Alert.of(join_report()))
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines and all(f"127.0.0.1:{http_server.port}/***" in line for line in httpx_lines)
    shown = _shown(caplog, delivery)
    _assert_hidden(shown, path, quote(path), "sécrèt")
    assert "%C3%A9" not in shown and "%c3%a9" not in shown


# -- the SMTP AUTH exchange --------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["smtp-pa55-SECRET", "é", "p", "pässwörd-ümlaut-🔑"])
def test_a_535_quoting_the_auth_line(password: str, quoting_smtp_server: QuotingSmtpServer,
                                     caplog: pytest.LogCaptureFixture) -> None:
    mail = EmailNotifier("127.0.0.1", quoting_smtp_server.port, sender="a@example.com",
                         recipients=["b@example.com"], username="mailer", password=password, **FAST)
    delivery = mail.send(Alert.of(join_report()))
    if not password.isascii():  # smtplib cannot send it: said plainly, without quoting the character
        assert delivery.error is not None and "non-ASCII" in delivery.error and delivery.attempts == 1
        _assert_hidden(_shown(caplog, delivery), password)
        assert "position" not in delivery.error  # smtplib's message would say which character
        return
    assert (delivery.ok, delivery.status) == (False, 535)
    assert delivery.error is not None and delivery.error.startswith("SMTPAuthenticationError: SMTP 535")
    sent = [line for line in quoting_smtp_server.lines if line.upper().startswith("AUTH") or line not in
            ("", "QUIT")]
    blobs = [part for line in sent for part in line.split() if len(part) >= 8]  # what the client sent in base64
    assert blobs, sent
    shown = _shown(caplog, delivery, extra=[repr(mail)])
    for blob in blobs:
        assert blob not in shown, (blob, shown)
    if len(password) >= 6:
        _assert_hidden(shown, password)
    assert "Authentication failed for: AUTH PLAIN ***" in shown or "rejected AUTH LOGIN ***" in shown


def test_a_good_login_still_works_and_shows_nothing(smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    mail = EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"],
                         username=smtp_server.username, password=smtp_server.password, **FAST)
    assert mail.send(Alert.of(join_report())).ok and len(smtp_server.messages) == 1
    _assert_hidden(_shown(caplog, extra=[repr(mail)]), smtp_server.password)


# -- another service ---------------------------------------------------------------------------------------


def test_a_task_exception_quoting_the_slack_url_is_not_forwarded(http_server: RecordingHTTPServer,
                                                                 smtp_server: SmtpServer) -> None:
    slack_url = http_server.url(SLACK_PATH)
    report = join_report().model_copy(update={"notes": [f"posted to {slack_url}"]})
    error = RuntimeError(f"could not post to {slack_url} (token {SLACK_TOKEN}, {quote(slack_url, safe='')})")
    slack = SlackNotifier(slack_url, **FAST)
    hook = WebhookNotifier(http_server.url("/in/plain"), **FAST)
    mail = EmailNotifier("127.0.0.1", smtp_server.port, sender="a@example.com", recipients=["b@example.com"], **FAST)
    deliveries = notify(Alert.of(report, error=error), [slack, hook, mail])
    assert [d.ok for d in deliveries] == [True, True, True]
    bodies = [r.body.decode() for r in http_server.requests] + [m.as_string() for m in smtp_server.messages]
    assert len(bodies) == 3
    for body in bodies:
        _assert_hidden(body, SLACK_TOKEN, SLACK_PATH, slack_url)
    webhook_body = json.loads(next(r.body for r in http_server.requests if r.path == "/in/plain"))
    assert "could not post to http://127.0.0.1" in webhook_body["error"]  # the rest of the message is kept
    assert Report.model_validate(webhook_body["report"] | {"findings": []}).guard == "churn_join"


def test_a_notifier_used_alone_scrubs_its_own_secret_from_the_alert(http_server: RecordingHTTPServer) -> None:
    slack_url = http_server.url(SLACK_PATH)
    SlackNotifier(slack_url, **FAST).send(Alert.of(None, error=f"ValueError: bad {slack_url}"))
    _assert_hidden(http_server.requests[0].body.decode(), SLACK_TOKEN, SLACK_PATH)


def test_credentials_in_exception_text_are_redacted_by_field(http_server: RecordingHTTPServer) -> None:
    error = ("OperationalError: postgresql://etl:db-pw-1@db:5432/x refused; GET https://api/x?api_key=k1&page=2 "
             'said {"access_token": "t0k"}; header Authorization: Bearer abc.def.ghi; '
             "hook https://hooks.slack.com/services/T1/B2/zzz")
    WebhookNotifier(http_server.url(), **FAST).send(Alert.of(None, error=error))
    sent = json.loads(http_server.requests[0].body)["error"]
    for value in ("db-pw-1", "api_key=k1", '"t0k"', "abc.def.ghi", "T1/B2/zzz"):
        assert value not in sent, (value, sent)
    assert "OperationalError: postgresql://etl:***@db:5432/x refused" in sent and "page=2" in sent


# -- short secrets, one notifier's secrets are its own -----------------------------------------------------------


def test_a_one_character_secret_does_not_mangle_everything(http_server: RecordingHTTPServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    http_server.replies.append(lambda r: (400, json.dumps({"error": "invalid_payload", "signature": "a",
                                                            "x-team": "e", "detail": "a bad alert"}).encode()))
    hook = WebhookNotifier(http_server.url(), secret="a", headers={"X-Team": "e"}, **FAST)
    delivery = hook.send(Alert.of(join_report()))
    assert delivery.error is not None
    assert "invalid_payload" in delivery.error and "a bad alert" in delivery.error  # the letters a and e survive
    assert '"signature": "***"' in delivery.error and '"x-team": "***"' in delivery.error  # by field
    sent = json.loads(http_server.requests[0].body)
    assert sent["report"]["guard"] == "churn_join"  # the payload is not mangled either


def test_secrets_are_not_shared_between_notifiers(http_server: RecordingHTTPServer) -> None:
    WebhookNotifier(http_server.url("/in/a"), secret="invalid_payload", **FAST)  # odd, but it is its secret
    http_server.mode = "400"  # replies "invalid_payload"
    delivery = SlackNotifier(http_server.url(SLACK_PATH), **FAST).send(Alert.of(join_report()))
    assert delivery.error == "HTTP 400: invalid_payload"  # another notifier's secret changes nothing here
    a, b = Secrets(), Secrets()
    a.add("only-in-a-123456")
    assert a.scrub("x only-in-a-123456 y") == "x *** y" and b.scrub("x only-in-a-123456 y") == "x only-in-a-123456 y"


# -- the scrubber itself -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["smtp-pa55-SECRET", "pässwörd-ü-🔑-long", 'quote"and\\slash/xx', "a" * 40])
def test_every_encoding_is_scrubbed(secret: str) -> None:
    s = Secrets()
    s.add(secret)
    raw = secret.encode()
    carriers = [secret, quote(secret, safe=""), quote(secret), json.dumps(secret), json.dumps(secret)[1:-1],
                secret.replace("/", "\\/"), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    for prefix in (b"", b"u", b"us", b"\0user\0"):  # inside a longer base64 blob, at any alignment
        for suffix in (b"", b"!", b"!!"):
            carriers.append(base64.b64encode(prefix + raw + suffix).decode())
    for text in carriers:
        assert s.scrub(f"<{text}>") != f"<{text}>", text
        _assert_hidden(s.scrub(f"<{text}>"), secret)


def test_field_redaction_leaves_ordinary_words_alone() -> None:
    for text in ["SMTPAuthenticationError: SMTP 535 5.7.8 Authentication credentials invalid",
                 "column 'token_count' has 3% nulls", "key: user_id", "the session ended", "HTTP 400: invalid_payload",
                 "join is missing key column 'snapshot_date'"]:
        assert redact_fields(text) == text
