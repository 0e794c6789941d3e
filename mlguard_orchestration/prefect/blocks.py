"""Notifier settings and secrets as Prefect Blocks: saved once (UI, CLI or `.save()`), loaded by name in a flow,
secrets as `SecretStr` (shown as ******** in the UI, the API and logs). Each block builds the core notifier.

    SlackNotifierBlock(webhook_url="https://hooks.slack.com/services/…").save("ml-alerts")
    @flow(on_failure=[notify_on_failure(SlackNotifierBlock.load("ml-alerts"))])
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from mlguard_orchestration.notify import EmailNotifier, SlackNotifier, WebhookNotifier


class NotifierBlock(Block):
    """What every notifier block has: a link base for the Prefect UI and the time budget of one send."""

    _block_type_name: ClassVar[str] = "mlguard notifier"
    _block_type_slug: ClassVar[str] = "mlguard-notifier"

    base_url: str | None = Field(default=None, description="The Prefect UI's URL, for links to the failed run "
                                 "(default: PREFECT_UI_URL).")
    timeout_s: float = Field(default=5.0, gt=0, le=300, description="Per attempt.")
    retries: int = Field(default=2, ge=0, le=10, description="Extra attempts after a transient failure.")

    def notifier(self) -> Any:
        """The core notifier these settings describe."""
        raise NotImplementedError(f"{type(self).__name__} does not build a notifier")

    def _common(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "timeout_s": self.timeout_s, "retries": self.retries}


class SlackNotifierBlock(NotifierBlock):
    """A Slack incoming webhook. Its URL is the credential."""

    _block_type_name: ClassVar[str] = "mlguard Slack notifier"
    _block_type_slug: ClassVar[str] = "mlguard-slack-notifier"

    webhook_url: SecretStr = Field(description="https://hooks.slack.com/services/T…/B…/…")

    def notifier(self) -> SlackNotifier:
        return SlackNotifier(self.webhook_url, **self._common())


class WebhookNotifierBlock(NotifierBlock):
    """Any HTTPS endpoint taking the alert as JSON, signed with HMAC-SHA256 when a secret is set."""

    _block_type_name: ClassVar[str] = "mlguard webhook notifier"
    _block_type_slug: ClassVar[str] = "mlguard-webhook-notifier"

    url: SecretStr = Field(description="Where to POST (treated as a credential: it often embeds a token).")
    secret: SecretStr | None = Field(default=None, description="HMAC key for the signature header.")

    def notifier(self) -> WebhookNotifier:
        return WebhookNotifier(self.url, secret=self.secret, **self._common())


class EmailNotifierBlock(NotifierBlock):
    """An SMTP server and who gets the mail."""

    _block_type_name: ClassVar[str] = "mlguard email notifier"
    _block_type_slug: ClassVar[str] = "mlguard-email-notifier"

    host: str
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str
    recipients: list[str]
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(default=False, description="Upgrade a plain connection (usually port 587).")
    ssl: bool = Field(default=False, description="TLS from the start (usually port 465).")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Per attempt.")

    def notifier(self) -> EmailNotifier:
        return EmailNotifier(self.host, self.port, sender=self.sender, recipients=self.recipients,
                             username=self.username, password=self.password, starttls=self.starttls, ssl=self.ssl,
                             **self._common())
