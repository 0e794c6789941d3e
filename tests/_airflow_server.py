"""A real Airflow api-server on loopback, on this test session's metadata DB, with the simple auth manager and
three users: `admin` (ADMIN), `viewer` (VIEWER: may read every DAG) and `nobody` (no role: may read nothing)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._servers import free_port

PASSWORDS = {"admin": "admin-pw", "viewer": "viewer-pw", "nobody": "nobody-pw"}
START_S = 300  # a cold api-server on a busy 2-core machine; this bounds the wait, it is no speed claim


@dataclass
class ApiServer:
    url: str
    log: Path

    def token(self, user: str) -> str:
        r = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=60)
        assert r.status_code == 201, r.text
        return str(r.json()["access_token"])

    def get(self, path: str, user: str | None = None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


@contextmanager
def api_server(workdir: Path) -> Iterator[ApiServer]:
    """Start `airflow api-server` on 127.0.0.1 (one worker), wait until it answers, stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    passwords = workdir / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {**os.environ,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,nobody:",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16), "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
           "AIRFLOW__API__BASE_URL": url, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    log = workdir / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port),
                                 "-w", "1"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the api-server did not start:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield ApiServer(url, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
