"""Leakage checks: train/test row and group overlap, target leakage, point-in-time correctness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.leakage import GroupOverlap, PointInTime, TargetLeakage, TrainTestOverlap
from mlguard_orchestration.checks.schema import NullRate
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.remote import Sql


def _run(data, *checks):
    return Guard("leak", checks=list(checks)).run(data)


def _one(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, (report.status, report.headline(), report.error)
    return found[0]


# -- point in time ----------------------------------------------------------------------------------------


def _pit_frame(n: int = 20_000, seed: int = 0, lead_h: tuple[float, float] = (0.0, 1.0)):
    """Label events (UTC) and the time each row's features were computed: `lead_h` hours before the label."""
    rng = np.random.default_rng(seed)
    label_utc = pd.Timestamp("2024-01-15") + pd.to_timedelta(rng.uniform(0, 30 * 86400, n), unit="s")
    lead_s = rng.uniform(max(lead_h[0] * 3600, 1), lead_h[1] * 3600, n)
    feature_utc = label_utc - pd.to_timedelta(lead_s, unit="s")
    return pd.Series(label_utc), pd.Series(feature_utc)


def test_point_in_time_timezone_bug_is_diagnosed():
    # The label table stores event_time in local time (UTC-5, naive); the feature store stores UTC. Joined
    # as-is, every feature looks computed ~4-5 h *after* its label.
    label_utc, feature_utc = _pit_frame()
    df = pd.DataFrame({"event_time": label_utc - pd.Timedelta(hours=5), "feature_time": feature_utc,
                       "x": np.arange(len(label_utc))})
    report = _run(df, PointInTime(feature_time="feature_time", label_time="event_time"))
    f = _one(report, "leakage.point_in_time")
    assert report.status == "fail"
    assert f.value == 1.0 and f.evidence["violations"] == len(df)
    top = f.causes[0]
    assert top.code == "cause.timezone_mismatch"
    assert top.evidence["offset_hours"] == 5
    assert "+5 h" in top.summary and "100.0% to 0.0%" in top.summary
    assert top.confidence >= 0.8
    assert report.top_cause == top


def test_point_in_time_timezone_bug_with_spread_out_lead_times():
    # Features computed 0.5-12 h before the label, feature times written 5 h late: only ~40% of rows break,
    # and one hour less of correction already fixes most of them; still a timezone signature.
    label_utc, feature_utc = _pit_frame(lead_h=(0.5, 12.0))
    df = pd.DataFrame({"label_time": label_utc, "feature_time": feature_utc + pd.Timedelta(hours=5)})
    f = _one(_run(df, PointInTime(feature_time="feature_time", label_time="label_time")), "leakage.point_in_time")
    assert 0.3 < f.value < 0.5
    assert f.causes and f.causes[0].code == "cause.timezone_mismatch"
    assert f.causes[0].evidence["offset_hours"] == 5


def test_point_in_time_quiet_when_both_in_utc():
    label_utc, feature_utc = _pit_frame()
    df = pd.DataFrame({"event_time": label_utc, "feature_time": feature_utc})
    assert _run(df, PointInTime(feature_time="feature_time", label_time="event_time")).status == "pass"


