"""Prefect 3 adapter: guard decorators that compose with `@task`, a ready guard task, artifacts and an event
per guard run, failure hooks that post the report with the notifiers, and Blocks for their settings and
secrets; `guard_gate` is the evaluate → register gate. Thin by design: the core decides, `_report.py` translates.
"""

from __future__ import annotations

from mlguard_orchestration.prefect._report import (
    EVENT_FAILED,
    GuardCheckFailed,
    GuardSourceUnavailable,
    GuardSpecInvalid,
    artifact_key,
    retry_condition,
)
from mlguard_orchestration.prefect.blocks import (
    EmailNotifierBlock,
    NotifierBlock,
    SlackNotifierBlock,
    WebhookNotifierBlock,
)
from mlguard_orchestration.prefect.decorators import (
    default_store,
    guard_gate,
    guard_inputs,
    guard_output,
    guard_training,
)
from mlguard_orchestration.prefect.hooks import alert_for, notify_on_failure
from mlguard_orchestration.prefect.tasks import guard_data

__all__ = [
    "EVENT_FAILED", "EmailNotifierBlock", "GuardCheckFailed", "GuardSourceUnavailable", "GuardSpecInvalid",
    "NotifierBlock", "SlackNotifierBlock", "WebhookNotifierBlock", "alert_for", "artifact_key", "default_store",
    "guard_data", "guard_gate", "guard_inputs", "guard_output", "guard_training", "notify_on_failure", "retry_condition",
]
