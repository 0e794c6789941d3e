"""What an in-memory table (pandas, Arrow, a stream's schema) must satisfy before DuckDB scans it.

Each rule replaces an engine error or a silent misreading with a message naming the column and the fix:
- column names are strings, and no two are equal (DuckDB would read them as `a`, `a_1`: a check on `a` would
  silently read one of two columns);
- no Arrow type DuckDB cannot scan (decimal256: precision above 38);
- an object column holds one kind of Python value, and datetimes in it are all timezone-aware or all naive.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from mlguard_orchestration.errors import SpecError

OBJECT_SAMPLE = 10_000  # values of an object column whose Python types are compared


def require_unique_names(names: Iterable[str], source: str) -> None:
    """SpecError naming every repeated column name and how often it occurs (retrying cannot fix it: the
    pipeline that names the columns must)."""
    counts = Counter(names)
    repeated = {n: k for n, k in counts.items() if k > 1}
    if repeated:
        listed = ", ".join(f"{n!r} ({k}×)" for n, k in list(repeated.items())[:20])
        raise SpecError(f"{source} has {len(repeated)} column name(s) used more than once: {listed}. A guard "
                          "cannot tell such columns apart and will not guess which one a check means; give each "
                          "column its own name (pandas: df.columns = [...]; Arrow: table.rename_columns([...])).")


def require_scannable_arrow(schema: pa.Schema, source: str) -> None:
    """SpecError naming columns of Arrow types DuckDB cannot read."""
    bad = [(f.name, f.type) for f in schema if _has_decimal256(f.type)]
    if bad:
        listed = ", ".join(f"{n!r} ({t})" for n, t in bad[:20])
        raise SpecError(f"{source}: column(s) {listed} are decimal256, which DuckDB cannot read (decimals go up to "
                        "precision 38). Cast them first: to float64 when approximate values will do, or to "
                        "decimal128(38, scale) when the values fit, e.g. table.cast(...) or "
                        "df[col].astype('float64').")


def _has_decimal256(t: pa.DataType) -> bool:
    if pa.types.is_decimal256(t):
        return True
    if pa.types.is_dictionary(t):
        return _has_decimal256(t.value_type)
    return any(_has_decimal256(t.field(i).type) for i in range(t.num_fields))


def check_pandas(df: Any, source: str) -> None:
    """Names, Arrow-backed dtypes and object columns of a pandas DataFrame (see the module docstring)."""
    bad = [str(c) for c in df.columns if not isinstance(c, str)]
    if bad:
        raise SpecError(f"{source}: column names must be strings; got {bad[:5]}. Rename them first.")
    require_unique_names(df.columns, source)
    arrow = [(c, d.pyarrow_dtype) for c, d in df.dtypes.items() if hasattr(d, "pyarrow_dtype")]
    if arrow:
        require_scannable_arrow(pa.schema([pa.field(c, t) for c, t in arrow]), source)
    for col in df.columns[df.dtypes == object]:
        values = df[col].dropna()
        kinds = {type(v).__name__ for v in values.head(OBJECT_SAMPLE)}
        if len(kinds - {"str"}) and len(kinds) > 1 and not _all_datetimes(kinds):
            raise SpecError(
                f"column {col!r} of {source} mixes Python types {sorted(kinds)}; a guard cannot compare "
                "such values reliably. Cast the column to one type (e.g. df[col].astype(str)) first."
            )
        if _all_datetimes(kinds):
            zones = {v.tzinfo is not None and v.tzinfo.utcoffset(v) is not None for v in values}
            if len(zones) > 1:
                raise SpecError(
                    f"column {col!r} of {source} mixes timezone-aware and naive datetimes; they cannot be "
                    "ordered or compared. Make them all aware, e.g. pd.to_datetime(df[col], utc=True) (naive "
                    "values are then read as UTC), or all naive in one zone, before guarding."
                )


def _all_datetimes(kinds: set[str]) -> bool:
    return bool(kinds) and kinds <= {dt.datetime.__name__, "Timestamp"}
