"""One HTTP POST attempt for the Slack and webhook notifiers: a status, or an AttemptFailed that says whether
trying again may help (connection errors, timeouts, 429 and 5xx may; other statuses will not)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from mlguard_orchestration._version import __version__
from mlguard_orchestration.notify._secrets import Secrets, sending
from mlguard_orchestration.notify.delivery import AttemptFailed

USER_AGENT = f"mlguard-orchestration/{__version__}"
_MAX_REPLY_CHARS = 200  # of the server's reply kept in the error (it says why: Slack's "invalid_payload", …)
_MAX_REPLY_READ = 16_384  # read this much, scrub it whole, then keep the start


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float, secrets: Secrets) -> int:
    """POST `body` to `url` within `timeout_s` per phase (connect, write, read); redirects are not followed, so
    the body and its signature go only where they were addressed. The server's reply is scrubbed with
    `secrets` before it goes into the error (a server may echo the token it was sent)."""
    reply = b""
    complete = True
    try:
        with sending(secrets), httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client, \
                client.stream("POST", url, content=body, headers={"User-Agent": USER_AGENT, **headers}) as response:
            status = response.status_code
            if not 200 <= status < 300:
                for chunk in response.iter_bytes():
                    reply += chunk
                    if len(reply) > _MAX_REPLY_READ:
                        complete = False
                        break
    except httpx.TimeoutException as exc:
        raise AttemptFailed(f"timed out after {timeout_s:.1f}s ({type(exc).__name__})", transient=True) from None
    except httpx.TransportError as exc:
        raise AttemptFailed(secrets.scrub(f"{type(exc).__name__}: {exc}"), transient=True) from None
    if 200 <= status < 300:
        return status
    if not complete:  # never show text that a secret cut at the end of what was read could still be part of
        reply = reply[:_MAX_REPLY_READ // 2]
    text = " ".join(secrets.scrub(reply.decode(errors="replace")).split())
    text = text if len(text) <= _MAX_REPLY_CHARS else text[: _MAX_REPLY_CHARS - 1] + "…"
    raise AttemptFailed(f"HTTP {status}" + (f": {text}" if text else ""), transient=status == 429 or status >= 500,
                        status=status)


def check_url(url: str, what: str, example: str) -> None:
    """A clear error for a URL that cannot be posted to, without echoing the URL (it may be a secret)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL like {example}; got a value with scheme "
                         f"{parts.scheme or '(none)'!r} and {'a' if parts.hostname else 'no'} host")
