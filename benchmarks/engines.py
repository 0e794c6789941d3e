"""Benchmark: guards computed where the data lives (PostgreSQL pushdown, Spark) against fetching the table.

    python benchmarks/engines.py                      # 50M-row PostgreSQL table; 10M-row parquet for Spark
    python benchmarks/engines.py --quick              # 2M rows in PostgreSQL, 1M rows for Spark (a smoke run)
    python benchmarks/engines.py --skip-spark --rows 10000000 --rss-cap-mb 12000

Every measured part runs in a FRESH subprocess, so its peak RSS (the child's /proc/self/status VmHWM) is its
own; the driver polls the resident set of the child and all its descendants (a JVM too) every 0.2 s and kills
it past --rss-cap-mb (default 8192) or --timeout (default 3600 s a part, 180 s with --quick): such a part is
reported as killed, with the RSS it had reached, never as a time. No figure is asserted.

1. PostgreSQL (skip with --skip-postgres). A throwaway PostgreSQL cluster (tests/_postgres.py: fsync off,
   shared_buffers 64MB, every other setting the server's default, e.g. work_mem 4MB) on 127.0.0.1 TCP. The
   table `public.bench_events_<rows>` is made server-side by `generate_series` (UNLOGGED, setseed(0.25); no
   Python-side rows), then `VACUUM (FREEZE, ANALYZE)` so no scan pays for hint bits:
   id bigint (1..rows, unique), user_id bigint (uniform in [0, 1e6)), amount float8 (exp(3 + N(0,1)) by
   Box-Muller from random(), 2 decimals, 1 % NULL), category text (12 values, 0.5 % NULL), event_time
   timestamptz (uniform over 30 days), flag boolean (30 % true).
   The guard: `Guard("bench", checks=[RowCount(min=1), NullRate(amount, 0.02), NullRate(category, 0.01),
   Range(amount, 0, 1e6), AllowedValues(category, <the 12>), Unique(["id"])])`, and the profile
   (`build_profile`). Four parts, each its own child:
   - pushdown/guard: `guard.run(SqlTable("public.<table>", connection=<SQLAlchemy Engine>))`
   - pushdown/profile: `build_profile(SqlTable(...))`
   - fetch/guard: what a table behind a connection cost before pushdown (Airflow's `hook.get_df(sql)` is
     pandas read_sql): `pandas.read_sql_query('SELECT * FROM public."<table>"', <SQLAlchemy Engine>)` (psycopg 3,
     client-side cursor: the whole result is received, then converted), `pyarrow.Table.from_pandas(df,
     preserve_index=False)`, the DataFrame dropped (as the Airflow adapter's `_fetch` returns only the Arrow
     table), then the same guard on the Arrow table in the embedded DuckDB engine (--threads threads).
   - fetch/profile: the same fetch, then `build_profile(arrow_table)`.
   Figures per part:
   - wall_s: wall seconds of the measured call(s) (fetch: read + to-Arrow + guard; also broken down).
   - cpu_s: user + system CPU seconds of the worker process (all its threads), the same span. The database's
     own work is NOT in it: see server_cpu_s.
   - server_cpu_s: CPU seconds of the whole PostgreSQL cluster over the same span: utime + stime + cutime +
     cstime summed over the postmaster and its live descendants (a parallel worker that exits is counted in
     the postmaster's cutime), so background processes (checkpointer, autovacuum) are in it too.
   - peak_rss_mb: VmHWM of the worker (the database server's memory is not in it).
   - bytes: what crossed the connection into the worker: the TCP stack's `tcpi_bytes_received` (getsockopt
     TCP_INFO; the PostgreSQL protocol payload, no TCP/IP headers) summed over every DBAPI connection the
     worker's SQLAlchemy Engine opened, the delta around the run MINUS the same delta around a trivial run
     (pushdown: the same call on `Sql("SELECT 1 AS one", connection=engine)`; fetch: `read_sql_query("SELECT
     1 AS one")`), measured after one unmeasured trivial run that does the imports. `bytes_raw` and
     `bytes_baseline` are the two deltas.
   - rchar_bytes: the delta of `rchar` in /proc/self/io around the run, minus the same baseline. Reported as
     asked, but it does NOT count the connection: Linux adds to rchar in read()/readv()/sendfile(), and libpq
     receives with recv(), which it does not count (200k rows = 10 MB received moved rchar by 127 bytes).
     What it holds is file reads (a lazily imported module, /proc reads).
   - rows / statements: rows returned to the worker and statements run, counted by a SQLAlchemy
     `after_cursor_execute` listener on the Engine (rows: the cursor's rowcount for statements that return
     rows), for the real run (the baseline's are reported beside them); statement_s: each statement's
     seconds from before_cursor_execute to after_cursor_execute (with psycopg's client-side cursor that
     includes receiving its rows), in the order they ran.
   Ratios fetch/pushdown: wall seconds, worker CPU seconds, peak RSS, bytes (for the guard and for the profile).

2. Spark local vs DuckDB (skip with --skip-spark) on the data_guards.py batch, `benchmarks/.data/
   events_<spark-rows>_s1_g2.parquet` (made, or reused, with data_guards' `events_sql`; 8 columns). The
   guard: RowCount, NullRate(score, 0.1), NullRate(plan, 0), Range(amount, 0, 1e6), AllowedValues(plan, the
   4 plans), Unique(["id"]); and `build_profile`. DuckDB: `.run(<path>)` / `build_profile(<path>)`
   (--threads threads). Spark: `.run(spark.read.parquet(<path>))` / `build_profile(...)` on a `local[2]`
   SparkSession started as tests/_spark.py does (UI off, driver on 127.0.0.1, driver memory 1g); the
   session's start (startup_s) and `spark.read.parquet` (read_s: Spark's first job, reading the footers)
   are timed apart, not in wall_s; cpu_s is the Python process, jvm_cpu_s its
   JVM (the process's descendants), peak_rss_mb the Python process plus the JVM's VmHWM. If
   `mlguard_orchestration.engines.spark` is missing, or the guard does not take a Spark DataFrame yet
   (`remote.remote_of` gives no engine for one; probed without starting a JVM), the Spark figures are null
   and the reason is printed; DuckDB's are still measured.

Wall seconds on a shared machine measure the neighbours too: compare CPU seconds. The last line of output is
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULT_TAG = "@@RESULT "  # as data_guards.emit writes it
CATEGORIES = ["grocery", "electronics", "fashion", "home", "toys", "sports", "books", "beauty", "auto", "garden",
              "health", "travel"]
PLANS = ["free", "basic", "pro", "enterprise"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
TCP_INFO_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in Linux's struct tcp_info (4.1+)


def data_guards() -> Any:
    """benchmarks/data_guards.py as a module: its batch generator and child helpers are reused, not copied."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import data_guards as dg

    return dg


