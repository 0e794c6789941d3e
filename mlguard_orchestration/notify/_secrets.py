"""Keeping credentials out of logs, errors, `repr()` and other services — in any encoding.

Each notifier holds its own `Secrets`: nothing is shared process-wide, so one notifier's configuration never
changes what another one shows. A Secrets knows its values in every form text can carry them: raw, percent-
encoded (httpx logs a URL that way), JSON-escaped (a server may answer `"https:\\/\\/hooks…"`), base64 (the SMTP
AUTH exchange, a Basic header), and base64 at any alignment inside a longer blob. `scrub` replaces them all.

A value shorter than MIN_VALUE_CHARS is never scrubbed by value: a one-character password would turn every
occurrence of that character into `***`, and a short value is likely to occur by chance. Such values are kept
out by field instead, in any text (`redact_fields`): JSON members and query parameters named like credentials
(`"token": …`, `?sig=…`), the headers the notifier sends, `Authorization`/`Bearer` values, the SMTP AUTH line,
the password in a URL's user info, and the path of a Slack webhook. Server replies go through `scrub` before
they are stored in a Delivery or logged.

httpx logs every request URL at INFO on the "httpx" logger; a filter on that logger scrubs those records with
the Secrets of the request being sent (a context variable set around the request), and leaves every other
record alone.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

MIN_VALUE_CHARS = 6  # shorter values are kept out by field, never replaced wherever they occur
_TOKEN_SEGMENT_CHARS = 16  # a URL's last path segment this long is a token of its own (a server may quote it)
SHOWN = "***"

# Names of fields that hold credentials: a credential word as a whole part of the name (`X-Api-Key`,
# `access_token`, `Authorization`), never inside another word (`SMTPAuthenticationError` is no field).
_WORD = (r"(?:token|secret|passw(?:or)?d|pwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|credentials?|"
         r"signature|sig|authorization|auth|cookie|webhook[-_]?url)")
_CREDENTIAL = r"(?:[A-Za-z0-9]+[-_.])*" + _WORD + r"(?:[-_.][A-Za-z0-9]+)*"
_START = r"(?<![A-Za-z0-9_.-])"
_FIELD_PATTERNS = [
    # "token": "…"   (a JSON member, any spacing; the value up to its closing quote)
    (re.compile(r'("' + _CREDENTIAL + r'"\s*:\s*")((?:[^"\\]|\\.)*)(")', re.IGNORECASE), r"\1" + SHOWN + r"\3"),
    # ?token=…  &sig=…  password=… (query strings, key=value text)
    (re.compile(_START + r"(" + _CREDENTIAL + r"=)([^&\s\"'<>;,)\\]+)", re.IGNORECASE), r"\1" + SHOWN),
    # Authorization: Bearer …   X-Api-Key: …   (header lines)
    (re.compile(_START + r"(" + _CREDENTIAL + r"\s*:[ \t]*)(?!\")([^\r\n,;\"\\]+)", re.IGNORECASE), r"\1" + SHOWN),
    (re.compile(r"(\b(?:Bearer|Basic)\s+)([A-Za-z0-9._~+/=-]{4,})"), r"\1" + SHOWN),
    # AUTH PLAIN <base64>, AUTH LOGIN <base64>, … (an SMTP server quoting the exchange)
    (re.compile(r"(\bAUTH\s+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5)\s+)(\S+)", re.IGNORECASE), r"\1" + SHOWN),
    # scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@\"\\]*:)([^@\s/\"\\]+)(@)", re.IGNORECASE), r"\1" + SHOWN + r"\3"),
    # a Slack webhook, whoever configured it
    (re.compile(r"(hooks\.slack\.com)((?:\\?/)(?:services|workflows|triggers)(?:[^\s\"'<>\\]|\\/)+)", re.IGNORECASE),
     r"\1/" + SHOWN),
]


def redact_fields(text: str, names: Iterable[str] = ()) -> str:
    """`text` with the values of credential-like fields (and of the header names `names`) replaced by ***."""
    for pattern, repl in _FIELD_PATTERNS:
        text = pattern.sub(repl, text)
    for name in names:
        n = re.escape(name)
        text = re.sub(r'("' + n + r'"\s*:\s*")((?:[^"\\]|\\.)*)(")', r"\1" + SHOWN + r"\3", text, flags=re.IGNORECASE)
        text = re.sub(r"(\b" + n + r"\s*[:=][ \t]*)(?!\")([^\r\n,;&\"\\]+)", r"\1" + SHOWN, text, flags=re.IGNORECASE)
    return text


def origin(url: str) -> str:
    """scheme://host[:port] of `url`: the part of a webhook URL that is safe to show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"