def test_point_in_time_tz_aware_columns_compare_instants():
    # Same instants, written in two zones: correct, although the wall clocks say otherwise.
    label_utc, feature_utc = _pit_frame()
    df = pd.DataFrame({"label_time": label_utc.dt.tz_localize("UTC").dt.tz_convert("America/New_York"),
                       "feature_time": feature_utc.dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata")})
    assert _run(df, PointInTime(feature_time="feature_time", label_time="label_time")).status == "pass"


def test_point_in_time_naive_and_aware_pair():
    label_utc, feature_utc = _pit_frame()
    aware_label = label_utc.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    ok = pd.DataFrame({"label_time": aware_label, "feature_time": feature_utc})  # naive UTC: correct
    assert _run(ok, PointInTime(feature_time="feature_time", label_time="label_time")).status == "pass"
    # Naive feature times that are really New York local (UTC-5 in January): read as UTC they look 5 h
    # earlier, so that is fine; the other way round (UTC+3 local, e.g. Moscow) breaks point-in-time.
    bad = pd.DataFrame({"label_time": aware_label, "feature_time": feature_utc + pd.Timedelta(hours=3)})
    f = _one(_run(bad, PointInTime(feature_time="feature_time", label_time="label_time")),
             "leakage.point_in_time")
    assert f.evidence["naive_treated_as_utc"] == ["feature_time"]
    top = f.causes[0]
    assert top.code == "cause.timezone_mismatch" and top.evidence["offset_hours"] == 3
    assert "read as UTC" in top.summary


def test_point_in_time_genuine_leak_without_timezone_cause():
    # 10% of rows took their features up to 10 h after the label, spread out: not a timezone signature.
    rng = np.random.default_rng(1)
    label_utc, feature_utc = _pit_frame()
    late = rng.random(len(label_utc)) < 0.1
    feature = feature_utc.where(~late, label_utc + pd.to_timedelta(rng.uniform(0, 10 * 3600, len(label_utc)),
                                                                   unit="s"))
    df = pd.DataFrame({"label_time": label_utc, "feature_time": feature})
    f = _one(_run(df, PointInTime(feature_time="feature_time", label_time="label_time")), "leakage.point_in_time")
    assert f.value == pytest.approx(0.1, abs=0.01)
    assert not any(c.code == "cause.timezone_mismatch" for c in f.causes)
    # within the allowed rate it is quiet
    allowed = PointInTime(feature_time="feature_time", label_time="label_time", max_violation_rate=0.15)
    assert _run(df, allowed).status == "pass"


def test_point_in_time_equal_times_count_and_dates():
    df = pd.DataFrame({"label_date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]).date,
                       "feature_time": pd.to_datetime(["2024-01-01 23:00", "2024-01-03 00:00", "2024-01-03 10:00"])})
    f = _one(_run(df, PointInTime(feature_time="feature_time", label_time="label_date")), "leakage.point_in_time")
    assert f.evidence["violations"] == 1 and f.evidence["equal_times"] == 1


def test_point_in_time_bad_inputs():
    df = pd.DataFrame({"label_time": pd.to_datetime(["2024-01-02"]), "feature_time": ["2024-01-01"]})
    report = _run(df, PointInTime(feature_time="feature_time", label_time="label_time"))
    assert report.status == "error" and "feature_time" in report.error.message
    missing = _run(df, PointInTime(feature_time="feature_tim", label_time="label_time"))
    assert _one(missing, "schema.missing_column").evidence["closest"] == "feature_time"
    with pytest.raises(ValidationError):
        PointInTime(feature_time="t", label_time="t")


# -- train / test overlap ---------------------------------------------------------------------------------


def _rows(lo: int, hi: int, id_offset: int = 0) -> Sql:
    return Sql(f"SELECT i + {id_offset} AS row_id, i % 97 AS a, (i * 7919) % 1000003 AS b, "
               f"'s' || (i % 13) AS c, (i % 2 = 0) AS label FROM range({lo}, {hi}) t(i)")


def test_train_test_overlap_counts_exactly_at_one_million_rows():
    report = _run({"train": _rows(0, 1_000_000), "test": _rows(990_000, 1_010_000)},
                  TrainTestOverlap(train="train", test="test"))
    f = _one(report, "leakage.row_overlap")
    assert f.value == pytest.approx(0.5)
    assert f.evidence["overlapping_test_rows"] == 10_000
    assert f.evidence["train_rows"] == 1_000_000 and f.evidence["test_rows"] == 20_000


def test_train_test_overlap_quiet_on_disjoint_split():
    report = _run({"train": _rows(0, 50_000), "test": _rows(50_000, 60_000)},
                  TrainTestOverlap(train="train", test="test"))
    assert report.status == "pass"


def test_train_test_overlap_exclude_row_id():
    # Same content, fresh row ids: invisible unless the id is excluded.
    data = {"train": _rows(0, 1000), "test": _rows(0, 200, id_offset=10_000)}
    assert _run(data, TrainTestOverlap(train="train", test="test")).status == "pass"
    f = _one(_run(data, TrainTestOverlap(train="train", test="test", exclude="row_id")), "leakage.row_overlap")
    assert f.value == 1.0 and "row_id" not in f.columns
    assert "contained in train" in f.message
    # a tolerated rate, and an explicit column subset
    assert _run(data, TrainTestOverlap(train="train", test="test", columns=["a", "b"], max_rate=1.0)).status == "pass"


def test_train_test_overlap_type_differences_and_extra_columns():
    train = pd.DataFrame({"a": np.arange(100, dtype="int32"), "b": [f"v{i}" for i in range(100)]})
    test = pd.DataFrame({"a": np.arange(90, 110, dtype="int64"), "b": [f"v{i}" for i in range(90, 110)],
                         "only_in_test": 1.5})
    f = _one(_run({"train": train, "test": test}, TrainTestOverlap(train="train", test="test")),
             "leakage.row_overlap")
    assert f.evidence["overlapping_test_rows"] == 10 and f.evidence["columns"] == ["a", "b"]


def test_train_test_overlap_bad_inputs():
    data = {"train": _rows(0, 10), "test": _rows(0, 10)}
    report = _run(data, TrainTestOverlap(train="train", test="test", columns=["lable"]))
    assert report.status == "error" and "Did you mean 'label'" in report.error.message
    report = _run(data, TrainTestOverlap(train="trian", test="test"))
    assert report.status == "error" and "Did you mean 'train'" in report.error.message
    with pytest.raises(ValidationError):
        TrainTestOverlap(train="t", test="t")


# -- group overlap ----------------------------------------------------------------------------------------


def test_group_overlap_fires_on_shared_users():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 1000, 20_000)
    df = pd.DataFrame({"user_id": users, "x": rng.random(20_000)})
    random_split = rng.random(20_000) < 0.8
    data = {"train": df[random_split], "test": df[~random_split]}
    f = _one(_run(data, GroupOverlap(train="train", test="test", group="user_id")), "leakage.group_overlap")
    assert f.value > 0.9
    assert f.evidence["share_of_test_rows"] > 0.9
    assert f.evidence["test_groups"] == df[~random_split].user_id.nunique()


def test_group_overlap_quiet_on_group_split():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": [f"u{i}" for i in rng.integers(0, 1000, 20_000)], "region": "eu",
                       "x": rng.random(20_000)})
    in_train = df.user_id.map(hash) % 5 != 0
    data = {"train": df[in_train], "test": df[~in_train]}
    assert _run(data, GroupOverlap(train="train", test="test", group=["user_id", "region"])).status == "pass"


