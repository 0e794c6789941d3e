"""Where a guard's tables come from in a DAG, resolved at run time (never at parse time).

    "data/features/{{ ds }}.parquet"                  a path, directory, glob or object-store URI
    {"sql": "SELECT …", "conn_id": "warehouse"}       a query through an Airflow connection (any DbApiHook)
    {"sql": "SELECT … FROM read_parquet('…')"}        a query in the guard's own DuckDB engine
    {"xcom": "extract", "key": "return_value"}        what an upstream task returned (a path or a DataFrame)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.sources import Sql


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
        return _fetch(conn_id, source["sql"], source.get("parameters"))
    raise SpecError(f"a table source must be a path, or a mapping with 'sql' (and 'conn_id') or 'xcom'; got "
                    f"keys {sorted(source)}.")


def resolve_tables(tables: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return {name: resolve(src, context) for name, src in tables.items()}


def _fetch(conn_id: str, sql: str, parameters: Any) -> Any:
    """Run `sql` through the connection's own hook (so any database the user configured works) and hand the
    result to the guard as Arrow."""
    import pyarrow as pa
    from airflow.sdk import BaseHook

    try:
        hook = BaseHook.get_connection(conn_id).get_hook()
    except Exception as exc:  # unknown connection, hook not installed: Airflow raises many kinds
        raise SourceError(f"connection {conn_id!r} gives no SQL hook: {exc}") from exc
    if not hasattr(hook, "get_df"):
        raise SpecError(f"connection {conn_id!r} ({type(hook).__name__}) is not a SQL connection.")
    try:
        frame = hook.get_df(sql, parameters=parameters, df_type="pandas")
    except Exception as exc:  # driver errors differ per database
        raise SourceError(f"query on connection {conn_id!r} failed: {str(exc).splitlines()[0]}") from exc
    return pa.Table.from_pandas(frame, preserve_index=False)
