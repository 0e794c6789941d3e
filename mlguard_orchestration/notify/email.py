"""Email through SMTP: one multipart/alternative message, plain text and HTML saying the same thing.

Every value that came from data or a report is HTML-escaped, the subject is the bounded headline on one line,
and each body is bounded. smtplib's timeout applies to every socket operation; a reply in the 4xx range,
a dropped or refused connection and a timeout are retried, a 5xx reply (bad credentials, unknown recipient)
is not. Once the server has accepted the message, a failure to say goodbye is ignored, so nobody gets it twice.
"""

from __future__ import annotations

import html
import smtplib
import ssl as ssl_lib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import SecretStr

from mlguard_orchestration.notify._secrets import Secrets
from mlguard_orchestration.notify.alert import Alert, clip
from mlguard_orchestration.notify.delivery import AttemptFailed, Delivery, Policy, deliver
from mlguard_orchestration.notify.render import to_text

SUBJECT_MAX_CHARS = 150
REPORT_MAX_CHARS = 16_000
TEXT_MAX_CHARS = 24_000


class EmailNotifier:
    """Mails an Alert through an SMTP server (the password is never logged)."""

    def __init__(self, host: str, port: int = 25, *, sender: str, recipients: Sequence[str],
                 username: str | None = None, password: SecretStr | str | None = None, starttls: bool = False,
                 ssl: bool = False, base_url: str | None = None, timeout_s: float = 10.0, retries: int = 2,
                 backoff_s: float = 1.0, name: str = "email") -> None:
        if isinstance(recipients, str):
            raise TypeError(f"recipients must be a list of addresses, got the string {recipients!r}: "
                             "write recipients=['a@example.com', …]")
        for role, address in [("sender", sender), *(("recipient", r) for r in recipients)]:
            if "@" not in address or any(c in address for c in "\r\n"):
                raise ValueError(f"email {role} {address!r} is not an address like ops@example.com")
        if not recipients:
            raise ValueError("EmailNotifier needs at least one recipient")
        if starttls and ssl:
            raise ValueError("choose one of starttls=True (upgrade a plain connection, usually port 587) and "
                             "ssl=True (TLS from the start, usually port 465), not both")
        if not host or not 0 < port < 65536:
            raise ValueError(f"SMTP server {host!r}:{port} is not a host and a port between 1 and 65535")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.username = username
        self._password = SecretStr(password) if isinstance(password, str) else password
        self.secrets = Secrets()
        if self._password is not None:  # the password, and the AUTH lines that carry it in base64
            self.secrets.add_login(username or "", self._password.get_secret_value())
        self.starttls, self.ssl = starttls, ssl
        self.base_url = base_url
        self.policy = Policy(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self.name = name

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.host!r}, port={self.port}, recipients={self.recipients!r}, name={self.name!r})"

    @property
    def budget_s(self) -> float:
        return self.policy.budget_s

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = clip(" ".join(f"[mlguard] {alert.headline}".split()), SUBJECT_MAX_CHARS)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid("mlguard", domain=self.sender.rpartition("@")[2])
        link = alert.link(self.base_url)
        msg.set_content(text_body(alert, link))
        msg.add_alternative(html_body(alert, link), subtype="html")
        return msg

    def send(self, alert: Alert) -> Delivery:
        msg = self.message(alert.scrubbed(self.secrets))
        return deliver(self.name, f"smtp://{self.host}:{self.port}", self.policy, lambda t: self._attempt(msg, t),
                       self.secrets)

    def _attempt(self, msg: EmailMessage, timeout_s: float) -> int:
        try:
            smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=timeout_s, context=ssl_lib.create_default_context())
                    if self.ssl else smtplib.SMTP(self.host, self.port, timeout=timeout_s))
        except Exception as exc:  # noqa: BLE001 - _failure decides whether it may pass
            raise _failure(exc, self.secrets) from None
        try:
            if self.starttls:
                smtp.starttls(context=ssl_lib.create_default_context())
            if self.username is not None:
                smtp.login(self.username, self._password.get_secret_value() if self._password else "")
            refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=self.recipients)
        except Exception as exc:  # noqa: BLE001 - _failure decides whether it may pass
            smtp.close()
            raise _failure(exc, self.secrets) from None
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):  # accepted already: sending again would duplicate it
            smtp.close()
        if refused:
            raise AttemptFailed(f"accepted for some recipients, refused for {sorted(refused)}", transient=False,
                                status=250)
        return 250


