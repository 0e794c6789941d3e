"""Spike: which SQL compiler the SQL engine uses, Ibis (compile-only) or sqlglot directly (issue 14).

    .venv/bin/python benchmarks/sql_compiler_spike.py          # sqlglot (pinned); Ibis too where installed
    .venv/bin/python benchmarks/sql_compiler_spike.py --no-postgres

The same aggregate metrics, in ONE statement per dialect, over a table whose every column name is hostile
(a keyword, a double quote, unicode, a space), compiled by each library for eight dialects:

- per metric and dialect: does the library compile it, refuse it (sqlglot `unsupported_level=RAISE`, Ibis
  `UnsupportedOperationError`), or emit something the dialect does not have (checked against `MISSING_FUNCTIONS`
  below, from the vendors' function references, and by running the postgres and duckdb output for real);
- does the whole statement parse back with sqlglot in that dialect, with the identifiers unchanged;
- postgres and duckdb outputs run on the same generated rows (a throwaway PostgreSQL cluster from
  tests/_postgres.py; DuckDB in process) and their values are compared with numpy's;
- top-k is a separate probe (GROUP BY ... ORDER BY ... LIMIT/TOP).

The decision and the figures are in docs/engines.md. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = ["postgres", "duckdb", "snowflake", "bigquery", "trino", "databricks", "mysql", "tsql"]
TABLE = "guard input"
KEYWORD, QUOTE, UNICODE, SPACE = "select", 'a "quoted" name', "prix €", "user name"
LEVELS = (0.1, 0.5, 0.9)
EDGES = (0.0, 10.0, 20.0, 50.0, math.inf)
ROWS = 5_000

# What each dialect's own function reference says it lacks, for the metrics here (the compilers do not know
# all of it: sqlglot emits APPROX_QUANTILE for postgres, Ibis is asked about it below). An engine substitutes
# (exact for approximate, CASE sums for COUNT_IF) or says the metric is unavailable; never silently changes
# exact into approximate.
LACKS = {
    "postgres": {"approx_quantile", "approx_distinct"},  # extensions only (tdigest, hll)
    "duckdb": set(),
    "snowflake": set(),
    "bigquery": {"exact_quantile"},  # PERCENTILE_CONT is an analytic (window) function there, not an aggregate
    "trino": {"exact_quantile"},  # approx_percentile only
    "databricks": set(),  # percentile() is exact, percentile_approx approximate
    "mysql": {"approx_quantile", "exact_quantile", "approx_distinct"},
    "tsql": {"exact_quantile"},  # PERCENTILE_CONT is a window function; APPROX_PERCENTILE_CONT (2022+) exists
}
# Function names a compiler may emit that the dialect does not have (as aggregates), from the same references.
MISSING_FUNCTIONS = {
    "postgres": {"APPROX_QUANTILE", "APPROX_PERCENTILE", "APPROX_DISTINCT", "APPROX_COUNT_DISTINCT", "COUNT_IF"},
    "duckdb": set(),
    "snowflake": {"APPROX_QUANTILE", "APPROX_DISTINCT"},
    "bigquery": {"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_DISTINCT"},
    "trino": {"PERCENTILE_CONT", "APPROX_QUANTILE", "APPROX_COUNT_DISTINCT"},
    "databricks": {"APPROX_QUANTILE", "APPROX_DISTINCT"},
    "mysql": {"APPROX_QUANTILE", "APPROX_PERCENTILE", "PERCENTILE_CONT", "APPROX_DISTINCT", "APPROX_COUNT_DISTINCT",
              "COUNT_IF", "MEDIAN"},
    "tsql": {"STDDEV_SAMP", "APPROX_QUANTILE", "APPROX_DISTINCT", "COUNT_IF"},  # T-SQL's sample stddev is STDEV
}
APPROXIMATE_FUNCTIONS = {"APPROX_QUANTILE", "APPROX_PERCENTILE", "PERCENTILE_APPROX", "APPROX_QUANTILES",
                         "APPROX_PERCENTILE_CONT", "APPROX_DISTINCT", "APPROX_COUNT_DISTINCT"}
IBIS_DIALECT = {"tsql": "mssql"}  # Ibis names T-SQL after the backend


def frame(rows: int = ROWS, seed: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    quoted = rng.gamma(2.0, 3.0, rows)
    quoted[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame({
        KEYWORD: rng.integers(0, 100, rows).astype(np.int64),
        QUOTE: quoted,
        UNICODE: np.round(rng.lognormal(2.5, 0.8, rows), 2),
        SPACE: rng.choice(np.array(["ann", "bob", "c'ed", 'd"an', "éva", "x y"]), rows, p=[.4, .2, .15, .1, .1, .05]),
    })


def metric_names() -> list[str]:
    names = ["count", "null_count", "count_if", "min", "max", "mean", "stddev"]
    names += [f"approx_quantile_{q}" for q in LEVELS] + [f"exact_quantile_{q}" for q in LEVELS]
    names += ["approx_distinct", "exact_distinct"] + [f"bucket_{i}" for i in range(len(EDGES) - 1)]
    return names


# -- the reference values ---------------------------------------------------------------------------------


def expected(df: pd.DataFrame) -> dict[str, float]:
    x = df[UNICODE].to_numpy()
    out: dict[str, float] = {
        "count": len(df), "null_count": float(df[QUOTE].isna().sum()), "count_if": float((df[KEYWORD] > 10).sum()),
        "min": x.min(), "max": x.max(), "mean": x.mean(), "stddev": x.std(ddof=1),
        "approx_distinct": df[SPACE].nunique(), "exact_distinct": df[SPACE].nunique(),
    }
    for q in LEVELS:
        out[f"approx_quantile_{q}"] = out[f"exact_quantile_{q}"] = float(np.quantile(x, q))
    for i, (lo, hi) in enumerate(itertools.pairwise(EDGES)):
        out[f"bucket_{i}"] = float(((x >= lo) & (x < hi)).sum())
    return out


def close(name: str, got: Any, want: float) -> bool:
    if got is None:
        return False
    tol = 0.05 if name.startswith("approx") else 1e-9
    return math.isclose(float(got), want, rel_tol=tol, abs_tol=tol if name.startswith("approx") else 1e-9)


# -- sqlglot ----------------------------------------------------------------------------------------------


def ordered(x: Any, dialect: str) -> Any:
    """ORDER BY x with the dialect's own default null placement: otherwise sqlglot emulates NULLS LAST with a
    `CASE WHEN x IS NULL` sort key (T-SQL, MySQL), which is not allowed inside WITHIN GROUP."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    return exp.Ordered(this=x, nulls_first=Dialect.get_or_raise(dialect).NULL_ORDERING == "nulls_are_small")


