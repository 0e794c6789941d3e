"""The zero-configuration suite on a realistic churn table at 1M rows: silent on a fresh sample of the same
distribution and on ordinary seasonal movement; loud, with the right code and top cause, on real breakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.suite import default_checks
from tests._data import assert_quiet, churn_frame, only

N = 1_000_000


@pytest.fixture(scope="module")
def ref() -> mg.TableProfile:
    return mg.build_profile(churn_frame(N, seed=101))


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    return churn_frame(N, seed=102)


@pytest.fixture(scope="module")
def guard(ref: mg.TableProfile) -> mg.Guard:
    return mg.Guard("churn", default_suite=True, label="churned", reference=ref)


def _top(report: mg.Report, code: str) -> mg.Finding:
    """The finding with `code`, which must be among the report's failures."""
    hits = [f for f in report.findings if f.code == code]
    assert hits, [(f.code, f.message) for f in report.findings]
    return hits[0]


def test_reference_roles(ref: mg.TableProfile) -> None:
    roles = {n: c.role for n, c in ref.columns.items()}
    assert roles == {"user_id": "numeric", "monthly_spend_usd": "numeric", "plan": "categorical",
                     "country": "categorical", "tenure_months": "numeric", "avg_session_min": "numeric",
                     "churned": "discrete"}
    assert ref.columns["user_id"].unique
    assert ref.columns["avg_session_min"].null_rate == pytest.approx(0.02, abs=0.002)


def test_suite_derives_expected_checks(ref: mg.TableProfile) -> None:
    kinds = [c.kind for c in default_checks("data", ref, "churned")]
    for kind in ("schema", "row_count", "row_count_change", "null_rate_drift", "unseen_categories", "drift",
                 "unique", "reference_range", "time_drift", "label_drift"):
        assert kind in kinds
    assert "duplicate_rows" not in kinds  # user_id is unique: Unique covers duplicated rows
    assert "finite" in kinds


# -- must stay quiet ---------------------------------------------------------------------------------------


def test_quiet_on_fresh_sample(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    report = guard.run(fresh)
    assert_quiet(report)
    assert report.checks_run >= 10


@pytest.mark.parametrize("how", ["times_1.02", "plus_2pct_of_mean"])
@pytest.mark.parametrize("column", ["monthly_spend_usd", "tenure_months"])
def test_quiet_on_seasonal_shift(guard: mg.Guard, fresh: pd.DataFrame, column: str, how: str) -> None:
    x = fresh[column]
    shifted = x * 1.02 if how == "times_1.02" else x + 0.02 * x.mean()
    assert_quiet(guard.run(fresh.assign(**{column: shifted})))


# -- must catch, with the right code and top cause -----------------------------------------------------------


def test_renamed_column(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    report = guard.run(fresh.rename(columns={"monthly_spend_usd": "monthly_spend"}))
    assert report.status == "fail"
    f = _top(report, "schema.missing_column")
    assert f.columns == ["monthly_spend_usd"]
    assert f.causes[0].code == "cause.renamed_column"
    assert "monthly_spend" == f.causes[0].evidence["candidate"]
    assert report.top_finding is not None and report.top_finding.code == "schema.missing_column"
    assert report.top_cause is not None and report.top_cause.code == "cause.renamed_column"
    assert "'monthly_spend'" in report.top_cause.summary


def test_unit_change_dollars_to_cents(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    report = guard.run(fresh.assign(monthly_spend_usd=fresh["monthly_spend_usd"] * 100))
    assert report.status == "fail"
    f = _top(report, "drift.numeric")
    assert f.columns == ["monthly_spend_usd"] and f.severity == "fail"
    assert f.causes[0].code == "cause.unit_change"
    assert report.top_cause is not None and report.top_cause.code == "cause.unit_change"


def test_null_explosion(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    data = fresh.copy()
    data.loc[data.index[: N // 3], "avg_session_min"] = np.nan
    report = guard.run(data)
    assert report.status == "fail"
    f = _top(report, "drift.null_rate")
    assert f.columns == ["avg_session_min"]
    assert report.top_cause is not None and report.top_cause.code == "cause.upstream_nulls"


def test_empty_partition(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    report = guard.run(fresh.iloc[:0])
    assert report.status == "fail"
    f = _top(report, "volume.row_count")
    assert f.severity == "fail"
    assert report.top_finding is not None and report.top_finding.code == "volume.row_count"
    assert report.top_cause is not None and report.top_cause.code == "cause.empty_extract"
    # an empty batch is not also reported as drift or as missing values
    assert {f.code for f in report.findings} <= {"volume.row_count", "volume.row_count_change"}


def test_duplicated_partition(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    half = fresh.iloc[: N // 2]
    report = guard.run(pd.concat([half, half], ignore_index=True))  # same row count, half the users twice
    assert report.status == "fail"
    f = _top(report, "schema.not_unique")
    assert f.columns == ["user_id"]
    assert f.causes[0].code == "cause.duplicated_partition"
    assert report.top_cause is not None and report.top_cause.code == "cause.duplicated_partition"


def test_category_case_change(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    report = guard.run(fresh.assign(plan=fresh["plan"].str.upper()))
    assert report.status == "fail"
    f = _top(report, "drift.unseen_categories")
    assert f.columns == ["plan"]
    assert f.causes[0].code == "cause.category_normalisation"
    assert report.top_cause is not None and report.top_cause.code == "cause.category_normalisation"


def test_shifted_label_rate(guard: mg.Guard, fresh: pd.DataFrame) -> None:
    rng = np.random.default_rng(7)
    data = fresh.assign(churned=(rng.random(N) < 0.35).astype(np.int64))
    report = guard.run(data)
    assert report.status == "fail"
    f = _top(report, "drift.label")
    assert f.columns == ["churned"] and f.severity == "fail"
    assert f.value == pytest.approx(0.15, abs=0.01)
    assert {x.code for x in report.findings if x.severity == "fail"} <= {"drift.label", "drift.categorical"}


def test_label_drift_only_with_label(ref: mg.TableProfile, fresh: pd.DataFrame) -> None:
    rng = np.random.default_rng(8)
    data = fresh.assign(churned=(rng.random(N) < 0.35).astype(np.int64))
    report = mg.Guard("churn", default_suite=True, reference=ref).run(data)
    assert "drift.label" not in {f.code for f in report.findings}
    only(report, "drift.categorical")  # the generic drift check still sees the mix change
