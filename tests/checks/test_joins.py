"""JoinKeys on real DuckDB: every finding fires when it should and stays quiet when it should not, and the
diagnosis names the missing key column or the key normalisation that makes the sides match."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from pydantic import TypeAdapter, ValidationError

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.joins import JoinKeys
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.report import Report

N = 1_000


def labels(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": rng.permutation(n).astype(np.int64), "label": rng.integers(0, 2, n)})


def features(n: int = N, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": rng.permutation(n).astype(np.int64), "spend": rng.lognormal(3, 0.5, n),
                         "plan": rng.choice(["basic", "premium"], n)})


def snapshots(n: int = N, seed: int = 2) -> pd.DataFrame:
    """Features with 3 snapshot dates per user (unique on (user_id, snapshot_date) only)."""
    rng = np.random.default_rng(seed)
    days = pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"]).date
    return pd.DataFrame({"user_id": np.repeat(np.arange(n, dtype=np.int64), 3),
                         "snapshot_date": np.tile(days, n),
                         "spend": rng.lognormal(3, 0.5, 3 * n),
                         "row_id": np.arange(3 * n)})


def run(check: JoinKeys, tables: dict, **guard_kw) -> Report:
    report = Guard("g", checks=[check], **guard_kw).run(tables)
    assert report.error is None, report.error
    return report


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def only(report: Report, code: str):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, [f.code for f in report.findings]
    return found[0]


# -- spec --------------------------------------------------------------------------------------------------


def test_spec_validation_and_label() -> None:
    c = JoinKeys(left="labels", right="features", on="user_id")
    assert c.left_keys() == c.right_keys() == ["user_id"]
    assert c.label() == "join_keys(labels→features on user_id)"
    assert c.tables() == ["labels", "features"]
    c2 = JoinKeys(left="a", right="b", left_on=["uid", "day"], right_on=["user_id", "day"], joined="ab")
    assert c2.label() == "join_keys(a→b on uid=user_id, day)"
    assert c2.tables() == ["a", "b", "ab"]
    bad_specs: list[dict] = [{"on": "k", "left_on": "k", "right_on": "k"}, {}, {"left_on": "k"},
                             {"left_on": ["a", "b"], "right_on": ["a"]}, {"on": "k", "min_match_rate": 1.5},
                             {"on": ["k", "k"]}, {"on": "k", "extra": 1}]
    for bad in bad_specs:
        with pytest.raises(ValidationError):
            JoinKeys(left="a", right="b", **bad)
    parsed = TypeAdapter(AnyCheck).validate_python({"kind": "join_keys", "left": "a", "right": "b", "on": "k"})
    assert isinstance(parsed, JoinKeys) and parsed.relationship == "many_to_one"


# -- clean join --------------------------------------------------------------------------------------------


def test_clean_many_to_one_join_passes() -> None:
    report = run(JoinKeys(left="labels", right="features", on="user_id", max_orphan_rate=0.0),
                 {"labels": labels(), "features": features()})
    assert report.status == "pass" and report.findings == []
    assert report.tables["labels"].rows == N


# -- fan-out / uniqueness ----------------------------------------------------------------------------------


def test_fan_out_names_the_missing_key_column() -> None:
    report = run(JoinKeys(left="labels", right="features", on="user_id"),
                 {"labels": pl.from_pandas(labels()), "features": pl.from_pandas(snapshots())})
    assert codes(report) == {"join.fan_out", "join.right_not_unique"}
    fan = only(report, "join.fan_out")
    assert fan.value == pytest.approx(3.0) and fan.evidence["predicted_joined_rows"] == 3 * N
    assert fan.evidence["right_max_rows_per_key"] == 3
    top = report.top_cause
    assert top is not None and top.code == "cause.missing_join_key"
    assert "'snapshot_date'" in top.summary and top.evidence["columns"] == ["snapshot_date"]
    assert top.confidence == pytest.approx(0.6)  # only on the right side
    # the row id also makes features unique but is not reported as a missing key
    assert all("row_id" not in c.summary for f in report.findings for c in f.causes)
    nu = only(report, "join.right_not_unique")
    assert nu.evidence["repeated_keys"] == N and nu.evidence["max_rows_per_key"] == 3
    assert nu.causes[0].code == "cause.missing_join_key"


def test_missing_key_present_on_both_sides_is_confident() -> None:
    lab = labels().assign(snapshot_date=date(2024, 3, 2))
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": lab, "features": snapshots()})
    top = report.top_cause
    assert top is not None and top.code == "cause.missing_join_key" and top.confidence == pytest.approx(0.9)
    assert top.evidence["in_both_tables"] is True
    # joining on the full key is clean
    ok = run(JoinKeys(left="labels", right="features", on=["user_id", "snapshot_date"]),
             {"labels": lab, "features": snapshots()})
    assert ok.status == "pass"


def test_missing_key_pair() -> None:
    n = 300
    right = pd.DataFrame({"user_id": np.repeat(np.arange(n), 4), "region": np.tile(["eu", "eu", "us", "us"], n),
                          "day": np.tile([1, 2, 1, 2], n), "v": 1.0})
    report = run(JoinKeys(left="l", right="r", on="user_id"), {"l": pd.DataFrame({"user_id": np.arange(n)}),
                                                               "r": right})
    top = report.top_cause
    assert top is not None and top.code == "cause.missing_join_key"
    assert sorted(top.evidence["columns"]) == ["day", "region"]


def test_exact_duplicate_rows_point_at_a_double_load() -> None:
    f = features()
    report = run(JoinKeys(left="labels", right="features", on="user_id"),
                 {"labels": labels(), "features": pd.concat([f, f.iloc[:100]])})
    assert {"join.fan_out", "join.right_not_unique"} <= codes(report)
    assert report.top_cause is not None and report.top_cause.code == "cause.duplicated_partition"


def test_fan_out_quiet_when_declared_and_allowed() -> None:
    report = run(JoinKeys(left="labels", right="features", on="user_id", relationship="many_to_many",
                          max_fan_out=3.0), {"labels": labels(), "features": snapshots()})
    assert report.findings == []


def test_left_not_unique_per_relationship() -> None:
    lab = pd.concat([labels(), labels().iloc[:50]])
    fires = run(JoinKeys(left="labels", right="features", on="user_id", relationship="one_to_one"),
                {"labels": lab, "features": features()})
    assert codes(fires) == {"join.left_not_unique"}
    f = only(fires, "join.left_not_unique")
    assert f.table == "labels" and f.evidence["repeated_keys"] == 50
    quiet = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": lab, "features": features()})
    assert quiet.findings == []  # many_to_one: repeated left keys are expected, and no fan-out


def test_inner_join_fan_out_is_per_matched_row() -> None:
    # only a third of the labels match, but each match triples: an inner join's fan-out is still 3×
    lab = labels(3 * N)
    report = run(JoinKeys(left="labels", right="features", on="user_id", how="inner", min_match_rate=0.0,
                          relationship=None), {"labels": lab, "features": snapshots()})
    assert codes(report) == {"join.fan_out"}
    assert only(report, "join.fan_out").value == pytest.approx(3.0)


# -- match rate and key normalisation ----------------------------------------------------------------------


def test_int_vs_prefixed_zero_padded_string() -> None:
    feats = features()
    feats["user_id"] = [f"u{i:05d}" for i in feats["user_id"]]
    report = run(JoinKeys(left="labels", right="features", on="user_id"),
                 {"labels": pa.Table.from_pandas(labels()), "features": pa.Table.from_pandas(feats)})
    assert codes(report) == {"join.key_type_mismatch", "join.match_rate"}
    mr = only(report, "join.match_rate")
    assert mr.value == 0.0
    rates = mr.evidence["key_probe"]["match_rate_by_transform"]
    assert rates["prefix_zero_padding"] == 1.0 and rates["text"] == 0.0
    top = mr.causes[0]
    assert top.code == "cause.key_format_mismatch" and top.evidence["transform"] == "prefix_zero_padding"
    assert "prefix" in top.summary and "zero" in top.summary
    assert report.top_cause is not None and report.top_cause.evidence["transform"] == "prefix_zero_padding"
    tm = only(report, "join.key_type_mismatch")
    assert tm.value == "integer" and tm.threshold == "string"


def test_zero_padded_strings() -> None:
    lab = labels().assign(user_id=lambda d: d["user_id"].astype(str))
    feats = features().assign(user_id=lambda d: d["user_id"].map(lambda i: f"{i:08d}"))
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": lab, "features": feats})
    assert codes(report) == {"join.match_rate"}
    mr = only(report, "join.match_rate")
    assert mr.value == 0.0
    assert mr.causes[0].evidence["transform"] == "zero_padding"


def test_int_vs_plain_string_is_a_type_mismatch_only() -> None:
    feats = features().assign(user_id=lambda d: d["user_id"].astype(str))
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": labels(), "features": feats})
    assert codes(report) == {"join.key_type_mismatch"}
    tm = only(report, "join.key_type_mismatch")
    assert tm.evidence["match_rate_as_text"] == 1.0
    assert tm.causes[0].code == "cause.key_type_mismatch" and tm.causes[0].evidence["transform"] == "text"


def test_case_mismatch() -> None:
    keys = [f"ACCT{i}X" for i in range(N)]
    report = run(JoinKeys(left="l", right="r", on="acct"),
                 {"l": pd.DataFrame({"acct": keys}), "r": pd.DataFrame({"acct": [k.lower() for k in keys], "v": 1})})
    assert codes(report) == {"join.match_rate"}
    cause = report.top_cause
    assert cause is not None and cause.code == "cause.key_format_mismatch"
    assert cause.evidence["transform"] == "case_whitespace" and "case" in cause.summary


def test_date_shift_by_one_day() -> None:
    days = [date(2023, 1, 1) + timedelta(days=3 * i) for i in range(400)]  # shifted days never coincide
    left = pd.DataFrame({"day": days, "y": 1})
    right = pd.DataFrame({"day": [d + timedelta(days=1) for d in days], "x": 2.0})
    report = run(JoinKeys(left="l", right="r", on="day"), {"l": left, "r": right})
    mr = only(report, "join.match_rate")
    assert mr.value == 0.0
    cause = mr.causes[0]
    assert cause.code == "cause.key_time_shift" and cause.evidence["transform"] == "shift_+1d"
    assert "1 day later" in cause.summary


def test_date_vs_timestamp() -> None:
    ts = pd.date_range("2024-01-01", periods=300, freq="2D")
    report = run(JoinKeys(left="l", right="r", on="d"),
                 {"l": pd.DataFrame({"d": ts.date}), "r": pd.DataFrame({"d": ts, "x": 1})})
    assert codes(report) == {"join.key_type_mismatch", "join.match_rate"}
    tm = only(report, "join.key_type_mismatch")
    assert (tm.value, tm.threshold) == ("date", "timestamp")
    assert tm.causes[0].code == "cause.key_type_mismatch" and tm.causes[0].evidence["transform"] == "as_timestamp"
    with_time = run(JoinKeys(left="l", right="r", on="d"), {"l": pd.DataFrame({"d": ts + pd.Timedelta(hours=10)}),
                                                            "r": pd.DataFrame({"d": ts, "x": 1})})
    assert with_time.top_cause is not None and with_time.top_cause.evidence["transform"] == "to_date"


def test_timestamp_hour_shift() -> None:
    ts = pd.date_range("2024-01-01", periods=500, freq="D")
    report = run(JoinKeys(left="l", right="r", on="at"),
                 {"l": pd.DataFrame({"at": ts}), "r": pd.DataFrame({"at": ts - pd.Timedelta(hours=1), "x": 1})})
    assert report.top_cause is not None and report.top_cause.evidence["transform"] == "shift_-1h"


def test_match_rate_quiet_below_threshold_and_no_probe_when_unexplained() -> None:
    lab = labels()
    feats = features().iloc[:950]  # 95% of users have features
    assert run(JoinKeys(left="labels", right="features", on="user_id"),
               {"labels": lab, "features": feats}).findings == []
    report = run(JoinKeys(left="labels", right="features", on="user_id", min_match_rate=0.99),
                 {"labels": lab, "features": feats})
    mr = only(report, "join.match_rate")
    assert mr.value == pytest.approx(0.95) and mr.causes == []  # no normalisation explains missing users


# -- nulls, orphans ----------------------------------------------------------------------------------------


def test_null_keys() -> None:
    lab = labels().astype({"user_id": "Int64"})
    lab.loc[lab.index[:50], "user_id"] = pd.NA
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": lab, "features": features()})
    assert codes(report) == {"join.null_keys"}
    f = only(report, "join.null_keys")
    assert f.table == "labels" and f.value == pytest.approx(0.05) and f.evidence["null_key_rows"] == 50
    quiet = run(JoinKeys(left="labels", right="features", on="user_id", max_null_key_rate=0.1),
                {"labels": lab, "features": features()})
    assert quiet.findings == []


def test_null_in_one_component_of_a_composite_key_never_matches() -> None:
    left = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", None, "z", "w"]})
    right = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", None, "z", "w"], "v": 1})
    report = run(JoinKeys(left="l", right="r", on=["a", "b"], max_null_key_rate=0.5, min_match_rate=0.9),
                 {"l": left, "r": right})
    assert codes(report) == set()  # 3 of 3 non-null left keys match; nulls are within the allowance
    strict = run(JoinKeys(left="l", right="r", on=["a", "b"]), {"l": left, "r": right})
    assert {f.table for f in strict.findings if f.code == "join.null_keys"} == {"l", "r"}


def test_orphans() -> None:
    feats = features(2 * N)  # half of the feature users have no label
    report = run(JoinKeys(left="labels", right="features", on="user_id", max_orphan_rate=0.1),
                 {"labels": labels(), "features": feats})
    assert codes(report) == {"join.orphans"}
    f = only(report, "join.orphans")
    assert f.value == pytest.approx(0.5) and f.evidence["orphan_right_keys"] == N
    assert run(JoinKeys(left="labels", right="features", on="user_id"),
               {"labels": labels(), "features": feats}).findings == []


# -- robustness --------------------------------------------------------------------------------------------


def test_hostile_column_names() -> None:
    key, extra = 'user "id"; --', "snap'shot\" DROP TABLE x; --"
    lab = labels().rename(columns={"user_id": key})
    feats = snapshots().rename(columns={"user_id": key, "snapshot_date": extra})
    report = run(JoinKeys(left="labels", right="features", on=key), {"labels": lab, "features": feats})
    assert codes(report) == {"join.fan_out", "join.right_not_unique"}
    assert report.top_cause is not None and report.top_cause.evidence["columns"] == [extra]
    feats2 = features().rename(columns={"user_id": key}).assign(**{key: lambda d: "U-" + d[key].astype(str)})
    report2 = run(JoinKeys(left="labels", right="features", on=key), {"labels": lab, "features": feats2},
                  sample_values=True)
    assert report2.top_cause is not None and report2.top_cause.evidence["transform"] == "prefix"
    assert only(report2, "join.match_rate").evidence["unmatched_left_keys"]


def test_key_columns_named_like_the_internal_aliases() -> None:
    left = pd.DataFrame({"n": np.arange(100), "k0": np.arange(100) % 7, "k": 1})
    right = pd.DataFrame({"id": np.arange(100), "grp": (np.arange(100) % 7).astype(str), "n": 0})
    report = run(JoinKeys(left="l", right="r", left_on=["n", "k0"], right_on=["id", "grp"]),
                 {"l": left, "r": right})
    assert codes(report) == {"join.key_type_mismatch"}  # integer vs text, but the values agree as text
    assert only(report, "join.key_type_mismatch").columns == ["k0"]
    clean = run(JoinKeys(left="l", right="r", left_on=["n", "k0"], right_on=["id", "k0"]),
                {"l": left, "r": right.assign(k0=lambda d: d["grp"].astype(int))})
    assert clean.findings == []


def test_missing_key_column_is_a_finding_with_a_hint() -> None:
    feats = features().rename(columns={"user_id": "userid"})
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": labels(), "features": feats})
    assert codes(report) == {"schema.missing_column"}
    f = only(report, "schema.missing_column")
    assert f.table == "features" and "did you mean 'userid'" in f.message
    assert f.check == "join_keys(labels→features on user_id)"


def test_empty_right_side() -> None:
    empty = features().iloc[:0]
    report = run(JoinKeys(left="labels", right="features", on="user_id"), {"labels": labels(), "features": empty})
    assert codes(report) == {"join.match_rate"} and only(report, "join.match_rate").value == 0.0


# -- joined output -----------------------------------------------------------------------------------------


def test_joined_output_rows_are_reported() -> None:
    lab, feats = labels(), features()
    good = lab.merge(feats, on="user_id", how="left")
    report = run(JoinKeys(left="labels", right="features", on="user_id", joined="train"),
                 {"labels": lab, "features": feats, "train": good})
    assert report.findings == [] and report.tables["train"].rows == N
    # the pipeline actually joined a snapshot table: the real output is 3× the labels although the declared
    # key and right side predict no fan-out
    bad = lab.merge(snapshots(), on="user_id", how="left")
    report = run(JoinKeys(left="labels", right="features", on="user_id", joined="train"),
                 {"labels": lab, "features": feats, "train": bad})
    f = only(report, "join.fan_out")
    assert f.evidence["actual_joined_rows"] == 3 * N and f.evidence["actual_fan_out"] == pytest.approx(3.0)
    assert f.evidence["predicted_joined_rows"] == N and "'train'" in f.message


# -- raw values --------------------------------------------------------------------------------------------


def test_raw_key_values_only_with_sample_values() -> None:
    secret = [f"custzq{i:04d}" for i in range(200)]
    left = pd.DataFrame({"cust": secret})
    right = pd.DataFrame({"cust": [s.upper() for s in secret] * 2, "v": 1.0})  # case mismatch and repeats
    check = JoinKeys(left="l", right="r", on="cust", max_orphan_rate=0.0)
    tables = {"l": left, "r": right}

    def text(report: Report) -> str:
        return json.dumps(report.compact())

    default = run(check, tables)
    assert {"join.match_rate", "join.right_not_unique", "join.orphans"} <= codes(default)
    assert "CUSTZQ" not in text(default) and "custzq" not in text(default)
    shown = run(check, tables, sample_values=True)
    assert "custzq" in text(shown) and "CUSTZQ" in text(shown)
    assert only(shown, "join.right_not_unique").evidence["most_repeated_keys"][0]["rows"] == 2
    redacted = run(check, tables, sample_values=True, redact=True)
    assert "CUSTZQ" not in text(redacted) and "custzq" not in text(redacted)
    assert len(only(redacted, "join.orphans").evidence["orphan_keys"][0]) == 10
