"""The Spark engine: a table's metric requests computed where the data lives, through the DataFrame API.

Why the DataFrame API and no SQL text: every name reaches Spark as a column reference (backtick-quoted, so
`a.b` is a column, not a struct field) and every literal as a literal, so no name or user text is parsed as
SQL; and the same code runs on a laptop's local session or a cluster.

How (docs/engines.md, one scan per table): every column view a request reads (`Col`) is projected once under
a generated name (`_v0`, `_v1`, …), so a view several metrics share (an epoch parsed from text) is computed
once per row; then every scan request becomes aggregate columns of ONE `agg`, keyed by what they compute,
so an aggregate two requests share (Distinct's and ValueCounts' distinct count) is computed once — except
exact distinct counts, each a job of its own (`_Scan.jobs` says why). The top
values of ValueCounts and TopK are bounded probes of their own (groupBy, order, `limit`).

Semantics (requests.py says what; these are the SQL engine's choices too, engines/sql/_columns.py):
- NaN. Spark orders NaN above every number and holds NaN = NaN. A float read as a value (of="value") is
  made IEEE-like in predicates: a NaN satisfies no Compare/CompareColumns (not even !=), so it satisfies
  their Not (a NaN is the Finite check's business). Quantiles and Histogram read such a float as "number"
  (finite values only); MinMax, Moments, MaxGap, Distinct, DuplicateRows and ValueCounts see it as stored
  (max = NaN; NaN is one value, as are -0.0 and 0.0). IsNaN/IsInf are false on NULL and on non-floats.
- Time zones, independent of the session zone (`spark.sql.session.timeZone`): a TIMESTAMP (an instant) is
  kind "timestamp_tz"; a TIMESTAMP_NTZ ("timestamp") or a DATE is wall-clock time in `Col.zone`. Text is a
  timestamp when it fits the SQL engines' grammar (`sql._dialects.TIMESTAMP_RE`: a calendar date, a time,
  an offset): with an offset ("Z", "+02:00") it is that instant, without one local time in `zone`; other
  text is NULL. A number read as an epoch is seconds already. A timestamp_tz's MinMax and top values come
  back as aware UTC datetimes (pyspark alone would hand naive ones in the Python process's zone); its text
  (of="text", Matches, TopK) is rendered in the session zone.
- Sampling: one uniform column `rand(SAMPLE_SEED)` per scan; a request with `sample=s` reads the rows with
  u < s (Bernoulli, about s of them), so every request with the same share sees the same rows (and a
  smaller share a subset of a larger one's); the seed is fixed, so a rerun on the same data and
  partitioning sees the same sample. A sampled answer is marked exact=False.
- Approximations (exact=False): quantiles by `percentile_approx` with accuracy APPROX_QUANTILE_ACCURACY
  (rank error at most n / accuracy; the answer is a value of the data, not interpolated), distinct counts by
  HyperLogLog++ (`approx_count_distinct`) with relative standard deviation APPROX_DISTINCT_RSD; an
  approximate distinct count on a column whose exact count the scan computes anyway is answered exactly.
  Exact quantiles are `percentile` (interpolated), exact distinct counts `count_distinct`.
- Cost at scale: an exact quantile holds every distinct value of the column (with its count) in one task's
  memory; each exact distinct count (Distinct, DistinctRows, DuplicateRows, ValueCounts) is one more copy of
  the rows through Spark's distinct rewrite (Expand, then a shuffle on the value). Ask for exact=False on
  big tables. Moments ignores `center`: Spark's avg and stddev_samp are one pass and stable already.
- `limit` scans `df.limit(limit)`: the first rows Spark produces; the probes take the limit again, which on
  a source without a stable order may be other rows.
- Errors: Spark's (AnalysisException, a lost JVM, …) become SourceError with their first line, an invalid
  regex or zone a SpecError; a request Spark cannot serve (quantiles of text) is a SpecError before any job.
  Matches is a full match, `\\A(?:regex)\\z` (Java's `$` would let a final newline pass).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

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
    Or,
    Predicate,
    Quantiles,
    Request,
    TopK,
    ValueCounts,
)
from mlguard_orchestration.errors import SourceError, SpecError, missing_column_error

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

APPROX_QUANTILE_ACCURACY = 10_000
APPROX_DISTINCT_RSD = 0.01
SAMPLE_SEED = 14

# Spark's data type class → logical kind (by name: TimeType and VariantType exist only in newer Sparks)
_KINDS = {
    **dict.fromkeys(("ByteType", "ShortType", "IntegerType", "LongType"), "integer"),
    "FloatType": "float", "DoubleType": "float", "DecimalType": "decimal",
    **dict.fromkeys(("StringType", "CharType", "VarcharType"), "string"),
    "BooleanType": "boolean", "TimestampType": "timestamp_tz", "TimestampNTZType": "timestamp", "DateType": "date",
    "TimeType": "time", "BinaryType": "binary",
    **dict.fromkeys(("DayTimeIntervalType", "YearMonthIntervalType", "CalendarIntervalType"), "interval"),
    **dict.fromkeys(("ArrayType", "MapType", "StructType", "VariantType"), "nested"),
}
_NUMERIC = frozenset({"integer", "float", "decimal"})  # a boolean is a number of="number" (0/1)
# Spark error conditions that are the request's fault, not the data's
_SPEC_CONDITIONS = ("INVALID_PARAMETER_VALUE.PATTERN", "INVALID_TIMEZONE")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DISTINCT_PARTS = frozenset({"distinct", "distinct_rows", "distinct_tuples"})  # exact count_distinct aggregates


def columns(df: DataFrame) -> dict[str, tuple[str, str]]:
    """Column name → (Spark type as `simpleString`, logical kind); names Spark cannot tell apart
    (equal, or equal but for case when `spark.sql.caseSensitive` is off) are a SourceError."""
    with _spark_errors():
        fields = df.schema.fields
        sensitive = df.sparkSession.conf.get("spark.sql.caseSensitive", "false") == "true"
    counts = Counter(f.name if sensitive else f.name.lower() for f in fields)
    repeated = [f.name for f in fields if counts[f.name if sensitive else f.name.lower()] > 1]
    if repeated:
        raise SourceError(f"the Spark DataFrame has columns Spark cannot tell apart: {repeated}"
                          f"{'' if sensitive else ' (names are case-insensitive here)'}; rename them")
    return {f.name: (f.dataType.simpleString(), _KINDS.get(type(f.dataType).__name__, "other")) for f in fields}


def measure(df: DataFrame, requests: Iterable[Request], *, kinds: Mapping[str, str],
            limit: int | None = None) -> dict[Request, Measured]:
    """Every request on `df` (over its first `limit` rows when given): the scan requests in one `agg`, then a
    probe per ValueCounts and TopK. `kinds` maps each column to its logical kind, as `columns(df)` gives it."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise SpecError(f"limit must be a non-negative number of rows, got {limit!r}")
    todo = list(dict.fromkeys(requests))
    out: dict[Request, Measured] = {}
    with _spark_errors():
        base = df.limit(limit) if limit is not None else df
        scan = _Scan(kinds, [r for r in todo if not isinstance(r, TopK)])
        decoders = {r: scan.add(r) for r in todo if not isinstance(r, TopK)}
        if decoders:
            projected = base.select(*scan.projection())
            row: dict[str, Any] = {}
            for job in scan.jobs():
                row.update(projected.agg(*job).collect()[0].asDict())
            out.update((r, decode(row)) for r, decode in decoders.items())
        for probe in todo:
            if isinstance(probe, ValueCounts):
                top = _probe(base, kinds, probe.column, probe.top, None, text=False)
                n, distinct = out[probe].value
                out[probe] = Measured(value=Counted(top=top, distinct=distinct, other=n - sum(c for _, c in top)),
                                      exact=True)
            elif isinstance(probe, TopK):
                out[probe] = Measured(value=_probe(base, kinds, probe.column, probe.k, probe.where, text=True),
                                      exact=True)
    return out


