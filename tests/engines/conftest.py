"""Real engines for the engine tests: a throwaway PostgreSQL cluster and a local Spark session, one each per
test session (tests/_postgres.py, tests/_spark.py). Missing binaries skip locally and fail in CI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._postgres import PostgresServer, postgres_server
from tests._spark import spark_session


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    yield from postgres_server()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    yield from spark_session()
