"""What a guard can read, turned into one DuckDB relation per table, or left where it lives.

A table in a database (`remote.SqlTable`, `remote.Sql` with a SQLAlchemy connection) is not read here: it is
registered with its columns and its metric requests go to its own engine (`remote.Remote`); everything below
is about the tables the embedded engine reads.

Everything a guard measures is computed by DuckDB in-process, so large data is never loaded into pandas:
pandas/polars/Arrow objects are scanned in place (zero-copy views), parquet files, directories and globs
are read by DuckDB's parquet reader with projection pushdown, and a SQL query runs in the same engine.
One-shot streams (an Arrow RecordBatchReader, a relation or query on *your* DuckDB connection) are read
once into the guard's engine, because a guard may need to read a table more than once to diagnose it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import duckdb
import pyarrow as pa

from mlguard_orchestration._frames import check_pandas, require_scannable_arrow, require_unique_names
from mlguard_orchestration._paths import duplicate_columns, path_source
from mlguard_orchestration._sql import ident
from mlguard_orchestration._wide import ONE_THREAD_COLUMNS, block_columns, blocks, split
from mlguard_orchestration.engines.duckdb import Subquery, compile_scan, compile_top_k
from mlguard_orchestration.engines.requests import CountIf, Measured, Predicate, ScanRequest, TopK
from mlguard_orchestration.errors import SourceError, SpecError, missing_column_error
from mlguard_orchestration.remote import Remote, Sql, SqlTable, remote_of

# Logical kinds: what a data scientist means by a column's type, independent of the storage width.
_KIND_BY_ID: dict[str, str] = {
    **{t: "integer" for t in ("tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
                              "uinteger", "ubigint", "uhugeint")},
    "float": "float", "double": "float", "decimal": "decimal",
    "varchar": "string", "enum": "string", "uuid": "string",
    "boolean": "boolean",
    "timestamp": "timestamp", "timestamp_s": "timestamp", "timestamp_ms": "timestamp", "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamp_tz",
    "date": "date", "time": "time", "time with time zone": "time", "interval": "interval", "blob": "binary",
    **{t: "nested" for t in ("list", "struct", "map", "array", "union")},
}
NUMERIC_KINDS = frozenset({"integer", "float", "decimal"})
TEMPORAL_KINDS = frozenset({"timestamp", "timestamp_tz", "date"})



def kind_family(kind: str) -> str:
    """What a column's kind can be compared with: any number with any number, any time with any time."""
    return "numeric" if kind in NUMERIC_KINDS else "temporal" if kind in TEMPORAL_KINDS else kind


# The names users may write in a spec, and which storage kinds satisfy them.
LOGICAL_TYPES: dict[str, frozenset[str]] = {
    "integer": frozenset({"integer"}),
    "float": frozenset({"float", "decimal"}),
    "numeric": NUMERIC_KINDS,
    "string": frozenset({"string"}),
    "boolean": frozenset({"boolean"}),
    "timestamp": frozenset({"timestamp", "timestamp_tz"}),
    "timestamp_tz": frozenset({"timestamp_tz"}),
    "date": frozenset({"date"}),
    "temporal": TEMPORAL_KINDS,
    "nested": frozenset({"nested"}),
}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    kind: str

    @property
    def q(self) -> str:
        """The quoted identifier."""
        return ident(self.name)


@dataclass
class Table:
    """A table registered in the engine under a generated, always-safe view name."""

    name: str
    view: str
    source: str
    columns: dict[str, Column]
    remote: Remote | None = None  # the engine of a table that stays where it lives; None: the embedded one

    @property
    def ref(self) -> str:
        return ident(self.view)

    @property
    def kinds(self) -> dict[str, str]:
        """Each column's logical kind, which is what an engine needs to compile a metric on it."""
        return {name: col.kind for name, col in self.columns.items()}

    def column(self, name: str, where: str | None = None) -> Column:
        try:
            return self.columns[name]
        except KeyError:
            raise missing_column_error(name, self.columns, where or f"table {self.name!r} ({self.source})") from None


