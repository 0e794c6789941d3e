"""Sending without ever hurting the task: a bounded retry loop, the Delivery record, and `notify`.

A notification is observability. The task's own failure is what matters, so a notifier never raises and never
takes longer than its budget: `timeout_s` per attempt, `retries` extra attempts after transient failures
(connection errors, timeouts, 429, 5xx — never other 4xx, which will not fix themselves), exponential backoff
between them, and one overall deadline of (retries + 1) × timeout_s + the backoff sum. Failures are logged on
the "mlguard.notify" logger, scrubbed with the notifier's own secrets (`_secrets`), and returned as a Delivery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from mlguard_orchestration.notify._secrets import Secrets, redact_fields

if TYPE_CHECKING:
    from mlguard_orchestration.notify.alert import Alert

log = logging.getLogger("mlguard.notify")

_MAX_ERROR_CHARS = 500


class Delivery(BaseModel):
    """The outcome of one send: returned, never raised. `error` is scrubbed of secrets."""

    model_config = ConfigDict(frozen=True)

    notifier: str
    ok: bool
    attempts: int
    status: int | None = Field(default=None, description="The last HTTP status or SMTP reply code, if any.")
    error: str | None = None
    elapsed_s: float


@runtime_checkable
class Notifier(Protocol):
    """Anything that can send an Alert. `send` never raises and never exceeds its time budget."""

    name: str

    def send(self, alert: Alert) -> Delivery: ...


class Policy(BaseModel):
    """How long and how often one notifier may try."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(gt=0, le=300, description="Per attempt.")
    retries: int = Field(ge=0, le=10, description="Extra attempts after a transient failure.")
    backoff_s: float = Field(ge=0, le=60, description="Pause before the first retry; doubles each time.")

    @property
    def budget_s(self) -> float:
        """The most time one send may take: every attempt timing out, plus every pause."""
        return (self.retries + 1) * self.timeout_s + sum(self.backoff_s * 2.0**i for i in range(self.retries))


class AttemptFailed(Exception):
    """One attempt's failure, with a message that is safe to show and whether trying again may help."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


def deliver(name: str, target: str, policy: Policy, attempt: Callable[[float], int],
            secrets: Secrets | None = None) -> Delivery:
    """Call `attempt(timeout_s)` until it returns a status, fails for good, or the budget is spent.

    `target` names the destination for the log without its secret (an origin, an SMTP host); every error is
    scrubbed with the notifier's `secrets` before it is logged or stored."""
    start = time.monotonic()
    deadline = start + policy.budget_s
    status: int | None = None
    error: str | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            status, error = _within(attempt, min(policy.timeout_s, max(deadline - time.monotonic(), 0.001))), None
            break
        except AttemptFailed as exc:
            status, error, transient = exc.status, str(exc), exc.transient
        except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen library error: never raised into the task
            error, transient = f"{type(exc).__name__}: {exc}", False
        pause = policy.backoff_s * 2 ** (attempts - 1)
        if not transient or attempts > policy.retries or time.monotonic() + pause >= deadline:
            break
        log.info("%s notification to %s failed (attempt %d), retrying in %.2fs: %s", name, target, attempts,
                 pause, _safe(error, secrets))
        time.sleep(pause)
    delivery = Delivery(notifier=name, ok=error is None, attempts=attempts, status=status,
                        error=None if error is None else _safe(error, secrets), elapsed_s=round(time.monotonic() - start, 3))
    if not delivery.ok:
        log.warning("%s notification to %s failed after %d attempt(s): %s", name, target, attempts, delivery.error)
    return delivery


def _within(attempt: Callable[[float], int], timeout_s: float) -> int:
    """Run `attempt(timeout_s)` and give up on it after `timeout_s` whatever it is doing.

    httpx and smtplib time out each socket operation, not the whole exchange, so a server that drips its answer
    a byte at a time (or an SMTP tarpit that delays every reply) could hold an attempt for minutes. The attempt
    runs in a daemon thread; one that overstays is abandoned and ends on its own (a socket timeout, or the
    server finishing its answer)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["status"] = attempt(timeout_s)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="mlguard-notify-attempt", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise AttemptFailed(f"timed out after {timeout_s:.1f}s", transient=True)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["status"])


def failed(name: str, error: str, secrets: Secrets | None = None) -> Delivery:
    """A Delivery for a notifier that could not even be set up (a missing connection, a bad setting)."""
    delivery = Delivery(notifier=name, ok=False, attempts=0, error=_safe(error, secrets), elapsed_s=0.0)
    log.warning("%s notification not sent: %s", name, delivery.error)
    return delivery


def _safe(error: str, secrets: Secrets | None) -> str:
    """`error` without secrets (the notifier's, in any encoding; credential fields always), bounded."""
    error = secrets.scrub(error) if secrets is not None else redact_fields(error)
    return error if len(error) <= _MAX_ERROR_CHARS else error[: _MAX_ERROR_CHARS - 1] + "…"


def secrets_of(notifier: object) -> Secrets | None:
    """A notifier's Secrets, when it declares them (ours do; a third-party notifier may not)."""
    secrets = getattr(notifier, "secrets", None)
    return secrets if isinstance(secrets, Secrets) else None


def notify(alert: Alert, notifiers: Sequence[Notifier]) -> list[Delivery]:
    """Send `alert` to every notifier at once (so the wait is the slowest budget, not the sum) and return
    one Delivery each, in order. Never raises, even for a notifier that breaks the protocol.

    The alert is first scrubbed of every notifier's secrets: a task whose exception quotes the Slack URL
    must not forward it to the webhook (or to a third-party notifier)."""
    every = Secrets()
    for n in notifiers:
        every = every | (secrets_of(n) or Secrets())
    alert = alert.scrubbed(every)

    def send(notifier: Notifier) -> Delivery:
        name = str(getattr(notifier, "name", type(notifier).__name__))
        try:
            return notifier.send(alert)
        except Exception as exc:  # noqa: BLE001 - someone else's notifier must not fail the task either
            return failed(name, f"{type(exc).__name__}: {exc}", every)

    if not notifiers:
        return []
    with ThreadPoolExecutor(max_workers=len(notifiers), thread_name_prefix="mlguard-notify") as pool:
        return list(pool.map(send, notifiers))