def test_group_overlap_multi_column_and_rate():
    train = pd.DataFrame({"store": [1, 1, 2, 2], "day": ["mon", "tue", "mon", "tue"]})
    test = pd.DataFrame({"store": [1, 3, 3, 3], "day": ["mon", "mon", "tue", None]})
    f = _one(_run({"train": train, "test": test}, GroupOverlap(train="train", test="test", group=["store", "day"])),
             "leakage.group_overlap")
    assert f.evidence["shared_groups"] == 1 and f.evidence["test_groups"] == 3
    assert f.evidence["test_rows_in_shared_groups"] == 1 and f.evidence["test_rows_with_null_group"] == 1
    assert _run({"train": train, "test": test},
                GroupOverlap(train="train", test="test", group=["store", "day"], max_rate=0.5)).status == "pass"
    report = _run({"train": train, "test": test}, GroupOverlap(train="train", test="test", group="stor"))
    assert report.status == "error" and "Did you mean 'store'" in report.error.message


# -- target leakage ---------------------------------------------------------------------------------------


def _classification(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    return pd.DataFrame({
        "customer_id": np.arange(n),  # unique: an id, skipped
        "signup": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        "tenure": y * 1.0 + rng.normal(0, 1.2, n),  # genuinely predictive (AUC ~0.7)
        "score": y * 2.0 + rng.normal(0, 1.0, n),  # strong but imperfect (AUC ~0.9)
        "plan": rng.choice(["basic", "pro", "max"], n),
        "churned": y,
    })


def test_target_leakage_quiet_on_predictive_features():
    report = _run(_classification(), TargetLeakage(label="churned"))
    assert report.status == "pass", report.headline()


def test_target_leakage_binary_fires_and_names_feature():
    df = _classification()
    rng = np.random.default_rng(5)
    df["refund_issued"] = df["churned"] * 3.0 + rng.normal(0, 0.05, len(df))  # computed after the outcome
    report = _run(df, TargetLeakage(label="churned"))
    f = _one(report, "leakage.target")
    assert f.columns == ["refund_issued"]
    assert f.value > 0.99 and "refund_issued" in f.message
    assert f.evidence["positive_label"] is True
    assert f.evidence["skipped_features"] == {"customer_id": "unique per row (an id)", "signup": "timestamp"}
    assert f.evidence["strongest_other_features"]["score"] < 0.98


def test_target_leakage_integer_label_with_profile_and_copy():
    df = _classification()
    df["churned"] = df["churned"].astype(int)
    df["churn_flag_copy"] = df["churned"]
    # a scan check on the same table gives the check the batch profile (quantiles) to bin with
    report = _run(df, NullRate(column="tenure"), TargetLeakage(label="churned"))
    f = _one(report, "leakage.target")
    assert f.columns == ["churn_flag_copy"]
    assert f.evidence["leaky"]["churn_flag_copy"]["equal_to_label"] == 1.0
    assert "equal to the label on 100.0% of rows" in f.message


def test_target_leakage_string_label_and_categorical_feature():
    rng = np.random.default_rng(2)
    n = 5000
    y = np.where(rng.random(n) < 0.2, "churned", "stayed")
    status = np.where(y == "churned", "closed", rng.choice(["active", "paused"], n))
    df = pd.DataFrame({"outcome": y, "account_status": status, "region": rng.choice(list("abcd"), n)})
    f = _one(_run(df, TargetLeakage(label="outcome")), "leakage.target")
    assert f.columns == ["account_status"]
    assert f.evidence["positive_label"] == "churned" and f.evidence["negative_label"] == "stayed"
    assert "positive class: 'churned'" in f.message


def test_target_leakage_high_cardinality_categories_do_not_fake_a_leak():
    # 2,000 categories of ~2-3 rows each: in-sample a per-category rate looks predictive; leave-one-out not.
    rng = np.random.default_rng(3)
    n = 5000
    df = pd.DataFrame({"y": rng.random(n) < 0.5, "zip": [f"z{i}" for i in rng.integers(0, 2000, n)],
                       "small_bins": rng.integers(0, 25, n).astype(float)})
    assert _run(df, TargetLeakage(label="y", features=["zip", "small_bins"])).status == "pass"


def test_target_leakage_regression():
    rng = np.random.default_rng(4)
    n = 20_000
    y = rng.lognormal(0, 1, n)  # heavy-tailed: bin means alone would miss a copy; the rank view does not
    df = pd.DataFrame({"revenue": y, "revenue_cents": y * 100, "visits": y + rng.normal(0, 2, n),
                       "segment": rng.choice(["a", "b"], n)})
    f = _one(_run(df, TargetLeakage(label="revenue")), "leakage.target")
    assert f.columns == ["revenue_cents"] and f.value > 0.99
    assert f.evidence["task"] == "regression"
    quiet = _run(df.drop(columns=["revenue_cents"]), TargetLeakage(label="revenue"))
    assert quiet.status == "pass", quiet.headline()


def test_target_leakage_multiclass():
    rng = np.random.default_rng(6)
    n = 6000
    y = rng.choice(["cat", "dog", "bird"], n, p=[0.5, 0.3, 0.2])
    df = pd.DataFrame({"species": y, "noise": rng.normal(size=n), "colour": rng.choice(["r", "g"], n)})
    assert _run(df, TargetLeakage(label="species")).status == "pass"
    df["vet_code"] = pd.Series(y).map({"cat": 10, "dog": 20, "bird": 30}).to_numpy()
    f = _one(_run(df, TargetLeakage(label="species")), "leakage.target")
    assert f.columns == ["vet_code"] and f.evidence["task"] == "multiclass"


def test_target_leakage_bad_inputs():
    df = _classification(200)
    report = _run(df, TargetLeakage(label="churn"))
    assert report.status == "error" and "Did you mean 'churned'" in report.error.message
    report = _run(df, TargetLeakage(label="churned", features=["tenure", "churned"]))
    assert report.status == "error" and "also listed as a feature" in report.error.message
    report = _run(df, TargetLeakage(label="churned", features=["tenur"]))
    assert report.status == "error" and "Did you mean 'tenure'" in report.error.message
    constant = _run(df.assign(churned=True), TargetLeakage(label="churned"))
    assert constant.status == "pass"


def test_hostile_names_and_spec_dicts():
    rng = np.random.default_rng(7)
    n = 2000
    y = rng.random(n) < 0.5
    label, leak = 'y"; DROP TABLE t; --', "b0"  # b0 is also the name the query gives its first bin
    df = pd.DataFrame({label: y, leak: y.astype(float), "noise": rng.random(n)})
    check = TypeAdapter(AnyCheck).validate_python({"kind": "target_leakage", "label": label})
    assert isinstance(check, TargetLeakage)
    assert _one(_run(df, check), "leakage.target").columns == [leak]
    for spec in ({"kind": "train_test_overlap", "train": "a", "test": "b", "exclude": "id"},
                 {"kind": "group_overlap", "train": "a", "test": "b", "group": "user"},
                 {"kind": "point_in_time", "feature_time": "f", "label_time": "l"}):
        assert TypeAdapter(AnyCheck).validate_python(spec).kind == spec["kind"]


# -- causes: the report says why the split leaks ---------------------------------------------------------


def _users(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": np.repeat(np.arange(n), 3), "x": rng.normal(size=3 * n),
                         "y": rng.integers(0, 2, 3 * n)})


