"""The core notifiers as Airflow notifiers, for `on_failure_callback=[...]`, with secrets in connections.

    DataGuardOperator(..., on_failure_callback=[MlguardSlackNotifier(), MlguardEmailNotifier(to=["ml@x.org"])])

Connections (any conn_type; `AIRFLOW_CONN_…` JSON works):
- Slack (`slack_conn_id`, default "mlguard_slack"): `password` = the incoming-webhook URL, or the token part
  `T…/B…/…` with `host` = https://hooks.slack.com/services (how the Slack provider's connection stores it).
- Webhook (`webhook_conn_id`, default "mlguard_webhook"): `host` = the full URL; `password` = the HMAC secret
  (optional: signs the body); extra `{"headers": {...}}` (optional, e.g. an Authorization header).
- Email (`smtp_conn_id`, default "mlguard_smtp"): `host`, `port` (25), `login`, `password`; extra
  `{"from": "mlguard@x.org", "to": ["oncall@x.org"], "starttls": true, "ssl": false}`; the `to` and
  `from_email` arguments win over the extra.

Each notifier reads the guard's report (`report_from_context`; None when the task failed otherwise), builds
the Alert from the task's context, sends it, and records the Delivery under the XCom key
`mlguard_notifications` of the failed task (`{notifier name: delivery}`), so a failed notification is visible
in the UI next to the report. It never raises: the task's own failure is what Airflow records.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypedDict

from airflow.sdk import BaseNotifier, Connection

from mlguard_orchestration.airflow._report import report_from_context, run_context
from mlguard_orchestration.notify import (
    Alert,
    Delivery,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)
from mlguard_orchestration.notify.delivery import failed

XCOM_NOTIFICATIONS = "mlguard_notifications"
SLACK_SERVICES = "https://hooks.slack.com/services"

log = logging.getLogger("mlguard.notify")


class _Policy(TypedDict):
    """The delivery policy every core notifier takes as keyword arguments."""

    timeout_s: float
    retries: int
    backoff_s: float


class _MlguardNotifier(BaseNotifier):
    """Shared: alert from the context, a core notifier from the connection, the delivery recorded in XCom."""

    kind: str
    conn_field: str

    def __init__(self, *, base_url: str | None, timeout_s: float, retries: int, backoff_s: float) -> None:
        super().__init__()
        self.base_url = base_url
        self.policy: _Policy = {"timeout_s": timeout_s, "retries": retries, "backoff_s": backoff_s}

    @property
    def conn_id(self) -> str:
        return str(getattr(self, self.conn_field))

    def core(self, conn: Any, name: str, base_url: str | None) -> Notifier:
        raise NotImplementedError

    def notify(self, context: Any) -> None:
        name = f"{self.kind}:{self.conn_id}"
        try:
            base_url = self.base_url if self.base_url is not None else _configured_base_url()
            alert = alert_from_context(context)
            try:
                notifier = self.core(Connection.get(self.conn_id), name, base_url)
            except Exception as exc:  # noqa: BLE001 - a missing or incomplete connection is reported, not raised
                delivery = failed(name, f"Airflow connection {self.conn_id!r}: {type(exc).__name__}: {exc}")
            else:
                delivery = notifier.send(alert)
            _record(context, delivery)
        except Exception as exc:  # noqa: BLE001 - the task's own failure must stay the story
            failed(name, f"{type(exc).__name__}: {exc}")


class MlguardSlackNotifier(_MlguardNotifier):
    """Posts the failure to Slack (Block Kit) through the incoming webhook in `slack_conn_id`."""

    template_fields: Sequence[str] = ("slack_conn_id", "base_url")
    kind, conn_field = "slack", "slack_conn_id"

    def __init__(self, slack_conn_id: str = "mlguard_slack", *, base_url: str | None = None, timeout_s: float = 5.0,
                 retries: int = 2, backoff_s: float = 0.5) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.slack_conn_id = slack_conn_id

    def core(self, conn: Any, name: str, base_url: str | None) -> Notifier:
        secret = conn.password or ""
        if not secret:
            raise ValueError("put the Slack incoming-webhook URL (https://hooks.slack.com/services/T…/B…/…) in the "
                             "connection's password")
        url = secret if "://" in secret else f"{(conn.host or SLACK_SERVICES).rstrip('/')}/{secret.lstrip('/')}"
        return SlackNotifier(url, base_url=base_url, name=name, **self.policy)


class MlguardWebhookNotifier(_MlguardNotifier):
    """POSTs the failure as JSON to the URL in `webhook_conn_id`, signed when the connection has a password."""

    template_fields: Sequence[str] = ("webhook_conn_id", "base_url")
    kind, conn_field = "webhook", "webhook_conn_id"

    def __init__(self, webhook_conn_id: str = "mlguard_webhook", *, base_url: str | None = None,
                 max_bytes: int = 64_000, timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.webhook_conn_id = webhook_conn_id
        self.max_bytes = max_bytes

    def core(self, conn: Any, name: str, base_url: str | None) -> Notifier:
        if not conn.host or "://" not in conn.host:
            raise ValueError("put the full webhook URL (https://example.com/hooks/mlguard) in the connection's host")
        return WebhookNotifier(conn.host, secret=conn.password or None, headers=conn.extra_dejson.get("headers"),
                               max_bytes=self.max_bytes, base_url=base_url, name=name, **self.policy)


class MlguardEmailNotifier(_MlguardNotifier):
    """Mails the failure (text + HTML) through the SMTP server in `smtp_conn_id`."""

    template_fields: Sequence[str] = ("smtp_conn_id", "to", "from_email", "base_url")
    kind, conn_field = "email", "smtp_conn_id"

    def __init__(self, smtp_conn_id: str = "mlguard_smtp", *, to: Sequence[str] | None = None,
                 from_email: str | None = None, base_url: str | None = None, timeout_s: float = 10.0,
                 retries: int = 2, backoff_s: float = 1.0) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.smtp_conn_id = smtp_conn_id
        self.to = to
        self.from_email = from_email

    def core(self, conn: Any, name: str, base_url: str | None) -> Notifier:
        extra = conn.extra_dejson
        to = self.to if self.to is not None else extra.get("to")
        sender = self.from_email or extra.get("from")
        if not to or not sender:
            raise ValueError('say who sends and who receives: extra {"from": "mlguard@x.org", "to": ["a@x.org"]} '
                             "or the notifier's from_email= and to= arguments")
        return EmailNotifier(conn.host or "", int(conn.port or 25), sender=sender,
                             recipients=[to] if isinstance(to, str) else list(to), username=conn.login or None,
                             password=conn.password or None, starttls=bool(extra.get("starttls", False)),
                             ssl=bool(extra.get("ssl", False)), base_url=base_url, name=name, **self.policy)


def alert_from_context(context: Any) -> Alert:
    """The Alert for a failed task: its guard report (if any), where it ran, and its exception."""
    where = run_context(context)
    map_index = getattr(context["ti"], "map_index", -1)
    if map_index is not None and map_index >= 0:
        where["map_index"] = str(map_index)
    return Alert.of(report_from_context(context), where=where, error=context.get("exception"))


def _configured_base_url() -> str | None:
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None) or None


def _record(context: Any, delivery: Delivery) -> None:
    """Add `delivery` to the failed task's `mlguard_notifications` XCom (one entry per notifier)."""
    ti = context["ti"]
    try:
        seen = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_NOTIFICATIONS) or {}
        ti.xcom_push(key=XCOM_NOTIFICATIONS, value={**seen, delivery.notifier: delivery.model_dump(mode="json")})
    except Exception as exc:  # noqa: BLE001 - the record is a courtesy; the log already has the outcome
        log.warning("could not record the %s notification in XCom: %s: %s", delivery.notifier, type(exc).__name__,
                    exc)
