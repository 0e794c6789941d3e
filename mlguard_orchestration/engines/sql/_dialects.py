"""What each SQL dialect has, for the metrics we compile: the part sqlglot does not know.

sqlglot quotes identifiers right in every dialect but emits functions a dialect lacks without a word
(APPROX_QUANTILE on postgres, STDDEV_SAMP on T-SQL) and writes an exact PERCENTILE_CONT as an approximation
on trino and databricks (benchmarks/sql_compiler_spike.py, docs/engines.md). This table is what the compiler
consults instead; the golden tests keep it honest (every statement parses in its dialect and calls only
functions the dialect has).

Rule: an approximate request the dialect cannot serve is computed exactly (and reported exact); an exact one
it cannot serve is refused with a SpecError, never approximated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """Aggregates a dialect lacks, and the spellings sqlglot gets wrong for it."""

    exact_quantile: bool = True  # PERCENTILE_CONT (or equivalent) as an aggregate
    approx_quantile: bool = True
    approx_distinct: bool = True
    exact_quantile_fn: str | None = None  # an exact quantile spelled FN(x, q) (databricks: PERCENTILE)
    approx_quantile_within_group: str | None = None  # FN(q) WITHIN GROUP (ORDER BY x) (T-SQL)
    stddev_fn: str | None = None  # the sample standard deviation, when not STDDEV_SAMP (T-SQL: STDEV)
    approx_distinct_fn: str | None = None  # when sqlglot's spelling is wrong (T-SQL: APPROX_COUNT_DISTINCT)
    missing_functions: frozenset[str] = frozenset()  # for the golden tests: never in a compiled statement


DIALECTS: dict[str, Capabilities] = {
    "duckdb": Capabilities(),
    "postgres": Capabilities(  # approximations are extensions (tdigest, hll)
        approx_quantile=False, approx_distinct=False,
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_PERCENTILE", "APPROX_DISTINCT",
                                     "APPROX_COUNT_DISTINCT", "COUNT_IF"})),
    "snowflake": Capabilities(missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_DISTINCT"})),
    "bigquery": Capabilities(  # PERCENTILE_CONT is an analytic (window) function there
        exact_quantile=False, missing_functions=frozenset({"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_DISTINCT"})),
    "trino": Capabilities(  # approx_percentile only
        exact_quantile=False,
        missing_functions=frozenset({"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_COUNT_DISTINCT"})),
    "databricks": Capabilities(exact_quantile_fn="PERCENTILE",
                               missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_DISTINCT"})),
    "mysql": Capabilities(
        exact_quantile=False, approx_quantile=False, approx_distinct=False,
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_PERCENTILE", "PERCENTILE_CONT", "APPROX_DISTINCT",
                                     "APPROX_COUNT_DISTINCT", "COUNT_IF", "MEDIAN"})),
    "tsql": Capabilities(  # PERCENTILE_CONT is a window function; APPROX_PERCENTILE_CONT from SQL Server 2022
        exact_quantile=False, approx_quantile_within_group="APPROX_PERCENTILE_CONT", stddev_fn="STDEV",
        approx_distinct_fn="APPROX_COUNT_DISTINCT",
        missing_functions=frozenset({"STDDEV_SAMP", "APPROX_QUANTILE", "APPROX_DISTINCT", "COUNT_IF"})),
}
