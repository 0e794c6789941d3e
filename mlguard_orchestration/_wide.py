"""Splitting one table's aggregates into column groups, so that a wide table costs time linear in its columns.

One SELECT holding every aggregate is the plan for a table of ordinary width, but DuckDB's cost for one statement
grows faster than its width: each aggregate with a FILTER (the sampled quantiles, the drift bins) slices every
column of the statement's input, so per column it costs in proportion to the number of columns, and
count(DISTINCT) is worse. On main, 400 columns × 50 rows took 12–32 s and 2.3 GB; 1,000 columns ran DuckDB
out of memory; 5,000 crashed. So a table wider than WIDE_COLUMNS has its aggregates cut into groups of
GROUP_COLUMNS columns, each group one statement that reads only its own columns (the Engine runs them).

What stays together: every aggregate of one column (its anchor: the first column it names) is in one group,
so statistics that must share the per-row sample (a column's quantiles and its drift histogram) see the same
rows. An aggregate naming no column (`count(*)`) goes with the first group; one naming several (a composite
key, a row hash) reads all of them in its group.

A statement over a file pays for binding the file's table function, in proportion to ALL its columns, however
few it reads (5,000-column parquet: ~15 ms, plus ~20 ms of prefetch planning per statement, which the Engine
turns off for a local file's statements over a few columns). A full scan pays it once per group, a few per
cent of the group's cost; a bounded read (the profile's first rows) would pay it on every small statement, so
its groups are read in blocks (`blocks`): the block's rows are copied once, and its groups' statements read
the copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Measured with benchmarks/wide.py (1M rows, parquet, CPU seconds for profile + default suite): 200 columns in
# groups of 4: 23 s; of 8: 31 s; of 16: 42 s; of 32: 70 s; one statement: 620 s. Groups of 2 are no better than
# 4, and below ~10k rows the group size hardly matters (DuckDB's fixed cost per aggregate dominates).
GROUP_COLUMNS = 4
# Up to this width a table keeps its single statement: one read of the source, which matters for a CSV file or
# an Sql view (re-read in full by every statement), and the figures of benchmarks/data_guards.py unchanged.
# Splitting pays from ~16 columns on parquet and in-memory data (32 columns: 11 s -> 4 s), so this is the knob
# to lower if tables of 16-32 columns matter more than re-reads of row-oriented sources.
WIDE_COLUMNS = 32
# A statement that must read more columns than this at once (a row hash over every column) runs on one thread:
# each thread holds a decoded row group of every column it reads. 5,000 columns × 1M rows of parquet: peak RSS
# 2.0 GB on two threads, 1.3 GB on one (of which 0.66 GB is the file's cached footer), and no slower.
ONE_THREAD_COLUMNS = 256
# A bounded read (the profile's first rows) copies the rows of up to this many cells (rows x columns) into one
# temporary table, which the statements of the block's groups read (see the module docstring). 50,000 rows:
# blocks of 80 columns, ~40-100 MB while one lives. Measured (benchmarks/wide.py's files, 1M rows): the head
# pass of 5,000 columns 101 -> 81 s CPU, copies included, i.e. now linear in columns; 400 columns unchanged.
BLOCK_CELLS = 4_000_000

# A SQL string literal ('it''s') or a quoted identifier ("a""b"): literals are matched only to be skipped.
_TOKEN = re.compile(r"'[^']*(?:''[^']*)*'|\"([^\"]*(?:\"\"[^\"]*)*)\"")


def identifiers(sql: str) -> list[str]:
    """Every double-quoted identifier in `sql`, unquoted, in order of appearance (string literals skipped).
    Exact for SQL built by `_sql.ident`/`_sql.literal`, which is all SQL the guard generates."""
    return [m.group(1).replace('""', '"') for m in _TOKEN.finditer(sql) if m.group(1) is not None]


@dataclass(frozen=True)
class Group:
    """One statement's share of a table's aggregates."""

    keys: list[str]  # metric keys, in the caller's order
    columns: list[str]  # table columns the statement must read (never empty)
    derived: list[str]  # derived per-row columns the statement must compute


def split(sql: Mapping[str, str], columns: list[str], derived: Mapping[str, str]) -> list[Group] | None:
    """Groups of aggregates for a table with `columns`, or None when one statement over the table is best.

    `sql` maps each metric key to its rendered aggregate; `derived` maps per-row column names to their SQL
    (a derived column's own references count as the aggregate's)."""
    if len(columns) <= WIDE_COLUMNS:
        return None
    table_columns = set(columns)
    derived_refs = {name: [c for c in identifiers(expr) if c in table_columns] for name, expr in derived.items()}

    def refs(expr: str) -> tuple[list[str], list[str]]:
        cols: list[str] = []
        used: list[str] = []
        for name in identifiers(expr):
            if name in derived_refs:
                used.append(name)
                cols += derived_refs[name]
            elif name in table_columns:
                cols.append(name)
        return cols, used

    by_anchor: dict[str | None, list[str]] = {None: []}
    needs: dict[str, tuple[list[str], list[str]]] = {}
    for key, expr in sql.items():
        needs[key] = refs(expr)
        by_anchor.setdefault(needs[key][0][0] if needs[key][0] else None, []).append(key)
    anchors = [a for a in by_anchor if a is not None]
    if len(anchors) <= WIDE_COLUMNS:
        return None
    groups: list[Group] = []
    for start in range(0, len(anchors), GROUP_COLUMNS):
        keys = [k for a in anchors[start:start + GROUP_COLUMNS] for k in by_anchor[a]]
        if start == 0:
            keys = by_anchor[None] + keys
        cols = list(dict.fromkeys(c for k in keys for c in needs[k][0])) or [columns[0]]
        used = list(dict.fromkeys(d for k in keys for d in needs[k][1]))
        groups.append(Group(keys=keys, columns=cols, derived=used))
    return groups


def blocks(groups: list[Group], rows: int | None) -> list[list[Group]]:
    """Consecutive groups whose columns are read together once, when each statement reads at most `rows` rows:
    a block holds at most BLOCK_CELLS cells and ONE_THREAD_COLUMNS columns. A block of one group is read
    directly (as is every group when `rows` is None: a full scan is never copied)."""
    if rows is None:
        return [[g] for g in groups]
    limit = max(1, min(ONE_THREAD_COLUMNS, BLOCK_CELLS // max(rows, 1)))
    out: list[list[Group]] = []
    cols: set[str] = set()
    for group in groups:
        if out and len(cols | set(group.columns)) <= limit:
            out[-1].append(group)
            cols |= set(group.columns)
        else:
            out.append([group])
            cols = set(group.columns)
    return out


def block_columns(block: list[Group]) -> list[str]:
    """The columns a block reads, in order of first use."""
    return list(dict.fromkeys(c for g in block for c in g.columns))