def repo_first() -> None:
    """The repository root first on sys.path: a site-packages `tests` package must not shadow ours."""
    while str(ROOT) in sys.path:
        sys.path.remove(str(ROOT))
    sys.path.insert(0, str(ROOT))


# -- processes: CPU and memory of a process tree (/proc) ---------------------------------------------------


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU seconds, reaped children's CPU seconds) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rindex(")") + 2:].split()  # f[0] is field 3 (state)
    return int(f[1]), (int(f[11]) + int(f[12])) / CLK_TCK, (int(f[13]) + int(f[14])) / CLK_TCK


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            children.setdefault(s[0], []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process tree, exited members included (their time is in their parent's cutime)."""
    total = 0.0
    for p in tree(pid):
        if (s := _stat(p)) is not None:
            total += s[1] + s[2]
    return total


def _status_mb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    return sum(_status_mb(p, "VmRSS") for p in tree(pid))


def descendants_cpu_s() -> float:
    """CPU seconds of this process's descendants (a JVM), live or reaped."""
    me = os.getpid()
    own = _stat(me)
    return tree_cpu_s(me) - (own[1] if own else 0.0)


def descendants_hwm_mb() -> float:
    return sum(_status_mb(p, "VmHWM") for p in tree(os.getpid())[1:])


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def tcp_bytes_received(fd: int) -> int:
    """Payload bytes the TCP stack has received on socket `fd` (TCP_INFO tcpi_bytes_received)."""
    s = socket.socket(fileno=os.dup(fd))
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    finally:
        s.close()
    if len(info) < TCP_INFO_BYTES_RECEIVED + 8:
        raise RuntimeError("this kernel's tcp_info has no tcpi_bytes_received")
    return int(struct.unpack_from("<Q", info, TCP_INFO_BYTES_RECEIVED)[0])


class Meter:
    """What crossed a SQLAlchemy Engine's connections into this process: TCP bytes received (every DBAPI
    connection it opened, a closed one's bytes kept from just before it closed), rows returned and statements
    run (an after_cursor_execute listener), and rchar (see the module docstring: it misses sockets)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.conns: list[Any] = []
        self.closed_bytes: dict[int, int] = {}
        self.rows = 0
        self.statements = 0
        self.seconds: list[float] = []  # per statement, cursor execute to its return
        self._started = 0.0
        event.listen(engine, "connect", lambda dbapi, record: self.conns.append(dbapi))
        event.listen(engine, "close", self._closing)
        event.listen(engine, "before_cursor_execute", self._starting)
        event.listen(engine, "after_cursor_execute", self._executed)

    def _closing(self, dbapi: Any, record: Any) -> None:
        with contextlib.suppress(Exception):
            self.closed_bytes[id(dbapi)] = tcp_bytes_received(dbapi.fileno())

    def _starting(self, *args: Any) -> None:
        self._started = time.perf_counter()

    def _executed(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                  executemany: bool) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        self.statements += 1
        if cursor.description is not None and (cursor.rowcount or 0) > 0:
            self.rows += int(cursor.rowcount)

    def bytes_received(self) -> int:
        total = 0
        for c in self.conns:
            if id(c) in self.closed_bytes or c.closed:
                total += self.closed_bytes.get(id(c), 0)
            else:
                total += tcp_bytes_received(c.fileno())
        return total

    def snapshot(self) -> dict[str, int]:
        return {"bytes": self.bytes_received(), "rchar": rchar(), "rows": self.rows, "statements": self.statements}


def measured(fn: Callable[[], Any], meter: Meter | None = None, server_pid: int | None = None,
             jvm: bool = False) -> tuple[Any, dict[str, Any]]:
    """Run fn; its wall and CPU seconds, and the meter's / the server's / the JVM's deltas."""
    dg = data_guards()
    m0 = meter.snapshot() if meter else None
    s0 = tree_cpu_s(server_pid) if server_pid else None
    j0 = descendants_cpu_s() if jvm else None
    c0, t0 = dg.cpu_s(), time.perf_counter()
    value = fn()
    fig: dict[str, Any] = {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(dg.cpu_s() - c0, 3)}
    if s0 is not None and server_pid:
        fig["server_cpu_s"] = round(tree_cpu_s(server_pid) - s0, 3)
    if j0 is not None:
        fig["jvm_cpu_s"] = round(descendants_cpu_s() - j0, 3)
    if meter and m0:
        m1 = meter.snapshot()
        fig.update({k: m1[k] - m0[k] for k in m0})
    return value, fig


def report_figures(report: Any) -> dict[str, Any]:
    return {"status": report.status, "checks_run": report.checks_run,
            "findings": [f"{f.severity} {f.code}: {f.message}" for f in report.findings],
            "error": report.error.message if report.error else None,
            "rows_seen": sum(t.rows or 0 for t in report.tables.values())}


# -- the checks -------------------------------------------------------------------------------------------


def pg_checks(mg: Any) -> list[Any]:
    return [mg.RowCount(min=1), mg.NullRate(column="amount", max=0.02), mg.NullRate(column="category", max=0.01),
            mg.Range(column="amount", min=0, max=1e6), mg.AllowedValues(column="category", values=CATEGORIES),
            mg.Unique(columns=["id"])]


def events_checks(mg: Any) -> list[Any]:
    return [mg.RowCount(min=1), mg.NullRate(column="score", max=0.1), mg.NullRate(column="plan", max=0.0),
            mg.Range(column="amount", min=0, max=1e6), mg.AllowedValues(column="plan", values=PLANS),
            mg.Unique(columns=["id"])]


# -- PostgreSQL (the driver makes the table; the parts are children) ---------------------------------------


def pg_table(rows: int) -> str:
    return f"bench_events_{rows}"


def pg_create_sql(table: str, rows: int) -> str:
    cats = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    return f"""
        CREATE UNLOGGED TABLE public.{table} AS
        SELECT g::bigint AS id,
               floor(random() * 1000000)::bigint AS user_id,
               CASE WHEN random() < 0.01 THEN NULL
                    ELSE round(exp(3.0 + sqrt(-2.0 * ln(1.0 - random())) * cos(2.0 * pi() * random())) * 100)
                         / 100 END::float8 AS amount,
               CASE WHEN random() < 0.005 THEN NULL ELSE ({cats})[1 + floor(random() * 12)::int] END AS category,
               timestamptz '2024-01-01 00:00:00+00' + floor(random() * 2592000) * interval '1 second'
                   AS event_time,
               random() < 0.3 AS flag
        FROM generate_series(1, {int(rows)}) AS g"""


def make_pg_table(server: Any, rows: int) -> dict[str, Any]:
    table = pg_table(rows)
    t0 = time.perf_counter()
    with server.connect(autocommit=True) as con:
        con.execute(f"DROP TABLE IF EXISTS public.{table}")
        con.execute("SELECT setseed(0.25)")
        con.execute(pg_create_sql(table, rows))
        made = time.perf_counter() - t0
        con.execute(f"VACUUM (FREEZE, ANALYZE) public.{table}")
        size = con.execute(f"SELECT pg_total_relation_size('public.{table}')").fetchone()[0]
        version = con.execute("SHOW server_version").fetchone()[0]
        work_mem = con.execute("SHOW work_mem").fetchone()[0]
    return {"table": table, "create_s": round(made, 1), "vacuum_s": round(time.perf_counter() - t0 - made, 1),
            "table_bytes": int(size), "server_version": version, "work_mem": work_mem}


def part_pg(args: argparse.Namespace) -> None:
    dg = data_guards()
    mg = dg.import_mlguard()
    import sqlalchemy as sa

    engine = sa.create_engine(args.url)
    meter = Meter(engine)
    qualified = f"public.{args.table}"
    checks = pg_checks(mg)
    breakdown: dict[str, float] = {}
    extra: dict[str, Any] = {}

    def guarded(src: Any, trivial: bool) -> Any:
        if args.what == "profile":
            return mg.build_profile(src, threads=args.threads)
        guard = mg.Guard("bench", checks=[mg.RowCount(min=1)] if trivial else checks, threads=args.threads)
        return guard.run(src, promote=False)

    if args.side == "pushdown":
        def trivial() -> Any:
            return guarded(mg.Sql("SELECT 1 AS one", connection=engine), True)

        def real() -> Any:
            return guarded(mg.SqlTable(qualified, connection=engine), False)
    else:
        import pandas as pd
        import pyarrow as pa

        def trivial() -> Any:
            return pd.read_sql_query("SELECT 1 AS one", engine)

        def real() -> Any:
            t0 = time.perf_counter()
            frame = pd.read_sql_query(f'SELECT * FROM public."{args.table}"', engine)
            t1 = time.perf_counter()
            extra["dtypes"] = {c: str(t) for c, t in frame.dtypes.items()}
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            del frame  # as the Airflow adapter's _fetch: only the Arrow table goes on
            t2 = time.perf_counter()
            out = guarded(arrow, False)
            breakdown.update(read_s=round(t1 - t0, 3), to_arrow_s=round(t2 - t1, 3),
                             guard_s=round(time.perf_counter() - t2, 3))
            return out

    trivial()  # imports and first connection: not measured
    _, base = measured(trivial, meter)
    first = len(meter.seconds)
    out, fig = measured(real, meter, server_pid=args.pg_pid)
    extra["statement_s"] = [round(x, 3) for x in meter.seconds[first:]]
    result: dict[str, Any] = {
        **fig, **breakdown, **extra,
        "bytes_raw": fig["bytes"], "bytes_baseline": base["bytes"], "bytes": fig["bytes"] - base["bytes"],
        "rchar_bytes": fig["rchar"] - base["rchar"], "baseline_rows": base["rows"],
        "baseline_statements": base["statements"],
    }
    result.pop("rchar")
    if args.what == "profile":
        result.update(profile_rows=out.rows, columns=len(out.columns))
    else:
        result.update(report_figures(out))
    engine.dispose()
    dg.emit(result)


# -- Spark local vs DuckDB ---------------------------------------------------------------------------------


def events_path(rows: int) -> Path:
    dg = data_guards()
    return Path(dg.batch_path(rows, dg.BATCH_SEED))


def part_generate(args: argparse.Namespace) -> None:
    dg = data_guards()
    path = events_path(args.spark_rows)
    made = None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        con = dg.duck(args.threads)
        tmp = path.with_suffix(".tmp.parquet")
        t0 = time.perf_counter()
        con.execute(f"COPY ({dg.events_sql(args.spark_rows, dg.BATCH_SEED)}) TO {dg.sql_str(str(tmp))} "
                    "(FORMAT parquet, COMPRESSION zstd)")
        tmp.replace(path)
        made = round(time.perf_counter() - t0, 2)
    dg.emit({"generated_s": made, "path": str(path), "bytes": path.stat().st_size})


def part_duck(args: argparse.Namespace) -> None:
    dg = data_guards()
    mg = dg.import_mlguard()
    path = str(events_path(args.spark_rows))
    if args.what == "profile":
        prof, fig = measured(lambda: mg.build_profile(path, threads=args.threads))
        dg.emit({**fig, "profile_rows": prof.rows, "columns": len(prof.columns)})
    else:
        guard = mg.Guard("bench", checks=events_checks(mg), threads=args.threads)
        report, fig = measured(lambda: guard.run(path, promote=False))
        dg.emit({**fig, **report_figures(report)})


def spark_unsupported() -> str | None:
    """Why the guard cannot take a Spark DataFrame yet (None: it seems to), asked without starting a JVM."""
    try:
        import mlguard_orchestration.engines.spark  # noqa: F401
    except ImportError as exc:
        return f"mlguard_orchestration.engines.spark cannot be imported ({exc})"
    try:
        from pyspark.sql import DataFrame
    except ImportError as exc:
        return f"pyspark is not installed ({exc})"
    try:
        from pyspark.sql.classic.dataframe import DataFrame as Classic  # what spark.read returns in pyspark 4
    except ImportError:
        Classic = DataFrame
    from mlguard_orchestration.remote import remote_of

    try:
        if remote_of(Classic.__new__(Classic), "probe") is None:
            return ("mlguard_orchestration.remote.remote_of gives no engine for a Spark DataFrame (the Spark "
                    "engine is not wired into the guard yet)")
    except Exception:  # noqa: BLE001 - a wired remote_of may touch the (fake, empty) DataFrame: try for real
        return None
    return None


def part_spark_probe(args: argparse.Namespace) -> None:
    data_guards().emit({"unsupported": spark_unsupported()})


def part_spark(args: argparse.Namespace) -> None:
    dg = data_guards()
    mg = dg.import_mlguard()
    repo_first()
    import tests._spark as ts

    path = str(events_path(args.spark_rows))
    try:
        session = contextlib.contextmanager(ts.spark_session)()
        spark = session.__enter__()
    except BaseException as exc:  # pytest's skip/fail (no Java, no pyspark) are BaseExceptions
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        dg.emit({"unsupported": f"no Spark session: {type(exc).__name__}: {exc}"})
        return
    try:
        startup = ts.startup_s
        df, read = measured(lambda: spark.read.parquet(path), jvm=True)  # Spark's first job: the footers
        if args.what == "profile":
            try:
                prof, fig = measured(lambda: mg.build_profile(df), jvm=True)
                result = {**fig, "profile_rows": prof.rows, "columns": len(prof.columns)}
            except mg.MlguardError as exc:
                result = {"unsupported": f"build_profile refused the Spark DataFrame: {exc}"}
        else:
            guard = mg.Guard("bench", checks=events_checks(mg))
            report, fig = measured(lambda: guard.run(df, promote=False), jvm=True)
            result = {**fig, **report_figures(report)}
            if report.error is not None and report.checks_run == 0:
                result["unsupported"] = f"the guard refused the Spark DataFrame: {report.error.message}"
        python_hwm = dg.peak_rss_mb()
        jvm_hwm = descendants_hwm_mb()
        result.update(startup_s=round(startup or 0.0, 2), read_s=read["wall_s"],
                      python_peak_rss_mb=round(python_hwm, 1), jvm_peak_rss_mb=round(jvm_hwm, 1),
                      peak_rss_mb=round(python_hwm + jvm_hwm, 1))
    finally:
        session.__exit__(None, None, None)
    dg.emit(result)


PARTS = {"pg": part_pg, "generate": part_generate, "duck": part_duck, "spark-probe": part_spark_probe,
         "spark": part_spark}


# -- the driver ---------------------------------------------------------------------------------------------


def run_child(part: str, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    """Run one part in a fresh process; kill it (and its descendants) if their resident set passes the cap."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--rows", str(args.rows),
           "--spark-rows", str(args.spark_rows), "--threads", str(args.threads)]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    # the child's temporary files (a Spark session's scratch folder) go in a folder removed afterwards, even
    # when the child is killed and cannot clean up after itself
    scratch = tempfile.mkdtemp(prefix="mlguard-bench-")
    try:
        return _run_child(cmd, args, {**os.environ, "TMPDIR": scratch})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_child(cmd: list[str], args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                            start_new_session=True)
    # drain stdout/stderr in the background, so a chatty child (a JVM's warnings) never blocks on a pipe
    chunks: dict[str, list[str]] = {"out": [], "err": []}
    readers = [threading.Thread(target=chunks[key].extend, args=(stream,), daemon=True)
               for key, stream in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    peak, killed = 0.0, None
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        if peak > args.rss_cap_mb:
            killed = f"resident set passed the {args.rss_cap_mb:.0f} MB cap"
        elif time.perf_counter() - t0 > args.timeout:
            killed = f"ran past {args.timeout:.0f} s"
        if killed:
            for pid in reversed(tree(proc.pid)):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    for reader in readers:
        reader.join(10)
    out, err = "".join(chunks["out"]), "".join(chunks["err"])
    if killed:
        return {"killed": killed, "after_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak, 1)}
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_TAG):
            return dict(json.loads(line[len(RESULT_TAG):]))
    tail = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return {"crashed": f"exit {proc.returncode}: {tail[:300]}", "peak_rss_mb": round(peak, 1)}


def failed(r: dict[str, Any]) -> str | None:
    return r.get("killed") or r.get("crashed") or r.get("unsupported") or r.get("error")


def describe(r: dict[str, Any]) -> str:
    if "wall_s" not in r or r.get("killed") or r.get("crashed"):
        return f"{'KILLED' if r.get('killed') else 'FAILED'} ({failed(r)}) at {r.get('peak_rss_mb', 0):.0f} MB"
    text = f"{r['wall_s']:8.2f} s (cpu {r['cpu_s']:7.2f}"
    for key, name in (("server_cpu_s", "server"), ("jvm_cpu_s", "jvm")):
        if key in r:
            text += f", {name} {r[key]:.2f}"
    text += f") {r['peak_rss_mb']:7.0f} MB"
    if "bytes" in r:
        text += f" {r['bytes'] / 2**20:10.3f} MiB in, {r['rows']:,} rows, {r['statements']} statement(s)"
    if "status" in r:
        text += f"  status={r['status']} checks={r['checks_run']}"
    return text + (f"  error={r['error']}" if r.get("error") else "")


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value}x"


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    """a[key] / b[key] when both parts completed (None otherwise)."""
    if failed(a) or failed(b):
        return None
    x, y = a.get(key), b.get(key)
    if x is None or not y:
        return None
    return round(x / y, 2)


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    repo_first()
    from tests._postgres import postgres_server

    with contextlib.contextmanager(postgres_server)() as server:
        yield server


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {"rows": args.rows}
    try:
        cluster = postgres()
        server = cluster.__enter__()
    except BaseException as exc:  # pytest's skip/fail when initdb or psycopg is missing are BaseExceptions
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        print(f"PostgreSQL part skipped: {type(exc).__name__}: {exc}", flush=True)
        return {**summary, "skipped": f"{type(exc).__name__}: {exc}"}
    try:
        pid = int((Path(server.datadir) / "postmaster.pid").read_text().split()[0])
        t = make_pg_table(server, args.rows)
        summary["table"] = t
        print(f"  PostgreSQL {t['server_version']} (work_mem {t['work_mem']}): {t['table']} made in "
              f"{t['create_s']:.1f} s, vacuumed in {t['vacuum_s']:.1f} s, {t['table_bytes'] / 2**20:,.0f} MiB "
              "on disk", flush=True)
        parts: dict[str, dict[str, Any]] = {}
        for side in ("pushdown", "fetch"):
            for what in ("guard", "profile"):
                r = run_child("pg", args, url=server.url, table=t["table"], pg_pid=pid, side=side, what=what)
                parts[f"{side}_{what}"] = r
                print(f"  {side + '/' + what:<17} {describe(r)}", flush=True)
                if "read_s" in r:
                    print(f"  {'':<17} read_sql {r['read_s']:.2f} s + to Arrow {r['to_arrow_s']:.2f} s + guard "
                          f"{r['guard_s']:.2f} s; rchar {r['rchar_bytes']:,} B", flush=True)
                elif "rchar_bytes" in r:
                    print(f"  {'':<17} statements {r['statement_s']} s; rchar {r['rchar_bytes']:,} B (file reads;"
                          " sockets are not in rchar)", flush=True)
                for f in r.get("findings", []):
                    print(f"  {'':<17} finding: {f}", flush=True)
    finally:
        cluster.__exit__(None, None, None)
    summary["parts"] = parts
    ratios: dict[str, Any] = {}
    for what in ("guard", "profile"):
        f, p = parts[f"fetch_{what}"], parts[f"pushdown_{what}"]
        ratios[what] = {"wall": ratio(f, p, "wall_s"), "cpu": ratio(f, p, "cpu_s"),
                        "server_cpu": ratio(f, p, "server_cpu_s"), "peak_rss": ratio(f, p, "peak_rss_mb"),
                        "bytes": ratio(f, p, "bytes"), "rows": ratio(f, p, "rows")}
    summary["fetch_over_pushdown"] = ratios
    return summary


def run_spark(args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {"rows": args.spark_rows}
    gen = run_child("generate", args)
    if "bytes" not in gen:
        print(f"  cannot generate the parquet batch: {failed(gen)}", flush=True)
        return {**summary, "skipped": f"no data: {failed(gen)}"}
    if gen["generated_s"] is not None:
        print(f"  generated {Path(gen['path']).name} ({gen['bytes'] / 2**20:.0f} MiB) in {gen['generated_s']:.1f} s",
              flush=True)
    summary["path"] = gen["path"]
    parts: dict[str, dict[str, Any]] = {}
    for what in ("guard", "profile"):
        parts[f"duckdb_{what}"] = r = run_child("duck", args, what=what)
        print(f"  {'duckdb/' + what:<17} {describe(r)}", flush=True)
    probe = run_child("spark-probe", args)
    why = probe.get("unsupported") if "unsupported" in probe else failed(probe)
    if why:
        print(f"  Spark part skipped: {why}", flush=True)
        summary["spark_skipped"] = why
    else:
        for what in ("guard", "profile"):
            parts[f"spark_{what}"] = r = run_child("spark", args, what=what)
            print(f"  {'spark/' + what:<17} {describe(r)}"
                  + (f"  (not included: session start {r['startup_s']:.1f} s, read.parquet {r['read_s']:.1f} s)"
                     if "startup_s" in r else ""),
                  flush=True)
            if r.get("unsupported"):
                summary["spark_skipped"] = r["unsupported"]
    summary["parts"] = parts
    ratios: dict[str, Any] = {}
    for what in ("guard", "profile"):
        s, d = parts.get(f"spark_{what}"), parts[f"duckdb_{what}"]
        if s is None:
            ratios[what] = None
            continue
        s_cpu = dict(s, cpu_s=(s.get("cpu_s") or 0) + (s.get("jvm_cpu_s") or 0)) if "cpu_s" in s else s
        ratios[what] = {"wall": ratio(s, d, "wall_s"), "cpu_with_jvm": ratio(s_cpu, d, "cpu_s"),
                        "peak_rss": ratio(s, d, "peak_rss_mb")}
    summary["spark_over_duckdb"] = ratios
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=50_000_000, help="rows of the PostgreSQL table")
    p.add_argument("--spark-rows", type=int, default=10_000_000, help="rows of the parquet batch (Spark vs DuckDB)")
    p.add_argument("--quick", action="store_true", help="2M PostgreSQL rows, 1M parquet rows")
    p.add_argument("--skip-spark", action="store_true")
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the embedded DuckDB engine")
    p.add_argument("--rss-cap-mb", type=float, default=8192, help="kill a part whose resident set passes this")
    p.add_argument("--timeout", type=float, help="kill a part running longer than this (s); default 3600, with "
                   "--quick 180")
    p.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--what", choices=["guard", "profile"], default="guard", help=argparse.SUPPRESS)
    p.add_argument("--side", choices=["pushdown", "fetch"], default="pushdown", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--table", help=argparse.SUPPRESS)
    p.add_argument("--pg-pid", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.spark_rows = 2_000_000, 1_000_000
    if args.timeout is None:
        args.timeout = 180.0 if args.quick else 3600.0
    if args.part:
        PARTS[args.part](args)
        return 0

    print(f"engines benchmark: PostgreSQL {args.rows:,} rows, Spark/DuckDB {args.spark_rows:,} rows, "
          f"{args.threads} DuckDB thread(s), {os.cpu_count()} core(s), RSS cap {args.rss_cap_mb:.0f} MB, "
          f"{args.timeout:.0f} s per part", flush=True)
    summary: dict[str, Any] = {"threads": args.threads, "rss_cap_mb": args.rss_cap_mb, "timeout_s": args.timeout}
    if not args.skip_postgres:
        print("PostgreSQL: pushdown (SqlTable) vs fetch (pandas read_sql -> Arrow -> embedded DuckDB)", flush=True)
        summary["postgres"] = pg = run_postgres(args)
        for what, r in (pg.get("fetch_over_pushdown") or {}).items():
            print(f"  fetch/pushdown {what:<8} wall {fmt_ratio(r['wall'])}, worker cpu {fmt_ratio(r['cpu'])}, "
                  f"server cpu {fmt_ratio(r['server_cpu'])}, peak RSS {fmt_ratio(r['peak_rss'])}, "
                  f"bytes {fmt_ratio(r['bytes'])}, rows {fmt_ratio(r['rows'])}", flush=True)
    if not args.skip_spark:
        print(f"Spark local[2] vs DuckDB ({args.threads} thread(s)) on a parquet batch", flush=True)
        summary["spark"] = sp = run_spark(args)
        for what, r in (sp.get("spark_over_duckdb") or {}).items():
            if r:
                print(f"  spark/duckdb {what:<8} wall {fmt_ratio(r['wall'])}, "
                      f"cpu (with the JVM) {fmt_ratio(r['cpu_with_jvm'])}, peak RSS {fmt_ratio(r['peak_rss'])}",
                      flush=True)
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