def encodings(value: str) -> set[str]:
    """The forms `value` can take in text: raw, percent-encoded, JSON-escaped, base64 (whole, and the part
    that any base64 blob containing it carries, at each of the three alignments)."""
    forms = {value, quote(value, safe=""), quote(value, safe="/:"), quote_plus(value), value.replace("/", "\\/"),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}  # %c3%bc as well as %C3%BC
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms |= {encode(raw).decode(), encode(raw).decode().rstrip("=")}
        for shift in (0, 1, 2):  # the value `shift` bytes into a 3-byte group of a longer blob:
            blob = encode(b"\0" * shift + raw).decode()  # the characters whose 6 bits all come from the value
            forms.add(blob[-(-4 * shift // 3):4 * (shift + len(raw)) // 3])
    return {f for f in forms if len(f) >= MIN_VALUE_CHARS}


class Secrets:
    """One notifier's secrets: scrubbed from any text it logs, stores or returns (see the module docstring)."""

    def __init__(self) -> None:
        self._forms: dict[str, str] = {}  # a form of a secret -> what is shown instead
        self._fields: set[str] = set()  # header names whose values are secret, however short

    def __repr__(self) -> str:
        return f"Secrets({len(self._forms)} forms, {len(self._fields)} fields)"

    def add(self, value: str | None, shown: str = SHOWN) -> None:
        """Treat `value` (a password, an HMAC key, a header value) as secret."""
        if value:
            for form in encodings(value):
                self._forms.setdefault(form, shown)

    def add_field(self, name: str) -> None:
        """Treat the value of field/header `name` as secret wherever it appears, whatever its length."""
        if name:
            self._fields.add(name)

    def add_url(self, url: str) -> str:
        """Treat everything after the origin of `url` as secret (the whole URL, its path and query, its query
        values and a token-like last segment, in every encoding); return the origin, which is safe to show."""
        shown = origin(url)
        self.add(url, f"{shown}/{SHOWN}")
        import httpx

        try:  # the form httpx sends and logs: percent-encoded
            normalised: httpx.URL | None = httpx.URL(url)
        except httpx.InvalidURL:  # refused by the notifier itself, with a message that does not quote it
            normalised = None
        if normalised is not None:
            self.add(str(normalised), f"{shown}/{SHOWN}")
            self.add(normalised.raw_path.decode("ascii", "replace"), f"/{SHOWN}")
        parts = urlsplit(url)
        if len(parts.path) > 1 or parts.query:
            self.add(parts.path + (f"?{parts.query}" if parts.query else ""), f"/{SHOWN}")
        last = parts.path.rstrip("/").rpartition("/")[2]
        if len(last) >= _TOKEN_SEGMENT_CHARS:
            self.add(last)
        for _, value in parse_qsl(parts.query, keep_blank_values=False):
            self.add(value)
        if parts.password:
            self.add(parts.password)
        return shown

    def add_login(self, user: str, password: str | None) -> None:
        """An SMTP login: the password, and the AUTH PLAIN and AUTH LOGIN lines that carry it in base64."""
        if not password:
            return
        self.add(password)
        for blob in (f"\0{user}\0{password}", f"{user}\0{user}\0{password}"):
            self.add(base64.b64encode(blob.encode()).decode())

    def __or__(self, other: Secrets) -> Secrets:
        both = Secrets()
        both._forms = {**other._forms, **self._forms}
        both._fields = self._fields | other._fields
        return both

    def scrub(self, text: str, *, fields: bool = True) -> str:
        """`text` without any form of a secret (longest first, so a URL wins over its parts) and, unless
        `fields` is False, with credential fields redacted."""
        for form, shown in sorted(self._forms.items(), key=lambda kv: -len(kv[0])):
            if form in text:
                text = text.replace(form, shown)
        return redact_fields(text, self._fields) if fields else text


_REQUEST: contextvars.ContextVar[Secrets | None] = contextvars.ContextVar("mlguard_request_secrets", default=None)


@contextmanager
def sending(secrets: Secrets) -> Iterator[None]:
    """Within this block, records of the "httpx" logger are scrubbed with `secrets` (the request's own)."""
    token = _REQUEST.set(secrets)
    try:
        yield
    finally:
        _REQUEST.reset(token)


class _ScrubRecords(logging.Filter):
    """Rewrites a log record that shows a secret of the request being sent; passes every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _REQUEST.get()
        if secrets is None:
            return True
        message = record.getMessage()
        clean = secrets.scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = _ScrubRecords()
for _name in ("httpx", "httpcore.http11", "httpcore.connection"):
    if not any(isinstance(f, _ScrubRecords) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_FILTER)
