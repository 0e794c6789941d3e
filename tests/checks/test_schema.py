"""Schema-family checks: each one fires on the defect it is for and stays quiet on clean data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlguard_orchestration as mg
from tests._data import assert_quiet, churn_frame, codes, only, run_checks


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(5_000, seed=11)


# -- Schema ------------------------------------------------------------------------------------------------


def test_schema_quiet_when_columns_and_types_match(churn: pd.DataFrame) -> None:
    check = mg.Schema(columns={"user_id": "integer", "monthly_spend_usd": "float", "plan": "string",
                               "tenure_months": "numeric", "avg_session_min": "numeric", "churned": "integer",
                               "country": "string"}, allow_extra=False)
    assert_quiet(run_checks(churn, [check]))


def test_schema_list_form_only_requires_presence(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.Schema(columns=["user_id", "plan"])]))


def test_schema_missing_column_names_closest_and_renamed_cause(churn: pd.DataFrame) -> None:
    data = churn.rename(columns={"monthly_spend_usd": "monthly_spend"})
    report = run_checks(data, [mg.Schema(columns=["user_id", "monthly_spend_usd"])])
    assert report.status == "fail"
    f = only(report, "schema.missing_column")
    assert f.columns == ["monthly_spend_usd"]
    assert f.evidence["closest"] == "monthly_spend"
    assert f.causes[0].code == "cause.renamed_column"
    assert f.causes[0].evidence["candidate"] == "monthly_spend"


def test_schema_missing_column_without_close_name_has_no_rename_cause(churn: pd.DataFrame) -> None:
    report = run_checks(churn, [mg.Schema(columns=["zzzqqq"])])
    f = only(report, "schema.missing_column")
    assert f.causes == []
    assert f.evidence["closest"] is None


def test_schema_type_mismatch_numbers_as_text(churn: pd.DataFrame) -> None:
    data = churn.assign(tenure_months=churn["tenure_months"].astype(str))
    report = run_checks(data, [mg.Schema(columns={"tenure_months": "integer", "plan": "string"})])
    assert report.status == "fail"
    f = only(report, "schema.type_mismatch")
    assert f.columns == ["tenure_months"]
    assert f.value == "string" and f.threshold == "integer"


def test_schema_integer_is_not_float_but_is_numeric(churn: pd.DataFrame) -> None:
    report = run_checks(churn, [mg.Schema(columns={"tenure_months": "float"})])
    assert codes(report) == ["schema.type_mismatch"]
    assert_quiet(run_checks(churn, [mg.Schema(columns={"tenure_months": "numeric"})]))


def test_schema_unexpected_columns_warn_only_when_extra_disallowed(churn: pd.DataFrame) -> None:
    data = churn.assign(debug_flag=1)
    declared = {c: None for c in churn.columns}
    report = run_checks(data, [mg.Schema(columns=declared, allow_extra=False)])
    f = only(report, "schema.unexpected_column")
    assert f.severity == "warn" and report.status == "warn"
    assert f.columns == ["debug_flag"]
    assert_quiet(run_checks(data, [mg.Schema(columns=declared)]))  # allow_extra defaults to True


# -- NullRate ----------------------------------------------------------------------------------------------


def test_null_rate_fires_above_max(churn: pd.DataFrame) -> None:
    # avg_session_min has ~2% missing values
    report = run_checks(churn, [mg.NullRate(column="avg_session_min", max=0.005)])
    f = only(report, "schema.null_rate")
    assert 0.01 < f.value < 0.03
    assert f.evidence["nulls"] == int(churn["avg_session_min"].isna().sum())


def test_null_rate_quiet_within_max_and_on_complete_column(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.NullRate(column="avg_session_min", max=0.05),
                                    mg.NullRate(column="plan")]))


def test_null_rate_names_upstream_nulls_when_reference_was_clean(churn: pd.DataFrame) -> None:
    ref = mg.build_profile(churn)
    data = churn.copy()
    data.loc[data.index[:1500], "plan"] = None
    report = run_checks(data, [mg.NullRate(column="plan", max=0.01)], reference=ref)
    f = only(report, "schema.null_rate")
    assert f.causes and f.causes[0].code == "cause.upstream_nulls"


def test_null_rate_on_missing_column_is_a_finding_not_a_crash(churn: pd.DataFrame) -> None:
    report = run_checks(churn.drop(columns=["plan"]), [mg.NullRate(column="plan")])
    assert report.status == "fail"
    assert codes(report) == ["schema.missing_column"]


# -- Range -------------------------------------------------------------------------------------------------


def test_range_fires_on_negative_values(churn: pd.DataFrame) -> None:
    data = churn.copy()
    data.loc[data.index[:50], "monthly_spend_usd"] = -5.0
    report = run_checks(data, [mg.Range(column="monthly_spend_usd", min=0)])
    f = only(report, "schema.out_of_range")
    assert f.evidence["outside"] == 50
    assert f.evidence["observed_min"] == -5.0


def test_range_quiet_inside_bounds_and_under_allowed_fraction(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.Range(column="tenure_months", min=0, max=119)]))
    data = churn.copy()
    data.loc[data.index[:2], "tenure_months"] = 500  # 0.04% outside, 0.1% allowed
    assert_quiet(run_checks(data, [mg.Range(column="tenure_months", min=0, max=119, max_fraction_outside=0.001)]))


def test_range_ignores_nulls(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.Range(column="avg_session_min", min=0)]))


def test_range_on_text_column_is_a_spec_error(churn: pd.DataFrame) -> None:
    report = run_checks(churn, [mg.Range(column="plan", min=0)])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SpecError"
    assert "numeric" in report.error.message


def test_range_spec_validation() -> None:
    with pytest.raises(ValueError, match="min, max or both"):
        mg.Range(column="x")
    with pytest.raises(ValueError, match="above max"):
        mg.Range(column="x", min=2, max=1)


def test_range_diagnoses_unit_change_against_reference(churn: pd.DataFrame) -> None:
    ref = mg.build_profile(churn)
    data = churn.assign(monthly_spend_usd=churn["monthly_spend_usd"] * 100)
    report = run_checks(data, [mg.Range(column="monthly_spend_usd", max=1_000)], reference=ref)
    f = only(report, "schema.out_of_range")
    assert f.causes[0].code == "cause.unit_change"


# -- Finite ------------------------------------------------------------------------------------------------


def test_finite_fires_on_nan_and_inf() -> None:
    x = np.linspace(0, 1, 1000)
    x[:3] = np.nan  # an Arrow table keeps NaN as NaN (pandas' NaN would become NULL)
    x[3:5] = np.inf
    report = run_checks(pa.table({"x": x}), [mg.Finite(column="x")])
    f = only(report, "schema.non_finite")
    assert f.evidence == {"nan": 3, "inf": 2}
    assert f.value == 5


def test_finite_quiet_on_finite_values_with_nulls() -> None:
    x = pa.array([1.0, None, 2.5, None, -3.0] * 100)
    assert_quiet(run_checks(pa.table({"x": x}), [mg.Finite(column="x")]))


# -- AllowedValues -----------------------------------------------------------------------------------------


def test_allowed_values_fires_on_new_value(churn: pd.DataFrame) -> None:
    data = churn.copy()
    data.loc[data.index[:100], "plan"] = "enterprise"
    report = run_checks(data, [mg.AllowedValues(column="plan", values=["basic", "standard", "premium"])])
    f = only(report, "schema.not_allowed")
    assert f.evidence["outside"] == 100
    assert f.value == pytest.approx(100 / len(data), abs=1e-6)
    # a categorical column's unexpected values are shown (they are category labels, not row data)
    assert f.evidence["unexpected_values"] == ["enterprise"]


def test_allowed_values_quiet_on_allowed_set_with_nulls(churn: pd.DataFrame) -> None:
    data = churn.copy()
    data.loc[data.index[:10], "plan"] = None
    assert_quiet(run_checks(data, [mg.AllowedValues(column="plan", values=["basic", "standard", "premium"])]))


def test_allowed_values_integers(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.AllowedValues(column="churned", values=[0, 1])]))
    data = churn.assign(churned=churn["churned"].replace({1: 2}))
    assert codes(run_checks(data, [mg.AllowedValues(column="churned", values=[0, 1])])) == ["schema.not_allowed"]


def test_allowed_values_tolerates_declared_fraction(churn: pd.DataFrame) -> None:
    data = churn.copy()
    data.loc[data.index[:10], "plan"] = "trial"  # 0.2%
    check = mg.AllowedValues(column="plan", values=["basic", "standard", "premium"], max_fraction_outside=0.01)
    assert_quiet(run_checks(data, [check]))


# -- Pattern -----------------------------------------------------------------------------------------------


def _ids(n: int) -> pd.DataFrame:
    return pd.DataFrame({"order_id": [f"ORD-{i:06d}" for i in range(n)]})


def test_pattern_fires_on_changed_format() -> None:
    data = _ids(2000)
    data.loc[:99, "order_id"] = [f"ord_{i}" for i in range(100)]
    report = run_checks(data, [mg.Pattern(column="order_id", regex=r"ORD-\d{6}")])
    f = only(report, "schema.pattern_mismatch")
    assert f.evidence["mismatched"] == 100


def test_pattern_is_a_full_match_and_quiet_on_good_values() -> None:
    assert_quiet(run_checks(_ids(2000), [mg.Pattern(column="order_id", regex=r"ORD-\d{6}")]))
    # a prefix match is not enough
    assert codes(run_checks(_ids(10), [mg.Pattern(column="order_id", regex=r"ORD-\d{3}")])) == [
        "schema.pattern_mismatch"]


def test_pattern_invalid_regex_is_a_spec_error() -> None:
    report = run_checks(_ids(10), [mg.Pattern(column="order_id", regex="ORD-(")])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SpecError"
    assert "regular expression" in report.error.message


# -- Unique ------------------------------------------------------------------------------------------------


def test_unique_quiet_on_unique_key(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.Unique(columns="user_id")]))


def test_unique_ignores_null_keys() -> None:
    data = pd.DataFrame({"k": pd.array([1, 2, None, None, 3], dtype="Int64")})
    assert_quiet(run_checks(data, [mg.Unique(columns=["k"])]))


def test_unique_fires_and_diagnoses_duplicated_partition(churn: pd.DataFrame) -> None:
    data = pd.concat([churn, churn.iloc[:1000]], ignore_index=True)  # a partition appended twice
    report = run_checks(data, [mg.Unique(columns="user_id")])
    f = only(report, "schema.not_unique")
    assert f.evidence == {"rows": 6000, "distinct_keys": 5000}
    assert f.causes[0].code == "cause.duplicated_partition"
    assert all(c.code != "cause.missing_join_key" for c in f.causes)


def _fanned_out(n_users: int = 500, months: int = 3) -> pd.DataFrame:
    """User features joined to a monthly table on user_id only: one row per user *and month*."""
    rng = np.random.default_rng(3)
    users = pd.DataFrame({"user_id": np.arange(n_users), "plan": rng.choice(["a", "b", "c"], n_users)})
    monthly = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), months),
                            "month": np.tile(np.arange(months), n_users),
                            "spend": rng.lognormal(3, 0.5, n_users * months)})
    return users.merge(monthly, on="user_id")


def test_unique_diagnoses_missing_join_key() -> None:
    report = run_checks(_fanned_out(), [mg.Unique(columns="user_id")])
    f = only(report, "schema.not_unique")
    assert f.causes[0].code == "cause.missing_join_key"
    assert "month" in f.causes[0].evidence["varying_columns"]
    assert all(c.code != "cause.duplicated_partition" for c in f.causes)


def test_unique_multi_column_quiet_on_full_key_and_fires_on_repeat() -> None:
    data = _fanned_out()
    assert_quiet(run_checks(data, [mg.Unique(columns=["user_id", "month"])]))
    doubled = pd.concat([data, data.iloc[:30]], ignore_index=True)
    f = only(run_checks(doubled, [mg.Unique(columns=["user_id", "month"])]), "schema.not_unique")
    assert f.columns == ["user_id", "month"]
    assert f.evidence["rows"] - f.evidence["distinct_keys"] == 30
    assert f.causes[0].code == "cause.duplicated_partition"


def test_unique_tolerates_declared_duplicate_rate(churn: pd.DataFrame) -> None:
    data = pd.concat([churn, churn.iloc[:5]], ignore_index=True)
    assert_quiet(run_checks(data, [mg.Unique(columns="user_id", max_duplicate_rate=0.01)]))


def test_warn_severity_gives_warn_status(churn: pd.DataFrame) -> None:
    report = run_checks(churn, [mg.NullRate(column="avg_session_min", max=0.0, severity="warn")])
    assert report.status == "warn" and report.passed
    report.raise_for_status()  # warnings never stop the pipeline
