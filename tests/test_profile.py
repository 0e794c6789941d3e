"""The reference profile: one pass, sensible statistics, roles, uniqueness, JSON round trip, merging."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.profile import QUANTILE_LEVELS, QUANTILE_SAMPLE, TableProfile
from tests._data import churn_frame


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return churn_frame(50_000, seed=41)


@pytest.fixture(scope="module")
def prof(churn: pd.DataFrame) -> TableProfile:
    return mg.build_profile(churn)


def test_basic_stats_are_exact(churn: pd.DataFrame, prof: TableProfile) -> None:
    assert prof.rows == len(churn)
    spend = prof.columns["monthly_spend_usd"]
    assert spend.count == len(churn) and spend.nulls == 0
    assert spend.min == pytest.approx(churn["monthly_spend_usd"].min())
    assert spend.max == pytest.approx(churn["monthly_spend_usd"].max())
    assert spend.mean == pytest.approx(churn["monthly_spend_usd"].mean(), rel=1e-9)
    assert spend.std == pytest.approx(churn["monthly_spend_usd"].std(), rel=1e-9)
    session = prof.columns["avg_session_min"]
    assert session.nulls == int(churn["avg_session_min"].isna().sum())
    assert session.null_rate == pytest.approx(0.02, abs=0.003)
    assert session.mean == pytest.approx(churn["avg_session_min"].mean(), rel=1e-9)  # nulls excluded


def test_quantiles_match_numpy(churn: pd.DataFrame, prof: TableProfile) -> None:
    q = prof.columns["monthly_spend_usd"].quantiles
    assert q is not None and len(q) == len(QUANTILE_LEVELS)
    assert q == sorted(q)
    expected = np.quantile(churn["monthly_spend_usd"], QUANTILE_LEVELS)
    assert q[0] == pytest.approx(expected[0]) and q[-1] == pytest.approx(expected[-1])  # exact extremes
    np.testing.assert_allclose(q[1:-1], expected[1:-1], rtol=0.01)
    assert prof.columns["monthly_spend_usd"].median == pytest.approx(np.median(churn["monthly_spend_usd"]), rel=0.01)


def test_quantiles_of_ordered_columns_are_unbiased() -> None:
    """Regression: a sampler that takes the first rows (or any block) would put every quantile of a sorted id
    or timestamp in the first part of the range. With far more rows than the sample size, each quantile must
    still be near its level."""
    n = 40 * QUANTILE_SAMPLE // 10 * 10  # 4M rows: the sample keeps ~2.5%
    start = datetime(2024, 1, 1, tzinfo=UTC)
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "ts": pa.array(np.datetime64("2024-01-01T00:00:00") + np.arange(n).astype("timedelta64[s]")),
    })
    prof = mg.build_profile(table)
    ids = prof.columns["id"]
    assert ids.role == "numeric" and ids.unique
    for level, value in zip(QUANTILE_LEVELS, ids.quantiles or []):
        assert value == pytest.approx(level * (n - 1), abs=0.01 * n), level
    ts = prof.columns["ts"]
    assert ts.role == "temporal"
    t0 = start.timestamp()
    assert ts.min == pytest.approx(t0) and ts.max == pytest.approx(t0 + n - 1)
    for level, value in zip(QUANTILE_LEVELS, ts.quantiles or []):
        assert value - t0 == pytest.approx(level * (n - 1), abs=0.01 * n), level


def test_roles(prof: TableProfile) -> None:
    roles = {n: c.role for n, c in prof.columns.items()}
    assert roles["plan"] == "categorical"
    assert roles["churned"] == "discrete"
    assert roles["monthly_spend_usd"] == "numeric"
    assert roles["tenure_months"] == "numeric"
    df = pd.DataFrame({
        "comment": [f"free text number {i}" for i in range(1000)],
        "when": pd.date_range("2024-01-01", periods=1000, freq="h"),
        "day": pd.date_range("2024-01-01", periods=1000, freq="h").date,
        "flag": [True, False] * 500,
        "stars": np.tile(np.arange(1, 6), 200),
    })
    p = mg.build_profile(df)
    assert {n: c.role for n, c in p.columns.items()} == {
        "comment": "text", "when": "temporal", "day": "temporal", "flag": "categorical", "stars": "discrete"}
    assert p.columns["comment"].unique
    assert p.columns["comment"].min_length == len("free text number 0")
    assert p.columns["comment"].max_length == len("free text number 999")
    assert p.columns["flag"].categories == {"false": 500, "true": 500}
    assert p.columns["stars"].categories == {str(i): 200 for i in range(1, 6)}


def test_categories_are_exact_and_complete(churn: pd.DataFrame, prof: TableProfile) -> None:
    plan = prof.columns["plan"]
    assert plan.categories == churn["plan"].value_counts().to_dict()
    assert plan.categories_complete and plan.categories_other == 0
    assert list(plan.categories) == ["basic", "standard", "premium"]  # most frequent first


def test_many_categories_are_capped_with_other_count() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 300, 20_000).astype(str)
    p = mg.build_profile(pd.DataFrame({"city": values}))
    city = p.columns["city"]
    assert city.role == "categorical"
    assert city.categories is not None and len(city.categories) == 100
    assert sum(city.categories.values()) + city.categories_other == 20_000
    assert not city.categories_complete


def test_unique_detection(prof: TableProfile) -> None:
    assert prof.columns["user_id"].unique
    assert prof.columns["user_id"].distinct == 50_000
    assert not prof.columns["tenure_months"].unique
    assert not prof.columns["monthly_spend_usd"].unique  # unique values, but a float is not a key
    dup = pd.DataFrame({"k": [1, 2, 3, 3] * 10 + list(range(100, 200))})
    assert not mg.build_profile(dup).columns["k"].unique


def test_json_round_trip(tmp_path, prof: TableProfile) -> None:
    path = tmp_path / "ref.json"
    prof.save(path)
    loaded = TableProfile.load(path)
    assert loaded == prof
    assert TableProfile.model_validate_json(prof.model_dump_json()) == prof


def test_load_missing_or_invalid_profile_is_a_source_error(tmp_path) -> None:
    with pytest.raises(mg.SourceError, match="does not exist"):
        TableProfile.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": "many"}')
    with pytest.raises(mg.SourceError, match="not a valid profile"):
        TableProfile.load(bad)


def test_merge_is_close_to_profile_of_concatenation() -> None:
    a = churn_frame(30_000, seed=42)
    b = churn_frame(20_000, seed=43, id_offset=30_000)
    b = b.assign(monthly_spend_usd=b["monthly_spend_usd"] * 1.5)  # different distributions
    merged = mg.build_profile(a).merge(mg.build_profile(b))
    both = pd.concat([a, b], ignore_index=True)
    whole = mg.build_profile(both)
    assert merged.rows == whole.rows == 50_000
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.count, m.nulls, m.nan, m.inf) == (w.count, w.nulls, w.nan, w.inf), name
        if w.min is not None:
            assert (m.min, m.max) == (pytest.approx(w.min), pytest.approx(w.max)), name
        if w.mean is not None:
            assert m.mean == pytest.approx(w.mean, rel=1e-9), name
            assert m.std == pytest.approx(w.std, rel=1e-6), name
        if w.categories is not None:
            assert m.categories == w.categories, name
        if w.quantiles is not None and w.role == "numeric":
            # approximately: each merged quantile sits within half a quantile step of its level in the data
            assert m.quantiles is not None and m.quantiles == sorted(m.quantiles)
            values = np.sort(both[name].dropna().to_numpy(dtype=float))
            lo = np.searchsorted(values, m.quantiles, side="left") / len(values)
            hi = np.searchsorted(values, m.quantiles, side="right") / len(values)
            for level, a_, b_ in zip(QUANTILE_LEVELS, lo, hi):
                assert a_ - 0.025 <= level <= b_ + 0.025, (name, level, a_, b_)
    assert not merged.columns["user_id"].unique  # merge cannot prove uniqueness across batches


def test_empty_table_profiles() -> None:
    df = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="float64"),
                       "c": pd.Series([], dtype="str")})
    p = mg.build_profile(df)
    assert p.rows == 0
    for c in p.columns.values():
        assert c.count == 0 and c.nulls == 0 and c.null_rate == 0.0
        assert c.quantiles is None and c.mean is None


def test_profile_stats_stay_finite_with_nan_and_inf() -> None:
    x = np.r_[np.linspace(1, 2, 1000), [np.nan] * 10, [np.inf] * 5, [-np.inf] * 5]
    c = mg.build_profile(pa.table({"x": x})).columns["x"]
    assert (c.nan, c.inf, c.nulls) == (10, 10, 0)
    assert (c.min, c.max) == (1.0, 2.0)
    for v in (c.mean, c.std, *(c.quantiles or [])):
        assert v is not None and math.isfinite(v)
    assert c.mean == pytest.approx(1.5)
    assert mg.TableProfile.model_validate_json(mg.build_profile(pa.table({"x": x})).model_dump_json())
