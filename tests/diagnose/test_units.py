"""The unit-change diagnosis names the conversions people actually mix up, from two profiles alone: the batch
is fitted as a·reference + b on matched quantiles, so zeros, ties and negative values do not fool it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.diagnose.drift import distribution_causes

N = 60_000


def _profiles(before: np.ndarray, after: np.ndarray) -> tuple[mg.ColumnProfile, mg.ColumnProfile]:
    ref = mg.build_profile(pd.DataFrame({"x": before})).columns["x"]
    batch = mg.build_profile(pd.DataFrame({"x": after})).columns["x"]
    return batch, ref


@pytest.fixture(scope="module")
def delays() -> np.ndarray:
    """Flight delays in minutes: mostly small, negative for early departures, a long right tail."""
    rng = np.random.default_rng(0)
    return np.round(rng.gamma(1.1, 15, N) - 6)


@pytest.mark.parametrize(("factor", "words"), [
    (60.0, "minutes → seconds"), (1 / 60, "seconds → minutes"), (3600.0, "hours → seconds"),
    (24.0, "days → hours"), (100.0, "fraction → a percent"), (0.01, "percent → a fraction"),
    (1000.0, "kg → g"), (1.609344, "miles → kilometres"), (1 / 1.609344, "kilometres → miles"),
    (2.20462, "kilograms → pounds"), (1 / 2.20462, "pounds → kilograms"), (0.3048, "feet → metres"),
    (2.54, "inches → centimetres"),
])
def test_scale_factors_are_named(delays: np.ndarray, factor: float, words: str) -> None:
    rng = np.random.default_rng(1)
    base = np.abs(delays) + rng.random(N)  # positive quantities, e.g. distances or weights
    batch, ref = _profiles(base, base * factor)
    causes = distribution_causes(batch, ref)
    assert causes and causes[0].code == "cause.unit_change", causes
    assert words in causes[0].summary
    assert causes[0].evidence["fitted_factor"] == pytest.approx(factor, rel=0.03)


def test_minutes_to_seconds_with_negative_values(delays: np.ndarray) -> None:
    """dep_delay ×60: the median is a few minutes either side of zero, so a ratio of medians cannot see it."""
    rng = np.random.default_rng(2)
    batch, ref = _profiles(delays, np.round(rng.permutation(delays) * 60))
    causes = distribution_causes(batch, ref)
    assert causes[0].code == "cause.unit_change" and "minutes → seconds" in causes[0].summary


@pytest.mark.parametrize(("convert", "words"), [
    (lambda c: c * 1.8 + 32, "°C → °F"), (lambda c: c, None),
])
def test_celsius_to_fahrenheit_is_an_affine_unit_change(convert, words) -> None:
    rng = np.random.default_rng(3)
    celsius = rng.normal(12, 8, N)
    batch, ref = _profiles(celsius, convert(rng.normal(12, 8, N)))
    causes = distribution_causes(batch, ref)
    if words is None:
        assert causes == []  # the same distribution: nothing to explain
    else:
        assert causes[0].code == "cause.unit_change" and words in causes[0].summary


def test_fahrenheit_to_celsius() -> None:
    rng = np.random.default_rng(4)
    fahrenheit = rng.normal(55, 15, N)
    batch, ref = _profiles(fahrenheit, (fahrenheit - 32) / 1.8)
    assert "°F → °C" in distribution_causes(batch, ref)[0].summary


def test_a_business_change_is_not_a_unit_change() -> None:
    """Prices up 30 % or a new long tail: real movement, no conversion factor named."""
    rng = np.random.default_rng(5)
    price = rng.lognormal(3, 0.5, N)
    for after in (price * 1.3, np.r_[price[: N // 2], rng.lognormal(5, 1, N // 2)]):
        batch, ref = _profiles(price, after)
        assert [c for c in distribution_causes(batch, ref) if c.code == "cause.unit_change"] == []


def test_a_constant_offset_is_a_location_shift() -> None:
    rng = np.random.default_rng(6)
    tenure = rng.integers(0, 120, N).astype(float)
    batch, ref = _profiles(tenure, tenure + 40)
    assert distribution_causes(batch, ref)[0].code == "cause.location_shift"


def test_the_suite_names_the_unit_on_top_of_the_report(delays: np.ndarray) -> None:
    """Reports in the right order: the drift with a named unit change is the headline."""
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"dep_delay": delays, "distance": rng.choice([213.0, 733.0, 1089.0, 2475.0], N),
                        "noise": rng.normal(size=N)})
    batch = ref.assign(distance=ref["distance"] * 1.609344, noise=rng.normal(0.4, 1, N))
    report = mg.Guard("flights", default_suite=True, reference=mg.build_profile(ref)).run(batch)
    assert report.status == "fail"
    assert report.top_finding is not None and report.top_finding.columns == ["distance"]
    assert report.top_cause is not None and "miles → kilometres" in report.top_cause.summary
    assert "miles → kilometres" in report.headline()