def sqlglot_metrics(dialect: str = "duckdb") -> dict[str, Any]:
    from sqlglot import exp

    def col(name: str) -> exp.Column:
        return exp.column(exp.to_identifier(name, quoted=True))

    def count_if(cond: exp.Expression) -> exp.Expression:  # portable: SUM(CASE WHEN cond THEN 1 ELSE 0 END)
        return exp.Sum(this=exp.If(this=cond, true=exp.Literal.number(1), false=exp.Literal.number(0)))

    x = col(UNICODE)
    m: dict[str, Any] = {
        "count": exp.Count(this=exp.Star()),
        "null_count": count_if(exp.Is(this=col(QUOTE), expression=exp.Null())),
        "count_if": count_if(exp.GT(this=col(KEYWORD), expression=exp.Literal.number(10))),
        "min": exp.Min(this=x.copy()), "max": exp.Max(this=x.copy()),
        "mean": exp.Avg(this=x.copy()), "stddev": exp.StddevSamp(this=x.copy()),
        "approx_distinct": exp.ApproxDistinct(this=col(SPACE)),
        "exact_distinct": exp.Count(this=exp.Distinct(expressions=[col(SPACE)])),
    }
    for q in LEVELS:
        m[f"approx_quantile_{q}"] = exp.ApproxQuantile(this=x.copy(), quantile=exp.Literal.number(q))
        m[f"exact_quantile_{q}"] = exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(q)),
                                                   expression=exp.Order(expressions=[ordered(x.copy(), dialect)]))
    for i, (lo, hi) in enumerate(itertools.pairwise(EDGES)):
        cond: exp.Expression = exp.GTE(this=x.copy(), expression=exp.Literal.number(lo))
        if math.isfinite(hi):
            cond = exp.and_(cond, exp.LT(this=x.copy(), expression=exp.Literal.number(hi)))
        m[f"bucket_{i}"] = count_if(cond)
    return m


