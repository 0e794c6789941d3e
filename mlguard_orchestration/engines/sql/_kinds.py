"""A database column type, as text in its dialect, -> this package's logical kind.

sqlglot parses every dialect's type names into one enumeration (`DataType.Type`) and already knows what is
an instant: BigQuery's TIMESTAMP, Snowflake's TIMESTAMP_LTZ/_TZ, Spark's TIMESTAMP, MySQL's TIMESTAMP and
SQL Server's DATETIMEOFFSET are zone-aware (`timestamp_tz`); DATETIME, TIMESTAMP_NTZ and postgres'
`timestamp without time zone` are naive (`timestamp`). A type it cannot parse is "other".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

T = exp.DataType.Type
_BY_TYPE: dict[Any, str] = {  # DataType.Type members -> kind
    **{t: "integer" for t in exp.DataType.INTEGER_TYPES},
    T.FLOAT: "float", T.DOUBLE: "float",
    **{t: "decimal" for t in (T.DECIMAL, T.BIGDECIMAL, T.UDECIMAL, T.MONEY, T.SMALLMONEY, T.DECIMAL32,
                              T.DECIMAL64, T.DECIMAL128, T.DECIMAL256)},
    **{t: "string" for t in exp.DataType.TEXT_TYPES}, T.UUID: "string", T.ENUM: "string", T.NAME: "string",
    T.BOOLEAN: "boolean",
    **{t: "timestamp" for t in (T.TIMESTAMP, T.TIMESTAMPNTZ, T.DATETIME, T.DATETIME2, T.SMALLDATETIME,
                                T.DATETIME64, T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS)},
    **{t: "timestamp_tz" for t in (T.TIMESTAMPTZ, T.TIMESTAMPLTZ)},
    T.DATE: "date", T.DATE32: "date", T.TIME: "time", T.TIMETZ: "time", T.INTERVAL: "interval",
    **{t: "binary" for t in (T.BINARY, T.VARBINARY, T.BLOB, T.LONGBLOB, T.MEDIUMBLOB, T.TINYBLOB)},
    **{t: "nested" for t in (*exp.DataType.NESTED_TYPES, T.JSON, T.JSONB, T.VARIANT)},
}
_BY_PYTHON: dict[type, str] = {bool: "boolean", int: "integer", float: "float", Decimal: "decimal", str: "string",
                               dt.datetime: "timestamp", dt.date: "date", dt.time: "time",
                               dt.timedelta: "interval", bytes: "binary", bytearray: "binary"}


def kind_of(type_text: str, dialect: str) -> str:
    """The logical kind of a column type named in `dialect`'s own words ("timestamp with time zone",
    "NUMBER(38,0)", "DATETIMEOFFSET"); an integer-valued decimal (scale 0) is an integer."""
    try:
        dtype = exp.DataType.build(type_text, dialect=dialect)
    except (SqlglotError, ValueError):
        return "other"
    kind = _BY_TYPE.get(dtype.this, "other")
    if dtype.this == T.BIT:  # SQL Server's BIT is its boolean; MySQL's BIT(n) a bit field
        kind = "boolean" if dialect == "tsql" else "other"
    params = [e.name for e in dtype.expressions]
    if kind == "decimal" and len(params) == 2 and params[1] == "0":
        return "integer"
    return kind


def kind_of_python(type_code: type) -> str:
    """For drivers whose cursor describes a column by the Python type of its values (pyodbc)."""
    return next((k for t, k in _BY_PYTHON.items() if issubclass(type_code, t)), "other")