def _describe(obj: Any) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return str(obj)
    if isinstance(obj, SqlTable):
        return f"table {obj.name if isinstance(obj.name, str) else '.'.join(obj.name)}"
    if isinstance(obj, Sql):
        q = " ".join(obj.query.split())
        return f"sql: {q[:120]}{'…' if len(q) > 120 else ''}"
    mod = type(obj).__module__.split(".")[0]
    shape = getattr(obj, "shape", None)
    return f"{mod}.{type(obj).__name__}" + (f" {tuple(shape)}" if shape is not None else "")


def path_reader(path: str) -> str:
    """The DuckDB table function reading a path, directory or glob literally (see `_paths`); SourceError when
    nothing is there, SpecError for a FIFO or device. Public for code that reads paths with its own statement
    (the gate's tables), with `READ_ERRORS` and `engine_error` to report failures the same way."""
    return path_source(path).reader


# Errors that mean the guard built a wrong statement (a bug: never reported as bad data). Every other engine
# error while a statement runs (I/O, corrupt pages, conversions, memory, DuckDB's own) is a read failure.
_QUERY_ERRORS: tuple[type[Exception], ...] = (duckdb.ParserException, duckdb.BinderException,
                                              duckdb.CatalogException)
# ...and an interrupted query, which is the caller's to see as it is
_PROPAGATED: tuple[type[Exception], ...] = (*_QUERY_ERRORS, duckdb.InterruptException)
# The engine errors that mean a read failed, for callers that catch them around their own statements.
READ_ERRORS: tuple[type[Exception], ...] = (
    duckdb.IOException, duckdb.InvalidInputException, duckdb.HTTPException, duckdb.PermissionException,
    duckdb.OutOfMemoryException, duckdb.ConversionException,
)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def engine_error(exc: Exception, source: str) -> SourceError:
    """An engine error while reading `source`, as the SourceError users see (its first line, not a trace)."""
    return SourceError(f"cannot read {source}: {_first_line(exc)}")