def with_capabilities(dialect: str, metrics: dict[str, Any], names: list[str]) -> dict[str, str]:
    """What the SQL engine will add to sqlglot: the dialect's gaps from our own table. An approximate request
    the dialect cannot serve is computed exactly (and reported as exact); an exact one it cannot serve is
    refused, never approximated; T-SQL's sample deviation is STDEV. Returns {metric: why refused}."""
    from sqlglot import exp

    refused = {}
    for name in names:
        fam = name.rsplit("_", 1)[0] if "quantile" in name else name
        if fam in LACKS[dialect] and name.startswith("exact"):
            refused[name] = "the dialect has no exact aggregate for it"
        elif fam == "approx_quantile" and fam in LACKS[dialect]:
            exact = "exact" + name.removeprefix("approx")
            metrics[name] = metrics[exact].copy() if "exact_quantile" not in LACKS[dialect] else None
            if metrics[name] is None:
                refused[name] = "the dialect has no quantile aggregate"
        elif fam == "approx_distinct" and fam in LACKS[dialect]:
            metrics[name] = metrics["exact_distinct"].copy()
    x = metrics["min"].this
    for q in LEVELS:  # functions sqlglot spells in a way the dialect does not have, or approximates
        if dialect == "databricks":  # sqlglot writes PERCENTILE_APPROX for PERCENTILE_CONT; percentile() is exact
            metrics[f"exact_quantile_{q}"] = exp.Anonymous(this="PERCENTILE", expressions=[x.copy(), exp.Literal.number(q)])
        if dialect == "tsql":
            metrics[f"approx_quantile_{q}"] = exp.WithinGroup(
                this=exp.Anonymous(this="APPROX_PERCENTILE_CONT", expressions=[exp.Literal.number(q)]),
                expression=exp.Order(expressions=[ordered(x.copy(), dialect)]))
    if dialect == "tsql":
        metrics["stddev"] = exp.Anonymous(this="STDEV", expressions=[x.copy()])
        metrics["approx_distinct"] = exp.Anonymous(this="APPROX_COUNT_DISTINCT",
                                                   expressions=[metrics["exact_distinct"].this.expressions[0].copy()])
    return refused


def sqlglot_compile(dialect: str, names: list[str], capabilities: bool = False) -> tuple[str, dict[str, str]]:
    """One statement with every metric the dialect compiles; the refused ones with sqlglot's reason."""
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    metrics, cols = sqlglot_metrics(dialect if capabilities else "duckdb"), []
    refused = with_capabilities(dialect, metrics, names) if capabilities else {}
    for name in (n for n in names if n not in refused):
        try:
            metrics[name].sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
            cols.append(exp.alias_(metrics[name], name, quoted=True))
        except Exception as e:  # noqa: BLE001 - sqlglot.errors.UnsupportedError, or any compile failure
            refused[name] = str(e).splitlines()[0][:80]
    table = exp.Table(this=exp.to_identifier(TABLE, quoted=True))
    return exp.select(*cols).from_(table).sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE), refused


def sqlglot_topk(dialect: str, k: int = 3) -> str:
    from sqlglot import exp

    c = exp.column(exp.to_identifier(SPACE, quoted=True))
    n = exp.to_identifier("n", quoted=True)
    q = (exp.select(c, exp.alias_(exp.Count(this=exp.Star()), n)).from_(exp.Table(this=exp.to_identifier(TABLE, quoted=True)))
         .group_by(c.copy()).order_by(exp.Ordered(this=exp.column(n.copy()), desc=True), exp.Ordered(this=c.copy()))
         .limit(k))
    return q.sql(dialect=dialect)


# -- Ibis (compile-only, on a schema-only table) ----------------------------------------------------------


