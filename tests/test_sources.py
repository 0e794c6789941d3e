"""Every kind of source a guard accepts gives the same rows and the same profile basics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlguard_orchestration as mg
from tests._data import churn_frame

N = 3_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return churn_frame(N, seed=81)


@pytest.fixture(scope="module")
def files(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, root / "one.parquet")
    (root / "parts" / "sub").mkdir(parents=True)
    pq.write_table(table.slice(0, 1_000), root / "parts" / "a.parquet")
    pq.write_table(table.slice(1_000, 1_000), root / "parts" / "b.parquet")
    pq.write_table(table.slice(2_000), root / "parts" / "sub" / "c.parquet")  # nested folders are read too
    frame.to_csv(root / "one.csv", index=False)
    return root


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _reader(frame: pd.DataFrame) -> pa.RecordBatchReader:
    table = _arrow(frame)
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=700))


def _on_own_connection(frame: pd.DataFrame) -> mg.Sql:
    con = duckdb.connect()
    con.register("features", _arrow(frame))
    return mg.Sql("SELECT * FROM features", connection=con)


SOURCES: dict[str, Callable[[pd.DataFrame, Path], Any]] = {
    "pandas": lambda f, root: f,
    "polars": lambda f, root: pl.from_pandas(f),
    "polars_lazy": lambda f, root: pl.from_pandas(f).lazy(),
    "arrow_table": lambda f, root: _arrow(f),
    "record_batch_reader": lambda f, root: _reader(f),
    "parquet_str": lambda f, root: str(root / "one.parquet"),
    "parquet_path": lambda f, root: root / "one.parquet",
    "directory": lambda f, root: str(root / "parts"),
    "glob": lambda f, root: str(root / "parts" / "**" / "*.parquet"),
    "csv": lambda f, root: str(root / "one.csv"),
    "duckdb_relation": lambda f, root: duckdb.sql(f"SELECT * FROM read_parquet('{root / 'one.parquet'}')"),
    "sql": lambda f, root: mg.Sql(f"SELECT * FROM read_parquet('{root / 'one.parquet'}')"),
    "sql_on_own_connection": lambda f, root: _on_own_connection(f),
}


@pytest.fixture(scope="module")
def expected(frame: pd.DataFrame) -> mg.TableProfile:
    return mg.build_profile(frame)


@pytest.mark.parametrize("kind", list(SOURCES))
def test_source_gives_same_rows_and_profile(kind: str, frame: pd.DataFrame, files: Path,
                                            expected: mg.TableProfile) -> None:
    prof = mg.build_profile(SOURCES[kind](frame, files))
    assert prof.rows == N
    assert set(prof.columns) == set(expected.columns)
    for name, want in expected.columns.items():
        got = prof.columns[name]
        assert got.role == want.role, (name, got.role)
        assert got.nulls == want.nulls, name
        assert got.unique == want.unique, name
        if want.mean is not None:
            assert got.mean == pytest.approx(want.mean, rel=1e-9), name
            assert (got.min, got.max) == (pytest.approx(want.min), pytest.approx(want.max)), name
        if want.categories is not None:
            assert got.categories == want.categories, name
    assert prof.columns["user_id"].unique
    assert prof.columns["avg_session_min"].nulls == int(frame["avg_session_min"].isna().sum()) > 0


@pytest.mark.parametrize("kind", list(SOURCES))
def test_source_in_a_guard(kind: str, frame: pd.DataFrame, files: Path, expected: mg.TableProfile) -> None:
    report = mg.Guard("g", [mg.RowCount(min=N, max=N), mg.Unique(columns="user_id"),
                            mg.NullRate(column="avg_session_min", max=0.05)],
                      default_suite=True, reference=expected).run(SOURCES[kind](frame, files))
    assert report.status == "pass", (report.error, [(f.code, f.message) for f in report.findings])
    assert report.tables["data"].rows == N and report.tables["data"].columns == 7


def test_one_shot_stream_survives_a_guard_that_reads_twice(frame: pd.DataFrame) -> None:
    """A RecordBatchReader can be consumed once; a failing Unique check diagnoses with a second query."""
    doubled = pd.concat([frame.iloc[:1_500], frame.iloc[:1_500]], ignore_index=True)
    report = mg.Guard("g", [mg.Unique(columns="user_id"), mg.DuplicateRows()]).run(_reader(doubled))
    assert report.status == "fail" and report.error is None
    unique = next(f for f in report.findings if f.code == "schema.not_unique")
    assert unique.evidence == {"rows": N, "distinct_keys": 1_500}
    assert unique.causes[0].code == "cause.duplicated_partition"  # needed the second read


def test_relation_on_default_connection_with_diagnosis(frame: pd.DataFrame) -> None:
    doubled = pd.concat([frame.iloc[:1_500], frame.iloc[:1_500]], ignore_index=True)  # noqa: F841 - read by SQL
    rel = duckdb.sql("SELECT * FROM doubled")
    report = mg.Guard("g", [mg.Unique(columns="user_id")]).run(rel)
    assert report.status == "fail"
    assert report.findings[0].causes[0].code == "cause.duplicated_partition"


def test_several_tables_of_different_kinds(frame: pd.DataFrame, files: Path) -> None:
    report = mg.Guard("g", [mg.RowCount(table="a", min=N), mg.RowCount(table="b", min=N),
                            mg.RowCount(table="c", min=N + 1)]).run(
        {"a": frame, "b": str(files / "one.parquet"), "c": _reader(frame)})
    assert [(f.code, f.table) for f in report.findings] == [("volume.row_count", "c")]
    assert {n: t.rows for n, t in report.tables.items()} == {"a": N, "b": N, "c": N}


def test_csv_types_are_inferred(files: Path) -> None:
    prof = mg.build_profile(str(files / "one.csv"))
    assert prof.columns["user_id"].kind == "integer"
    assert prof.columns["monthly_spend_usd"].kind == "float"
    assert prof.columns["plan"].kind == "string"
