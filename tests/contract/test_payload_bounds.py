"""Payloads stay bounded in bytes, whatever the report holds: a property over adversarial reports.

The compact report is at most 48 KB (the bound is on `json.dumps`, whose ASCII escapes make one character up to
12 bytes); the webhook body at most its `max_bytes`; a Slack message within Block Kit's limits; an email
bounded. Reports are built with unicode names outside the BMP, control characters, quotes and backslashes,
many tables, long run contexts, many findings and many changes — the shapes that once reached 107 KB.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlguard_orchestration._json import clip_text, json_size, shrink
from mlguard_orchestration.fingerprint import Change, CodeVersion, Fingerprint, Hardware, InputProfile
from mlguard_orchestration.notify import Alert, EmailNotifier, SlackNotifier, WebhookNotifier
from mlguard_orchestration.notify.slack import blocks
from mlguard_orchestration.report import (
    COMPACT_MAX_BYTES,
    COMPACT_MIN_BYTES,
    Cause,
    Finding,
    GuardErrorInfo,
    ModelSummary,
    Report,
    TableSummary,
)

PROPERTY = settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])
# The characters that cost the most bytes once JSON-escaped, and some that break naive code.
NASTY = ["😀", "𝔘", "ü", "字", "\u2028", "\x00", "\x1f", '"', "\\", "\n", "\ud7ff", "a", " ", "'", "<", "&", "*", "`"]


def texts(max_repeat: int = 400) -> st.SearchStrategy[str]:
    """Adversarial strings: a short unit of costly characters, repeated up to `max_repeat` times."""
    unit = st.lists(st.sampled_from(NASTY), min_size=1, max_size=6).map("".join)
    return st.builds(lambda u, n: u * n, unit, st.integers(0, max_repeat))


def _finding(i: int, text: str) -> Finding:
    """The first findings carry the whole text everywhere; the many after them a slice (memory stays modest)."""
    text = text if i < 3 else text[:200]
    cause = Cause(code="cause.upstream_nulls", summary=text, confidence=0.5, evidence={text[:50]: [text] * 3},
                  next_check=text, fix=text)
    return Finding(code="schema.null_rate", check=f"null_rate({text[:100]})", severity="fail" if i % 3 else "warn",
                   message=text, table=text[:200], columns=[text[:300]] * 30, value=0.5, threshold=text[:20],
                   evidence={"blob": text, "nested": {text[:40]: {"deeper": [text] * 5}}}, causes=[cause] * 6)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    text = draw(texts())
    short = draw(texts(60))
    n_tables, n_context, n_findings, n_changes = (draw(st.integers(0, k)) for k in (60, 40, 300, 60))
    inputs = {f"{short}{i}": InputProfile(rows=i, columns={f"{short}{j}": text[:100] for j in range(50)},
                                          column_count=50, digest=short) for i in range(draw(st.integers(0, 40)))}
    fingerprint = Fingerprint(python="3.11", packages={f"{short}{i}": text[:200] for i in range(40)},
                              hardware=Hardware(cpu=text[:500], cores=2, gpu=short), inputs=inputs,
                              code=CodeVersion(path=text[:1000], commit=short))
    changes = [Change(code="change.schema", kind="schema", subject=text[:300], before={short: text[:500]},
                      after=[text[:200]] * 10, summary=text, relevance=0.5) for _ in range(n_changes)]
    error = draw(st.sampled_from([None, GuardErrorInfo(code="guard.source_error", type="SourceError",
                                                       message=text * 3, retryable=True)]))
    return Report(
        guard=short * 20, status="error" if error else "fail", error=error,
        started_at=datetime(2026, 1, 1, tzinfo=UTC), notes=[text] * draw(st.integers(0, 30)),
        tables={f"{short}{i}": TableSummary(source=text[:2_000], rows=i, columns=i) for i in range(n_tables)},
        context={f"{short}{i}": text[:1_000] for i in range(n_context)},
        findings=[_finding(i, text) for i in range(n_findings)], changes=changes, fingerprint=fingerprint,
        model=ModelSummary(model=short, metrics={f"{short}{i}": 0.5 for i in range(100)}, eval_rows=1,
                           eval_digest=short))


def _alert(report: Report, text: str) -> Alert:
    where = {"orchestrator": "airflow", "dag_id": text[:500], "task_id": text[:500], "run_id": text,
             **{f"{text[:30]}{i}": text for i in range(30)}}
    return Alert.of(report, where=where, error=f"ValueError: {text * 5}", url=f"http://ui/{text[:500]}")


# -- the JSON helpers ----------------------------------------------------------------------------------------


@PROPERTY
@given(text=texts(2_000), limit=st.integers(3, 5_000))
def test_clip_text_is_bounded_in_bytes(text: str, limit: int) -> None:
    clipped = clip_text(text, limit)
    assert json_size(clipped) <= limit
    assert text.startswith(clipped.removesuffix("…"))
    if json_size(text) <= limit:
        assert clipped == text


@PROPERTY
@given(text=texts(200), limit=st.integers(2, 20_000), depth=st.integers(0, 3))
def test_shrink_is_bounded_in_bytes(text: str, limit: int, depth: int) -> None:
    value: Any = [text] * 40
    for _ in range(depth):
        value = {text[:20] + str(i): value for i in range(4)}
    small = shrink(value, limit)
    assert small is None or json_size(small) <= limit


# -- the compact report --------------------------------------------------------------------------------------


@PROPERTY
@given(report=reports())
def test_compact_report_is_at_most_48_kb(report: Report) -> None:
    data = report.compact()
    assert json_size(data) <= COMPACT_MAX_BYTES
    assert len(json.dumps(data, ensure_ascii=False).encode()) <= COMPACT_MAX_BYTES  # UTF-8 is never larger
    assert data["status"] == report.status and report.guard.startswith(data["guard"].removesuffix("…"))
    if report.findings and data.get("findings"):  # the worst kept first (a generated status may be any)
        worst = "fail" if any(f.severity == "fail" for f in report.findings) else "warn"
        assert data["findings"][0]["severity"] == worst
    if json_size(report.model_dump(mode="json")) > COMPACT_MAX_BYTES:
        assert any("trimmed" in n for n in data["notes"])


@PROPERTY
@given(report=reports(), limit=st.integers(COMPACT_MIN_BYTES, 60_000))
def test_compact_report_respects_any_bound(report: Report, limit: int) -> None:
    assert json_size(report.compact(limit)) <= limit


def test_the_shapes_that_once_went_over() -> None:
    """107,590 bytes from changes and fingerprint; 57 KB from many tables and a 20-entry context."""
    text = "ü😀" * 3_000
    fp = Fingerprint(python="3.11", packages={f"p{i}": text for i in range(30)}, hardware=Hardware(cpu="x", cores=1),
                     inputs={f"t{i}": InputProfile(columns={f"c{j}{text[:50]}": "DOUBLE" for j in range(20)})
                             for i in range(20)})
    changes = [Change(code="change.schema", kind="schema", subject=text, summary=text, relevance=0.9, before=text,
                      after=text) for _ in range(20)]
    multi = Report(guard="g", status="fail", fingerprint=fp, changes=changes,
                   tables={f"table_{i}_{text[:20]}": TableSummary(source=text[:120]) for i in range(50)},
                   context={f"{text[:100]}{i}": text[:500] for i in range(20)})
    data = multi.compact()
    assert json_size(data) <= COMPACT_MAX_BYTES
    assert data["changes"] and data["fingerprint"] is not None  # trimmed, not dropped
    with pytest.raises(ValueError, match="too small"):
        multi.compact(COMPACT_MIN_BYTES - 1)


# -- what each service receives ------------------------------------------------------------------------------


@PROPERTY
@given(report=reports(), text=texts(), max_bytes=st.integers(8_000, 100_000))
def test_webhook_body_is_within_its_max_bytes(report: Report, text: str, max_bytes: int) -> None:
    hook = WebhookNotifier("https://example.com/hooks/in", max_bytes=max_bytes, base_url="http://ui")
    alert = _alert(report, text)
    body = json.dumps(hook.payload(alert)).encode()
    assert len(body) <= max_bytes
    assert json.loads(body)["event"] == alert.event
    default = WebhookNotifier("https://example.com/hooks/in")
    assert len(json.dumps(default.payload(alert)).encode()) <= default.max_bytes == 64_000


@PROPERTY
@given(report=reports(), text=texts())
def test_slack_message_is_within_block_kit_limits(report: Report, text: str) -> None:
    alert = _alert(report, text)
    payload = SlackNotifier("https://hooks.slack.com/services/T0/B0/x", base_url="http://ui").payload(alert)
    assert 0 < len(payload["text"]) <= 3_000  # (Slack truncates `text` at 40,000)
    out = payload["blocks"]
    assert len(out) <= 50
    for block in out:
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= 3_000
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(e["text"]) <= 3_000 for e in block["elements"])
        elif block["type"] == "actions":
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= 75 and len(button["url"]) <= 3_000
    assert len(json.dumps(payload).encode()) <= 160_000  # a few blocks of at most 3,000 characters each
    assert blocks(alert, None)  # no base URL: still a message


@PROPERTY
@given(report=reports(), text=texts())
def test_email_is_bounded(report: Report, text: str) -> None:
    mail = EmailNotifier("127.0.0.1", 25, sender="a@example.com", recipients=["b@example.com"], base_url="http://ui")
    msg = mail.message(_alert(report, text))
    assert len(msg["Subject"]) <= 150 and "\n" not in msg["Subject"]
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert len(plain) <= 24_000
    assert len(html) <= 200_000  # 16,000 characters of report and bounded parts, HTML-escaped
    assert len(msg.as_bytes()) <= 1_000_000
