"""SQL text helpers. Every identifier and literal that reaches DuckDB goes through here: column names are
user data (quotes, spaces, unicode, `";--`), so nothing is ever spliced in unquoted."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from mlguard_orchestration.errors import SpecError


def ident(name: str) -> str:
    """Quote an identifier: embedded double quotes are doubled, so any column name is safe."""
    if "\x00" in name:
        raise SpecError(f"column or table name {name!r} contains a NUL byte; rename it before guarding.")
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """Render a Python scalar as a SQL literal (strings single-quoted with quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::DOUBLE"
        if math.isinf(value):
            return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
        return repr(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} {literal(value.isoformat())}"
    if isinstance(value, date):
        return f"DATE {literal(value.isoformat())}"
    text = str(value)
    if "\x00" in text:
        raise SpecError(f"value {text[:40]!r}… contains a NUL byte, which SQL literals cannot hold.")
    return "'" + text.replace("'", "''") + "'"


def literal_list(values: Iterable[Any]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


def columns_tuple(columns: Iterable[str]) -> str:
    """A hashable row expression for one or more columns (used for uniqueness and overlap)."""
    cols = [ident(c) for c in columns]
    return cols[0] if len(cols) == 1 else "(" + ", ".join(cols) + ")"