def _failure(exc: Exception, secrets: Secrets) -> AttemptFailed:
    """Whether an SMTP failure may pass: 4xx replies and connection trouble may; 5xx and TLS errors will not.
    The server's reply is scrubbed before it is kept (a 535 may quote the AUTH line, the password in base64)."""
    failure = _classify(exc)
    return AttemptFailed(secrets.scrub(str(failure)), transient=failure.transient, status=failure.status)


def _classify(exc: Exception) -> AttemptFailed:
    if isinstance(exc, UnicodeEncodeError):  # smtplib sends AUTH in ASCII; its message would quote the character
        return AttemptFailed("SMTP login failed: the username or password has non-ASCII characters, which "
                             "smtplib cannot send in AUTH PLAIN/LOGIN; use an ASCII password (or an app password)",
                             transient=False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return AttemptFailed(f"all recipients refused (SMTP {codes})", status=codes[-1] if codes else None,
                             transient=all(400 <= c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return AttemptFailed(f"{type(exc).__name__}: SMTP {exc.smtp_code} {reply}", status=exc.smtp_code,
                             transient=400 <= exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl_lib.SSLError):
        return AttemptFailed(f"{type(exc).__name__}: {exc}", transient=False)
    if isinstance(exc, TimeoutError):
        return AttemptFailed(f"timed out ({type(exc).__name__}: {exc})", transient=True)
    if isinstance(exc, smtplib.SMTPException | OSError):
        return AttemptFailed(f"{type(exc).__name__}: {exc}", transient=True)
    return AttemptFailed(f"{type(exc).__name__}: {exc}", transient=False)


def text_body(alert: Alert, link: str | None) -> str:
    lines = [alert.title, "", alert.headline, ""]
    if alert.news:
        lines += [alert.news[:1].upper() + alert.news[1:], ""]
    causes = alert.causes()
    if causes:
        lines.append("Likely causes:")
        for i, c in enumerate(causes, 1):
            lines += [f"  {i}. {clip(c.summary, 500)} ({c.confidence:.0%}, {c.code})",
                      f"     next check: {clip(c.next_check, 500)}", f"     fix: {clip(c.fix, 500)}"]
        lines.append("")
    if alert.error and not alert.guard_failed:
        lines += ["Error:", f"  {alert.error}", ""]
    lines += ["Where:", *(f"  {k}: {v}" for k, v in alert.where_lines()), ""]
    if link:
        lines += [f"Open the run: {link}", ""]
    if alert.report is not None:
        lines += ["Report:", clip(to_text(alert.report), REPORT_MAX_CHARS)]
    return clip("\n".join(lines).rstrip(), TEXT_MAX_CHARS - 1) + "\n"


def html_body(alert: Alert, link: str | None) -> str:
    e = html.escape
    parts = [f"<h2>{e(alert.title)}</h2>", f"<p><strong>{e(alert.headline)}</strong></p>"]
    if alert.news:
        parts.append(f"<p><em>{e(alert.news[:1].upper() + alert.news[1:])}</em></p>")
    causes = alert.causes()
    if causes:
        items = "".join(f"<li>{e(clip(c.summary, 500))} <em>({c.confidence:.0%}, <code>{e(c.code)}</code>)</em>"
                        f"<br>Next check: {e(clip(c.next_check, 500))}<br>Fix: {e(clip(c.fix, 500))}</li>"
                        for c in causes)
        parts.append(f"<p>Likely causes:</p><ol>{items}</ol>")
    if alert.error and not alert.guard_failed:
        parts.append(f"<p>Error:</p><pre>{e(alert.error)}</pre>")
    rows = "".join(f"<tr><th align=\"left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in alert.where_lines())
    parts.append(f"<table>{rows}</table>")
    if link:
        parts.append(f"<p><a href=\"{e(link)}\">Open the run</a></p>")
    if alert.report is not None:
        parts.append(f"<pre>{e(clip(to_text(alert.report), REPORT_MAX_CHARS))}</pre>")
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"
