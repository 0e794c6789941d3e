"""Engines: compile a table's metric requests into one scan where the data lives (docs/engines.md).

`requests` is the vocabulary checks will use; `sql` compiles it for SQL dialects through sqlglot. DuckDB and
Spark engines follow. Importing this package imports neither sqlglot nor any engine.
"""

from mlguard_orchestration.engines.requests import (
    And,
    Compare,
    Count,
    CountIf,
    Distinct,
    Histogram,
    IsIn,
    IsNull,
    Measured,
    MinMax,
    Moments,
    Not,
    NullCount,
    Or,
    Predicate,
    Quantiles,
    Request,
    ScanRequest,
    TopK,
)

__all__ = [
    "And", "Compare", "Count", "CountIf", "Distinct", "Histogram", "IsIn", "IsNull", "Measured", "MinMax",
    "Moments", "Not", "NullCount", "Or", "Predicate", "Quantiles", "Request", "ScanRequest", "TopK",
]
