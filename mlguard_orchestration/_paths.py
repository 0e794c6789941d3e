"""A path as a guard source: which files it names, and the DuckDB table function that reads exactly those.

The rules, each one a bad input that once went wrong:
- An existing path is read literally. DuckDB treats `*`, `?`, `[` and `]` in a file name as a glob, so they are
  escaped (`[[]`); only a path that does not exist is a pattern.
- A directory is read whole (nested folders too, hive partitions as columns). Its files are named one by one
  in a SQL list when the directory mixes `.parquet` and `.pq`, never joined into one comma-separated string.
- Only regular files are read: a FIFO, socket or device would block the worker forever (or never end), so
  it is refused before DuckDB opens it, and so is one inside a directory or matched by a glob.
- Two columns with one name (parquet and CSV allow it; DuckDB would silently read them as `a` and `a_1`) are
  an error naming them: a check on `a` must never silently read one of two columns.
"""

from __future__ import annotations

import csv
import glob as _glob
import gzip
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mlguard_orchestration._sql import literal
from mlguard_orchestration.errors import SourceError, SpecError

PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARS = re.compile(r"([\[\]*?])")
_NOT_REGULAR = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device"}
_CHECKED_CSV_FILES = 20  # CSV headers read for duplicate names: the first files of a glob


@dataclass(frozen=True)
class PathSource:
    """What a path reads: the table-function call, the format, and the local files (for checks)."""

    reader: str
    format: str  # "parquet" | "csv" | "json"
    files: tuple[str, ...] = ()
    argument: str = ""  # the reader's first argument (a literal or a list of literals)


def glob_escape(path: str) -> str:
    """`path` with every glob character as a one-character class, so DuckDB reads that exact name."""
    return _GLOB_CHARS.sub(r"[\1]", path)


def path_source(path: str) -> PathSource:
    """The source a path names; SourceError when nothing is there, SpecError when it is not a regular file."""
    if "://" in path:  # remote: as given (globs included); DuckDB's filesystem decides
        return _reader(path, literal(path), ())
    p = Path(path)
    if p.is_dir():
        return _directory(p)
    if os.path.lexists(path):
        _require_regular(path)
        return _reader(path, literal(glob_escape(path)), (path,))
    if _GLOB_CHARS.search(path):
        matches = sorted(m for m in _glob.glob(path, recursive=True) if not os.path.isdir(m))
        if not matches:
            raise SourceError(f"no files match the pattern {path!r} (and no file has that exact name).")
        for m in matches:
            _require_regular(m, f" (matched by the pattern {path!r})")
        return _reader(path, literal(path), tuple(matches))
    near = sorted(f.name for f in p.parent.glob("*"))[:20] if p.parent.is_dir() else []
    hint = f" Files in {str(p.parent)!r}: {', '.join(near)}." if near else ""
    raise SourceError(f"file {path!r} does not exist.{hint}")


def _reader(path: str, argument: str, files: tuple[str, ...]) -> PathSource:
    lower = path.lower()
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return PathSource(f"read_csv({argument})", "csv", files, argument)
    if lower.endswith((".json", ".jsonl", ".ndjson")):
        return PathSource(f"read_json_auto({argument})", "json", files, argument)
    return PathSource(f"read_parquet({argument}, union_by_name = true)", "parquet", files, argument)


def _directory(p: Path) -> PathSource:
    files: list[str] = []
    for f in sorted(p.rglob("*")):
        if f.suffix.lower() in PARQUET_SUFFIXES and not f.is_dir():
            _require_regular(str(f), f" (in the directory {str(p)!r})")
            files.append(str(f))
    if not files:
        raise SourceError(f"directory {str(p)!r} contains no parquet files (looked for *.parquet, *.pq).")
    if all(f.endswith(".parquet") for f in files):
        argument = literal(glob_escape(str(p)) + "/**/*.parquet")
    else:  # one literal per file: a comma in a name must not split it
        argument = "[" + ", ".join(literal(glob_escape(f)) for f in files) + "]"
    return PathSource(f"read_parquet({argument}, hive_partitioning = true, union_by_name = true)", "parquet",
                      tuple(files), argument)


def _require_regular(path: str, where: str = "") -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:  # a dangling link, a vanished file: what the OS says
        raise SourceError(f"cannot read {path!r}{where}: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(mode):
        what = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        raise SpecError(f"{path!r}{where} is {what}, not a regular file: a guard reads parquet, CSV or JSON "
                        "files, directories of them, or globs; reading it could block forever. Point the "
                        "guard at the file the pipe or device is fed from, or stream the data as an Arrow "
                        "RecordBatchReader.")


def duplicate_columns(con: duckdb.DuckDBPyConnection, src: PathSource) -> dict[str, list[str]]:
    """{file: names appearing more than once among its top-level columns} (parquet and CSV headers)."""
    if src.format == "parquet":
        rows = con.execute(f"SELECT file_name, name, num_children FROM parquet_schema({src.argument})").fetchall()
        nodes: dict[str, list[tuple[str, int]]] = {}
        for file, name, children in rows:
            nodes.setdefault(file, []).append((name, children or 0))
        found = {f: _repeated(_top_level(n)) for f, n in nodes.items()}
    elif src.format == "csv":
        found = {f: _repeated(_csv_header(con, f)) for f in src.files[:_CHECKED_CSV_FILES]}
    else:
        return {}  # DuckDB refuses a JSON object with a duplicate key by itself
    return {f: names for f, names in found.items() if names}


def _top_level(nodes: list[tuple[str, int]]) -> list[str]:
    """The top-level field names of a flattened parquet schema (root first, each group before its children)."""
    if not nodes:
        return []
    names: list[str] = []
    remaining = [nodes[0][1]]  # children still to come at each open level; the root's are the fields
    for name, children in nodes[1:]:
        if len(remaining) == 1:
            names.append(name)
        remaining[-1] -= 1
        if children:
            remaining.append(children)
        while len(remaining) > 1 and remaining[-1] == 0:
            remaining.pop()
    return names


def _csv_header(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """The raw header of a CSV file, split the way DuckDB's sniffer says the file is written."""
    try:
        rows = con.execute("SELECT Delimiter, Quote, SkipRows, HasHeader FROM sniff_csv(?)",
                           [glob_escape(path)]).fetchall()
    except duckdb.Error:
        return []  # unreadable: the read itself reports it
    delim, quote, skip, header = rows[0] if rows else (",", '"', 0, False)
    if not header or len(delim) != 1:
        return []
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for _ in range(int(skip or 0)):
            fh.readline()
        line = fh.readline()
    quoting = {"quotechar": quote} if quote and len(quote) == 1 else {"quoting": csv.QUOTE_NONE}
    row = next(csv.reader([line.rstrip("\r\n")], delimiter=delim, **quoting), [])
    return row


def _repeated(names: list[str]) -> list[str]:
    counts = Counter(names)
    return [n for n, k in counts.items() if k > 1]
