"""The Airflow notifiers end to end: a guard fails in `dag.test()`, and real loopback servers receive exactly
what the notifiers say; broken servers never change the task's own failure or hold the run past the budget."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG, task

import mlguard_orchestration as mg
from mlguard_orchestration.airflow import JoinGuardOperator
from mlguard_orchestration.airflow.notifiers import (
    XCOM_NOTIFICATIONS,
    MlguardEmailNotifier,
    MlguardSlackNotifier,
    MlguardWebhookNotifier,
)
from mlguard_orchestration.airflow.provider import get_provider_info
from tests import _servers
from tests._servers import RecordingHTTPServer, SmtpServer, refused_port
from tests.airflow.conftest import register, states, xcom_report

http_server, smtp_server, silent_port = _servers.http_server, _servers.smtp_server, _servers.silent_port  # fixtures

SLACK_TOKEN = "T0001/B0001/AIRFLOW-SLACK-SECRET"
HOOK_PATH = "/in/AIRFLOW-HOOK-SECRET"
HMAC_KEY = "AIRFLOW-HMAC-SECRET"
SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-pa55-SECRET"  # what tests._servers.SmtpServer accepts
FAST = {"timeout_s": 0.5, "retries": 1, "backoff_s": 0.05}
BUDGET_S = 2 * 0.5 + 0.05
CAUGHT: dict[str, Any] = {}


def _after_notifiers(context: Any) -> None:
    """A plain callback after ours: it still runs, and sees the task's own exception."""
    CAUGHT["exception"] = type(context["exception"]).__name__


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """labels one row per user; features one row per (user, day) for two days: joining on user_id fans out."""
    d = tmp_path_factory.mktemp("notify-data")
    n = 500
    pd.DataFrame({"user_id": np.arange(n)}).to_parquet(d / "labels.parquet")
    features = pd.DataFrame({"user_id": np.arange(n), "spend": np.linspace(1, 50, n), "day": pd.Timestamp("2026-11-01")})
    pd.concat([features, features.assign(day=pd.Timestamp("2026-10-01"))]).to_parquet(d / "features.parquet")
    return {"left": str(d / "labels.parquet"), "right": str(d / "features.parquet")}


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, http_server: RecordingHTTPServer,
                smtp_server: SmtpServer) -> None:
    """The three connections, as JSON in AIRFLOW_CONN_* (the Slack one stored the Slack provider's way)."""
    monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_SLACK", json.dumps(
        {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{http_server.port}/services", "password": SLACK_TOKEN}))
    monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_WEBHOOK", json.dumps(
        {"conn_type": "http", "host": http_server.url(HOOK_PATH), "password": HMAC_KEY}))
    monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_server.port, "login": SMTP_USER,
         "password": SMTP_PASSWORD, "extra": {"from": "airflow@example.com", "to": ["oncall@example.com"]}}))


def _notifiers(**kwargs: Any) -> list[Any]:
    return [MlguardSlackNotifier(**kwargs), MlguardWebhookNotifier(**kwargs), MlguardEmailNotifier(**kwargs),
            _after_notifiers]


def _join_dag(dag_id: str, tables: dict[str, str], **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, catchup=False, default_args={"retries": 0}) as dag:
        JoinGuardOperator(task_id="guard_join", left=tables["left"], right=tables["right"], on="user_id",
                          on_failure_callback=_notifiers(**kwargs))
    return register(dag)


def _deliveries(run: Any, task_id: str) -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                                                 key=XCOM_NOTIFICATIONS)).first()
        return None if row is None else XComModel.deserialize_value(row)


