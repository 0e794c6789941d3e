"""Engines: compute a table's metric requests in one scan where the data lives (docs/engines.md).

`requests` is the vocabulary checks and the profile use; `sql` compiles it for SQL dialects through sqlglot,
`duckdb` for the embedded engine. Importing this package imports neither sqlglot nor any engine.
"""

from mlguard_orchestration.engines.requests import (
    And,
    Col,
    Compare,
    CompareColumns,
    Count,
    Counted,
    CountIf,
    Distinct,
    DistinctRows,
    DuplicateRows,
    Histogram,
    IsIn,
    IsInf,
    IsNaN,
    IsNull,
    Matches,
    MaxGap,
    Measured,
    MinMax,
    Moments,
    Not,
    NullCount,
    Of,
    Or,
    Predicate,
    Quantiles,
    Request,
    ScanRequest,
    TopK,
    ValueCounts,
    category_key,
    columns_of,
)

__all__ = [
    "And", "Col", "Compare", "CompareColumns", "Count", "CountIf", "Counted", "Distinct", "DistinctRows",
    "DuplicateRows", "Histogram", "IsIn", "IsInf", "IsNaN", "IsNull", "Matches", "MaxGap", "Measured", "MinMax", "Moments",
    "Not", "NullCount", "Of", "Or", "Predicate", "Quantiles", "Request", "ScanRequest", "TopK", "ValueCounts",
    "category_key", "columns_of"
]
