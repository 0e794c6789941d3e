"""When a real part the tests need is missing (a PostgreSQL server, Java for Spark, Debian's chromium): skip
on a developer's machine, fail in CI.

`make test` on a laptop without them still passes (those tests are skipped, and say why), but CI must run
them for real: with `CI` or `MLGUARD_REQUIRE_REAL` set (`.ci/run` sets the latter), a missing server binary,
JVM or browser is a test failure with the reason, never a silent skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_VARS = ("MLGUARD_REQUIRE_REAL", "CI")


def required() -> bool:
    """True when a missing real part must fail the run (CI), not skip its tests."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no") for v in REQUIRE_VARS)


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip (locally) or fail (CI) every test that needs `what`."""
    if required():
        pytest.fail(f"{what} is required here ({' or '.join(REQUIRE_VARS)} is set) but {reason}", pytrace=False)
    pytest.skip(f"{what} not available: {reason}")
