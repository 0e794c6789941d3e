"""Keeping credentials out of logs and messages.

A Slack incoming-webhook URL or a generic webhook URL *is* a credential (whoever has it can post), so it is
shown as scheme + host only. Every notifier registers its secrets here when it is built; `scrub` removes them
from any text we log or return (exception messages from httpx and smtplib can quote the URL or the server's
reply). httpx's client logs every request URL at INFO on the "httpx" logger, so a filter on that logger
rewrites just the records that contain a registered secret and leaves everyone else's records alone.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

_lock = threading.Lock()
_replacements: dict[str, str] = {}  # secret -> what is shown instead


def origin(url: str) -> str:
    """scheme://host[:port] of `url`: the part of a webhook URL that is safe to show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"


def register_url(url: str) -> str:
    """Treat everything after the origin of `url` as secret (a server may quote the path alone back); return
    the origin for logs."""
    shown = origin(url)
    _register(url, f"{shown}/***")
    parts = urlsplit(url)
    _register(parts.path + (f"?{parts.query}" if parts.query else "") if len(parts.path) > 1 else "", "/***")
    return shown


def register(secret: str) -> None:
    """Treat `secret` (a password, an HMAC key, a header value) as secret."""
    _register(secret, "***")


def _register(secret: str, shown: str) -> None:
    if secret:
        with _lock:
            _replacements[secret] = shown


def scrub(text: str) -> str:
    """`text` with every registered secret replaced (longest first, so a URL wins over its parts)."""
    with _lock:
        secrets = sorted(_replacements.items(), key=lambda kv: -len(kv[0]))
    for secret, shown in secrets:
        if secret in text:
            text = text.replace(secret, shown)
    return text


class _ScrubRecords(logging.Filter):
    """Rewrites a log record whose message contains a registered secret; passes every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = _ScrubRecords()
logging.getLogger("httpx").addFilter(_FILTER)