# -- column views -----------------------------------------------------------------------------------------


def _ref(name: str) -> Column:
    import pyspark.sql.functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _kind(kinds: Mapping[str, str], name: str) -> str:
    if name not in kinds:
        raise missing_column_error(name, kinds, "the Spark DataFrame")
    return kinds[name]


def _view(c: Col, kinds: Mapping[str, str]) -> Column:
    """The column as `c` sees it, from the raw column (see Col)."""
    import pyspark.sql.functions as F

    kind, x = _kind(kinds, c.name), _ref(c.name)
    if c.of == "value":
        return x
    if c.of == "text":
        return x if kind == "string" else x.cast("string")
    if c.of == "length":
        return F.length(x if kind == "string" else x.cast("string"))
    if c.of == "number":
        return _number(c, kind, x)
    epoch = _epoch(c, kind, x)
    if c.of == "epoch":
        return epoch
    return F.floor(F.pmod(epoch, F.lit(86_400.0)) / 3600).cast("int")  # "hour": of the UTC instant


def _number(c: Col, kind: str, x: Column) -> Column:
    """A DOUBLE, NULL for NaN and ±Inf (text: trimmed of blanks, NULL where it is no number)."""
    import pyspark.sql.functions as F

    if kind in ("integer", "decimal", "boolean"):
        return x.cast("double")
    if kind not in ("float", "string"):
        raise SpecError(f"column {c.name!r} ({kind}) cannot be read as a number (of='number')")
    d = F.trim(x).try_cast("double") if kind == "string" else x.cast("double")
    return F.when(~F.isnan(d) & (F.abs(d) != F.lit(float("inf"))), d)