def _arrow_reader(rel: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """The relation as a stream (`to_arrow_reader` since DuckDB 1.4; `fetch_record_batch` is deprecated)."""
    to_reader = getattr(rel, "to_arrow_reader", None)
    return to_reader() if to_reader is not None else rel.fetch_record_batch()


@dataclass
class Engine:
    """One in-process DuckDB connection holding every table of a guard run.

    Table names are generated (`mlguard_t0`, …) so no user string ever becomes an unquoted identifier.
    """

    threads: int | None = None
    con: duckdb.DuckDBPyConnection = field(init=False)
    tables: dict[str, Table] = field(default_factory=dict, init=False)
    _ids: Any = field(default_factory=itertools.count, init=False)
    # How each view reads its rows, for statements that read only some columns of a wide table: the table
    # function of a path, or the in-memory object scanned in place.
    _readers: dict[str, str] = field(default_factory=dict, init=False)
    _objects: dict[str, Any] = field(default_factory=dict, init=False)
    _remotes: list[Remote] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        # A wide table is read by one statement per column group (see `aggregate`): parse each file's footer once.
        self.con.execute("SET parquet_metadata_cache = true")
        if self.threads:
            self.con.execute(f"SET threads = {int(self.threads)}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for remote in self._remotes:
            remote.close()
        self.con.close()

    def add(self, name: str, data: Any) -> Table:
        """Register `data` as table `name` (see the module docstring for what `data` may be)."""
        if name in self.tables:
            raise SpecError(f"table {name!r} is given twice.")
        view = f"mlguard_t{next(self._ids)}"
        source = _describe(data)
        remote = remote_of(data, source)
        if remote is not None:
            self._remotes.append(remote)
            columns = {c: Column(c, t, kind) for c, (t, kind) in remote.columns().items()}
            self.tables[name] = Table(name=name, view=view, source=remote.source, columns=columns, remote=remote)
            return self.tables[name]
        try:
            self._register(view, data, source)
            rel = self.con.sql(f"SELECT * FROM {ident(view)} LIMIT 0")
            columns = {c: Column(c, str(t), _KIND_BY_ID.get(t.id, "other")) for c, t in zip(rel.columns, rel.types)}
        except (SourceError, SpecError):
            raise
        except _QUERY_ERRORS as exc:
            if isinstance(data, Sql):
                raise SpecError(f"the SQL source is not a valid query: {_first_line(exc)}") from exc
            raise engine_error(exc, source) from exc
        except duckdb.Error as exc:
            raise engine_error(exc, source) from exc
        table = Table(name=name, view=view, source=source, columns=columns)
        self.tables[name] = table
        return table

    def _register(self, view: str, data: Any, source: str) -> None:
        q = ident(view)
        if isinstance(data, (str, os.PathLike)):
            src = path_source(os.fspath(data))
            self.con.execute(f"CREATE VIEW {q} AS SELECT * FROM {src.reader}")
            for file, names in duplicate_columns(self.con, src).items():
                require_unique_names([*names, *names], f"file {file!r}")
            self._readers[view] = src.reader
            return
        if isinstance(data, Sql):
            if data.connection is None:
                statements = self.con.extract_statements(data.query)
                if len(statements) != 1:  # `SELECT 1; COPY … TO …` would run the second statement too
                    raise SpecError(f"the SQL source must be one query; got {len(statements)} statements: "
                                    f"{source}.")
                self.con.execute(f"CREATE VIEW {q} AS {data.query}")
                # DESCRIBE binds without running, and shows the repeated names that the view renamed.
                names = [r[0] for r in self.con.execute(f"DESCRIBE {data.query}").fetchall()]
                require_unique_names(names, source)
            else:
                self._materialise(q, _arrow_reader(data.connection.sql(data.query)), source)
            return
        if isinstance(data, duckdb.DuckDBPyRelation):
            self._materialise(q, _arrow_reader(data), source)
            return
        if isinstance(data, pa.RecordBatchReader):
            self._materialise(q, data, source)
            return
        if isinstance(data, (pa.Table, pa.RecordBatch)):
            self._register_arrow(view, data, source)
            return
        mod = type(data).__module__.split(".")[0]
        if mod == "polars":
            try:  # the user's lazy query runs here: its failure is the source's
                frame = data.collect() if type(data).__name__ == "LazyFrame" else data
                arrow = frame.to_arrow()
            except Exception as exc:  # any error of the user's object is a read failure
                raise SourceError(f"cannot read {source}: {type(exc).__name__}: {_first_line(exc)}") from exc
            self._register_arrow(view, arrow, source)
            return
        if mod == "pandas" and type(data).__name__ == "DataFrame":
            check_pandas(data, source)
            self._register_object(view, data)
            return
        raise SpecError(
            f"cannot guard a {type(data).__module__}.{type(data).__name__}. Pass a pandas or polars DataFrame, a "
            "pyarrow Table or RecordBatchReader, a parquet/CSV path, directory or glob, a DuckDB relation, or "
            "mlguard_orchestration.Sql(query)."
        )

    def _register_arrow(self, view: str, data: pa.Table | pa.RecordBatch, source: str) -> None:
        require_unique_names(data.schema.names, source)
        require_scannable_arrow(data.schema, source)
        self._register_object(view, data)

    def _register_object(self, view: str, data: Any) -> None:
        """Scan an in-memory object in place; it is kept so a statement can scan a few of its columns."""
        self.con.register(view, data)
        self._objects[view] = data

    def _materialise(self, q: str, reader: pa.RecordBatchReader, source: str) -> None:
        require_unique_names(reader.schema.names, source)
        require_scannable_arrow(reader.schema, source)
        arrow_view = f"{q[:-1]}_stream\""
        self.con.register(arrow_view.strip('"'), reader)
        try:
            self.con.execute(f"CREATE TEMP TABLE {q} AS SELECT * FROM {arrow_view}")
        finally:
            self.con.unregister(arrow_view.strip('"'))

    def sql(self, query: str, params: list[Any] | None = None, *, table: Table | None = None) -> list[tuple[Any, ...]]:
        """Run a query. Any engine error while it runs (I/O, a corrupt page, a conversion, memory) becomes a
        SourceError naming the table's source; a Parser/Binder/Catalog error means the guard built a wrong
        statement, a bug, and propagates as it is, so it is never mistaken for bad data."""
        if table is not None and table.remote is not None:
            raise SpecError(f"table {table.name!r} stays in {table.source}: this step reads it with the embedded "
                            "engine's SQL, which only embedded tables (DataFrames, Arrow, files) allow")
        try:
            return self.con.execute(query, params or []).fetchall()
        except _PROPAGATED:
            raise
        except duckdb.Error as exc:
            raise engine_error(exc, table.source if table else "the guard's query") from exc

    def measure(self, table: Table, requests: Iterable[ScanRequest], *,
                limit: int | None = None) -> dict[ScanRequest, Measured]:
        """Answer metric requests on `table` in one scan (see `aggregate`); `limit` measures the first rows."""
        if table.remote is not None:
            return table.remote.measure(requests, kinds=table.kinds, limit=limit)  # type: ignore[return-value]
        scan = compile_scan(requests, table.kinds, bounded=limit is not None)
        return scan.decode(self.aggregate(table, scan.exprs, scan.derived, limit=limit))

    def count(self, table: Table, where: Predicate) -> int:
        """Rows of `table` where `where` holds: a follow-up probe for a check that already knows it fires."""
        return int(self.measure(table, [CountIf(where)])[CountIf(where)].value)

    def check_regex(self, regex: str, what: str) -> None:
        """SpecError unless `regex` is a valid regular expression for this engine (RE2 in DuckDB)."""
        try:
            self.con.execute("SELECT regexp_full_match('', ?)", [regex]).fetchall()
        except duckdb.Error as exc:  # duckdb reports RE2 syntax errors here
            raise SpecError(f"{what} is not a valid regular expression: {_first_line(exc)}") from None

    def top_k(self, table: Table, request: TopK) -> list[tuple[str, int]]:
        """The probe `request`: its most frequent values, as text, with their counts."""
        if table.remote is not None:
            got = table.remote.measure([request], kinds=table.kinds)[request].value
            return [(str(v), int(n)) for v, n in got]
        return [(str(v), int(n)) for v, n in self.sql(compile_top_k(table.ref, request, table.kinds), table=table)]

    def aggregate(self, table: Table, exprs: Mapping[str, str | Subquery],
                  derived: dict[str, str] | None = None, *, limit: int | None = None) -> dict[str, Any]:
        """Compute every aggregate in `exprs` in ONE statement: one streaming scan of `table` for the plain
        aggregates, plus one single-column scan per Subquery; returns {key: value}. `derived` adds per-row
        columns ({name: SQL}) that the aggregates may use, computed once per row; `limit` aggregates over the
        first `limit` rows only.

        A wide table (more than `WIDE_COLUMNS` columns) gets one statement per group of columns, each
        reading only its columns (see `_wide`): time linear in the columns, memory bounded by a group; with
        `limit`, the groups of a block read one copy of the block's first rows."""
        if not exprs:
            return {}
        rendered = {k: e.render(table.ref) if isinstance(e, Subquery) else e for k, e in exprs.items()}
        groups = split(rendered, list(table.columns), derived or {})
        if groups is None:
            source = table.ref if limit is None else f"(SELECT * FROM {table.ref} LIMIT {int(limit)})"
            return self._aggregate(table, exprs, list(exprs), source, derived or {})
        values: dict[str, Any] = {}
        # Parquet prefetching plans each row group's reads over ALL the file's columns, whatever a statement
        # reads: at 5,000 columns ~20 ms per statement, a tenth of a group's. A local file is read without it
        # by the statements over a few columns; a statement over most of them (a row hash) keeps it, and so
        # does a remote file (its requests need it).
        reader = self._readers.get(table.view)
        local = reader is not None and "://" not in reader
        prefetch_off = False
        try:
            # A bounded read copies blocks of columns once (see `_wide.blocks`); in-memory data is read in place.
            for block in blocks(groups, None if table.view in self._objects else limit):
                copied = len(block) > 1
                columns = block_columns(block)
                wide = len(columns) > ONE_THREAD_COLUMNS
                if local and prefetch_off == wide:
                    prefetch_off = not wide
                    self.con.execute(f"SET disable_parquet_prefetching = {str(prefetch_off).lower()}")
                with self._columns(table, columns, copy_rows=limit if copied else None) as narrow, \
                        self._one_thread(wide):
                    for group in block:
                        if copied:
                            source = f"(SELECT {', '.join(ident(c) for c in group.columns)} FROM {narrow})"
                        else:
                            source = narrow if limit is None else f"(SELECT * FROM {narrow} LIMIT {int(limit)})"
                        derived_here = {name: (derived or {})[name] for name in group.derived}
                        values.update(self._aggregate(table, exprs, group.keys, source, derived_here))
        finally:
            if prefetch_off:
                self.con.execute("RESET disable_parquet_prefetching")
        return {k: values[k] for k in exprs}

    def _aggregate(self, table: Table, exprs: Mapping[str, str | Subquery], keys: list[str], source: str,
                   derived: dict[str, str]) -> dict[str, Any]:
        """One statement: the aggregates `keys` of `exprs` over the FROM item `source`."""
        rendered = [e.render(table.ref, source) if isinstance(e, Subquery) else e for e in (exprs[k] for k in keys)]
        select = ", ".join(f"{sql} AS {ident('m' + str(i))}" for i, sql in enumerate(rendered))
        if all(isinstance(exprs[k], Subquery) for k in keys):
            # Only scalar subqueries (each reads the table itself): one row, not one per row of the table.
            return dict(zip(keys, self.sql(f"SELECT {select}", table=table)[0]))
        if derived:
            extra = ", ".join(f"{expr} AS {ident(name)}" for name, expr in derived.items())
            source = f"(SELECT *, {extra} FROM {source}) AS {ident('scan')}"
        row = self.sql(f"SELECT {select} FROM {source}", table=table)[0]
        return dict(zip(keys, row))

    @contextmanager
    def _one_thread(self, on: bool) -> Iterator[None]:
        """Run the statements inside on one thread when `on`: each thread decodes a row group of every column a
        statement reads, so a statement over thousands of columns (a row hash) holds that much per thread."""
        if not on:
            yield
            return
        self.con.execute("SET threads = 1")
        try:
            yield
        finally:
            self.con.execute(f"SET threads = {int(self.threads)}" if self.threads else "RESET threads")

    @contextmanager
    def _columns(self, table: Table, columns: list[str], *, copy_rows: int | None = None) -> Iterator[str]:
        """A FROM item holding only `columns` of `table`. Binding a source costs time in proportion to ALL its
        columns (5,000 columns: ~0.5 s for a DataFrame or for parquet behind a view, ~10-20 ms for the file's
        table function), so a statement over a few columns of a wide table reads them straight from the
        file's table function or from a narrow in-place view of the in-memory object (no copy), not from the
        table's view. `copy_rows`: the first rows of `columns`, copied once into a temporary table that the
        statements of a block read (a file is bound once per block, not once per statement)."""
        cols = ", ".join(ident(c) for c in columns)
        obj = self._objects.get(table.view)
        if obj is None and copy_rows is not None:
            block = ident(f"{table.view}_block")
            reader = self._readers.get(table.view, table.ref)
            self.sql(f"CREATE OR REPLACE TEMP TABLE {block} AS SELECT {cols} FROM {reader} LIMIT {int(copy_rows)}",
                     table=table)
            try:
                yield block
            finally:
                self.con.execute(f"DROP TABLE IF EXISTS {block}")
            return
        if obj is None:
            reader = self._readers.get(table.view, table.ref)
            yield f"(SELECT {cols} FROM {reader})"
            return
        name = f"{table.view}_columns"
        self.con.register(name, _narrow(obj, columns))
        try:
            yield ident(name)
        finally:
            self.con.unregister(name)


def _narrow(obj: Any, columns: list[str]) -> Any:
    """`columns` of an in-memory table, sharing its buffers (pandas: a frame of the same Series; Arrow: select)."""
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return obj.select(columns)
    import pandas as pd

    return pd.DataFrame({c: obj[c] for c in columns}, copy=False)
