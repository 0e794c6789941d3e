"""Bad and awkward input: each gets a clear error or a correct result — never an engine traceback, and never
SQL built from an unquoted identifier."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlguard_orchestration as mg
from tests._data import assert_quiet, codes, only, run_checks

# -- unreadable sources ------------------------------------------------------------------------------------


def test_corrupt_parquet_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"\x00garbage bytes, not parquet\xff" * 40)
    report = mg.Guard("g", [mg.RowCount()], default_suite=True).run(str(bad))
    assert report.status == "error"
    assert report.findings == []
    assert report.error is not None and report.error.type == "SourceError"
    assert str(bad) in report.error.message
    assert "Traceback" not in report.error.message and "\n" not in report.error.message
    with pytest.raises(mg.SourceError, match="x.parquet"):
        mg.build_profile(bad)


def test_truncated_parquet_is_an_error(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": np.arange(10_000)}), good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    report = run_checks(str(cut), [mg.RowCount()])
    assert report.status == "error"
    assert report.error is not None and "cut.parquet" in report.error.message


def test_corrupt_file_inside_a_directory(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"junk" * 100)
    report = run_checks(str(tmp_path), [mg.RowCount()])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SourceError"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "features_2024.parquet").write_bytes(b"")
    missing = tmp_path / "features_2025.parquet"
    report = run_checks(str(missing), [mg.RowCount()])
    assert report.status == "error"
    assert report.error is not None and str(missing) in report.error.message
    assert "does not exist" in report.error.message
    assert "features_2024.parquet" in report.error.message  # what is there instead


def test_missing_directory_and_empty_glob(tmp_path: Path) -> None:
    report = run_checks(str(tmp_path / "no" / "such" / "dir"), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "does not exist" in report.error.message
    empty = tmp_path / "empty"
    empty.mkdir()
    report = run_checks(str(empty), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "no parquet files" in report.error.message
    report = run_checks(str(tmp_path / "*.parquet"), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "no files match" in report.error.message


def test_bad_sql_and_unsupported_object() -> None:
    report = run_checks(mg.Sql("SELEC 1"), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "SELEC" in report.error.message
    report = run_checks(mg.Sql("SELECT * FROM no_such_table"), [mg.RowCount()])
    assert report.status == "error" and report.error is not None
    report = run_checks({"a": 1}, [mg.RowCount()])  # a dict is a {table: source} mapping: 1 is no source
    assert report.status == "error" and report.error is not None and report.error.type == "SpecError"
    report = run_checks([1, 2, 3], [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "cannot guard a builtins.list" in \
        report.error.message


# -- awkward but valid data ---------------------------------------------------------------------------------


def test_empty_table_with_schema() -> None:
    df = pd.DataFrame({"id": pd.Series([], dtype="int64"), "x": pd.Series([], dtype="float64"),
                       "s": pd.Series([], dtype="str")})
    checks = [mg.Schema(columns={"id": "integer", "x": "float", "s": "string"}), mg.NullRate(column="x"),
              mg.Range(column="x", min=0, max=1), mg.Finite(column="x"), mg.Unique(columns="id"),
              mg.AllowedValues(column="s", values=["a"]), mg.Pattern(column="s", regex="a+"),
              mg.DuplicateRows()]
    assert_quiet(run_checks(df, checks))  # nothing to object to in no rows …
    report = run_checks(df, [*checks, mg.RowCount()])
    assert codes(report) == ["volume.row_count"]  # … except that there are none
    assert report.tables["data"].rows == 0 and report.tables["data"].columns == 3


def test_all_null_column() -> None:
    df = pd.DataFrame({"empty_obj": [None] * 200, "empty_float": np.full(200, np.nan),
                       "id": np.arange(200), "v": np.linspace(0, 1, 200)})
    prof = mg.build_profile(df)
    assert prof.columns["empty_obj"].nulls == 200 and prof.columns["empty_float"].nulls == 200
    assert prof.columns["empty_float"].mean is None and prof.columns["empty_float"].quantiles is None
    assert_quiet(mg.Guard("g", default_suite=True, reference=prof).run(df))
    f = only(run_checks(df, [mg.NullRate(column="empty_float", max=0.5)]), "schema.null_rate")
    assert f.value == 1.0
    # the column goes from always-null to filled: no crash, no spurious null-rate alarm
    filled = df.assign(empty_float=1.0)
    report = mg.Guard("g", default_suite=True, reference=prof).run(filled)
    assert report.error is None
    assert "drift.null_rate" not in codes(report)


def test_mixed_python_types_in_object_column() -> None:
    df = pd.DataFrame({"mixed": [1, "two", 3.0, None] * 10, "ok": range(40)})
    report = run_checks(df, [mg.RowCount()])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SpecError"
    assert "'mixed'" in report.error.message and "mixes Python types" in report.error.message
    assert "astype(str)" in report.error.message
    with pytest.raises(mg.SpecError, match="mixes Python types"):
        mg.build_profile(df)


def test_non_string_column_names_are_a_spec_error() -> None:
    report = run_checks(pd.DataFrame({0: [1], "a": [2]}), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and "column names must be strings" in \
        report.error.message


def test_nan_and_inf_in_numerics() -> None:
    x = np.r_[np.linspace(10, 20, 2_000), [np.nan] * 20, [np.inf] * 7, [-np.inf] * 3]
    table = pa.table({"x": x, "y": np.arange(len(x), dtype=np.float64)})
    f = only(run_checks(table, [mg.Finite(column="x"), mg.Finite(column="y")]), "schema.non_finite")
    assert f.columns == ["x"] and f.evidence == {"nan": 20, "inf": 10}
    prof = mg.build_profile(table)
    c = prof.columns["x"]
    for v in (c.min, c.max, c.mean, c.std, *(c.quantiles or [])):
        assert v is not None and math.isfinite(v)
    assert (c.min, c.max) == (10.0, 20.0)
    assert c.mean == pytest.approx(15.0)
    json.loads(prof.model_dump_json())  # strict JSON: no NaN/Infinity literals
    # the distribution checks judge the finite values only
    assert_quiet(run_checks(table, [mg.Drift(columns="x")], reference=prof))
    # ±Inf lie outside any finite range; NaN is no value at all: Finite reports it, Range does not
    f = only(run_checks(table, [mg.Range(column="x", min=0, max=100)]), "schema.out_of_range")
    assert f.evidence["outside"] == 10
    nan_only = pa.table({"x": np.r_[np.linspace(10, 20, 2_000), [np.nan] * 20]})
    assert codes(run_checks(nan_only, [mg.Range(column="x", min=0, max=100), mg.Finite(column="x")])) == [
        "schema.non_finite"]


def test_timezone_aware_and_naive_timestamps() -> None:
    naive = pd.date_range("2024-03-01", periods=500, freq="h")
    df = pd.DataFrame({"naive": naive, "aware": naive.tz_localize("UTC"),
                       "berlin": naive.tz_localize("Europe/Berlin")})
    prof = mg.build_profile(df)
    assert {n: c.role for n, c in prof.columns.items()} == {"naive": "temporal", "aware": "temporal",
                                                            "berlin": "temporal"}
    assert prof.columns["naive"].kind == "timestamp" and prof.columns["aware"].kind == "timestamp_tz"
    assert prof.columns["naive"].min == prof.columns["aware"].min == naive[0].timestamp()
    assert prof.columns["berlin"].min == naive[0].timestamp() - 3600  # 00:00 CET is 23:00 UTC
    report = run_checks(df, [mg.Schema(columns={"naive": "timestamp", "aware": "timestamp_tz",
                                                "berlin": "temporal"})], default_suite=True, reference=prof)
    assert_quiet(report)
    mixed = run_checks(df, [mg.Schema(columns={"naive": "timestamp_tz"})])
    assert codes(mixed) == ["schema.type_mismatch"]


def test_nested_columns_profile_and_guard() -> None:
    n = 300
    table = pa.table({
        "id": np.arange(n),
        "tags": [[f"t{i % 5}", f"u{i}"] for i in range(n)],
        "address": [{"city": f"c{i % 7}", "zip": i} for i in range(n)],
        "attrs": pa.array([[("k", i)] for i in range(n)], type=pa.map_(pa.string(), pa.int64())),
    })
    prof = mg.build_profile(table)
    assert prof.rows == n
    for name in ("tags", "address", "attrs"):
        assert prof.columns[name].kind == "nested" and prof.columns[name].role == "other"
        assert prof.columns[name].nulls == 0
    report = mg.Guard("g", [mg.Schema(columns={"tags": "nested", "address": "nested"})], default_suite=True,
                      reference=prof).run(table)
    assert_quiet(report)
    doubled = pa.concat_tables([table, table])
    report = mg.Guard("g", default_suite=True, reference=prof).run(doubled)
    f = only(report, "schema.not_unique")
    assert f.causes[0].code == "cause.duplicated_partition"


# -- hostile column names ----------------------------------------------------------------------------------

HOSTILE = ['a"b', "with space", "ünïcödé", "select", '";-- DROP TABLE x', "'quoted'"]


def _hostile(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'a"b': np.arange(n),                                      # unique integer key
        "with space": rng.normal(10, 2, n),                       # numeric
        "ünïcödé": rng.choice(["x", "y", "z"], n),                 # categorical
        "select": rng.integers(0, 5, n),                          # discrete
        '";-- DROP TABLE x': [f"id-{i}" for i in range(n)],       # unique text
        "'quoted'": rng.lognormal(1, 0.5, n),                     # numeric, with nulls below
    }).assign(**{"'quoted'": lambda d: d["'quoted'"].where(rng.random(n) > 0.05)})


def _schema_checks() -> list:
    return [
        mg.Schema(columns={'a"b': "integer", "with space": "float", "ünïcödé": "string", "select": "integer",
                           '";-- DROP TABLE x': "string", "'quoted'": "float"}, allow_extra=False),
        mg.NullRate(column="'quoted'", max=0.1), mg.NullRate(column='a"b'),
        mg.Range(column="with space", min=-100, max=100), mg.Finite(column="'quoted'"),
        mg.AllowedValues(column="ünïcödé", values=["x", "y", "z"]),
        mg.AllowedValues(column="select", values=[0, 1, 2, 3, 4]),
        mg.Pattern(column='";-- DROP TABLE x', regex=r"id-\d+"),
        mg.Unique(columns='a"b'), mg.Unique(columns=["ünïcödé", '";-- DROP TABLE x']),
        mg.DuplicateRows(subset=['a"b', "select"]),
    ]


def test_hostile_names_profile_correctly() -> None:
    prof = mg.build_profile(_hostile())
    assert list(prof.columns) == HOSTILE
    assert {n: c.role for n, c in prof.columns.items()} == {
        'a"b': "numeric", "with space": "numeric", "ünïcödé": "categorical", "select": "discrete",
        '";-- DROP TABLE x': "text", "'quoted'": "numeric"}
    assert prof.columns['a"b'].unique and prof.columns['";-- DROP TABLE x'].unique
    assert prof.columns["'quoted'"].null_rate == pytest.approx(0.05, abs=0.015)


def test_hostile_names_quiet_on_clean_data() -> None:
    ref = mg.build_profile(_hostile(seed=0))
    report = mg.Guard("g", _schema_checks(), default_suite=True, reference=ref).run(_hostile(seed=1))
    assert_quiet(report)
    assert report.checks_run > len(_schema_checks()) + 5  # the default suite ran too (minus checks the user wrote)


def test_hostile_names_fire_correctly() -> None:
    ref = mg.build_profile(_hostile(seed=0))
    bad = _hostile(seed=1)
    bad.loc[:9, "with space"] = 1e6                      # out of range
    bad.loc[:9, "ünïcödé"] = "Q"                         # not allowed, unseen
    bad.loc[:9, '";-- DROP TABLE x'] = "zz"              # pattern, and repeated
    bad.loc[5, 'a"b'] = 0                                # repeated key
    bad.loc[:1_500, "'quoted'"] = None                   # null explosion
    bad = bad.rename(columns={"select": "selekt"})       # a rename of a hostile name
    report = mg.Guard("g", _schema_checks(), default_suite=True, reference=ref).run(bad)
    assert report.status == "fail" and report.error is None
    got = {(f.code, tuple(f.columns)) for f in report.findings}
    expected = {
        ("schema.out_of_range", ("with space",)),
        ("schema.not_allowed", ("ünïcödé",)),
        ("schema.pattern_mismatch", ('";-- DROP TABLE x',)),
        ("schema.not_unique", ('a"b',)),
        ("schema.not_unique", ('";-- DROP TABLE x',)),
        ("schema.null_rate", ("'quoted'",)),
        ("drift.null_rate", ("'quoted'",)),
        ("drift.unseen_categories", ("ünïcödé",)),
        ("schema.missing_column", ("select",)),
        ("schema.unexpected_column", ("selekt",)),
    }
    assert expected <= got, expected - got
    missing = next(f for f in report.findings if f.code == "schema.missing_column")
    assert missing.causes[0].code == "cause.renamed_column" and missing.causes[0].evidence["candidate"] == "selekt"
    nulls = only(report, "schema.null_rate")
    assert nulls.evidence["nulls"] == int(bad["'quoted'"].isna().sum())
    # nothing about the untouched columns
    assert not any(f.columns == ["'quoted'"] and f.code.startswith("schema.out") for f in report.findings)


def test_hostile_names_through_parquet_and_sql(tmp_path: Path) -> None:
    path = tmp_path / "hostile ünï'\"name.parquet"
    pq.write_table(pa.Table.from_pandas(_hostile(), preserve_index=False), path)
    report = run_checks(str(path), _schema_checks())
    assert_quiet(report)
    assert report.tables["data"].rows == 3_000
    sql = mg.Sql(f"SELECT * FROM read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')")
    assert_quiet(run_checks(sql, _schema_checks()))


def test_identifier_with_nul_byte_is_refused_not_spliced() -> None:
    from mlguard_orchestration._sql import ident, literal

    assert ident('a"b') == '"a""b"'
    assert ident('";-- DROP TABLE x') == '""";-- DROP TABLE x"'
    assert literal("'quoted'") == "'''quoted'''"
    with pytest.raises(mg.SpecError, match="NUL"):
        ident("a\x00b")
    report = mg.Guard("g", default_suite=False, checks=[mg.NullRate(column="a\x00b")]).run(
        pd.DataFrame({"a\x00b": [1.0, 2.0]}))
    assert report.status == "error" and report.error is not None and "NUL" in report.error.message