def test_rows_copied_after_the_split_are_named() -> None:
    df = _users(2_000, 1)
    train, test = df[df.user_id % 5 != 0], df[df.user_id % 5 == 0]
    test = pd.concat([test, train.sample(300, random_state=0)])
    report = Guard("g", checks=[TrainTestOverlap(train="train", test="test")]).run({"train": train, "test": test})
    (finding,) = report.findings
    assert finding.causes[0].code == "cause.rows_copied_across_split"


def test_duplicates_split_at_random_are_named() -> None:
    df = _users(2_000, 2)
    df = pd.concat([df, df.sample(2_000, random_state=1)]).sample(frac=1.0, random_state=2)
    train, test = df.iloc[: int(len(df) * 0.8)], df.iloc[int(len(df) * 0.8):]
    report = Guard("g", checks=[TrainTestOverlap(train="train", test="test")]).run({"train": train, "test": test})
    assert report.findings[0].causes[0].code == "cause.duplicates_before_split"


def test_a_row_level_split_is_named_for_group_overlap() -> None:
    df = _users(2_000, 3).sample(frac=1.0, random_state=3)
    train, test = df.iloc[:4_800], df.iloc[4_800:]
    report = Guard("g", checks=[GroupOverlap(train="train", test="test", group="user_id")]).run(
        {"train": train, "test": test})
    assert report.top_cause is not None and report.top_cause.code == "cause.row_level_split"


def test_a_leaking_feature_is_blamed_on_the_outcome() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 5_000)
    df = pd.DataFrame({"churned": y, "refund_issued": y * rng.uniform(5, 50, 5_000), "x": rng.normal(size=5_000)})
    report = Guard("g", checks=[TargetLeakage(label="churned")]).run(df)
    cause = report.top_cause
    assert cause is not None and cause.code == "cause.feature_from_outcome"
    assert "refund_issued" in cause.summary
