"""Tables that stay where they live: a database table or query behind a SQLAlchemy connection, a Spark
DataFrame. The guard sends them metric requests (engines/) and receives aggregates; no row is copied to the
worker.

    guard.run(mg.Sql("SELECT * FROM sales WHERE day = '2026-12-01'", connection=engine_or_url))
    guard.run(mg.SqlTable("analytics.sales", connection=engine_or_url))
    guard.run(spark_df)

A `Remote` answers what a table's scan asks (the profile and every single-table check). Checks across tables
(joins, train/test overlap, label leakage) read their tables with the embedded engine's SQL, so in this
version they need both tables embedded (a DataFrame, Arrow, files): a remote table there is a clear SpecError,
never a copy of the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mlguard_orchestration.engines.requests import Measured, ScanRequest, TopK
from mlguard_orchestration.errors import SpecError

if TYPE_CHECKING:
    from mlguard_orchestration.engines.sql import SqlEngine


@dataclass(frozen=True)
class Sql:
    """A SQL query as a guard source. Without a connection it runs in the guard's own DuckDB engine, where
    `read_parquet(...)`, `read_csv(...)` and friends are available. With a SQLAlchemy Engine or Connection, or
    a database URL, it runs in that database: only aggregates come back. With your DuckDB connection, its
    result is streamed once into the guard's engine."""

    query: str
    connection: Any = None


@dataclass(frozen=True)
class SqlTable:
    """A table (or view) in a database, guarded in place. `name` is "table", "db.table" or
    "catalog.db.table" (split on dots), or a tuple of those parts taken literally (a name holding a
    dot). `connection`: a SQLAlchemy Engine or Connection, or a database URL."""

    name: str | tuple[str, ...]
    connection: Any

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split(".")) if isinstance(self.name, str) else tuple(self.name)


class Remote(Protocol):
    """A table computed by an engine of its own."""

    source: str  # how reports name it

    def columns(self) -> dict[str, tuple[str, str]]:
        """name -> (the engine's type as text, logical kind), reading no row."""

    def measure(self, requests: Iterable[ScanRequest | TopK], *, kinds: dict[str, str],
                limit: int | None = None) -> dict[ScanRequest | TopK, Measured]:
        """Every request in one scan (plus bounded probes); `limit`: the first rows only."""

    def close(self) -> None: ...


class SqlRemote:
    """A query or table in a database, through `engines.sql.SqlEngine`."""

    def __init__(self, target: str | tuple[str, ...], connection: Any, source: str) -> None:
        from mlguard_orchestration.engines.sql import SqlEngine

        self.engine: SqlEngine = SqlEngine(connection)
        self.target = target
        self.source = f"{source} ({self.engine.dialect})"

    def columns(self) -> dict[str, tuple[str, str]]:
        return self.engine.columns(self.target)

    def measure(self, requests: Iterable[ScanRequest | TopK], *, kinds: dict[str, str],
                limit: int | None = None) -> dict[ScanRequest | TopK, Measured]:
        return self.engine.measure(self.target, list(requests), kinds=kinds, limit=limit)

    def close(self) -> None:
        self.engine.close()


class SparkRemote:
    """A Spark DataFrame, through `engines.spark` (the DataFrame API: the same code runs on a cluster)."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.source = "pyspark.sql.DataFrame (spark)"

    def columns(self) -> dict[str, tuple[str, str]]:
        from mlguard_orchestration.engines.spark import columns

        return columns(self.frame)

    def measure(self, requests: Iterable[ScanRequest | TopK], *, kinds: dict[str, str],
                limit: int | None = None) -> dict[ScanRequest | TopK, Measured]:
        from mlguard_orchestration.engines.spark import measure

        answers: dict[ScanRequest | TopK, Measured] = measure(self.frame, list(requests), kinds=kinds, limit=limit)
        return answers

    def close(self) -> None:
        """The DataFrame and its session stay the caller's."""


def is_duckdb_connection(connection: Any) -> bool:
    return type(connection).__module__.split(".")[0] in ("duckdb", "_duckdb")


def remote_of(data: Any, describe: str) -> Remote | None:
    """The engine that computes `data` where it lives, or None for data the embedded engine reads."""
    if isinstance(data, SqlTable):
        if not data.path or not all(isinstance(p, str) and p for p in data.path) or len(data.path) > 3:
            raise SpecError(f"SqlTable name {data.name!r}: give 'table', 'db.table' or 'catalog.db.table'")
        return SqlRemote(data.path, data.connection, f"table {'.'.join(data.path)}")
    if isinstance(data, Sql) and data.connection is not None and not is_duckdb_connection(data.connection):
        return SqlRemote(data.query, data.connection, describe)
    if type(data).__module__.split(".")[0] == "pyspark" and type(data).__name__ == "DataFrame":
        return SparkRemote(data)
    return None


# SQLAlchemy URL schemes of the databases the guard compiles for (the part before "+driver")
DATABASE_SCHEMES = frozenset({"postgresql", "postgres", "mysql", "mariadb", "mssql", "snowflake", "bigquery",
                              "trino", "databricks"})


def source_from_url(text: str) -> Sql | SqlTable | None:
    """A database source written as one string, for the CLI and spec files: `URL#db.table` or
    `URL#SELECT …` (the URL as SQLAlchemy takes it, the table or query after `#`). None when `text` is not a
    database URL (a path, an object-store URI)."""
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.split("+")[0].lower() not in DATABASE_SCHEMES:
        return None
    url, hashed, target = text.partition("#")
    target = target.strip()
    if not hashed or not target:
        raise SpecError(f"a database source names its table or query after '#': {scheme}://…#db.table or "
                        f"{scheme}://…#SELECT …")
    if target.split(None, 1)[0].lower() in ("select", "with"):
        return Sql(target, connection=url)
    return SqlTable(target, connection=url)
