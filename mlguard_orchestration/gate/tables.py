"""Reading the gate's row-aligned inputs from tables, in row order.

A gate task usually writes its evaluation predictions to a file (a parquet with a score, the target and the
slice columns) and hands over the path; the gate reads the columns it needs once, in the file's row order, so
predictions, targets, slices and the evaluation features stay aligned row by row. (The guard engine reads
without preserving order, which is right for profiles and wrong here.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from mlguard_orchestration._sql import ident
from mlguard_orchestration.errors import SpecError, did_you_mean, suggestion
from mlguard_orchestration.sources import READ_ERRORS, engine_error, path_reader


def is_path(obj: Any) -> bool:
    """A path, glob or URI (what a task can hand over through XCom or a result store)."""
    return isinstance(obj, (str, os.PathLike))


def read_ordered(source: Any, columns: Sequence[str] | None, what: str) -> pa.Table:
    """`columns` of `source` (a path/URI, an Arrow table or a pandas DataFrame) in row order; None: all.

    SpecError naming what exists when a column is missing; SourceError (retryable) when it cannot be read."""
    if is_path(source):
        path = os.fspath(source)
        with duckdb.connect(":memory:") as con:
            try:
                rel = con.sql(f"SELECT * FROM {path_reader(path)}")
                names = _select(rel.columns, columns, what, path)
                return con.sql(f"SELECT {', '.join(ident(c) for c in names)} FROM {path_reader(path)}").to_arrow_table()
            except READ_ERRORS as exc:
                raise engine_error(exc, path) from exc
    if isinstance(source, pa.Table):
        return source.select(_select(source.column_names, columns, what, "the Arrow table"))
    if type(source).__module__.split(".")[0] == "pandas" and type(source).__name__ == "DataFrame":
        names = _select([str(c) for c in source.columns], columns, what, "the DataFrame")
        return pa.Table.from_pandas(source[names], preserve_index=False)
    raise SpecError(f"{what} must be a parquet/CSV path or URI, an Arrow table or a pandas DataFrame; got "
                    f"{type(source).__module__}.{type(source).__name__}.")


def _select(available: Sequence[str], wanted: Sequence[str] | None, what: str, where: str) -> list[str]:
    if wanted is None:
        return list(available)
    for name in wanted:
        if name not in available:
            hint = did_you_mean(name, available)
            raise SpecError(f"{what}: column {name!r} is not in {where}; it has {list(available)[:40]}."
                            + suggestion(hint))
    return list(dict.fromkeys(wanted))
