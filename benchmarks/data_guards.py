"""Benchmark: the zero-config default suite (+ drift against a reference profile) against its floor and pandera.

    python benchmarks/data_guards.py                 # 10M rows x 8 columns, plus the 1M x 30M join check
    python benchmarks/data_guards.py --quick         # 1M rows, for a smoke run
    python benchmarks/data_guards.py --skip-pandera --skip-join --threads 2

What is timed, each part in a FRESH subprocess so that its peak RSS is its own (read from the child's
/proc/self/status VmHWM, falling back to ru_maxrss):

- suite: `Guard("bench", default_suite=True, reference=<profile.json>).run(batch.parquet)`: the whole default
  suite (schema, row count, null-rate drift, unseen categories, numeric/categorical drift, ranges, finiteness,
  exact uniqueness of the reference's unique columns), i.e. ONE aggregate query plus Python evaluation.
- scan (the floor): ONE hand-written DuckDB statement over the same parquet computing the same statistics the
  same way the suite does (counts, nulls, NaN/Inf, min/max/avg/stddev, sampled quantiles, approx distinct,
  categorical histograms in single-column subqueries, reference-bin counts on the sample, out-of-range counts,
  exact distinct of the id by a bitmap), on a fresh `duckdb.connect()` with the same thread count. Written
  here by hand, not by calling the package: suite/scan is the cost of everything around the statistics.
- naive (context, once): the same statistics as one plain aggregate (count(DISTINCT), value histograms and
  per-column sampling in the one scan), the way one would first write it.
- pandera (pandas backend): `pd.read_parquet` + `DataFrameSchema.validate(lazy=True)` with the same checks
  where pandera has them (types, nullability and null rate, in_range, isin, finite, unique id). The load is
  INCLUDED in pandera_s (pandera validates in-memory DataFrames; it cannot stream a file). Drift is EXCLUDED
  for pandera: it has no notion of a reference distribution.
- join: `JoinKeys(left="labels", right="features", on=["user_id", "snapshot_date"])` of 1M labels against
  30M feature rows (1M users x 30 snapshot dates).

suite and scan are run alternately (best of --repeat, default 3); pandera and the join once. Data is generated
by DuckDB (`COPY (SELECT ... FROM range(N)) TO ...`) and cached in benchmarks/.data/ keyed by rows and seed;
the reference batch is a separate file with the same distribution (another seed).

The last line of output is one JSON object with the figures, for scripts comparing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _measure import cpu_s, peak_rss_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
RESULT_TAG = "@@RESULT "
GENERATOR = 2  # in the cached files' names: bump when the generated data changes (2: independent streams)

BATCH_SEED = 1
REFERENCE_SEED = 2
JOIN_SEED = 3
LABEL_ROWS = 1_000_000
FEATURE_USERS = 1_000_000
FEATURE_DATES = 30

# Mirrors of the package's constants (kept by hand: the floor must not call the package).
QUANTILE_LEVELS = [i / 20 for i in range(21)]
QUANTILE_SAMPLE = 100_000
RANGE_MARGIN = 0.5
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "ES",
             "IT", "NL", "MX", "SE", "PL", "KR", "ZA", "AR", "NG", "IE"]
PLANS = ["free", "basic", "pro", "enterprise"]


# -- helpers shared by parent and children ----------------------------------------------------------------


def emit(result: dict[str, Any]) -> None:
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print(RESULT_TAG + json.dumps(result, default=str), flush=True)


def import_mlguard() -> Any:
    """Import the package, retrying briefly: other people may be mid-edit."""
    sys.path.insert(0, str(ROOT))
    last: Exception | None = None
    for _ in range(6):
        try:
            import mlguard_orchestration as mg

            return mg
        except Exception as exc:  # noqa: BLE001 - any import-time breakage is worth a retry
            last = exc
            for name in [m for m in sys.modules if m.startswith("mlguard_orchestration")]:
                del sys.modules[name]
            time.sleep(5)
    raise RuntimeError(f"cannot import mlguard_orchestration: {last!r}")


def duck(threads: int) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    return con


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def batch_path(rows: int, seed: int) -> Path:
    return DATA / f"events_{rows}_s{seed}_g{GENERATOR}.parquet"


def feature_dates(feature_rows: int) -> int:
    return max(1, feature_rows // FEATURE_USERS)


def join_paths(feature_rows: int) -> tuple[Path, Path]:
    return (DATA / f"labels_{LABEL_ROWS}_d{feature_dates(feature_rows)}_s{JOIN_SEED}_g{GENERATOR}.parquet",
            DATA / f"features_{feature_rows}_s{JOIN_SEED}_g{GENERATOR}.parquet")


# -- data generation (a child) ----------------------------------------------------------------------------


def _h(seed: int, k: int) -> str:
    """A deterministic 64-bit hash of (row i, seed, stream k), independent across streams.

    DuckDB's multi-argument `hash(a, b, c)` folds the last argument's hash in with a XOR: `hash(i, s, 2) xor
    hash(i, s, 3)` is the same constant for every i, so two streams differed by a fixed bit pattern and their
    top bits (the uniforms below) were correlated (0.9996 for one pair of streams, -0.976
    when the constant flipped the top bit). Hashing the combined value again mixes that constant through
    every bit (|corr| < 0.01 between any two streams; tests/test_bench_data.py keeps it so)."""
    return f"hash(hash(i, {seed}, {k}))"


def _u(seed: int, k: int) -> str:
    """A deterministic uniform in (0, 1) for row i, stream k (53 bits of a hash)."""
    return f"((({_h(seed, k)} >> 11)::DOUBLE + 0.5) / 9007199254740992.0)"


def events_sql(rows: int, seed: int) -> str:
    u = lambda k: _u(seed, k)
    countries = "[" + ", ".join(sql_str(c) for c in COUNTRIES) + "]"
    return f"""
        SELECT
            (i + {seed} * 10000000000)::BIGINT AS id,
            ({_h(seed, 1)} % 1000000)::BIGINT AS user_id,
            TIMESTAMP '2024-01-01' + to_seconds(floor({u(2)} * 2592000)::BIGINT) AS event_time,
            round(exp(3.0 + sqrt(-2 * ln({u(3)})) * cos(2 * pi() * {u(4)})), 2)::DOUBLE AS amount,
            CASE WHEN {u(5)} < 0.05 THEN NULL ELSE round(100 * ({u(6)} + {u(7)}) / 2, 3) END::DOUBLE AS score,
            CASE WHEN {u(8)} < 0.5 THEN 'free' WHEN {u(8)} < 0.8 THEN 'basic'
                 WHEN {u(8)} < 0.95 THEN 'pro' ELSE 'enterprise' END AS plan,
            ({countries})[1 + floor(20 * {u(9)} * {u(9)})::INTEGER] AS country,
            ({u(10)} < 0.12)::INTEGER AS label
        FROM (SELECT range AS i FROM range({rows}))"""


def labels_sql(seed: int, dates: int) -> str:
    # One label per user at one of the feature snapshot dates; 1% ask for a date the features do not have.
    return f"""
        SELECT i::BIGINT AS user_id,
               (DATE '2024-01-01' + CASE WHEN {_u(seed, 2)} < 0.01 THEN {dates}
                                        ELSE ({_h(seed, 1)} % {dates})::INTEGER END) AS snapshot_date,
               ({_u(seed, 3)} < 0.12)::INTEGER AS label
        FROM (SELECT range AS i FROM range({LABEL_ROWS}))"""


def features_sql(rows: int, seed: int) -> str:
    return f"""
        SELECT (i % {FEATURE_USERS})::BIGINT AS user_id,
               (DATE '2024-01-01' + (i // {FEATURE_USERS})::INTEGER) AS snapshot_date,
               round({_u(seed, 4)} * 1000, 2)::DOUBLE AS spend_30d,
               ({_h(seed, 5)} % 100)::INTEGER AS sessions_30d
        FROM (SELECT range AS i FROM range({rows}))"""


def part_generate(args: argparse.Namespace) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    con = duck(args.threads)
    made: dict[str, float] = {}
    jobs = [(batch_path(args.rows, BATCH_SEED), events_sql(args.rows, BATCH_SEED)),
            (batch_path(args.rows, REFERENCE_SEED), events_sql(args.rows, REFERENCE_SEED))]
    if not args.skip_join:
        lp, fp = join_paths(args.feature_rows)
        jobs += [(lp, labels_sql(JOIN_SEED, feature_dates(args.feature_rows))), (fp, features_sql(args.feature_rows, JOIN_SEED))]
    for path, query in jobs:
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp.parquet")
        t0 = time.perf_counter()
        con.execute(f"COPY ({query}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        tmp.replace(path)
        made[path.name] = round(time.perf_counter() - t0, 2)
    emit({"generated": made})


# -- the reference profile (a child; not part of the suite figure) ----------------------------------------


def part_profile(args: argparse.Namespace) -> None:
    mg = import_mlguard()
    t0 = time.perf_counter()
    prof = mg.build_profile(str(args.ref_path), threads=args.threads)
    elapsed = time.perf_counter() - t0
    prof.save(args.profile_path)
    emit({"profile_s": round(elapsed, 4),
          "roles": {n: [c.role, c.unique] for n, c in prof.columns.items()}})


# -- our suite (a child) ----------------------------------------------------------------------------------


def part_suite(args: argparse.Namespace) -> None:
    mg = import_mlguard()
    guard = mg.Guard("bench", default_suite=True, reference=str(args.profile_path), threads=args.threads)
    c0, t0 = cpu_s(), time.perf_counter()
    report = guard.run(str(args.batch_path), promote=False)
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
    findings = [{"code": f.code, "severity": f.severity, "check": f.check, "message": f.message}
                for f in report.findings]
    emit({"suite_s": round(elapsed, 4), "cpu_s": round(cpu, 3), "status": report.status, "checks_run": report.checks_run,
          "findings": findings, "error": report.error.message if report.error else None})


# -- the floor: one hand-written aggregate query (a child) ------------------------------------------------


def _reference_bins(cols: dict[str, Any]) -> tuple[Any, Any]:
    """The drift bins (the reference's quantile edges) and widened range bounds, as the default suite has them."""

    def edges(name: str) -> str:
        cum: dict[float, float] = {}
        for v, lvl in zip(cols[name]["quantiles"], QUANTILE_LEVELS):
            cum[v] = lvl
        return "[" + ", ".join(repr(float(e)) for e in sorted(cum)[:-1]) + "]"

    def bounds(name: str) -> tuple[float, float]:
        lo, hi = cols[name]["min"], cols[name]["max"]
        span = (hi - lo) or abs(hi) or 1.0
        low = lo - RANGE_MARGIN * span
        return (max(low, 0.0) if lo >= 0 else low), hi + RANGE_MARGIN * span

    return edges, bounds


def naive_query(path: str, ref: dict[str, Any]) -> str:
    """For context: the same statistics as ONE plain aggregate (count(DISTINCT), value histograms and
    per-column sampling all in the one scan), the way one would first write it. DuckDB then holds the scanned
    columns in memory (~1.2 GB at 10M rows) and evaluates the sampling filter per column."""
    cols = ref["columns"]
    frac = min(1.0, QUANTILE_SAMPLE / max(int(ref["rows"]), 1))
    sample = f"random() < {frac!r}" if frac < 1 else "TRUE"
    levels = "[" + ", ".join(repr(x) for x in QUANTILE_LEVELS) + "]"

    edges, bounds = _reference_bins(cols)

    (u_lo, u_hi), (a_lo, a_hi), (s_lo, s_hi) = bounds("user_id"), bounds("amount"), bounds("score")
    sel = [
        "count(*)",
        # id: integer, unique in the reference -> exact distinct (the Unique check shares it)
        "count(id)", "approx_count_distinct(id)", "count(DISTINCT id)",
        "min(id::DOUBLE)", "max(id::DOUBLE)", "avg(id::DOUBLE)", "stddev_samp(id::DOUBLE)",
        f"quantile_cont(id::DOUBLE, {levels}) FILTER (WHERE {sample})",
        "count(*) FILTER (WHERE id IS NOT NULL)",
        # user_id: integer numeric
        "count(user_id)", "approx_count_distinct(user_id)",
        "min(user_id::DOUBLE)", "max(user_id::DOUBLE)", "avg(user_id::DOUBLE)", "stddev_samp(user_id::DOUBLE)",
        f"quantile_cont(user_id::DOUBLE, {levels}) FILTER (WHERE {sample})",
        f"histogram(user_id::DOUBLE, {edges('user_id')})",
        f"count_if(user_id::DOUBLE < {u_lo!r} OR user_id::DOUBLE > {u_hi!r})",
        # event_time: temporal
        "count(event_time)", "approx_count_distinct(event_time)",
        "min(epoch(event_time))", "max(epoch(event_time))",
        f"quantile_cont(epoch(event_time), {levels}) FILTER (WHERE {sample})",
    ]
    for c, lo, hi in (("amount", a_lo, a_hi), ("score", s_lo, s_hi)):  # floats: finiteness-filtered
        fin = f"isfinite({c}::DOUBLE)"
        sel += [
            f"count({c})", f"approx_count_distinct({c})", f"count_if(isnan({c}))", f"count_if(isinf({c}))",
            f"min({c}::DOUBLE) FILTER (WHERE {fin})", f"max({c}::DOUBLE) FILTER (WHERE {fin})",
            f"avg({c}::DOUBLE) FILTER (WHERE {fin})", f"stddev_samp({c}::DOUBLE) FILTER (WHERE {fin})",
            f"quantile_cont({c}::DOUBLE, {levels}) FILTER (WHERE {fin} AND {sample})",
            f"histogram({c}::DOUBLE, {edges(c)}) FILTER (WHERE {fin})",
            f"count_if({c}::DOUBLE < {lo!r} OR {c}::DOUBLE > {hi!r})",
        ]
    for c in ("plan", "country"):  # categorical
        sel += [f"count({c})", f"approx_count_distinct({c})", f"histogram({c})"]
    # label: discrete integer -> numeric stats and a value histogram
    sel += ["count(label)", "approx_count_distinct(label)", "min(label::DOUBLE)", "max(label::DOUBLE)",
            "avg(label::DOUBLE)", "stddev_samp(label::DOUBLE)",
            f"quantile_cont(label::DOUBLE, {levels}) FILTER (WHERE {sample})", "histogram(label)"]
    return f"SELECT {', '.join(sel)} FROM read_parquet({sql_str(path)})"


def floor_query(path: str, ref: dict[str, Any], id_bounds: tuple[int, int]) -> str:
    """THE FLOOR: one statement computing the statistics the default suite computes, the way it computes
    them, hand-written for this data set's 8 columns: one streaming scan with the per-row work done once
    (sample draw, finiteness), sampled quantiles and reference-bin counts, exact distinct of the integer key
    by a bitmap, and each value histogram in its own single-column subquery."""
    cols = ref["columns"]
    frac = min(1.0, QUANTILE_SAMPLE / max(int(ref["rows"]), 1))
    levels = "[" + ", ".join(repr(x) for x in QUANTILE_LEVELS) + "]"
    t = f"read_parquet({sql_str(path)})"

    edges, bounds = _reference_bins(cols)

    (u_lo, u_hi), (a_lo, a_hi), (s_lo, s_hi) = bounds("user_id"), bounds("amount"), bounds("score")
    q = f"quantile_cont(X, {levels}) FILTER (WHERE s)"

    def moments(x: str, name: str) -> list[str]:  # mean/std from sums around the reference mean
        d = f"({x} - {float(cols[name]['mean'])!r})"
        return [f"count({x})", f"sum({d})", f"sum({d} * {d})"]

    sel = ["count(*)",
           "count(id)", f"bit_count(bitstring_agg(id, {id_bounds[0]}, {id_bounds[1]}))",
           "min(id)", "max(id)", *moments("id::DOUBLE", "id"),
           q.replace("X", "id::DOUBLE"),
           "count(user_id)", "approx_count_distinct(user_id)", "min(user_id)", "max(user_id)",
           *moments("user_id::DOUBLE", "user_id"), q.replace("X", "user_id::DOUBLE"),
           f"histogram(user_id::DOUBLE, {edges('user_id')}) FILTER (WHERE s)",
           f"count_if(user_id::DOUBLE < {u_lo!r} OR user_id::DOUBLE > {u_hi!r})",
           "count(event_time)", "min(epoch(event_time))",
           "max(epoch(event_time))", q.replace("X", "epoch(event_time)")]
    for c, f, lo, hi in (("amount", "fa", a_lo, a_hi), ("score", "fs", s_lo, s_hi)):
        sel += [f"count({c})", f"count_if(isnan({c}))", f"count_if(isinf({c}))", f"min({f})", f"max({f})",
                *moments(f, c), q.replace("X", f),
                f"histogram({f}, {edges(c)}) FILTER (WHERE s AND {f} IS NOT NULL)",
                f"count_if({c}::DOUBLE < {lo!r} OR {c}::DOUBLE > {hi!r})"]
    for c in ("plan", "country"):
        sel += [f"count({c})", f"(SELECT histogram({c}) FROM {t})"]
    sel += ["count(label)", "min(label)", "max(label)", *moments("label::DOUBLE", "label"),
            q.replace("X", "label::DOUBLE"),
            f"(SELECT histogram(label) FROM {t})"]
    sample = f"random() < {frac!r}" if frac < 1 else "TRUE"
    derived = (f"SELECT *, {sample} AS s, CASE WHEN isfinite(amount) THEN amount::DOUBLE END AS fa, "
               f"CASE WHEN isfinite(score) THEN score::DOUBLE END AS fs FROM {t}")
    return f"SELECT {', '.join(sel)} FROM ({derived})"


def part_scan(args: argparse.Namespace) -> None:
    ref = json.loads(Path(args.profile_path).read_text())
    con = duck(args.threads)
    c0, t0 = cpu_s(), time.perf_counter()
    t = f"read_parquet({sql_str(str(args.batch_path))})"
    lo, hi = con.execute(f"SELECT min(id), max(id) FROM {t}").fetchall()[0]  # the bitmap's bounds
    row = con.execute(floor_query(str(args.batch_path), ref, (lo, hi))).fetchall()[0]
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
    emit({"scan_s": round(elapsed, 4), "cpu_s": round(cpu, 3), "aggregates": len(row), "rows": int(row[0]),
          "exact_distinct_id": int(row[2])})


def part_naive(args: argparse.Namespace) -> None:
    ref = json.loads(Path(args.profile_path).read_text())
    con = duck(args.threads)
    c0, t0 = cpu_s(), time.perf_counter()
    row = con.execute(naive_query(str(args.batch_path), ref)).fetchall()[0]
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
    emit({"naive_scan_s": round(elapsed, 4), "cpu_s": round(cpu, 3), "aggregates": len(row)})


# -- pandera (a child) ------------------------------------------------------------------------------------


def part_pandera(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

    ref = json.loads(Path(args.profile_path).read_text())
    cols = ref["columns"]

    def bounds(name: str) -> tuple[float, float]:
        lo, hi = cols[name]["min"], cols[name]["max"]
        span = (hi - lo) or abs(hi) or 1.0
        low = lo - RANGE_MARGIN * span
        return (max(low, 0.0) if lo >= 0 else low), hi + RANGE_MARGIN * span

    def null_rate_ok(col: str, max_increase: float = 0.05) -> pa.Check:
        allowed = cols[col]["nulls"] / cols[col]["count"] + max_increase
        return pa.Check(lambda df: df[col].isna().mean() <= allowed, name=f"null_rate({col})")

    finite = pa.Check(lambda s: np.isfinite(s), name="finite")
    schema = pa.DataFrameSchema(
        {
            "id": pa.Column("int64", nullable=False, unique=True),
            "user_id": pa.Column("int64", pa.Check.in_range(*bounds("user_id")), nullable=False),
            "event_time": pa.Column("datetime64[us]", nullable=False),
            "amount": pa.Column("float64", [pa.Check.in_range(*bounds("amount")), finite], nullable=True),
            "score": pa.Column("float64", [pa.Check.in_range(*bounds("score")), finite], nullable=True),
            "plan": pa.Column(str, pa.Check.isin(sorted(cols["plan"]["categories"])), nullable=True),
            "country": pa.Column(str, pa.Check.isin(sorted(cols["country"]["categories"])), nullable=True),
            "label": pa.Column("int32", pa.Check.isin([0, 1]), nullable=True),
        },
        checks=[null_rate_ok(c) for c in cols],
        strict=True,
    )
    t0 = time.perf_counter()
    df = pd.read_parquet(args.batch_path)
    t_load = time.perf_counter() - t0
    failure: str | None = None
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failure = str(exc.failure_cases.head(10))
    elapsed = time.perf_counter() - t0
    emit({"pandera_s": round(elapsed, 4), "pandera_load_s": round(t_load, 4),
          "pandera_validate_s": round(elapsed - t_load, 4), "failure": failure,
          "dtypes": {c: str(t) for c, t in df.dtypes.items()}})


# -- join-key check (a child) -----------------------------------------------------------------------------


def part_join(args: argparse.Namespace) -> None:
    mg = import_mlguard()
    lp, fp = join_paths(args.feature_rows)
    try:
        check = mg.JoinKeys(left="labels", right="features", on=["user_id", "snapshot_date"])
        guard = mg.Guard("join", checks=[check], threads=args.threads)
        t0 = time.perf_counter()
        report = guard.run({"labels": str(lp), "features": str(fp)}, promote=False)
        elapsed = time.perf_counter() - t0
    except (NotImplementedError, TypeError, AttributeError) as exc:
        emit({"join_check_s": None, "unavailable": f"{type(exc).__name__}: {exc}"})
        return
    if report.error is not None or report.checks_run == 0:
        emit({"join_check_s": None, "unavailable": report.error.message if report.error else "no check ran",
              "status": report.status})
        return
    emit({"join_check_s": round(elapsed, 4), "status": report.status,
          "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in report.findings],
          "tables": {n: t.rows for n, t in report.tables.items()}})


PARTS = {"generate": part_generate, "profile": part_profile, "suite": part_suite, "scan": part_scan,
         "naive": part_naive, "pandera": part_pandera, "join": part_join}


# -- the driver (the parent stays small: it never imports duckdb, pandas or the package) ------------------


def run_child(part: str, args: argparse.Namespace, timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--rows", str(args.rows),
           "--threads", str(args.threads), "--feature-rows", str(args.feature_rows)]
    if args.skip_join:
        cmd.append("--skip-join")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f"part {part!r} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:8.3f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3, help="suite/scan repetitions, interleaved (best is kept)")
    p.add_argument("--feature-rows", type=int, default=FEATURE_USERS * FEATURE_DATES)
    p.add_argument("--skip-pandera", action="store_true")
    p.add_argument("--skip-join", action="store_true")
    p.add_argument("--quick", action="store_true", help="1M rows (and 3M feature rows) for a smoke run")
    p.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows = 1_000_000
        args.feature_rows = FEATURE_USERS * 3
    args.batch_path = batch_path(args.rows, BATCH_SEED)
    args.ref_path = batch_path(args.rows, REFERENCE_SEED)
    args.profile_path = DATA / f"profile_{args.rows}_s{REFERENCE_SEED}.json"

    if args.part:
        PARTS[args.part](args)
        return 0

    print(f"data guards benchmark: {args.rows:,} rows x 8 columns, {args.threads} thread(s), "
          f"{os.cpu_count()} core(s); data in {DATA.relative_to(ROOT)}/", flush=True)
    gen = run_child("generate", args)
    for name, secs in gen["generated"].items():
        print(f"  generated {name} in {secs:.1f} s", flush=True)

    prof = run_child("profile", args)
    print(f"reference profile (one pass over the reference file): {prof['profile_s']:.3f} s, "
          f"peak RSS {prof['peak_rss_mb']:.0f} MB", flush=True)
    print("  roles: " + ", ".join(f"{n}={r}{'(unique)' if u else ''}" for n, (r, u) in prof["roles"].items()),
          flush=True)

    suites: list[dict[str, Any]] = []
    scans: list[dict[str, Any]] = []
    for i in range(args.repeat):
        suites.append(run_child("suite", args))
        scans.append(run_child("scan", args))
        print(f"  run {i + 1}/{args.repeat}: suite {suites[-1]['suite_s']:.3f} s (cpu {suites[-1]['cpu_s']:.2f} s, "
              f"{suites[-1]['peak_rss_mb']:.0f} MB), scan {scans[-1]['scan_s']:.3f} s (cpu {scans[-1]['cpu_s']:.2f} s, "
              f"{scans[-1]['peak_rss_mb']:.0f} MB), load average {os.getloadavg()[0]:.1f}", flush=True)
    suite_s = min(r["suite_s"] for r in suites)
    scan_s = min(r["scan_s"] for r in scans)
    suite_cpu = min(r["cpu_s"] for r in suites)
    scan_cpu = min(r["cpu_s"] for r in scans)
    suite_rss = max(r["peak_rss_mb"] for r in suites)
    scan_rss = max(r["peak_rss_mb"] for r in scans)
    last = suites[-1]
    print(f"suite report: status={last['status']}, checks_run={last['checks_run']}, "
          f"findings={len(last['findings'])}" + (f", error={last['error']}" if last["error"] else ""), flush=True)
    for f in last["findings"]:
        print(f"  [{f['severity']}] {f['code']} ({f['check']}): {f['message']}", flush=True)
    false_alarm = last["status"] not in ("pass", "warn") or any(f["severity"] == "fail" for f in last["findings"])
    if false_alarm:
        print("  !! FALSE ALARM: the batch has the reference's distribution; the suite should not fail it.",
              flush=True)

    naive = run_child("naive", args)
    print(f"naive single query (for context): {naive['naive_scan_s']:.3f} s, cpu {naive['cpu_s']:.2f} s, "
          f"peak RSS {naive['peak_rss_mb']:.0f} MB", flush=True)

    pandera: dict[str, Any] | None = None
    if not args.skip_pandera:
        pandera = run_child("pandera", args)
        print(f"pandera: load {pandera['pandera_load_s']:.3f} s + validate {pandera['pandera_validate_s']:.3f} s, "
              f"peak RSS {pandera['peak_rss_mb']:.0f} MB" + (" (validation reported failures)" if pandera["failure"]
                                                              else ""), flush=True)
        if pandera["failure"]:
            print(pandera["failure"], flush=True)

    join: dict[str, Any] | None = None
    if not args.skip_join:
        join = run_child("join", args)
        if join.get("join_check_s") is None:
            print(f"join check: NOT AVAILABLE ({join.get('unavailable')}); join_check_s = null", flush=True)
        else:
            print(f"join check ({LABEL_ROWS:,} labels vs {args.feature_rows:,} feature rows): status="
                  f"{join['status']}, peak RSS {join['peak_rss_mb']:.0f} MB", flush=True)
            for f in join["findings"]:
                print(f"  [{f['severity']}] {f['code']}: {f['message']}", flush=True)

    pandera_s = pandera["pandera_s"] if pandera else None
    join_s = join.get("join_check_s") if join else None
    ratio = suite_s / scan_s if scan_s else None
    pandera_ratio = pandera_s / suite_s if pandera_s and suite_s else None
    target = lambda ok: "ok" if ok else "MISSED"

    print()
    print(f"{'measure':<44}{'time':>12}{'peak RSS':>12}   note")
    print("-" * 100)
    print(f"{'default suite + drift (ours, best of ' + str(args.repeat) + ')':<44}{fmt_s(suite_s):>12}"
          f"{suite_rss:>9.0f} MB   one aggregate query + evaluation")
    print(f"{'floor: one hand-written DuckDB statement':<44}{fmt_s(scan_s):>12}{scan_rss:>9.0f} MB   "
          "same statistics, same method, fresh connection")
    print(f"{'naive single aggregate (context)':<44}{fmt_s(naive['naive_scan_s']):>12}"
          f"{naive['peak_rss_mb']:>9.0f} MB   count(DISTINCT), histograms, sampling in one scan")
    if pandera:
        print(f"{'pandera (pandas backend), incl. load':<44}{fmt_s(pandera_s):>12}"
              f"{pandera['peak_rss_mb']:>9.0f} MB   load {pandera['pandera_load_s']:.2f} s; drift excluded")
    if join and join_s is not None:
        print(f"{'join keys: 1M labels vs ' + format(args.feature_rows / 1e6, 'g') + 'M features':<44}"
              f"{fmt_s(join_s):>12}{join['peak_rss_mb']:>9.0f} MB")
    print(f"{'reference profile (not in suite figure)':<44}{fmt_s(prof['profile_s']):>12}"
          f"{prof['peak_rss_mb']:>9.0f} MB")
    print("-" * 100)
    if ratio is not None:
        print(f"suite / scan       = {ratio:5.2f}x   (target <= 1.5x: {target(ratio <= 1.5)}); "
              f"in CPU time {suite_cpu:.2f} s / {scan_cpu:.2f} s = {suite_cpu / max(scan_cpu, 1e-9):.2f}x")
    print(f"suite peak RSS     = {suite_rss:5.0f} MB  (target < 1536 MB: {target(suite_rss < 1536)})")
    if pandera_ratio is not None:
        print(f"pandera / suite    = {pandera_ratio:5.1f}x   (target >= 5x: {target(pandera_ratio >= 5)})")
    print(f"suite status       = {last['status']} ({'FALSE ALARM' if false_alarm else 'no fail findings'})")

    print(json.dumps({
        "rows": args.rows,
        "suite_s": suite_s,
        "scan_s": scan_s,
        "suite_over_scan": round(ratio, 3) if ratio is not None else None,
        "pandera_s": pandera_s,
        "pandera_over_suite": round(pandera_ratio, 2) if pandera_ratio is not None else None,
        "peak_rss_mb": round(suite_rss, 1),
        "join_check_s": join_s,
        "suite_cpu_s": suite_cpu,
        "scan_cpu_s": scan_cpu,
        "scan_peak_rss_mb": round(scan_rss, 1),
        "naive_scan_s": naive["naive_scan_s"],
        "pandera_peak_rss_mb": pandera["peak_rss_mb"] if pandera else None,
        "profile_s": prof["profile_s"],
        "threads": args.threads,
        "suite_status": last["status"],
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
