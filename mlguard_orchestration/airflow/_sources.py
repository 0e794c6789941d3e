"""Where a guard's tables come from in a DAG, resolved at run time (never at parse time).

    "data/features/{{ ds }}.parquet"                  a path, directory, glob or object-store URI
    {"sql": "SELECT …", "conn_id": "warehouse"}       a query in the database behind an Airflow connection
    {"table": "analytics.sales", "conn_id": "warehouse"} a table there
    {"sql": "SELECT … FROM read_parquet('…')"}        a query in the guard's own DuckDB engine
    {"xcom": "extract", "key": "return_value"}        what an upstream task returned (a path or a DataFrame)

Through a connection the guard runs where the data lives: the connection's own hook hands out its SQLAlchemy
engine, the dialect comes from the connection type (postgres, mysql, mssql, snowflake, bigquery, trino,
databricks …), and only aggregates come back to the worker. A database whose SQL the guard cannot write
(sqlite, or any hook without a SQLAlchemy engine) is read through the hook instead, as Arrow on the worker;
so is a query with bound `parameters` (template the values into the SQL, e.g. `{{ ds }}`, to push it down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.remote import Sql, SqlTable


def resolve(source: Any, context: Any) -> Any:
    if not isinstance(source, Mapping):
        return source
    if "xcom" in source:
        if context is None:
            raise SpecError("an XCom source cannot be read by a deferred trigger; pass a path or a query.")
        value = context["ti"].xcom_pull(task_ids=source["xcom"], key=source.get("key", "return_value"))
        if value is None:
            raise SourceError(f"task {source['xcom']!r} pushed no XCom {source.get('key', 'return_value')!r}.")
        return value
    if "sql" in source:
        conn_id = source.get("conn_id")
        if conn_id is None:
            return Sql(source["sql"])
        hook = _hook(conn_id)
        if source.get("parameters") is None and (engine := _pushdown_engine(hook)) is not None:
            return Sql(source["sql"], connection=engine)
        return _fetch(hook, conn_id, source["sql"], source.get("parameters"))
    if "table" in source:
        conn_id = source.get("conn_id")
        if conn_id is None:
            raise SpecError(f"a 'table' source needs the 'conn_id' of the database that holds {source['table']!r}.")
        hook = _hook(conn_id)
        if (engine := _pushdown_engine(hook)) is not None:
            return SqlTable(source["table"], connection=engine)
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in str(source["table"]).split("."))
        return _fetch(hook, conn_id, f"SELECT * FROM {quoted}", None)
    raise SpecError(f"a table source must be a path, or a mapping with 'sql' or 'table' (and 'conn_id'), or "
                    f"'xcom'; got keys {sorted(source)}.")


def resolve_tables(tables: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return {name: resolve(src, context) for name, src in tables.items()}


def _hook(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    try:
        hook = BaseHook.get_connection(conn_id).get_hook()
    except Exception as exc:  # unknown connection, hook not installed: Airflow raises many kinds
        raise SourceError(f"connection {conn_id!r} gives no SQL hook: {exc}") from exc
    if not hasattr(hook, "get_df"):
        raise SpecError(f"connection {conn_id!r} ({type(hook).__name__}) is not a SQL connection.")
    return hook


def _pushdown_engine(hook: Any) -> Any:
    """The hook's SQLAlchemy engine when the guard can compile for its dialect, else None."""
    from mlguard_orchestration.engines.sql import DIALECT_OF

    get_engine = getattr(hook, "get_sqlalchemy_engine", None)
    if get_engine is None:
        return None
    try:
        engine = get_engine()
    except Exception:  # noqa: BLE001 - a hook without a SQLAlchemy URL: read through the hook instead
        return None
    return engine if engine.dialect.name in DIALECT_OF else None


def _fetch(hook: Any, conn_id: str, sql: str, parameters: Any) -> Any:
    """Run `sql` through the connection's own hook and hand the result to the guard as Arrow (a database the
    guard cannot compile for)."""
    import pyarrow as pa

    try:
        frame = hook.get_df(sql, parameters=parameters, df_type="pandas")
    except Exception as exc:  # driver errors differ per database
        raise SourceError(f"query on connection {conn_id!r} failed: {str(exc).splitlines()[0]}") from exc
    return pa.Table.from_pandas(frame, preserve_index=False)
