"""Volume checks: row count bounds, change against the reference, exact duplicate rows."""

from __future__ import annotations

import pandas as pd
import pytest

import mlguard_orchestration as mg
from tests._data import assert_quiet, churn_frame, codes, only, run_checks


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(4_000, seed=21)


@pytest.fixture(scope="module")
def ref(churn: pd.DataFrame) -> mg.TableProfile:
    return mg.build_profile(churn)


# -- RowCount ----------------------------------------------------------------------------------------------


def test_row_count_quiet_within_bounds(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.RowCount(), mg.RowCount(min=4_000, max=4_000)]))


def test_row_count_empty_table_is_empty_extract(churn: pd.DataFrame) -> None:
    report = run_checks(churn.iloc[:0], [mg.RowCount()])
    f = only(report, "volume.row_count")
    assert report.status == "fail"
    assert f.value == 0 and f.threshold == 1
    assert f.causes[0].code == "cause.empty_extract"


def test_row_count_too_many_rows_has_no_empty_cause(churn: pd.DataFrame) -> None:
    f = only(run_checks(churn, [mg.RowCount(min=1, max=1_000)]), "volume.row_count")
    assert f.value == 4_000 and f.threshold == 1_000
    assert f.causes == []


def test_row_count_min_zero_accepts_empty(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn.iloc[:0], [mg.RowCount(min=0)]))


# -- RowCountChange ----------------------------------------------------------------------------------------


def test_row_count_change_quiet_on_similar_volume(churn: pd.DataFrame, ref: mg.TableProfile) -> None:
    assert_quiet(run_checks(churn.iloc[:3_000], [mg.RowCountChange()], reference=ref))  # 0.75x
    assert_quiet(run_checks(churn, [mg.RowCountChange(min_ratio=0.99, max_ratio=1.01)], reference=ref))


def test_row_count_change_doubled_batch_is_duplicated_partition(churn: pd.DataFrame, ref: mg.TableProfile) -> None:
    data = pd.concat([churn, churn], ignore_index=True)
    report = run_checks(data, [mg.RowCountChange(max_ratio=1.5)], reference=ref)
    f = only(report, "volume.row_count_change")
    assert f.value == pytest.approx(2.0)
    assert f.threshold == 1.5
    assert f.causes[0].code == "cause.duplicated_partition"


def test_row_count_change_shrunk_batch(churn: pd.DataFrame, ref: mg.TableProfile) -> None:
    f = only(run_checks(churn.iloc[:1_000], [mg.RowCountChange()], reference=ref), "volume.row_count_change")
    assert f.value == pytest.approx(0.25)
    assert f.causes == []  # fewer rows, but not empty and not a multiple


def test_row_count_change_empty_batch(churn: pd.DataFrame, ref: mg.TableProfile) -> None:
    f = only(run_checks(churn.iloc[:0], [mg.RowCountChange()], reference=ref), "volume.row_count_change")
    assert f.causes[0].code == "cause.empty_extract"


def test_row_count_change_without_reference_is_a_spec_error(churn: pd.DataFrame) -> None:
    report = run_checks(churn, [mg.RowCountChange()])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SpecError"
    assert "reference" in report.error.message


def test_row_count_change_validates_ratio_order() -> None:
    with pytest.raises(ValueError, match="above max_ratio"):
        mg.RowCountChange(min_ratio=2, max_ratio=1)


# -- DuplicateRows -----------------------------------------------------------------------------------------


def test_duplicate_rows_quiet_on_distinct_rows(churn: pd.DataFrame) -> None:
    assert_quiet(run_checks(churn, [mg.DuplicateRows()]))


def test_duplicate_rows_fires_on_reloaded_partition(churn: pd.DataFrame) -> None:
    data = pd.concat([churn, churn.iloc[:1_000]], ignore_index=True)
    report = run_checks(data, [mg.DuplicateRows(max_rate=0.01)])
    f = only(report, "volume.duplicate_rows")
    assert f.evidence == {"rows": 5_000, "duplicate_rows": 1_000}
    assert f.value == pytest.approx(0.2)
    assert f.causes[0].code == "cause.duplicated_partition"


def test_duplicate_rows_subset_and_tolerance(churn: pd.DataFrame) -> None:
    # plan x country repeats a lot: a subset check sees it, an all-column check does not
    assert codes(run_checks(churn, [mg.DuplicateRows(subset=["plan", "country"])])) == ["volume.duplicate_rows"]
    data = pd.concat([churn, churn.iloc[:4]], ignore_index=True)  # 0.1% duplicates
    assert_quiet(run_checks(data, [mg.DuplicateRows(max_rate=0.01)]))


def test_duplicate_rows_treats_null_rows_as_equal() -> None:
    data = pd.DataFrame({"a": [1.0, None, None, 2.0], "b": ["x", None, None, "y"]})
    f = only(run_checks(data, [mg.DuplicateRows()]), "volume.duplicate_rows")
    assert f.evidence["duplicate_rows"] == 1