def _epoch(c: Col, kind: str, x: Column) -> Column:
    """Seconds since 1970 UTC, whatever the session zone: `make_timestamp(…, zone)` reads wall-clock fields in
    `zone` (`to_utc_timestamp` would shift by the session zone as well)."""
    import pyspark.sql.functions as F

    def wall(t: Column) -> Column:  # a TIMESTAMP_NTZ read as wall-clock time in c.zone
        return F.make_timestamp(F.year(t), F.month(t), F.dayofmonth(t), F.hour(t), F.minute(t),
                                F.date_part(F.lit("SECOND"), t), F.lit(c.zone))

    if kind in ("integer", "float", "decimal"):  # seconds already
        return _number(c, kind, x)
    if kind == "timestamp_tz":
        instant = x
    elif kind == "timestamp":
        instant = wall(x)
    elif kind == "date":
        day = F.date_add(x, 1) if c.end_of_day else x
        instant = F.make_timestamp(F.year(day), F.month(day), F.dayofmonth(day), F.lit(0), F.lit(0), F.lit(0),
                                   F.lit(c.zone))
    elif kind == "string":  # the SQL engines' grammar of timestamp text, so that every engine parses the same
        from mlguard_orchestration.engines.sql._dialects import OFFSET_RE, TIMESTAMP_RE

        instant = (F.when(~x.rlike(r"\A(?:" + TIMESTAMP_RE + r")\z"), None)
                   .when(x.rlike(r"\A(?:" + OFFSET_RE + r")\z"), x.try_cast("timestamp"))
                   .otherwise(wall(x.try_cast("timestamp_ntz"))))
    else:
        raise SpecError(f"column {c.name!r} ({kind}) cannot be read as a time (of='epoch'/'hour')")
    return F.unix_micros(instant) / F.lit(1_000_000)


def _is_float_value(c: Col, kinds: Mapping[str, str]) -> bool:
    return c.of == "value" and _kind(kinds, c.name) == "float"


def _is_numeric(c: Col, kinds: Mapping[str, str]) -> bool:
    return c.of in ("number", "epoch", "hour", "length") or (c.of == "value" and _kind(kinds, c.name) in _NUMERIC)


def _tie_key(x: Column, c: Col, kinds: Mapping[str, str]) -> Column:
    """`requests.category_key` in Spark, the order ValueCounts breaks ties in: a whole float as an integer
    ("2", not "2.0"), NaN and ±Inf as Python writes them, an instant by time; else Spark's text (which
    Python's str matches but for the exponent notation of very large or small floats)."""
    import pyspark.sql.functions as F

    kind = _kind(kinds, c.name)
    if _is_instant(c, kinds):
        return F.unix_micros(x)
    if not (c.of in ("number", "epoch") or (c.of == "value" and kind in ("float", "decimal"))):
        return x.cast("string")
    d = x.cast("double")
    whole = F.coalesce(d.try_cast("decimal(38,0)").cast("string"), d.cast("string"))
    return (F.when(F.isnan(d), F.lit("nan")).when(d == F.lit(float("inf")), F.lit("inf"))
            .when(d == F.lit(float("-inf")), F.lit("-inf")).when(d == F.floor(d), whole).otherwise(d.cast("string")))


# -- predicates -------------------------------------------------------------------------------------------


