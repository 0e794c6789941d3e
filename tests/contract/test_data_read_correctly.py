"""Data read wrongly: a source is read exactly as it is, or refused with a message naming the column and the fix.

File names are literal when the file exists (glob characters, commas, quotes); two columns with one name are
an error naming them, never `a` and `a_1`; types DuckDB cannot read name their column and the cast to make;
and every engine error while reading data is a SourceError naming the source, while an error in the guard's
own SQL (Parser/Binder/Catalog) stays distinguishable as a bug.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.sources import Engine
from tests._data import run_checks


def _table(n: int, start: int = 0) -> pa.Table:
    return pa.table({"x": np.arange(start, start + n), "y": np.linspace(0.0, 1.0, n)})


def _rows(source: object) -> int:
    report = run_checks(source, [mg.RowCount()])
    assert report.error is None, report.error
    return report.tables["data"].rows or 0


def _error(report: mg.Report, kind: str, *needles: str) -> str:
    assert report.status == "error" and report.findings == [], report
    assert report.error is not None and report.error.type == kind, report.error
    message = report.error.message
    for needle in needles:
        assert needle in message, (needle, message)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- an existing path is read literally ---------------------------------------------------------------------

LITERAL_NAMES = ["a[1].parquet", "b*.parquet", "c?.parquet", "x].parquet", "d,e.parquet", "f{1}.parquet",
                 "it's.parquet", 'say "hi".parquet', "ünï cödé.parquet", "[abc].parquet", "**.parquet"]


@pytest.mark.parametrize("name", LITERAL_NAMES)
def test_an_existing_file_is_read_literally(tmp_path: Path, name: str) -> None:
    pq.write_table(_table(7), tmp_path / name)
    # siblings that the name, read as a glob, would also (or instead) match
    for decoy in ("a1.parquet", "bX.parquet", "cZ.parquet", "a.parquet", "b.parquet", "c.parquet", "x.parquet"):
        pq.write_table(_table(1000), tmp_path / decoy)
    assert _rows(str(tmp_path / name)) == 7
    assert _rows(tmp_path / name) == 7
    prof = mg.build_profile(str(tmp_path / name))
    assert prof.rows == 7 and prof.columns["x"].max == 6


def test_an_existing_csv_and_json_with_glob_characters(tmp_path: Path) -> None:
    pd.DataFrame({"x": range(5)}).to_csv(tmp_path / "run[1].csv", index=False)
    pd.DataFrame({"x": range(500)}).to_csv(tmp_path / "run1.csv", index=False)
    assert _rows(str(tmp_path / "run[1].csv")) == 5
    (tmp_path / "e*.jsonl").write_text('{"x": 1}\n{"x": 2}\n')
    (tmp_path / "eX.jsonl").write_text('{"x": 1}\n' * 50)
    assert _rows(str(tmp_path / "e*.jsonl")) == 2


def test_a_pattern_that_names_no_file_is_still_a_glob(tmp_path: Path) -> None:
    for i in range(3):
        pq.write_table(_table(10), tmp_path / f"part{i}.parquet")
    assert _rows(str(tmp_path / "part[0-1].parquet")) == 20
    assert _rows(str(tmp_path / "*.parquet")) == 30
    report = run_checks(str(tmp_path / "nothing[0-9].parquet"), [mg.RowCount()])
    _error(report, "SourceError", "no files match the pattern", "nothing[0-9].parquet")


def test_a_directory_whose_name_has_glob_characters(tmp_path: Path) -> None:
    root = tmp_path / "run[2024-01-01]*"
    (root / "sub").mkdir(parents=True)
    pq.write_table(_table(3), root / "a.parquet")
    pq.write_table(_table(4), root / "sub" / "b[1].parquet")
    decoy = tmp_path / "run2"
    decoy.mkdir()
    pq.write_table(_table(100), decoy / "z.parquet")
    assert _rows(str(root)) == 7


def test_a_directory_mixing_parquet_and_pq_with_commas_in_names(tmp_path: Path) -> None:
    pq.write_table(_table(3), tmp_path / "a,b.parquet")
    pq.write_table(_table(4), tmp_path / "c,d[1].pq")
    pq.write_table(_table(5), tmp_path / "it's.pq")
    assert _rows(str(tmp_path)) == 12
    prof = mg.build_profile(tmp_path)
    assert prof.rows == 12 and prof.columns["x"].nulls == 0


def test_a_directory_mixing_schemas_and_suffixes_is_unioned_by_name(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [3], "z": ["new"]}), tmp_path / "b.pq")
    prof = mg.build_profile(str(tmp_path))
    assert prof.rows == 3 and prof.columns["z"].nulls == 2


# -- repeated column names ----------------------------------------------------------------------------------


def _dup_arrow() -> pa.Table:
    return pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])], names=["a", "a", "a_1"])


def test_duplicate_names_in_pandas() -> None:
    df = pd.DataFrame([[1, 2, 3, 4]], columns=["a", "a", "b", "b"])
    message = _error(run_checks(df, [mg.NullRate(column="a")]), "SpecError", "'a' (2×)", "'b' (2×)")
    assert "will not guess" in message and "df.columns" in message
    with pytest.raises(mg.SpecError, match="used more than once"):
        mg.build_profile(df)


def test_duplicate_names_in_arrow_and_streams() -> None:
    table = _dup_arrow()
    _error(run_checks(table, [mg.RowCount()]), "SpecError", "'a' (2×)")
    _error(run_checks(table.to_batches()[0], [mg.RowCount()]), "SpecError", "'a' (2×)")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    _error(run_checks(reader, [mg.RowCount()]), "SpecError", "'a' (2×)")


def test_duplicate_names_in_sql_and_relations() -> None:
    _error(run_checks(mg.Sql("SELECT 1 AS a, 2 AS a, 3 AS b"), [mg.RowCount()]), "SpecError", "'a' (2×)")
    con = duckdb.connect()
    _error(run_checks(mg.Sql("SELECT 1 AS k, 2 AS k", connection=con), [mg.RowCount()]), "SpecError",
           "\'k\' (2×)")
    _error(run_checks(con.sql("SELECT 1 AS v, 2 AS v"), [mg.RowCount()]), "SpecError", "\'v\' (2×)")


def test_duplicate_names_in_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(_dup_arrow(), path)
    message = _error(run_checks(str(path), [mg.NullRate(column="a")]), "SpecError", str(path), "'a' (2×)")
    assert "'a_1'" not in message.split("used more than once")[1].split(".")[0]  # a_1 is a real, single column
    _error(mg.Guard("g", default_suite=True).run(str(path)), "SpecError", "'a' (2×)")


def test_duplicate_names_in_one_file_of_a_directory(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": [2]}), tmp_path / "1.parquet")
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["b", "b"]), tmp_path / "2.parquet")
    _error(run_checks(str(tmp_path), [mg.RowCount()]), "SpecError", "2.parquet", "'b' (2×)")
    _error(run_checks(str(tmp_path / "*.parquet"), [mg.RowCount()]), "SpecError", "2.parquet", "'b' (2×)")


def test_duplicate_names_in_a_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("id,score,score\n1,0.5,0.7\n2,0.1,0.2\n")
    _error(run_checks(str(path), [mg.RowCount()]), "SpecError", "dup.csv", "'score' (2×)")
    bracket = tmp_path / "dup[1].csv"
    bracket.write_text("a,a\n1,2\n")
    _error(run_checks(str(bracket), [mg.RowCount()]), "SpecError", "dup[1].csv", "'a' (2×)")
    semi = tmp_path / "semi.csv"
    semi.write_text('"x";"y";"x"\n1;2;3\n')
    _error(run_checks(str(semi), [mg.RowCount()]), "SpecError", "\'x\' (2×)")


def test_names_that_only_look_alike_are_read(tmp_path: Path) -> None:
    """A nested field named like a top-level column, `a` next to `a_1`, case variants: all distinct."""
    table = pa.table({"a": [1, 2], "a_1": [3, 4], "A": [5, 6],
                      "s": [{"a": 1, "t": {"a": 2}}, {"a": 3, "t": {"a": 4}}], "t": [7, 8]})
    pq.write_table(table, tmp_path / "ok.parquet")
    for source in (table, str(tmp_path / "ok.parquet"), table.to_pandas()):
        report = run_checks(source, [mg.NullRate(column="a"), mg.NullRate(column="a_1")])
        assert report.status == "pass" and report.tables["data"].columns == 5, report.error
    path = tmp_path / "ok.csv"
    path.write_text("a,A,a_1\n1,2,3\n")
    assert _rows(str(path)) == 1


# -- types and values DuckDB cannot read ----------------------------------------------------------------------


def _dec256() -> pa.Table:
    values = pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("12345678901234567890123456789012345678.25")],
                      type=pa.decimal256(40, 2))
    return pa.table({"amount": values, "x": [1, 2, 3]})


def test_decimal256_names_the_column_and_the_cast() -> None:
    table = _dec256()
    message = _error(run_checks(table, [mg.RowCount()]), "SpecError", "'amount'", "decimal256", "float64")
    assert "38" in message
    _error(run_checks(table.to_pandas(types_mapper=pd.ArrowDtype), [mg.RowCount()]), "SpecError", "'amount'")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    _error(run_checks(reader, [mg.RowCount()]), "SpecError", "'amount'", "decimal256")
    nested = pa.table({"order": pa.StructArray.from_arrays([table.column("amount").combine_chunks()], ["amount"])})
    _error(run_checks(nested, [mg.RowCount()]), "SpecError", "'order'", "decimal256")
    # after the cast the message suggests, it is read
    fixed = table.cast(pa.schema([pa.field("amount", pa.float64()), pa.field("x", pa.int64())]))
    assert mg.build_profile(fixed).columns["amount"].max == pytest.approx(1.2345678901234568e37)


def test_a_wide_decimal_in_parquet_is_read_as_a_number(tmp_path: Path) -> None:
    pq.write_table(_dec256(), tmp_path / "d.parquet")
    prof = mg.build_profile(str(tmp_path / "d.parquet"))
    assert prof.rows == 3 and prof.columns["amount"].nulls == 1
    assert prof.columns["amount"].min == pytest.approx(1.5)


def test_mixed_timezone_aware_and_naive_datetimes() -> None:
    naive, aware = dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    df = pd.DataFrame({"event_time": [naive, aware, None] * 5, "x": range(15)})
    message = _error(run_checks(df, [mg.RowCount()]), "SpecError", "'event_time'", "timezone-aware and naive",
                     "utc=True")
    assert "mixes Python types" not in message
    ts = pd.DataFrame({"t": pd.Series([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01", tz="UTC")],
                                      dtype=object)})
    _error(run_checks(ts, [mg.RowCount()]), "SpecError", "'t'", "timezone-aware and naive")


def test_a_naive_datetime_far_beyond_the_sampled_head_is_found() -> None:
    values = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 30_000 + [dt.datetime(2024, 1, 2)]
    _error(run_checks(pd.DataFrame({"t": values}), [mg.RowCount()]), "SpecError", "'t'", "timezone-aware")


def test_consistent_datetimes_in_object_columns_are_read() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    aware = pd.DataFrame({"t": pd.Series([dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                                          dt.datetime(2024, 1, 1, 1, tzinfo=berlin), None], dtype=object)})
    prof = mg.build_profile(aware)
    assert prof.columns["t"].kind == "timestamp_tz" and prof.columns["t"].min == prof.columns["t"].max
    naive = pd.DataFrame({"t": pd.Series([dt.datetime(2024, 1, 1), pd.Timestamp("2024-01-02")], dtype=object)})
    assert mg.build_profile(naive).columns["t"].role == "temporal"


# -- engine errors ---------------------------------------------------------------------------------------------


def _corrupt_copies(tmp_path: Path) -> list[Path]:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": np.arange(50_000), "s": [f"v{i % 997}" for i in range(50_000)]}), good,
                   compression="none")
    data = good.read_bytes()
    out = []
    for seed in range(40):
        rng = random.Random(seed)
        bad = bytearray(data)
        for _ in range(rng.choice([5, 50, 200])):
            bad[rng.randrange(4, len(data) - 8)] = rng.randrange(256)
        path = tmp_path / f"corrupt_{seed}.parquet"
        path.write_bytes(bytes(bad))
        out.append(path)
    return out


def test_corrupt_pages_are_a_source_error_never_a_raw_engine_error(tmp_path: Path) -> None:
    """Corrupt data pages raise every kind of DuckDB error (InvalidInput, IO, and plain duckdb.Error such as
    'dictionary offset out of range' or a Thrift TProtocolException); each one is a SourceError naming the file."""
    errors = 0
    for path in _corrupt_copies(tmp_path):
        report = mg.Guard("g", [mg.NullRate(column="s")], default_suite=True).run(str(path))
        if report.error is not None:
            errors += 1
            _error(report, "SourceError", path.name)
            assert report.error.retryable
        try:
            mg.build_profile(str(path))
        except mg.SourceError as exc:
            assert path.name in str(exc)
    assert errors >= 10  # most corruptions are detected, and each came back as a report


def test_an_error_in_the_guards_own_sql_is_not_reported_as_bad_data() -> None:
    with Engine() as engine:
        table = engine.add("t", pa.table({"x": [1, 2]}))
        with pytest.raises(duckdb.BinderException):
            engine.sql(f"SELECT no_such_column FROM {table.ref}", table=table)
        with pytest.raises(duckdb.ParserException):
            engine.sql("SELEC 1", table=table)
        with pytest.raises(mg.SourceError, match="pyarrow.Table"):  # a failure while running: the data's
            engine.sql(f"SELECT CAST('x' || x AS INTEGER) FROM {table.ref}", table=table)


def test_a_failing_polars_lazy_query_is_a_source_error() -> None:
    lazy = pl.LazyFrame({"x": [1, 2]}).select(pl.col("no_such_column"))
    _error(run_checks(lazy, [mg.RowCount()]), "SourceError", "polars.LazyFrame", "no_such_column")


def test_an_sql_source_is_one_statement(tmp_path: Path) -> None:
    target = tmp_path / "written.csv"
    report = run_checks(mg.Sql(f"SELECT 1 AS x; COPY (SELECT 1) TO '{target}'"), [mg.RowCount()])
    _error(report, "SpecError", "one query", "2 statements")
    assert not target.exists()
    assert _rows(mg.Sql("SELECT 1 AS x;")) == 1  # a trailing semicolon is still one statement
