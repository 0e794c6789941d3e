"""When a real engine the tests need is missing: skip on a developer's machine, fail in CI.

`make test` on a laptop without PostgreSQL or Java still passes (those tests are skipped, and say why), but
CI must run them for real: with `CI` or `MLGUARD_REQUIRE_ENGINES` set (`.ci/run` sets the latter), a missing
server binary or JVM is a test failure with the reason, never a silent skip.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

REQUIRE_VARS = ("MLGUARD_REQUIRE_ENGINES", "CI")


def engines_required() -> bool:
    """True when a missing engine must fail the run (CI), not skip its tests."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no") for v in REQUIRE_VARS)


def unavailable(engine: str, reason: str) -> NoReturn:
    """Skip (locally) or fail (CI) every test that needs `engine`."""
    if engines_required():
        pytest.fail(f"{engine} is required here ({' or '.join(REQUIRE_VARS)} is set) but {reason}", pytrace=False)
    pytest.skip(f"{engine} not available: {reason}")


def free_port() -> int:
    """A loopback TCP port that nothing listens on now (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