def _predicate(p: Predicate, kinds: Mapping[str, str], view: Callable[[Col], Column]) -> Column:
    """A typed predicate as a Spark condition; NULL (never true) where SQL's three-valued logic says so."""
    import pyspark.sql.functions as F

    def not_nan(c: Col, x: Column) -> Column:  # IEEE: a NaN compares false with everything
        return ~F.isnan(x) if _is_float_value(c, kinds) else F.lit(True)

    if isinstance(p, Compare):
        x = view(p.column)
        return not_nan(p.column, x) & _OPS[p.op](x, F.lit(p.value))
    if isinstance(p, CompareColumns):
        if p.shift and not _is_numeric(p.left, kinds):
            raise SpecError(f"a shift of {p.shift} needs numbers on the left, but {p.left.name!r} is "
                            f"{_kind(kinds, p.left.name)} (ask for Col(…, of='epoch'))")
        left, right = view(p.left), view(p.right)
        shifted = left + F.lit(p.shift) if p.shift else left
        return not_nan(p.left, left) & not_nan(p.right, right) & _OPS[p.op](shifted, right)
    if isinstance(p, IsNull):
        return view(p.column).isNull()
    if isinstance(p, IsIn):
        return view(p.column).isin(*p.values) if p.values else F.lit(False)
    if isinstance(p, IsNaN | IsInf):
        if _kind(kinds, p.column) != "float":
            return F.lit(False)
        x = view(Col(p.column))
        return F.isnan(x) if isinstance(p, IsNaN) else F.coalesce(F.abs(x) == F.lit(float("inf")), F.lit(False))
    if isinstance(p, Matches):
        return view(Col(p.column, "text")).rlike(r"\A(?:" + _whole(p.regex) + r")\z")
    if isinstance(p, And | Or):
        items = [_predicate(i, kinds, view) for i in p.items]
        combined = items[0]
        for item in items[1:]:
            combined = combined & item if isinstance(p, And) else combined | item
        return combined
    if isinstance(p, Not):
        return ~_predicate(p.item, kinds, view)
    raise TypeError(f"not a predicate: {p!r}")


