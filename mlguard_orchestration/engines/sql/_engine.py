"""`SqlEngine`: run a table's compiled scan and probes on a database through SQLAlchemy.

Why SQLAlchemy: it is how Python reaches every one of these databases (a URL picks the driver), Airflow
hooks hand one out (`hook.get_sqlalchemy_engine()`), and its dialect name tells us which SQL to write.
Only aggregates and bounded probe rows cross the connection; a column listing fetches no row (`WHERE FALSE`,
read from the cursor's description).

Errors: what the database says becomes a `SourceError` carrying the first line of its message (never a
traceback or the whole statement); a request the dialect cannot serve is a `SpecError` before anything runs.
A connection you pass is left as it was found: if it was not in a transaction, the one our reads began is
rolled back (so an error does not leave it aborted); an engine or URL gets a connection per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from sqlglot import exp

from mlguard_orchestration.engines.requests import Measured, Request, ScanRequest, TopK
from mlguard_orchestration.engines.sql._compile import compile_scan, compile_top_k
from mlguard_orchestration.engines.sql._kinds import kind_of, kind_of_python
from mlguard_orchestration.engines.sql._source import Source, describe, from_item
from mlguard_orchestration.errors import SourceError, SpecError

if TYPE_CHECKING:
    from sqlalchemy import Connection, CursorResult, Engine

# SQLAlchemy dialect name -> sqlglot dialect
DIALECT_OF: dict[str, str] = {
    "postgresql": "postgres", "mssql": "tsql", "mysql": "mysql", "mariadb": "mysql", "snowflake": "snowflake",
    "bigquery": "bigquery", "trino": "trino", "databricks": "databricks", "duckdb": "duckdb",
}


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


class SqlEngine:
    """Metric requests computed where the data lives, through a SQLAlchemy `Engine`, `Connection` or URL."""

    def __init__(self, bind: Engine | Connection | str, *, dialect: str | None = None) -> None:
        import sqlalchemy as sa

        self._owned: Engine | None = None
        if isinstance(bind, str):
            try:
                bind = self._owned = sa.create_engine(bind)
            except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
                raise SpecError(f"not a usable database URL: {_first_line(e)}") from None
        if not isinstance(bind, sa.Engine | sa.Connection):
            raise SpecError(f"SqlEngine takes a SQLAlchemy Engine, Connection or URL, got {type(bind).__name__}")
        self._bind = bind
        name = bind.dialect.name
        found = dialect or DIALECT_OF.get(name)
        if found is None:
            raise SpecError(f"no SQL dialect for SQLAlchemy's {name!r}; known: {', '.join(sorted(DIALECT_OF))} "
                            "(or pass dialect=)")
        self.dialect: str = found

    def close(self) -> None:
        """Dispose of the engine made from a URL (an engine or connection you passed stays yours)."""
        if self._owned is not None:
            self._owned.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self, what: str) -> Iterator[Connection]:
        import sqlalchemy as sa

        try:
            if isinstance(self._bind, sa.Connection):
                con, was_in = self._bind, self._bind.in_transaction()
                try:
                    yield con
                finally:
                    if not was_in and con.in_transaction():
                        con.rollback()
            else:
                with self._bind.connect() as con:
                    yield con
        except sa.exc.SQLAlchemyError as e:
            raise SourceError(f"{what} could not be read ({self.dialect}): {_first_line(e)}") from None

    @staticmethod
    def _run(con: Connection, sql: str) -> CursorResult[*tuple[Any, ...]]:
        # no_parameters: the statement goes to the driver as is, so a `%` in a name or pattern is no placeholder
        return con.exec_driver_sql(sql, execution_options={"no_parameters": True})

    def columns(self, table: Source) -> dict[str, tuple[str, str]]:
        """name -> (the database's type as text, logical kind), for a table path or a SELECT, fetching no row."""
        sql = exp.select(exp.Star()).from_(from_item(table, self.dialect)).where(exp.false()).sql(dialect=self.dialect)
        with self._connection(describe(table)) as con:
            result = self._run(con, sql)
            description = result.cursor.description if result.cursor is not None else None
            result.close()
        out: dict[str, tuple[str, str]] = {}
        for d in description or ():
            name, (text, kind) = str(d[0]), self._type(d)
            if name in out:
                raise SpecError(f"{describe(table)} has two columns named {name!r}: name each column once")
            out[name] = (text, kind)
        return out

    def _type(self, d: Sequence[Any]) -> tuple[str, str]:
        """(type text, kind) from one cursor description entry, whatever the driver puts there."""
        display = getattr(d, "type_display", None)  # psycopg: "timestamp with time zone", "numeric(10,2)"
        code = d[1]
        if isinstance(display, str):
            return display, kind_of(display, self.dialect)
        if isinstance(code, type):
            return code.__name__, kind_of_python(code)
        text = str(code)
        return text, kind_of(text, self.dialect)

    def measure(self, table: Source, requests: Sequence[Request], *, kinds: Mapping[str, str] | None = None,
                limit: int | None = None) -> dict[Request, Measured]:
        """Every request on `table` in one scan plus its probes (and one probe per TopK). `kinds`: column ->
        logical kind, looked up with `columns` when not given; `limit`: only the first `limit` rows."""
        if kinds is None:
            kinds = {name: kind for name, (_, kind) in self.columns(table).items()}
        scan_requests: list[ScanRequest] = [r for r in requests if not isinstance(r, TopK)]
        top_ks = [r for r in dict.fromkeys(requests) if isinstance(r, TopK)]
        scan = compile_scan(table, scan_requests, self.dialect, kinds, limit=limit) if scan_requests else None
        top_sql = [compile_top_k(table, r, self.dialect, kinds, limit=limit) for r in top_ks]
        out: dict[Request, Measured] = {}
        with self._connection(describe(table)) as con:
            if scan is not None:
                row = self._run(con, scan.sql).one() if scan.sql else None
                probed = [self._run(con, p).all() for p in scan.probes]
                out.update(scan.decode(row, probed).items())
            for r, sql in zip(top_ks, top_sql, strict=True):
                value = tuple((v, int(n)) for v, n in self._run(con, sql).all())
                out[r] = Measured(value=value, exact=True)
        return out
