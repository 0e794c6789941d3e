"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, one server on loopback.

Why the suite starts its own server rather than expecting one: `make test` must pass from a fresh clone and
CI must run the PostgreSQL tests for real, with nothing started by hand. The cluster lives in a temporary
folder (trust auth, unix socket in that folder, TCP on 127.0.0.1 on a free port, fsync off: it is thrown
away) and is stopped and removed when the test session ends.

- Binaries: `initdb`/`pg_ctl` on PATH, else `pg_config --bindir`, else /usr/lib/postgresql/<newest>/bin and
  /usr/local/pgsql/bin. Missing: skipped locally, an error in CI (`tests/_engines.py`).
- Root: initdb refuses to run as root, so under uid 0 the cluster is owned by, and every server command run
  as, an unprivileged user (`postgres` if it exists, else `nobody`) through `runuser`.
- Data goes in through `load_frame`: CREATE TABLE from the frame's dtypes, then psycopg's COPY.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tests._required import unavailable
from tests._servers import free_port

USER = "mlguard"
DBNAME = "mlguard"
SERVER_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=20 "
                   "-c shared_buffers=64MB")


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                      if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in versions] + [Path("/usr/local/pgsql/bin")]
    for d in candidates:
        if all(os.access(d / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _server_user() -> str | None:
    """The unprivileged user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run initdb as")


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: connect with `connect()`, or hand `url` to SQLAlchemy."""

    host: str
    port: int
    user: str
    dbname: str
    datadir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    def connect(self, **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo, **kwargs)


class _Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.run_as = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="mlguard-pg-"))  # under /tmp, reachable by run_as
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _cmd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              env={**os.environ, "LC_ALL": "C"})

    def init(self) -> None:
        r = self._cmd("initdb", "-D", str(self.datadir), "-U", USER, "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "--no-sync")
        if r.returncode:
            raise RuntimeError(f"initdb failed ({r.returncode}): {r.stderr or r.stdout}")

    def start(self) -> int:
        last = ""
        for _ in range(3):  # a free port can be taken between choosing it and the server binding it
            port = free_port()
            opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={self.root} " + SERVER_SETTINGS
            r = self._cmd("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", opts, "-w", "-t", "60",
                          "start")
            if r.returncode == 0:
                return port
            last = r.stderr + r.stdout + (self.logfile.read_text(errors="replace") if self.logfile.exists() else "")
        raise RuntimeError(f"pg_ctl start failed three times: {last[-2000:]}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._cmd("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway cluster with an empty `mlguard` database; stop and remove it afterwards."""
    bindir = find_bindir()
    if bindir is None:
        unavailable("PostgreSQL", "initdb/pg_ctl/postgres were not found on PATH, via pg_config --bindir, or "
                    "in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
    try:
        import psycopg
    except ImportError as e:
        unavailable("PostgreSQL", f"psycopg is not installed ({e}); run `make .venv`")
    cluster = _Cluster(bindir)
    try:
        cluster.init()
        port = cluster.start()
        with psycopg.connect(f"host=127.0.0.1 port={port} user={USER} dbname=postgres", autocommit=True) as con:
            con.execute(f"CREATE DATABASE {DBNAME}")
        yield PostgresServer("127.0.0.1", port, USER, DBNAME, cluster.datadir)
    finally:
        cluster.stop()


_PG_TYPES = {"i": "BIGINT", "u": "BIGINT", "f": "DOUBLE PRECISION", "b": "BOOLEAN", "M": "TIMESTAMP"}


def pg_type(dtype: Any) -> str:
    """The PostgreSQL column type for a pandas dtype (text for anything else)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMPTZ"
    return _PG_TYPES.get(getattr(dtype, "kind", "O"), "TEXT")


def load_frame(con: Any, table: str | tuple[str, str], frame: pd.DataFrame) -> int:
    """(Re)create `table` (a name, or a (schema, name) pair) with the frame's columns, every identifier quoted,
    and COPY the rows in; NaN -> NULL. Returns the number of rows written."""
    from psycopg import sql

    name = sql.Identifier(*table) if isinstance(table, tuple) else sql.Identifier(table)
    cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(str(c)), sql.SQL(pg_type(t)))
                              for c, t in frame.dtypes.items())
    col_names = sql.SQL(", ").join(sql.Identifier(str(c)) for c in frame.columns)
    with con.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(name, cols))
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(name, col_names)) as copy:
            for row in rows:
                copy.write_row(row)
    con.commit()
    return len(frame)