_OPS: dict[str, Callable[[Column, Column], Column]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _whole(regex: str) -> str:
    """`regex`, refused when a `)` of its own would close the `(?:` that anchors it (`a)|(b`): Java accepts
    that wrapped, and it would match far more than in full. (`$` is not the anchor: in Java it also matches
    before a final newline; `\\z` does not.)"""
    depth, i, in_class = 0, 0, False
    while i < len(regex):
        if regex.startswith(r"\Q", i):  # quoted up to \E
            end = regex.find(r"\E", i + 2)
            i = len(regex) if end < 0 else end + 2
            continue
        ch = regex[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 3 if regex.startswith("[^]", i) else 2 if regex.startswith("[]", i) else 1  # a leading ] is literal
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"the regex {regex!r} closes a group it never opened")
        i += 1
    return regex


# -- the scan ---------------------------------------------------------------------------------------------


Decode = Callable[[Any], Measured]


class _Scan:
    """The projection (`_v*` views, `_u` the sample draw) and the aggregates (`_m*`) of one scan."""

    def __init__(self, kinds: Mapping[str, str], requests: list[Request]) -> None:
        self.kinds = kinds
        self.views: dict[Col, str] = {}
        self.parts: dict[tuple[Any, ...], tuple[str, Column]] = {}
        self.sampled = False
        # approximate distinct counts are answered exactly where the scan counts exactly anyway
        self.exact_distinct = {r.column for r in requests
                               if (isinstance(r, Distinct) and r.exact) or isinstance(r, ValueCounts)}

    def view(self, c: Col) -> Column:
        import pyspark.sql.functions as F

        _kind(self.kinds, c.name)
        return F.col(self.views.setdefault(c, f"_v{len(self.views)}"))

    def projection(self) -> list[Column]:
        import pyspark.sql.functions as F

        cols = [_view(c, self.kinds).alias(name) for c, name in self.views.items()]
        return cols + [F.rand(SAMPLE_SEED).alias("_u")] if self.sampled else cols or [F.lit(0).alias("_v")]

    def jobs(self) -> list[list[Column]]:
        """The scan's aggregates as Spark jobs: every plain aggregate in one, each exact distinct count in one
        of its own. Spark rewrites an aggregation holding a distinct count by copying its rows per distinct
        expression (Expand); with quantile sketches beside it, that copy holds a sketch per group (1M rows
        with `Unique(id)` and the profile's quantiles: over 13 minutes, against seconds apart)."""
        plain = [agg.alias(name) for key, (name, agg) in self.parts.items() if key[0] not in _DISTINCT_PARTS]
        alone = [[agg.alias(name)] for key, (name, agg) in self.parts.items() if key[0] in _DISTINCT_PARTS]
        return ([plain] if plain else []) + alone

    def part(self, key: tuple[Any, ...], make: Callable[[], Column]) -> str:
        if key not in self.parts:
            self.parts[key] = (f"_m{len(self.parts)}", make())
        return self.parts[key][0]

    def numbers(self, request: str, c: Col, *, finite: bool = False) -> Column:
        """`c` as a DOUBLE for an aggregate that needs numbers; `finite`: a float of="value" read as "number"
        (NaN has no place in an order), as the other engines read it for quantiles and histograms."""
        kind = _kind(self.kinds, c.name)
        if not _is_numeric(c, self.kinds):
            raise SpecError(f"{request} needs numbers: column {c.name!r} is {kind} as {c.of!r}; ask for it "
                            "of='number' or of='epoch'")
        if finite and c.of == "value" and kind == "float":
            c = Col(c.name, "number")
        return self.view(c).cast("double")

    def sample(self, x: Column, share: float) -> Column:
        import pyspark.sql.functions as F

        if share >= 1:
            return x
        self.sampled = True
        return F.when(F.col("_u") < F.lit(share), x)

    def count_where(self, key: tuple[Any, ...], cond: Callable[[], Column]) -> str:
        import pyspark.sql.functions as F

        return self.part(key, lambda: F.count(F.when(cond(), F.lit(1))))

    def add(self, r: Request) -> Decode:
        """Register the aggregates `r` needs; how to read its answer from the scan's row."""
        import pyspark.sql.functions as F

        if isinstance(r, Count):
            return _one(self.part(("count",), lambda: F.count(F.lit(1))))
        if isinstance(r, NullCount):
            return _one(self.count_where(("null", r.column), lambda: self.view(r.column).isNull()))
        if isinstance(r, CountIf):
            return _one(self.count_where(("if", r.where), lambda: _predicate(r.where, self.kinds, self.view)))
        if isinstance(r, MinMax):
            x, tz = self.view(r.column), _is_instant(r.column, self.kinds)
            lo = self.part(("min", r.column), lambda: _instant_out(F.min(x), tz))
            hi = self.part(("max", r.column), lambda: _instant_out(F.max(x), tz))
            return lambda row: Measured(value=(_py(row[lo], tz), _py(row[hi], tz)), exact=True)
        if isinstance(r, Moments):
            x = self.numbers("Moments", r.column)
            names = [self.part(("n", r.column), lambda: F.count(self.view(r.column))),
                     self.part(("mean", r.column), lambda: F.avg(x)),
                     self.part(("sd", r.column), lambda: F.stddev_samp(x))]
            return lambda row: Measured(value=tuple(_py(row[n]) for n in names), exact=True)
        if isinstance(r, Quantiles):
            return self.quantiles(r)
        if isinstance(r, Distinct):
            if r.exact or r.column in self.exact_distinct:
                return _one(self.part(("distinct", r.column), lambda: F.count_distinct(self.view(r.column))))
            return _one(self.part(("approx_distinct", r.column),
                                  lambda: F.approx_count_distinct(self.view(r.column), APPROX_DISTINCT_RSD)), False)
        if isinstance(r, Histogram):
            return self.histogram(r)
        if isinstance(r, MaxGap):
            gap = self.numbers("MaxGap", r.left) - self.numbers("MaxGap", r.right)
            return _one(self.part(("max_gap", r.left, r.right), lambda: F.max(gap)))
        if isinstance(r, DistinctRows):
            return _one(self.part(("distinct_rows", r.columns),
                                  lambda: F.count_distinct(*(self.view(Col(c)) for c in r.columns))))
        if isinstance(r, DuplicateRows):
            n = self.part(("count",), lambda: F.count(F.lit(1)))
            d = self.part(("distinct_tuples", r.columns),  # a struct is never NULL: NULLs compare equal
                          lambda: F.count_distinct(F.struct(*(self.view(Col(c)) for c in r.columns))))
            return lambda row: Measured(value=row[n] - row[d], exact=True)
        if isinstance(r, ValueCounts):  # the totals here; the top values come from a probe
            n = self.part(("n", r.column), lambda: F.count(self.view(r.column)))
            d = self.part(("distinct", r.column), lambda: F.count_distinct(self.view(r.column)))
            return lambda row: Measured(value=(row[n], row[d]), exact=True)
        raise TypeError(f"not a scan request: {r!r}")

    def quantiles(self, r: Quantiles) -> Decode:
        import pyspark.sql.functions as F

        x = self.sample(self.numbers("Quantiles", r.column, finite=True), r.sample)
        levels = list(r.levels)
        agg = ((lambda: F.percentile(x, levels)) if r.exact
               else (lambda: F.percentile_approx(x, levels, APPROX_QUANTILE_ACCURACY)))
        name = self.part(("quantiles", r.column, r.levels, r.exact, r.sample), agg)
        exact = r.exact and r.sample >= 1
        return lambda row: Measured(value=tuple(_py(v) for v in row[name]) if row[name] is not None
                                    else (None,) * len(levels), exact=exact)

    def histogram(self, r: Histogram) -> Decode:
        import pyspark.sql.functions as F

        x = self.numbers("Histogram", r.column, finite=True)
        bounds = [(None, r.edges[0]), *zip(r.edges, r.edges[1:]), (r.edges[-1], None)]
        names = []
        for lo, hi in bounds:
            def cond(lo: float | None = lo, hi: float | None = hi) -> Column:
                c = x.isNotNull()
                c = c if lo is None else c & (x > F.lit(lo))
                c = c if hi is None else c & (x <= F.lit(hi))
                return self.sample(c, r.sample)
            names.append(self.count_where(("bin", r.column, lo, hi, r.sample), cond))
        return lambda row: Measured(value=tuple(row[n] for n in names), exact=r.sample >= 1)


def _one(name: str, exact: bool = True) -> Decode:
    return lambda row: Measured(value=_py(row[name]), exact=exact)


def _is_instant(c: Col, kinds: Mapping[str, str]) -> bool:
    return c.of == "value" and _kind(kinds, c.name) == "timestamp_tz"


def _instant_out(x: Column, instant: bool) -> Column:
    """An instant crosses as microseconds since 1970 (pyspark would make it a naive local datetime)."""
    import pyspark.sql.functions as F

    return F.unix_micros(x) if instant else x


def _py(v: Any, instant: bool = False) -> Any:
    if v is None:
        return None
    if instant:
        return _EPOCH + dt.timedelta(microseconds=v)
    return float(v) if isinstance(v, Decimal) else v


def _probe(base: DataFrame, kinds: Mapping[str, str], c: Col, top: int, where: Predicate | None, *,
           text: bool) -> tuple[tuple[Any, int], ...]:
    """The `top` most frequent non-NULL values of `c` (where `where` holds), most frequent first, ties by the
    value as text (TopK: Spark's text, which is its answer; ValueCounts: `category_key`'s): a GROUP BY that
    returns at most `top` rows."""
    import pyspark.sql.functions as F

    rows = base.where(_predicate(where, kinds, lambda col: _view(col, kinds))) if where is not None else base
    instant = _is_instant(c, kinds) and not text
    grouped = (rows.select(_view(c, kinds).alias("v")).where(F.col("v").isNotNull()).groupBy("v")
               .agg(F.count(F.lit(1)).alias("n")))
    shown = F.col("v").cast("string") if text else _instant_out(F.col("v"), instant)
    tie = F.col("v").cast("string") if text else _tie_key(F.col("v"), c, kinds)
    got = (grouped.orderBy(F.desc("n"), tie).limit(top)
           .select(shown.alias("v"), "n").collect())
    return tuple((_py(r["v"], instant), r["n"]) for r in got)


@contextmanager
def _spark_errors() -> Iterator[None]:
    """Spark's errors as ours: the request's fault (a bad regex or zone) a SpecError, the rest SourceError,
    each with the first line of the innermost cause (a failed task's Java error says more than py4j's)."""
    from py4j.protocol import Py4JError, Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as e:
        _raise(str(e), (e.getCondition() or "").startswith(_SPEC_CONDITIONS))
    except Py4JJavaError as e:
        cause = e.java_exception
        while cause.getCause() is not None:
            cause = cause.getCause()
        _raise(str(cause.toString()), cause.getClass().getName() == "java.util.regex.PatternSyntaxException")
    except Py4JError as e:
        _raise(str(e), False)


def _raise(message: str, spec: bool) -> NoReturn:
    first = (message.strip().splitlines() or ["(no message)"])[0]
    if spec:
        raise SpecError(f"Spark refused the request: {first}") from None
    raise SourceError(f"Spark could not compute the metrics: {first}") from None
