"""Telling people a task failed: render a report, and send an Alert to Slack, a JSON webhook or email.

    from mlguard_orchestration.notify import Alert, SlackNotifier, notify

    deliveries = notify(Alert.of(report, error=exc), [SlackNotifier(webhook_url)])

Orchestrator-agnostic: the Airflow notifiers and the Prefect hooks build the Alert from their context and call
these. A notifier never raises and never outlives its time budget; see `delivery.py`.
"""

from mlguard_orchestration.notify.alert import Alert
from mlguard_orchestration.notify.delivery import Delivery, Notifier, notify
from mlguard_orchestration.notify.email import EmailNotifier
from mlguard_orchestration.notify.links import run_url
from mlguard_orchestration.notify.render import to_markdown, to_text
from mlguard_orchestration.notify.slack import SlackNotifier
from mlguard_orchestration.notify.webhook import WebhookNotifier

__all__ = ["Alert", "Delivery", "EmailNotifier", "Notifier", "SlackNotifier", "WebhookNotifier", "notify", "run_url",
           "to_markdown", "to_text"]
