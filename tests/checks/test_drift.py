"""Drift checks against a reference profile: each fires on a real shift and stays quiet on a fresh sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.checks.drift import js_distance, psi
from tests._data import assert_quiet, churn_frame, codes, only, run_checks

N = 20_000


@pytest.fixture(scope="module")
def ref() -> mg.TableProfile:
    return mg.build_profile(churn_frame(N, seed=31))


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    return churn_frame(N, seed=32)


ALL = [mg.Drift(), mg.NullRateDrift(), mg.UnseenCategories(), mg.LabelDrift(column="churned")]


def test_every_drift_check_quiet_on_fresh_sample(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    assert_quiet(run_checks(fresh, ALL, reference=ref))


def test_drift_checks_quiet_on_small_fresh_sample(ref: mg.TableProfile) -> None:
    # a small batch has more sampling noise; the noise allowance must absorb it
    assert_quiet(run_checks(churn_frame(500, seed=33), ALL, reference=ref))


# -- Drift (numeric) ---------------------------------------------------------------------------------------


def test_numeric_drift_fires_on_unit_change(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.assign(monthly_spend_usd=fresh["monthly_spend_usd"] * 100)
    report = run_checks(data, [mg.Drift()], reference=ref)
    f = only(report, "drift.numeric")
    assert f.columns == ["monthly_spend_usd"] and f.severity == "fail"
    assert f.value >= 0.25
    assert f.causes[0].code == "cause.unit_change"
    assert f.causes[0].evidence["factor"] == 100.0


def test_numeric_drift_location_shift(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.assign(tenure_months=fresh["tenure_months"] + 40)
    f = only(run_checks(data, [mg.Drift(columns=["tenure_months"])], reference=ref), "drift.numeric")
    assert f.causes and f.causes[0].code == "cause.location_shift"


def test_numeric_drift_respects_column_selection(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.assign(monthly_spend_usd=fresh["monthly_spend_usd"] * 100)
    assert_quiet(run_checks(data, [mg.Drift(columns=["tenure_months"])], reference=ref))


def test_numeric_drift_ignores_tiny_batches(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.iloc[:50].assign(monthly_spend_usd=lambda d: d["monthly_spend_usd"] * 100)
    assert "drift.numeric" not in codes(run_checks(data, [mg.Drift()], reference=ref))


def test_numeric_drift_warn_level(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    # a moderate move lands between the warn and fail thresholds
    data = fresh.assign(tenure_months=fresh["tenure_months"] + 12)
    f = only(run_checks(data, [mg.Drift(columns=["tenure_months"], psi_warn=0.05, psi_fail=5.0)], reference=ref),
             "drift.numeric")
    assert f.severity == "warn"


# -- Drift (categorical) -----------------------------------------------------------------------------------


def test_categorical_drift_fires_on_changed_mix(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    data = fresh.assign(plan=rng.choice(["basic", "standard", "premium"], len(fresh), p=[0.1, 0.2, 0.7]))
    f = only(run_checks(data, [mg.Drift()], reference=ref), "drift.categorical")
    assert f.columns == ["plan"] and f.severity == "fail"
    assert f.evidence["shares"]["premium"][0] > 0.6  # [batch, reference]
    assert f.evidence["shares"]["premium"][1] == pytest.approx(0.15, abs=0.02)


def test_categorical_drift_quiet_on_small_mix_change(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    rng = np.random.default_rng(6)
    data = fresh.assign(plan=rng.choice(["basic", "standard", "premium"], len(fresh), p=[0.48, 0.36, 0.16]))
    assert_quiet(run_checks(data, [mg.Drift()], reference=ref))


# -- NullRateDrift -----------------------------------------------------------------------------------------


def test_null_rate_drift_fires_on_null_explosion(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.copy()
    data.loc[data.index[: N // 4], "avg_session_min"] = np.nan
    data.loc[data.index[: N // 10], "country"] = None
    report = run_checks(data, [mg.NullRateDrift()], reference=ref)
    assert sorted(f.columns[0] for f in report.findings) == ["avg_session_min", "country"]
    f = next(f for f in report.findings if f.columns == ["avg_session_min"])
    assert f.code == "drift.null_rate"
    assert f.evidence["reference_null_rate"] == pytest.approx(0.02, abs=0.005)
    assert f.causes[0].code == "cause.upstream_nulls"


def test_null_rate_drift_quiet_on_small_increase(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.copy()
    data.loc[data.index[: N // 50], "avg_session_min"] = np.nan  # ~2% -> ~4%, below the 5-point allowance
    assert_quiet(run_checks(data, [mg.NullRateDrift()], reference=ref))


def test_null_rate_drift_ignores_noise_in_tiny_batch(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.iloc[:20].copy()
    data["avg_session_min"] = data["avg_session_min"].fillna(1.0)
    data.loc[data.index[:2], "avg_session_min"] = np.nan  # 10% of 20 rows vs 2%: could well be chance
    assert_quiet(run_checks(data, [mg.NullRateDrift()], reference=ref))


# -- UnseenCategories --------------------------------------------------------------------------------------


def test_unseen_categories_fires_on_new_value(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.copy()
    data.loc[data.index[:600], "country"] = "JP"  # 3%
    f = only(run_checks(data, [mg.UnseenCategories()], reference=ref), "drift.unseen_categories")
    assert f.columns == ["country"] and f.severity == "fail"
    assert f.evidence["unseen"] == {"JP": 600}
    assert f.causes == []  # not a spelling of an existing value


def test_unseen_categories_case_change_is_normalisation(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.assign(plan=fresh["plan"].str.upper())
    f = only(run_checks(data, [mg.UnseenCategories()], reference=ref), "drift.unseen_categories")
    assert f.causes[0].code == "cause.category_normalisation"
    assert f.causes[0].evidence["mapped"]["BASIC"] == "basic"


def test_unseen_categories_warns_for_a_trickle(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    data = fresh.copy()
    data.loc[data.index[:60], "country"] = "JP"  # 0.3%: above warn (0.1%), below fail (1%)
    f = only(run_checks(data, [mg.UnseenCategories()], reference=ref), "drift.unseen_categories")
    assert f.severity == "warn"


def test_unseen_categories_quiet_on_known_values_and_missing_ones(ref: mg.TableProfile,
                                                                  fresh: pd.DataFrame) -> None:
    data = fresh[fresh["country"] != "BR"]  # a category that disappears is not an unseen one
    assert_quiet(run_checks(data, [mg.UnseenCategories()], reference=ref))


# -- LabelDrift --------------------------------------------------------------------------------------------


def test_label_drift_fires_on_shifted_rate(ref: mg.TableProfile) -> None:
    data = churn_frame(N, seed=34, churn_rate=0.35)
    f = only(run_checks(data, [mg.LabelDrift(column="churned")], reference=ref), "drift.label")
    assert f.value == pytest.approx(0.15, abs=0.02)
    assert f.evidence["reference_shares"]["1"] == pytest.approx(0.2, abs=0.01)


def test_label_drift_quiet_within_allowance(ref: mg.TableProfile) -> None:
    assert_quiet(run_checks(churn_frame(N, seed=35, churn_rate=0.22), [mg.LabelDrift(column="churned")],
                            reference=ref))


def test_label_drift_numeric_label() -> None:
    rng = np.random.default_rng(7)
    base = pd.DataFrame({"y": rng.normal(100, 10, 5_000)})
    ref = mg.build_profile(base)
    assert_quiet(run_checks(pd.DataFrame({"y": rng.normal(100, 10, 5_000)}),
                            [mg.LabelDrift(column="y", max_shift=0.1)], reference=ref))
    f = only(run_checks(pd.DataFrame({"y": rng.normal(103, 10, 5_000)}),
                        [mg.LabelDrift(column="y", max_shift=0.1)], reference=ref), "drift.label")
    assert f.value == pytest.approx(0.3, abs=0.06)


# -- building blocks ---------------------------------------------------------------------------------------


def test_psi_and_js_distance_basics() -> None:
    assert psi([0.25] * 4, [0.25] * 4) == pytest.approx(0.0)
    assert psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1]) > 0.25
    assert js_distance({"a": 1.0}, {"a": 5.0}) == pytest.approx(0.0)
    assert js_distance({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)


def test_drift_without_reference_is_a_spec_error(fresh: pd.DataFrame) -> None:
    report = run_checks(fresh, [mg.Drift()])
    assert report.status == "error"
    assert report.error is not None and "reference" in report.error.message
