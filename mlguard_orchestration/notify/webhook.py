"""A generic JSON webhook, optionally signed the way GitHub and Stripe sign theirs.

The body is one JSON object, never larger than `max_bytes` bytes (64,000 by default), whatever the report and
the task's exception hold:
`{"event", "headline", "where", "url", "error", "news", "report"}` where `report` is the guard's compact report
(trimmed to fit) or null. With a secret, two headers let the receiver check that the body came from us and is
fresh:

    X-Mlguard-Timestamp: <unix seconds>
    X-Mlguard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The receiver recomputes the HMAC over the raw body bytes, compares with `hmac.compare_digest`, and rejects
timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from mlguard_orchestration._json import clip_text, json_size, shrink
from mlguard_orchestration.notify._http import check_url, post
from mlguard_orchestration.notify._secrets import Secrets
from mlguard_orchestration.notify.alert import Alert
from mlguard_orchestration.notify.delivery import Delivery, Policy, deliver

TIMESTAMP_HEADER = "X-Mlguard-Timestamp"
SIGNATURE_HEADER = "X-Mlguard-Signature"
MIN_BYTES = 8_000  # the envelope (headline, where, url, error, news) takes at most 13/32 of it: the report gets the rest


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of the signature header: `sha256=` + hex HMAC-SHA256 over `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookNotifier:
    """POSTs an Alert as JSON to any URL (the URL, the secret and header values are never logged)."""

    def __init__(self, url: SecretStr | str, *, secret: SecretStr | str | None = None,
                 headers: Mapping[str, str] | None = None, max_bytes: int = 64_000, base_url: str | None = None,
                 timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5, name: str = "webhook") -> None:
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        check_url(self._url.get_secret_value(), "The webhook URL", "https://example.com/hooks/mlguard")
        if max_bytes < MIN_BYTES:
            raise ValueError(f"max_bytes={max_bytes} is too small for an mlguard webhook: use at least {MIN_BYTES}")
        self.secrets = Secrets()
        self._target = self.secrets.add_url(self._url.get_secret_value())
        self._secret = SecretStr(secret) if isinstance(secret, str) else secret
        self._headers = dict(headers or {})
        for header, value in self._headers.items():  # a header value is secret however short: out by field
            self.secrets.add(value)
            self.secrets.add_field(header)
        if self._secret is not None:
            self.secrets.add(self._secret.get_secret_value())
        self.max_bytes = max_bytes
        self.base_url = base_url
        self.policy = Policy(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.name = name

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self._target}/***, signed={self._secret is not None}, name={self.name!r})"

    @property
    def budget_s(self) -> float:
        return self.policy.budget_s

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON object sent: every part gets a share of `max_bytes` (measured in bytes of JSON, where one
        character may take 12), and the report is trimmed to what is left, so the whole never exceeds it."""
        link = alert.link(self.base_url)
        data: dict[str, Any] = {
            "event": alert.event, "headline": clip_text(alert.headline, self.max_bytes // 16),
            "where": shrink(dict(alert.where_lines()), self.max_bytes // 8) or {},
            "url": link if link is not None and json_size(link) <= self.max_bytes // 16 else None,
            "error": None if alert.error is None else clip_text(alert.error, self.max_bytes // 8),
            "news": None if alert.news is None else clip_text(alert.news, self.max_bytes // 32),
            "report": None}
        if alert.report is None:
            return data
        room = self.max_bytes - json_size(data) - 16
        data["report"] = alert.report.compact(room)
        return data

    def send(self, alert: Alert) -> Delivery:
        body = json.dumps(self.payload(alert.scrubbed(self.secrets))).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        if self._secret is not None:
            stamp = str(int(time.time()))
            headers |= {TIMESTAMP_HEADER: stamp,
                        SIGNATURE_HEADER: signature(self._secret.get_secret_value(), stamp, body)}
        return deliver(self.name, self._target, self.policy,
                       lambda t: post(self._url.get_secret_value(), body, headers, t, self.secrets), self.secrets)