def _capture_all(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # Airflow sets it to WARNING; its request lines show URLs


def _no_secrets(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged or printed during the test (the test SMTP server's own log aside); no secret in it."""
    out, err = capfd.readouterr()
    shown = "\n".join([r.getMessage() for r in caplog.records if r.name != "mail.log"] + [out, err])
    for secret in ("AIRFLOW-SLACK-SECRET", "AIRFLOW-HOOK-SECRET", HMAC_KEY, SMTP_PASSWORD):
        assert secret not in shown
    return shown


def test_a_failed_guard_reaches_slack_the_webhook_and_email(
        tables: dict[str, str], connections: None, http_server: RecordingHTTPServer, smtp_server: SmtpServer,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    _capture_all(caplog)
    CAUGHT.clear()
    run = _join_dag("n_join", tables, base_url="http://airflow.example:8080").test()
    assert states(run) == {"guard_join": "failed"} and CAUGHT["exception"] == "GuardCheckFailed"
    report = xcom_report(run, "guard_join")
    cause = report.top_cause
    assert cause is not None and cause.code == "cause.missing_join_key"
    where = {"orchestrator": "airflow", "dag_id": "n_join", "task_id": "guard_join", "run_id": run.run_id,
             "try_number": "1"}
    link = f"http://airflow.example:8080/dags/n_join/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}" \
           "/tasks/guard_join?try_number=1"

    hook, slack = sorted(http_server.requests, key=lambda r: r.path)
    assert slack.path == f"/services/{SLACK_TOKEN}"
    blocks = json.loads(slack.body)["blocks"]
    assert blocks[0]["text"]["text"] == f"Guard '{report.guard}' failed in n_join.guard_join"
    assert blocks[1]["text"]["text"].startswith(f"*{cause.summary}")
    assert f"1. {cause.summary}" in blocks[2]["text"]["text"]
    assert f"*Next check:* {cause.next_check}" in blocks[2]["text"]["text"]
    assert [e["text"] for e in blocks[3]["elements"]] == [f"*{k}:* {v}" for k, v in where.items()]
    assert blocks[4]["elements"][0]["url"] == link

    assert hook.path == HOOK_PATH and hook.headers["X-Mlguard-Signature"].startswith("sha256=")
    body = json.loads(hook.body)
    assert (body["event"], body["where"], body["url"]) == ("mlguard.guard_failed", where, link)
    assert body["error"] == f"GuardCheckFailed: {report.headline()}"
    assert body["headline"].startswith(cause.summary) and body["report"] == report.compact()

    [mail] = smtp_server.messages
    assert mail["To"] == "oncall@example.com" and mail["Subject"].startswith(f"[mlguard] {cause.summary}"[:100])
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert f"  run_id: {run.run_id}\n" in text and f"next check: {cause.next_check}\n" in text

    assert {name: d["ok"] for name, d in _deliveries(run, "guard_join").items()} == {
        "slack:mlguard_slack": True, "webhook:mlguard_webhook": True, "email:mlguard_smtp": True}
    shown = _no_secrets(caplog, capfd)
    assert f"HTTP Request: POST http://127.0.0.1:{http_server.port}/***" in shown  # httpx's line, scrubbed


@pytest.mark.parametrize("mode", ["hang", "500", "refused"])
def test_broken_services_leave_the_task_failure_intact_within_the_budget(
        mode: str, tables: dict[str, str], connections: None, http_server: RecordingHTTPServer,
        smtp_server: SmtpServer, silent_port: int, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    _capture_all(caplog)
    CAUGHT.clear()
    http_server.mode = mode
    smtp_server.data_replies.extend(["554 5.7.1 rejected"] * 3)
    if mode != "500":
        port = silent_port if mode == "hang" else refused_port()
        host = http_server.url if mode == "hang" else lambda path: f"http://127.0.0.1:{refused_port()}{path}"
        monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_SLACK", json.dumps({"conn_type": "slackwebhook",
                                                                     "password": host(f"/services/{SLACK_TOKEN}")}))
        monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_WEBHOOK", json.dumps({"conn_type": "http", "host": host(HOOK_PATH),
                                                                       "password": HMAC_KEY}))
        monkeypatch.setenv("AIRFLOW_CONN_MLGUARD_SMTP", json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": SMTP_USER, "password": SMTP_PASSWORD,
             "extra": {"from": "airflow@example.com", "to": ["oncall@example.com"]}}))
    start = time.monotonic()
    run = _join_dag(f"n_broken_{mode}", tables, **FAST).test()
    # three notifiers in a row, each within its budget; the margin covers dag.test() itself on a busy machine
    assert time.monotonic() - start < 3 * BUDGET_S + 30
    ti = next(iter(run.get_task_instances()))
    assert (ti.state, ti.try_number) == ("failed", 1) and CAUGHT["exception"] == "GuardCheckFailed"
    assert xcom_report(run, "guard_join").top_cause.code == "cause.missing_join_key"
    deliveries = _deliveries(run, "guard_join")
    assert deliveries is not None and not any(d["ok"] for d in deliveries.values())
    assert deliveries["webhook:mlguard_webhook"]["attempts"] == 2  # one retry: every failure here is transient
    shown = _no_secrets(caplog, capfd)
    assert "webhook:mlguard_webhook notification to http://127.0.0.1:" in shown  # logged, by origin only


