"""Wide tables: a feature table with hundreds or thousands of columns profiles and checks like a narrow one.

Above `_wide.WIDE_COLUMNS` columns a table's aggregates run as one statement per group of columns (see
`mlguard_orchestration/_wide.py`); these tests pin that the split changes nothing in the results, reaches
every kind of source, and holds at thousands of columns. Speed and memory are measured in benchmarks/wide.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration import _wide
from mlguard_orchestration._sql import ident
from mlguard_orchestration.sources import Engine
from tests._data import assert_quiet

HOSTILE = ['a"b', "with space", "ünïcödé", "select", '";-- DROP', "'q'", "x,y", "[0]", "*", "?"]


def wide_frame(columns: int, rows: int, seed: int = 0) -> pd.DataFrame:
    """Floats (some with NaN), small and large integers, categories, booleans; hostile names among them."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for j in range(columns):
        name = HOSTILE[j // 7] if j % 7 == 3 and j // 7 < len(HOSTILE) else f"f{j}"
        slot = j % 5
        if slot == 0:
            x = rng.normal(j, 1 + j % 3, rows)
            x[rng.random(rows) < 0.05] = np.nan
            data[name] = x
        elif slot == 1:
            data[name] = rng.integers(0, 4, rows)
        elif slot == 2:
            data[name] = np.arange(rows) + 10 * j  # unique: counted exactly
        elif slot == 3:
            data[name] = rng.choice(["red", "green", "blue"], rows)
        else:
            data[name] = rng.random(rows) < 0.3
    return pd.DataFrame(data)


def chunked_profile(df: pd.DataFrame) -> dict[str, mg.ColumnProfile]:
    """Column profiles computed the narrow way: tables of at most WIDE_COLUMNS columns, one statement each."""
    out: dict[str, mg.ColumnProfile] = {}
    names = list(df.columns)
    for start in range(0, len(names), _wide.WIDE_COLUMNS):
        out.update(mg.build_profile(df[names[start:start + _wide.WIDE_COLUMNS]]).columns)
    return out


# -- the split itself --------------------------------------------------------------------------------------


def test_identifiers_are_read_exactly_and_literals_skipped() -> None:
    sql = """count_if("a""b" = 'it''s "not" a column') + sum("ü x") FILTER (WHERE "__s") + "x,y" """
    assert _wide.identifiers(sql) == ['a"b', "ü x", "__s", "x,y"]
    assert _wide.identifiers("count(*)") == []
    assert _wide.identifiers("""'"'""") == []  # a double quote inside a literal is no identifier


def test_split_keeps_each_column_together_and_reads_only_what_it_needs() -> None:
    cols = [f"c{i}" for i in range(_wide.WIDE_COLUMNS + 9)]
    sql = {"rows": "count(*)"}
    for c in cols:
        sql[f"{c}:n"] = f'count("{c}")'
        sql[f"{c}:q"] = f'quantile_cont("__fin_{c}", [0.5]) FILTER (WHERE "__s")'
        sql[f"{c}:bins"] = f'histogram("__fin_{c}", [0.0]) FILTER (WHERE "__s")'
    sql["pair"] = f'count(*) FILTER (WHERE "{cols[-1]}" IS NOT NULL AND "{cols[0]}" IS NOT NULL)'
    derived = {"__s": "random() < 0.5", **{f"__fin_{c}": f'CASE WHEN isfinite("{c}") THEN "{c}" END' for c in cols}}
    groups = _wide.split(sql, cols, derived)
    assert groups is not None
    assert sorted(k for g in groups for k in g.keys) == sorted(sql)  # every key exactly once
    assert "rows" in groups[0].keys
    for g in groups:
        anchors = {k.split(":")[0] for k in g.keys if ":" in k}
        assert len(anchors) <= _wide.GROUP_COLUMNS
        for a in anchors:  # a column's quantiles and drift bins share its group (and so its sample)
            assert {f"{a}:n", f"{a}:q", f"{a}:bins"} <= set(g.keys)
        assert set(g.derived) == {"__s"} | {f"__fin_{a}" for a in anchors}
    last = next(g for g in groups if "pair" in g.keys)
    assert set(last.columns) >= {cols[-1], cols[0]}  # a multi-column aggregate reads all its columns
    assert _wide.split(sql, cols[:_wide.WIDE_COLUMNS], derived) is None  # ordinary width: one statement


def test_blocks_bound_what_a_bounded_read_copies_and_keep_every_group_once() -> None:
    cols = [f"c{i}" for i in range(400)]
    sql = {f"{c}:n": f'count("{c}")' for c in cols}
    groups = _wide.split(sql, cols, {})
    assert groups is not None
    assert _wide.blocks(groups, None) == [[g] for g in groups]  # a full scan is never copied
    for rows in (10, 50_000, 10**9):
        blocks = _wide.blocks(groups, rows)
        assert [g for b in blocks for g in b] == groups  # every group once, in order
        width = max(1, min(_wide.ONE_THREAD_COLUMNS, _wide.BLOCK_CELLS // rows))
        for b in blocks:
            assert len(b) == 1 or len(_wide.block_columns(b)) <= width
    assert len(_wide.blocks(groups, 50_000)) == -(-400 // (_wide.BLOCK_CELLS // 50_000))
    assert all(len(b) == 1 for b in _wide.blocks(groups, 10**9))  # rows too many to copy: read directly


def test_a_bounded_read_of_a_wide_file_binds_it_once_per_block(tmp_path: Path) -> None:
    """The profile's look at the first rows: the file is read once per block of columns (its table function
    costs in proportion to all its columns), the statements of the block read the copy, the copy is dropped,
    and the parquet setting the wide path changes is restored, also when a statement fails."""
    n = 300
    table = pa.table({f"c{j}": np.arange(50) + 1000 * j for j in range(n)})
    pq.write_table(table, tmp_path / "w.parquet")
    with Engine() as engine:
        t = engine.add("w", str(tmp_path / "w.parquet"))
        seen: list[str] = []
        run = engine.sql

        def spy(query: str, params: list[Any] | None = None, *, table: Any = None) -> list[tuple[Any, ...]]:
            seen.append(query)
            return run(query, params, table=table)

        engine.sql = spy  # type: ignore[method-assign]
        exprs = {"rows": "count(*)"} | {f"{c}:max": f'max("{c}")' for c in table.column_names}
        values = engine.aggregate(t, exprs, limit=20)
        assert values["rows"] == 20
        for j, c in enumerate(table.column_names):
            assert 1000 * j <= values[f"{c}:max"] < 1000 * j + 50, c
        groups = _wide.split(exprs, table.column_names, {})
        assert groups is not None
        reads = [q for q in seen if "read_parquet" in q]
        assert len(reads) == len(_wide.blocks(groups, 20)) < len(groups)
        assert values == engine.aggregate(t, exprs, limit=20)  # repeatable: the copy is gone, then made anew

        def settings() -> list[tuple[Any, ...]]:
            return engine.con.execute("SELECT current_setting('disable_parquet_prefetching'), "
                                      "(SELECT count(*) FROM duckdb_tables() WHERE temporary)").fetchall()

        assert settings() == [(False, 0)]
        assert engine.aggregate(t, exprs) == {**values, "rows": 50} | {
            f"{c}:max": 1000 * j + 49 for j, c in enumerate(table.column_names)}
        assert settings() == [(False, 0)]
        with pytest.raises(duckdb.Error):
            engine.aggregate(t, exprs | {"c299:bad": 'no_such_function("c299")'}, limit=20)
        assert settings() == [(False, 0)]


def test_local_parquet_is_read_without_prefetching_except_by_statements_over_most_columns(
        tmp_path: Path) -> None:
    """Prefetch planning costs in proportion to all the file's columns, so the statements over a few columns
    of a wide local file run without it; a row hash over every column keeps it (no slower, and less memory);
    the setting is the default again afterwards."""
    n = _wide.ONE_THREAD_COLUMNS + 20
    table = pa.table({f"c{j}": np.arange(30) % (j + 2) for j in range(n)})
    pq.write_table(table, tmp_path / "w.parquet")
    with Engine() as engine:
        t = engine.add("w", str(tmp_path / "w.parquet"))
        from mlguard_orchestration.sources import Subquery

        seen: list[tuple[bool, bool]] = []
        run = engine._aggregate

        def spy(*args: Any) -> dict[str, Any]:
            off = engine.con.execute("SELECT current_setting('disable_parquet_prefetching')").fetchall()[0][0]
            seen.append(("dups" in args[2], off))
            return run(*args)

        engine._aggregate = spy  # type: ignore[method-assign]
        cols = ", ".join(ident(c) for c in table.column_names)
        exprs: dict[str, Any] = {f"{c}:max": f'max("{c}")' for c in table.column_names}
        exprs["dups"] = Subquery(f"SELECT count(*) - count(DISTINCT h) FROM (SELECT hash({cols}) AS h FROM {{table}})")
        values = engine.aggregate(t, exprs)
        assert engine.con.execute("SELECT current_setting('disable_parquet_prefetching')").fetchall() == [(False,)]
    assert values["dups"] == 0 and values["c0:max"] == 1
    assert len(seen) == len(_wide.split({k: v.render(t.ref) if isinstance(v, Subquery) else v
                                         for k, v in exprs.items()}, table.column_names, {}) or [])
    assert [off for dups, off in seen if dups] == [False]
    assert {off for dups, off in seen if not dups} == {True}


def test_aggregate_over_only_subqueries_returns_one_row() -> None:
    df = wide_frame(_wide.WIDE_COLUMNS + 5, 50)
    with Engine() as engine:
        table = engine.add("t", df)
        from mlguard_orchestration.sources import Subquery

        values = engine.aggregate(table, {c: Subquery(f'SELECT count(DISTINCT "{c}") FROM {{table}}')
                                          for c in df.columns if df[c].dtype == object})
    assert values == {c: 3 for c in df.columns if df[c].dtype == object}


# -- results unchanged by the split ------------------------------------------------------------------------


def test_wide_profile_equals_the_narrow_profiles() -> None:
    df = wide_frame(150, 300)
    wide = mg.build_profile(df)
    assert list(wide.columns) == list(df.columns)
    assert wide.rows == 300
    narrow = chunked_profile(df)
    for name, want in narrow.items():
        assert wide.columns[name] == want, name
    assert wide.columns["f2"].unique and wide.columns["f2"].distinct_exact
    assert wide.columns['a"b'].categories == narrow['a"b'].categories


def _sources(df: pd.DataFrame, root: Path) -> dict[str, Callable[[], Any]]:
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, root / "wide.parquet")
    (root / "parts").mkdir()
    pq.write_table(table.slice(0, 100), root / "parts" / "a.parquet")
    pq.write_table(table.slice(100), root / "parts" / "b.parquet")
    df.to_csv(root / "wide.csv", index=False)
    own = duckdb.connect()
    own.register("features", table)
    return {
        "pandas": lambda: df,
        "arrow": lambda: table,
        "record_batch": lambda: table.combine_chunks().to_batches()[0],
        "polars": lambda: pl.from_arrow(table),
        "reader": lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=64)),
        "parquet": lambda: str(root / "wide.parquet"),
        "directory": lambda: root / "parts",
        "csv": lambda: str(root / "wide.csv"),
        "sql": lambda: mg.Sql(f"SELECT * FROM read_parquet('{root / 'wide.parquet'}')"),
        "sql_own_connection": lambda: mg.Sql("SELECT * FROM features", connection=own),
    }


def test_every_kind_of_source_is_split_correctly(tmp_path: Path) -> None:
    df = wide_frame(_wide.WIDE_COLUMNS + 12, 200, seed=3)
    expected = chunked_profile(df)
    ref = mg.build_profile(df)
    for kind, make in _sources(df, tmp_path).items():
        prof = mg.build_profile(make())
        assert prof.rows == 200, kind
        for name, want in expected.items():
            got = prof.columns[name]
            assert (got.role, got.nulls, got.unique) == (want.role, want.nulls, want.unique), (kind, name)
            if want.mean is not None:
                assert got.mean == pytest.approx(want.mean, rel=1e-9), (kind, name)
            if want.categories is not None and kind != "csv":  # CSV reads booleans/strings its own way
                assert got.categories == want.categories, (kind, name)
        if kind != "csv":
            assert_quiet(mg.Guard("g", default_suite=True, reference=ref).run(make()))


# -- the guard on a wide table -----------------------------------------------------------------------------


def test_four_hundred_columns_default_suite_finds_the_broken_column() -> None:
    """The issue's case (400 columns took 12–32 s and 2.3 GB): quiet on the same distribution, and a null
    explosion in a column of the last group is found, with nothing said about the 399 others."""
    ref_df = wide_frame(400, 400, seed=1)
    ref = mg.build_profile(ref_df)
    assert len(ref.columns) == 400
    batch = wide_frame(400, 400, seed=1)
    assert_quiet(mg.Guard("g", default_suite=True, reference=ref).run(batch))
    batch["f395"] = np.nan
    report = mg.Guard("g", default_suite=True, reference=ref).run(batch)
    assert report.status == "fail" and report.error is None
    assert {f.code for f in report.findings} == {"drift.null_rate"}
    assert {c for f in report.findings for c in f.columns} == {"f395"}
    assert report.tables["data"].columns == 400


@pytest.mark.parametrize("kind", ["pandas", "arrow", "parquet"])
def test_two_thousand_columns_in_one_aggregate(kind: str, tmp_path: Path) -> None:
    """The crash regime (1,000 columns ran out of memory, 5,000 crashed): thousands of columns through the
    engine's aggregate, each column's statistics where they belong."""
    n = 2_000
    rng = np.random.default_rng(0)
    table = pa.table({f"c{j}": rng.integers(0, 10, 5) + 100 * j for j in range(n)})
    data: Any = table.to_pandas() if kind == "pandas" else table
    if kind == "parquet":
        data = tmp_path / "w.parquet"
        pq.write_table(table, data)
    with Engine() as engine:
        t = engine.add("w", data)
        exprs = {"rows": "count(*)"} | {f"{c}:{s}": f'{s}("{c}")' for c in table.column_names for s in ("min", "max")}
        values = engine.aggregate(t, exprs)
    assert values["rows"] == 5
    for j, c in enumerate(table.column_names):
        col = table.column(c).to_pylist()
        assert (values[f"{c}:min"], values[f"{c}:max"]) == (min(col), max(col)), c
        assert 100 * j <= values[f"{c}:min"] <= values[f"{c}:max"] < 100 * j + 10


@pytest.mark.parametrize("threads", [None, 2])
def test_a_statement_over_hundreds_of_columns_runs_on_one_thread_and_restores_the_setting(
        threads: int | None) -> None:
    """A row hash over every column of a 300-column table: a duplicated row is counted, and the engine's
    thread setting is what it was before (one thread only for that statement, to bound its memory)."""
    df = wide_frame(300, 40, seed=5)
    doubled = pd.concat([df, df.iloc[:3]], ignore_index=True)
    with Engine(threads=threads) as engine:
        before = engine.con.execute("SELECT current_setting('threads')").fetchall()
        table = engine.add("t", doubled)
        from mlguard_orchestration.sources import Subquery

        cols = ", ".join(ident(c) for c in df.columns)
        rows = engine.aggregate(table, {"rows": "count(*)", "distinct": Subquery(
            f"SELECT count(*) FROM (SELECT hash({cols}) AS h FROM {{table}} GROUP BY h)")})
        after = engine.con.execute("SELECT current_setting('threads')").fetchall()
    assert rows == {"rows": 43, "distinct": 40}
    assert after == before
    report = mg.Guard("g", [mg.DuplicateRows()], threads=threads).run(doubled)
    assert report.status == "fail" and report.findings[0].message.startswith("3 of 43 rows")
