"""Loopback servers (shared with the Airflow and Prefect notifier tests) and the reports the alerts carry."""

from __future__ import annotations

from tests._servers import http_server, refused_url, silent_port, smtp_server  # noqa: F401
