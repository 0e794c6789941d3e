"""The loopback servers the secrets and payload cases talk to."""

from __future__ import annotations

from tests._servers import http_server, quoting_smtp_server, smtp_server  # noqa: F401