def test_a_task_that_fails_otherwise_sends_a_task_alert_linked_to_the_configured_ui(
        connections: None, http_server: RecordingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.internal:8080")
    with DAG("n_plain", schedule=None, catchup=False, default_args={"retries": 0}) as dag:

        @task(on_failure_callback=MlguardWebhookNotifier())
        def load() -> None:
            raise ValueError("the warehouse said no")

        load()
    run = register(dag).test()
    assert states(run) == {"load": "failed"}
    [hook] = http_server.requests
    body = json.loads(hook.body)
    assert (body["event"], body["headline"], body["report"]) == (
        "mlguard.task_failed", "ValueError: the warehouse said no", None)
    assert body["url"].startswith("http://airflow.internal:8080/dags/n_plain/runs/")


def test_a_missing_or_incomplete_connection_is_recorded_not_raised(
        tables: dict[str, str], http_server: RecordingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NO_SCHEME", json.dumps({"conn_type": "http", "host": "example.com"}))
    monkeypatch.setenv("AIRFLOW_CONN_NO_RECIPIENTS", json.dumps({"conn_type": "smtp", "host": "127.0.0.1"}))
    CAUGHT.clear()
    with DAG("n_noconn", schedule=None, catchup=False, default_args={"retries": 0}) as dag:
        JoinGuardOperator(task_id="guard_join", left=tables["left"], right=tables["right"], on="user_id",
                          on_failure_callback=[MlguardSlackNotifier("not_defined"),
                                               MlguardWebhookNotifier("no_scheme"),
                                               MlguardEmailNotifier("no_recipients"), _after_notifiers])
    run = register(dag).test()
    assert states(run) == {"guard_join": "failed"} and CAUGHT["exception"] == "GuardCheckFailed"
    deliveries = _deliveries(run, "guard_join")
    assert {name: (d["ok"], d["attempts"]) for name, d in deliveries.items()} == {
        "slack:not_defined": (False, 0), "webhook:no_scheme": (False, 0), "email:no_recipients": (False, 0)}
    assert "'not_defined'" in deliveries["slack:not_defined"]["error"]
    assert "isn't defined" in deliveries["slack:not_defined"]["error"]
    assert "put the full webhook URL" in deliveries["webhook:no_scheme"]["error"]
    assert '"to": ["a@x.org"]' in deliveries["email:no_recipients"]["error"]
    assert http_server.requests == []


def test_a_passing_guard_sends_nothing(tables: dict[str, str], connections: None, http_server: RecordingHTTPServer,
                                       smtp_server: SmtpServer) -> None:
    with DAG("n_quiet", schedule=None, catchup=False, default_args={"retries": 0}) as dag:
        JoinGuardOperator(task_id="guard_join", left=tables["right"], right=tables["right"], on=["user_id", "day"],
                          on_failure_callback=_notifiers())
    run = register(dag).test()
    assert states(run) == {"guard_join": "success"}
    assert http_server.requests == [] and smtp_server.messages == []
    assert _deliveries(run, "guard_join") is None


def test_the_notifiers_are_listed_in_the_provider_info() -> None:
    from airflow.providers_manager import ProvidersManager

    listed = get_provider_info()["notifications"]
    assert listed == ["mlguard_orchestration.airflow.notifiers.MlguardSlackNotifier",
                      "mlguard_orchestration.airflow.notifiers.MlguardWebhookNotifier",
                      "mlguard_orchestration.airflow.notifiers.MlguardEmailNotifier"]
    assert set(listed) <= set(ProvidersManager().notification)
    assert mg.__version__ in get_provider_info()["versions"]


def test_the_example_dag_delivers_the_diagnosis_of_the_task_that_stopped_it(
        tmp_path, connections: None, http_server: RecordingHTTPServer, smtp_server: SmtpServer,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    from dags_examples.churn_dag import build_dag

    _capture_all(caplog)
    dag = build_dag(store=str(tmp_path / "store"),
                    on_failure_callback=[MlguardWebhookNotifier(), MlguardEmailNotifier()])
    run = dag.test(run_conf={"bug": "wrong_join_key"})
    got = states(run)
    assert got["guard_join"] == "failed" and got["register"] == "upstream_failed", got
    report = xcom_report(run, "guard_join")
    assert report is not None and report.top_cause is not None and report.top_cause.code == "cause.missing_join_key"
    [hook] = http_server.requests  # only the task that failed posts: upstream_failed tasks call no callback
    body = json.loads(hook.body)
    assert body["where"] == {"orchestrator": "airflow", "dag_id": "mlguard_churn", "task_id": "guard_join",
                             "run_id": run.run_id, "try_number": "1"}
    assert body["report"] == report.compact() and body["headline"].startswith(report.top_cause.summary)
    [mail] = smtp_server.messages
    assert mail["Subject"].startswith(f"[mlguard] {report.top_cause.summary}"[:100])
    assert "mlguard_churn" in mail.get_body(("plain",)).get_content()
    _no_secrets(caplog, capfd)
