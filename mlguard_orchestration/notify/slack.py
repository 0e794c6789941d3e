"""Slack through an incoming webhook: a Block Kit message with a plain-text fallback.

Slack's limits (https://api.slack.com/reference/block-kit/blocks): a header's text ≤ 150 characters, a
section's text ≤ 3000, a context ≤ 10 elements, ≤ 50 blocks, a button's URL ≤ 3000. We send at most seven blocks
and keep every text well under its limit, so Slack never rejects a message for its size.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from mlguard_orchestration.notify._http import check_url, post
from mlguard_orchestration.notify._secrets import Secrets
from mlguard_orchestration.notify.alert import Alert, clip
from mlguard_orchestration.notify.delivery import Delivery, Policy, deliver
from mlguard_orchestration.notify.links import open_label

SECTION_MAX_CHARS = 3_000
FALLBACK_MAX_CHARS = 3_000


class SlackNotifier:
    """Posts an Alert to a Slack incoming webhook (the URL is the secret; it is never logged)."""

    def __init__(self, webhook_url: SecretStr | str, *, base_url: str | None = None, timeout_s: float = 5.0,
                 retries: int = 2, backoff_s: float = 0.5, name: str = "slack") -> None:
        self._url = webhook_url if isinstance(webhook_url, SecretStr) else SecretStr(webhook_url)
        check_url(self._url.get_secret_value(), "The Slack webhook URL",
                  "https://hooks.slack.com/services/T…/B…/…")
        self.secrets = Secrets()
        self._target = self.secrets.add_url(self._url.get_secret_value())
        self.base_url = base_url
        self.policy = Policy(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.name = name

    def __repr__(self) -> str:
        return f"SlackNotifier(webhook_url={self._target}/***, name={self.name!r})"

    @property
    def budget_s(self) -> float:
        return self.policy.budget_s

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body: Block Kit blocks plus `text`, which Slack shows in notifications and old clients."""
        return {"text": clip(f"{alert.title}: {alert.headline}", FALLBACK_MAX_CHARS),
                "blocks": blocks(alert, self.base_url)}

    def send(self, alert: Alert) -> Delivery:
        body = json.dumps(self.payload(alert.scrubbed(self.secrets))).encode()
        headers = {"Content-Type": "application/json"}
        return deliver(self.name, self._target, self.policy,
                       lambda t: post(self._url.get_secret_value(), body, headers, t, self.secrets), self.secrets)


def blocks(alert: Alert, base_url: str | None) -> list[dict[str, Any]]:
    """header · headline · what is new since the previous run · causes with next checks (or the error) · where · a button to the run."""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title, "emoji": True}},
        _section(f"*{_esc(alert.headline)}*"),
    ]
    if alert.news:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(alert.news)}]})
    causes = alert.causes()
    if causes:
        lines = ["*Likely causes*"]
        for i, c in enumerate(causes, 1):
            lines.append(f"{i}. {_esc(clip(c.summary, 500))} _({c.confidence:.0%}, `{c.code}`)_")
            lines.append(f"     *Next check:* {_esc(clip(c.next_check, 500))}")
        out.append(_section("\n".join(lines)))
    if alert.error and not alert.guard_failed:
        out.append(_section(f"*Error*\n```{_esc(clip(alert.error, 2_000))}```"))
    where = alert.where_lines()
    if where:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*{_esc(k)}:* {_esc(v)}"}
                                                    for k, v in where]})
    link = alert.link(base_url)
    if link and len(link) <= 3_000:
        label = open_label(alert.where)
        out.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": link}]})
    return out


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX_CHARS)}}


def _esc(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
