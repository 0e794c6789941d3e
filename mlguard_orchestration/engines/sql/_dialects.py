"""What each SQL dialect has, for the metrics we compile: the part sqlglot does not know.

sqlglot quotes identifiers right in every dialect but emits functions a dialect lacks without a word
(APPROX_QUANTILE on postgres, STDDEV_SAMP on T-SQL) and writes an exact PERCENTILE_CONT as an approximation
on trino and databricks (benchmarks/sql_compiler_spike.py, docs/engines.md). This table is what the compiler
consults instead; the golden tests keep it honest (every statement parses in its dialect and calls only
functions the dialect has).

Rule: an approximate request the dialect cannot serve is computed exactly (and reported exact); an exact one
it cannot serve is refused with a SpecError, never approximated.

Where a dialect needs its own function (epoch seconds, time zones, regular expressions, NaN tests, a random
draw per row), the table holds a small SQL *template* in that dialect's own syntax: `_x` stands for the
column expression, `_z` for a time zone literal, `_p` for a pattern literal. Templates are parsed by sqlglot
in their dialect and the placeholders replaced by expression trees, so nothing is spliced as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp

# Text read as a timestamp: a calendar-valid date (leap years included), an optional time and, after a time,
# an optional UTC offset. Only [0-9] classes and plain groups, so that the same text is a regular expression
# in every dialect's flavour (POSIX ARE, RE2, Java, ICU). Postgres guards its cast with it (it has no
# TRY_CAST: an unparsable text would fail the whole statement); everywhere, OFFSET_RE decides whether text
# names its own offset or is local time in `zone`.
_YEAR = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_DATE = ("(" + _YEAR + "-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
         "|" + _YEAR + "-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
         "|" + _YEAR + "-02-(0[1-9]|1[0-9]|2[0-8])"
         "|" + _LEAP + "-02-29)")
_TIME = "[Tt ](([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]+)?)?|24:00(:00([.]0+)?)?)"  # 24:00: next midnight
_OFFSET = " ?([Zz]|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
TIMESTAMP_RE = _DATE + "(" + _TIME + "(" + _OFFSET + ")?)?"
OFFSET_RE = ".*" + _TIME + _OFFSET


@dataclass(frozen=True)
class Capabilities:
    """Aggregates a dialect lacks, the spellings sqlglot gets wrong for it, and its function templates."""

    exact_quantile: bool = True  # PERCENTILE_CONT (or equivalent) as an aggregate
    approx_quantile: bool = True
    approx_distinct: bool = True
    exact_quantile_fn: str | None = None  # an exact quantile spelled FN(x, q) (databricks: PERCENTILE)
    approx_quantile_within_group: str | None = None  # FN(q) WITHIN GROUP (ORDER BY x) (T-SQL)
    stddev_fn: str | None = None  # the sample standard deviation, when not STDDEV_SAMP (T-SQL: STDEV)
    approx_distinct_fn: str | None = None  # when sqlglot's spelling is wrong (T-SQL: APPROX_COUNT_DISTINCT)
    # distinct tuples in the one-row scan: "row" COUNT(DISTINCT (a, b)) (NULL fields compare equal, so it also
    # serves DuplicateRows), "args" COUNT(DISTINCT a, b) (skips tuples with a NULL), None: a GROUP BY probe
    row_distinct: Literal["row", "args"] | None = None
    has_nan: bool = True  # its floats can hold NaN and ±Inf (not MySQL, not SQL Server)
    decimal_nan: bool = False  # its decimals can too (postgres NUMERIC)
    is_nan: str = "FALSE"
    is_inf: str = "FALSE"
    is_finite: str | None = None  # default: NOT is_nan AND NOT is_inf
    rand: str = "RAND()"  # uniform in [0, 1), drawn per row
    epoch_tz: str = ""  # an instant (_x) -> seconds since 1970 UTC
    epoch_local: str = ""  # a naive timestamp (_x) read as local time in zone _z -> seconds since 1970 UTC
    naive_type: str = "TIMESTAMP"  # a DATE cast to this is its midnight, zone-less
    parse_tz: str = ""  # text (_x) naming its offset -> an instant, NULL where it does not parse (_p: TIMESTAMP_RE)
    parse_naive: str = ""  # text (_x) -> a naive timestamp, NULL where it does not parse
    regex: str = "REGEXP_LIKE(_x, _p)"  # _x matches _p (anchors added around the pattern)
    regex_anchors: tuple[str, str] = ("\\A(?:", ")\\z")  # \A \z: Java's, ICU's and RE2's `$` let a final \n pass
    utc: str = "UTC"  # the zone name that means UTC where `zone` is UTC
    text_type: str = "TEXT"
    missing_functions: frozenset[str] = frozenset()  # for the golden tests: never in a compiled statement


DIALECTS: dict[str, Capabilities] = {
    "duckdb": Capabilities(
        row_distinct="row", is_nan="ISNAN(_x)", is_inf="ISINF(_x)", is_finite="ISFINITE(_x)", rand="RANDOM()",
        epoch_tz="EPOCH_US(_x) / 1000000.0", epoch_local="EPOCH_US(_x AT TIME ZONE _z) / 1000000.0",
        parse_tz="TRY_CAST(_x AS TIMESTAMPTZ)", parse_naive="TRY_CAST(_x AS TIMESTAMP)",
        regex="REGEXP_FULL_MATCH(_x, _p)", regex_anchors=("", "")),
    "postgres": Capabilities(  # approximations are extensions (tdigest, hll)
        approx_quantile=False, approx_distinct=False, row_distinct="row", decimal_nan=True,
        # NaN = NaN is true and NaN sorts above +Infinity in postgres
        is_nan="_x = CAST('NaN' AS DOUBLE PRECISION)",
        is_inf="_x IN (CAST('Infinity' AS DOUBLE PRECISION), CAST('-Infinity' AS DOUBLE PRECISION))",
        is_finite="_x > CAST('-Infinity' AS DOUBLE PRECISION) AND _x < CAST('Infinity' AS DOUBLE PRECISION)",
        rand="RANDOM()", epoch_tz="CAST(EXTRACT(EPOCH FROM _x) AS DOUBLE PRECISION)",
        epoch_local="CAST(EXTRACT(EPOCH FROM _x AT TIME ZONE _z) AS DOUBLE PRECISION)",
        # no TRY_CAST: the cast runs only on text TIMESTAMP_RE accepts (a calendar-valid date, a valid time)
        parse_tz="CASE WHEN _x ~ _p THEN CAST(_x AS TIMESTAMPTZ) END",
        parse_naive="CASE WHEN _x ~ _p THEN CAST(_x AS TIMESTAMP) END",
        regex="_x ~ _p", regex_anchors=("^(?:", ")$"),  # no newline-sensitive mode: `$` is the very end
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_PERCENTILE", "APPROX_DISTINCT",
                                     "APPROX_COUNT_DISTINCT", "COUNT_IF", "TRY_CAST", "ISNAN", "IS_NAN"})),
    "snowflake": Capabilities(  # NaN = NaN and NaN sorts last, as in postgres; RANDOM() is a 64-bit integer
        row_distinct="args", is_nan="_x = CAST('NaN' AS DOUBLE)",
        is_inf="_x IN (CAST('inf' AS DOUBLE), CAST('-inf' AS DOUBLE))",
        rand="UNIFORM(CAST(0 AS DOUBLE), CAST(1 AS DOUBLE), RANDOM())",
        epoch_tz="DATE_PART(EPOCH_MICROSECOND, _x) / 1000000.0",
        epoch_local="DATE_PART(EPOCH_MICROSECOND, CONVERT_TIMEZONE(_z, 'UTC', _x)) / 1000000.0",
        naive_type="TIMESTAMP_NTZ", parse_tz="TRY_TO_TIMESTAMP_TZ(_x)", parse_naive="TRY_TO_TIMESTAMP_NTZ(_x)",
        regex_anchors=("", ""),  # REGEXP_LIKE matches the whole text (and has no (?:...) groups)
        text_type="VARCHAR",
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_DISTINCT", "ISNAN", "IS_NAN"})),
    "bigquery": Capabilities(  # PERCENTILE_CONT is an analytic (window) function there
        exact_quantile=False, is_nan="IS_NAN(_x)", is_inf="IS_INF(_x)",
        epoch_tz="UNIX_MICROS(_x) / 1000000.0", epoch_local="UNIX_MICROS(TIMESTAMP(_x, _z)) / 1000000.0",
        naive_type="DATETIME", parse_tz="SAFE_CAST(_x AS TIMESTAMP)", parse_naive="SAFE_CAST(_x AS DATETIME)",
        regex="REGEXP_CONTAINS(_x, _p)", text_type="STRING",
        missing_functions=frozenset({"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_DISTINCT", "ISNAN"})),
    "trino": Capabilities(  # approx_percentile only
        exact_quantile=False, row_distinct="row", is_nan="IS_NAN(_x)", is_inf="IS_INFINITE(_x)",
        is_finite="IS_FINITE(_x)", rand="RANDOM()",
        epoch_tz="TO_UNIXTIME(_x)", epoch_local="TO_UNIXTIME(WITH_TIMEZONE(_x, _z))",
        # its casts from text want a space between date and time: ISO 8601 text goes through its own parser
        parse_tz="COALESCE(TRY(FROM_ISO8601_TIMESTAMP(_x)), TRY_CAST(_x AS TIMESTAMP(6) WITH TIME ZONE))",
        parse_naive="TRY_CAST(REPLACE(_x, 'T', ' ') AS TIMESTAMP(6))",
        text_type="VARCHAR",
        missing_functions=frozenset({"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_COUNT_DISTINCT", "ISNAN"})),
    "databricks": Capabilities(  # Spark: NaN = NaN and NaN sorts last; TIMESTAMP is an instant, _NTZ is naive
        exact_quantile_fn="PERCENTILE", row_distinct="args", is_nan="ISNAN(_x)",
        is_inf="_x IN (CAST('inf' AS DOUBLE), CAST('-inf' AS DOUBLE))",
        epoch_tz="UNIX_MICROS(_x) / 1000000.0",
        # wall-clock arithmetic on TIMESTAMP_NTZ, whatever the session time zone
        epoch_local="TIMESTAMPDIFF(MICROSECOND, CAST('1970-01-01' AS TIMESTAMP_NTZ), "
                    "CONVERT_TIMEZONE(_z, 'UTC', _x)) / 1000000.0",
        naive_type="TIMESTAMP_NTZ", parse_tz="TRY_TO_TIMESTAMP(_x)", parse_naive="TRY_CAST(_x AS TIMESTAMP_NTZ)",
        text_type="STRING",
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_DISTINCT", "IS_NAN"})),
    "mysql": Capabilities(  # no NaN or Inf in its floats; TIMESTAMP columns are instants, DATETIME naive
        exact_quantile=False, approx_quantile=False, approx_distinct=False, row_distinct="args", has_nan=False,
        epoch_tz="UNIX_TIMESTAMP(_x)",
        # named zones need the server's time zone tables (mysql_tzinfo_to_sql); UTC is spelled as an offset
        epoch_local="TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', CONVERT_TZ(_x, _z, '+00:00')) / 1000000.0",
        naive_type="DATETIME(6)",
        # no TRY_CAST: a text that is no datetime casts to NULL (with a warning) in a SELECT; a text with an
        # offset (8.0.19+) is converted to the session zone, which UNIX_TIMESTAMP reads back
        parse_tz="CAST(_x AS DATETIME(6))", parse_naive="CAST(_x AS DATETIME(6))", utc="+00:00",
        text_type="CHAR",
        missing_functions=frozenset({"APPROX_QUANTILE", "APPROX_PERCENTILE", "PERCENTILE_CONT", "APPROX_DISTINCT",
                                     "APPROX_COUNT_DISTINCT", "COUNT_IF", "MEDIAN", "TRY_CAST", "ISNAN"})),
    "tsql": Capabilities(  # PERCENTILE_CONT is a window function; APPROX_PERCENTILE_CONT from SQL Server 2022
        exact_quantile=False, approx_quantile_within_group="APPROX_PERCENTILE_CONT", stddev_fn="STDEV",
        approx_distinct_fn="APPROX_COUNT_DISTINCT", has_nan=False,
        rand="RAND(CHECKSUM(NEWID()))",  # RAND() alone is drawn once per statement
        # DATEDIFF_BIG on DATETIME2 in UTC: sqlglot casts DATEDIFF's operands to DATETIME2, which would drop
        # a DATETIMEOFFSET's offset, so the operand is moved to UTC first
        epoch_tz="DATEDIFF_BIG(MICROSECOND, CAST('1970-01-01' AS DATETIME2), "
                 "CAST(_x AT TIME ZONE 'UTC' AS DATETIME2)) / 1000000.0",
        # AT TIME ZONE takes Windows zone names ('Central European Standard Time'); 'UTC' is one
        epoch_local="DATEDIFF_BIG(MICROSECOND, CAST('1970-01-01' AS DATETIME2), "
                    "CAST(_x AT TIME ZONE _z AT TIME ZONE 'UTC' AS DATETIME2)) / 1000000.0",
        naive_type="DATETIME2", parse_tz="TRY_CAST(_x AS DATETIMEOFFSET)", parse_naive="TRY_CAST(_x AS DATETIME2)",
        regex_anchors=("^(?:", ")$"),  # REGEXP_LIKE: SQL Server 2025 and Azure SQL, RE2 syntax
        text_type="NVARCHAR(MAX)",
        missing_functions=frozenset({"STDDEV_SAMP", "APPROX_QUANTILE", "APPROX_DISTINCT", "COUNT_IF", "RANDOM"})),
}


@lru_cache(maxsize=512)
def _parsed(template: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(template, read=dialect)


def render(template: str, dialect: str, **values: exp.Expr) -> exp.Expr:
    """A template as an expression tree, `_name` placeholders replaced by `values[name]` (copied)."""

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("_") and node.name[1:] in values:
            return values[node.name[1:]].copy()
        return node

    return _parsed(template, dialect).copy().transform(fill)
