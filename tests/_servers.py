"""Real servers on loopback for the notifier tests (Airflow, Prefect and the core share them).

- `http_server`: a recording HTTP server (stdlib ThreadingHTTPServer in a thread). Set `.mode` to "ok" (200),
  "500", "400", "404" (quotes the request path back, as some servers do), "hang" (reads the request, then
  answers nothing until the test ends) or "drip" (answers 200, one byte every 0.2 s); or queue statuses in
  `.script` (e.g. [500, 429]) that are answered first, or functions of the request returning (status, body) in
  `.replies` (answered before anything else). Every request lands in `.requests`.
- `smtp_server`: an aiosmtpd Controller collecting messages in `.messages`; it accepts AUTH LOGIN/PLAIN for
  `.username`/`.password` over plain SMTP, and answers DATA with the replies queued in `.data_replies` first.
- `refused_url` / `refused_port()`: a loopback port with nothing listening.
- `silent_port`: a TCP server that accepts connections and never says a word (an SMTP server that hangs).
- `quoting_smtp_server`: an SMTP server that refuses every login with a 535 quoting the client's AUTH line
  (the base64 of user and password) back, as some servers do.

Use them from a conftest with `from tests._servers import http_server  # noqa: F401`, or from a test module
with `http_server = _servers.http_server` (an assignment, so that ruff does not see a redefinition).
"""

from __future__ import annotations

import email
import email.policy
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RecordingHTTPServer:
    """An HTTP server on 127.0.0.1 that records every request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.mode = "ok"
        self.script: list[int] = []
        self.replies: list[Callable[[Received], tuple[int, bytes]]] = []
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
                if outer.replies:
                    self._answer(*outer.replies.pop(0)(outer.requests[-1]))
                elif outer.script:
                    self._answer(outer.script.pop(0))
                elif outer.mode == "hang":
                    outer._release.wait(120)  # longer than any notifier's budget; released when the test ends
                elif outer.mode == "drip":  # a whole answer, one byte every 0.2 s (~8 s): no single read times out
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok":
                        if outer._release.wait(0.2):
                            return
                        self.wfile.write(bytes([byte]))
                    self.close_connection = True
                elif outer.mode == "404":  # a server that quotes the (secret) path back in its reply
                    self._answer(404, f"no hook at {self.path}".encode())
                else:
                    self._answer({"ok": 200, "500": 500, "400": 400}[outer.mode])

            def _answer(self, status: int, reply: bytes | None = None) -> None:
                if reply is None:
                    reply = b"ok" if status < 300 else b"invalid_payload" if status < 500 else b"server_error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:  # keep pytest's output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class _Collector:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

    def __init__(self, username: str = "mailer", password: str = "smtp-pa55-SECRET") -> None:
        self.username, self.password = username, password
        self._collector = _Collector()

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
                self.username, self.password)
            return AuthResult(success=ok, handled=False)

        self.port = refused_port()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port,
                                      authenticator=authenticate, auth_require_tls=False)
        self._controller.start()

    @property
    def messages(self) -> list[EmailMessage]:
        return self._collector.messages

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        return self._collector.envelopes

    @property
    def data_replies(self) -> list[str]:
        return self._collector.data_replies

    def close(self) -> None:
        self._controller.stop()


class QuotingSmtpServer:
    """A raw SMTP server on 127.0.0.1 that offers AUTH PLAIN and LOGIN and refuses every login with a 535 reply
    quoting what the client sent (the AUTH PLAIN line, or the base64 password of AUTH LOGIN)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self._say("220 quoting.test ESMTP")
                while line := self.rfile.readline().decode(errors="replace").strip():
                    outer.lines.append(line)
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self._say("250-quoting.test\r\n250 AUTH PLAIN LOGIN")
                    elif line.upper().startswith("AUTH LOGIN"):
                        self._say("334 VXNlcm5hbWU6")
                        user = self.rfile.readline().decode(errors="replace").strip()
                        self._say("334 UGFzc3dvcmQ6")
                        password = self.rfile.readline().decode(errors="replace").strip()
                        outer.lines += [user, password]
                        self._say(f"535 5.7.8 rejected AUTH LOGIN {user} {password}")
                    elif verb == "AUTH":
                        self._say(f"535 5.7.8 Authentication failed for: {line}")
                    elif verb == "QUIT":
                        self._say("221 bye")
                        return
                    else:
                        self._say("250 OK")

            def _say(self, reply: str) -> None:
                self.wfile.write(reply.encode() + b"\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_port() -> int:
    """A loopback port that nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[RecordingHTTPServer]:
    server = RecordingHTTPServer()
    yield server
    server.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def quoting_smtp_server() -> Iterator[QuotingSmtpServer]:
    server = QuotingSmtpServer()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    return f"http://127.0.0.1:{refused_port()}/hook"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: an SMTP greeting that never comes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield int(listener.getsockname()[1])
    listener.close()


def free_port() -> int:
    """A loopback TCP port that nothing listens on now (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