def ibis_metrics() -> dict[str, Any]:
    import ibis

    t = ibis.table({KEYWORD: "int64", QUOTE: "float64", UNICODE: "float64", SPACE: "string"}, name=TABLE)
    x = t[UNICODE]
    m: dict[str, Any] = {
        "count": t.count(), "null_count": t[QUOTE].isnull().sum(), "count_if": (t[KEYWORD] > 10).sum(),
        "min": x.min(), "max": x.max(), "mean": x.mean(), "stddev": x.std(how="sample"),
        "approx_distinct": t[SPACE].approx_nunique(), "exact_distinct": t[SPACE].nunique(),
    }
    for q in LEVELS:
        m[f"approx_quantile_{q}"] = x.approx_quantile(q)
        m[f"exact_quantile_{q}"] = x.quantile(q)
    for i, (lo, hi) in enumerate(itertools.pairwise(EDGES)):
        m[f"bucket_{i}"] = ((x >= lo) & (x < hi)).sum() if math.isfinite(hi) else (x >= lo).sum()
    return {"table": t, "metrics": m}


def ibis_compile(dialect: str, names: list[str]) -> tuple[str, dict[str, str]]:
    import ibis

    built = ibis_metrics()
    t, metrics = built["table"], built["metrics"]
    ok, refused = {}, {}
    for name in names:
        try:
            ibis.to_sql(t.aggregate(**{name: metrics[name]}), dialect=IBIS_DIALECT.get(dialect, dialect))
            ok[name] = metrics[name]
        except Exception as e:  # noqa: BLE001 - ibis' UnsupportedOperationError, among others
            refused[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"
    return str(ibis.to_sql(t.aggregate(**ok), dialect=IBIS_DIALECT.get(dialect, dialect))), refused


def ibis_topk(dialect: str, k: int = 3) -> str:
    import ibis

    t = ibis_metrics()["table"]
    return str(ibis.to_sql(t.group_by(SPACE).agg(n=t.count()).order_by([ibis.desc("n"), SPACE]).limit(k),
                           dialect=IBIS_DIALECT.get(dialect, dialect)))


# -- checks -----------------------------------------------------------------------------------------------


def parse_back(sql: str, dialect: str) -> tuple[bool, bool, list[str]]:
    """(parses, identifiers survive, function names used) for a compiled statement."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:  # noqa: BLE001 - any parse failure is the finding
        return False, False, []
    idents = {i.name for i in tree.find_all(exp.Identifier)}
    funcs = sorted({(f.sql_name() if not isinstance(f, exp.Anonymous) else str(f.this)).upper()
                    for f in tree.find_all(exp.Func)})
    return True, {KEYWORD, QUOTE, UNICODE, SPACE, TABLE} <= idents, funcs


def _calls(sql: str) -> set[str]:
    import re

    return {m.upper() for m in re.findall(r"([A-Za-z_]+)\s*\(", sql)}


def silently_wrong(dialect: str, sql_by_metric: dict[str, str]) -> dict[str, str]:
    """Metrics compiled, without a word, into a function the dialect lacks, into an approximation when exact
    was asked, or into an exact computation when the dialect has a cheaper sketch (noted, not an error)."""
    out = {}
    for m, sql in sql_by_metric.items():
        calls = _calls(sql.split(" FROM ")[0])
        if missing := calls & MISSING_FUNCTIONS[dialect]:
            out[m] = "lacks " + ",".join(sorted(missing))
        elif m.startswith("exact") and calls & APPROXIMATE_FUNCTIONS:
            out[m] = "exact became approximate"
        elif m.startswith("approx") and not calls & APPROXIMATE_FUNCTIONS:
            out[m] = "approximate became exact"
    return out


def compile_for(lib: str, dialect: str, names: list[str]) -> tuple[str, dict[str, str]]:
    if lib == "ibis":
        return ibis_compile(dialect, names)
    return sqlglot_compile(dialect, names, capabilities=lib == "sqlglot+table")


def per_metric_sql(lib: str, dialect: str, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = compile_for(lib, dialect, [name])[0]
        except Exception:  # noqa: BLE001, S112 - refused metrics are reported by the caller
            continue
    return out


def run_duckdb(sql: str, df: pd.DataFrame) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.register(TABLE, df)
    cur = con.execute(sql)
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def run_postgres(sql: str, con: Any) -> dict[str, Any]:
    try:
        cur = con.execute(sql)
        return dict(zip([d.name for d in cur.description], cur.fetchone()))
    except Exception as e:  # noqa: BLE001 - the server's refusal is the finding
        con.rollback()
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}


def run_rows(sql: str, where: Any) -> list[Any]:
    """Rows of a probe, from DuckDB (given the frame) or a psycopg connection."""
    if isinstance(where, pd.DataFrame):
        import duckdb

        con = duckdb.connect()
        con.register(TABLE, where)
        return con.execute(sql).fetchall()
    try:
        return where.execute(sql).fetchall()
    except Exception:  # noqa: BLE001 - the server's refusal is the finding
        where.rollback()
        return []


def timed_import(module: str) -> float | None:
    import subprocess

    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if r.returncode:
            return None
        runs.append(float(r.stdout))
    return round(min(runs), 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-postgres", action="store_true", help="skip running the postgres output on a real server")
    p.add_argument("--sql", action="store_true", help="print every compiled statement")
    args = p.parse_args(argv)
    libs = ["sqlglot", "sqlglot+table"]  # sqlglot alone, and with our table of the dialects' gaps
    try:
        import ibis  # noqa: F401

        libs.append("ibis")
    except ImportError:
        print("ibis not installed: sqlglot only (install ibis-framework and packaging beside it to compare)")
    names, df = metric_names(), frame()
    want = expected(df)
    pg_con, stop_pg = None, None
    if not args.no_postgres:
        sys.path.insert(0, str(ROOT))
        from tests._postgres import load_frame, postgres_server

        gen = postgres_server()
        server = next(gen)
        pg_con, stop_pg = server.connect(), gen.close
        load_frame(pg_con, TABLE, df)
    result: dict[str, Any] = {"libs": {}, "lacks": {d: sorted(v) for d, v in LACKS.items()}}
    for lib in libs:
        t0 = time.perf_counter()
        report: dict[str, Any] = {}
        for d in DIALECTS:
            sql, refused = compile_for(lib, d, names)
            parses, quoting_ok, funcs = parse_back(sql, d)
            each = per_metric_sql(lib, d, [n for n in names if n not in refused])
            entry = {"refused": sorted(refused), "silently_wrong": silently_wrong(d, each), "parses": parses,
                     "identifiers_round_trip": quoting_ok, "functions": funcs, "chars": len(sql),
                     "topk": (ibis_topk if lib == "ibis" else sqlglot_topk)(d)}
            if d in ("duckdb", "postgres"):
                got = run_duckdb(sql, df) if d == "duckdb" else run_postgres(sql, pg_con) if pg_con else {}
                entry["ran"] = "error" not in got and bool(got)
                entry["error"] = got.get("error")
                entry["mismatch"] = sorted(n for n in got if n in want and not close(n, got[n], want[n]))
                entry["values"] = {k: (round(float(v), 4) if v is not None else None) for k, v in got.items()
                                   if k != "error"}
                top = run_rows(entry["topk"], df) if d == "duckdb" else run_rows(entry["topk"], pg_con) if pg_con else []
                want_top = df[SPACE].value_counts().head(3)
                entry["topk_ok"] = [tuple(r) for r in top] == list(zip(want_top.index, want_top.to_numpy()))
            report[d] = entry
            print(f"[{lib:13}] {d:10} parses={parses!s:5} idents={quoting_ok!s:5} refused={sorted(refused)} "
                  f"wrong={entry['silently_wrong']}" + (f" ran={entry.get('ran')} mismatch={entry.get('mismatch')}"
                                                        f" topk_ok={entry.get('topk_ok')}"
                                                        f" {entry.get('error') or ''}" if "ran" in entry else ""))
            if args.sql:
                print(f"           {sql}\n           top-k: {entry['topk']}")
        report["compile_all_s"] = round(time.perf_counter() - t0, 3)
        result["libs"][lib] = report
    result["import_s"] = {"sqlglot": timed_import("sqlglot"), "ibis": timed_import("ibis") if "ibis" in libs else None}
    if stop_pg:
        pg_con.close()
        stop_pg()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
