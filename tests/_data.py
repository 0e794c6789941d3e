"""Shared synthetic data for the core tests: a churn-like feature table, generated vectorised with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = np.array(["basic", "standard", "premium"])
PLAN_P = [0.5, 0.35, 0.15]
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR"])
COUNTRY_P = [0.3, 0.15, 0.12, 0.1, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03]


def churn_frame(n: int, seed: int, *, churn_rate: float = 0.2, id_offset: int = 0) -> pd.DataFrame:
    """A realistic churn feature table: unique user_id, lognormal spend, plan/country categoricals, integer
    tenure, a float with 2% missing values (NaN, which DuckDB reads as NULL) and a 0/1 label."""
    rng = np.random.default_rng(seed)
    session = rng.gamma(2.0, 12.0, n)
    session[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({
        "user_id": rng.permutation(n).astype(np.int64) + id_offset,
        "monthly_spend_usd": rng.lognormal(3.5, 0.6, n),
        "plan": rng.choice(PLANS, n, p=PLAN_P),
        "country": rng.choice(COUNTRIES, n, p=COUNTRY_P),
        "tenure_months": rng.integers(0, 120, n, dtype=np.int64),
        "avg_session_min": session,
        "churned": (rng.random(n) < churn_rate).astype(np.int64),
    })


def emails(n: int, seed: int = 0) -> list[str]:
    """Distinct, recognisable e-mail addresses (to assert they never leak into a report)."""
    rng = np.random.default_rng(seed)
    return [f"person{int(i)}.secret@example-{int(i) % 7}.org" for i in rng.permutation(n)]


def run_checks(data, checks, **guard_kwargs):
    """Run a guard named 'g' with `checks` over `data` and return its report."""
    import mlguard_orchestration as mg

    return mg.Guard("g", checks=checks, **guard_kwargs).run(data)


def codes(report) -> list[str]:
    """The finding codes of a report, in order."""
    return [f.code for f in report.findings]


def only(report, code: str):
    """The single finding with `code` (fails the test when there are none or several)."""
    hits = [f for f in report.findings if f.code == code]
    assert len(hits) == 1, f"expected one {code}, got {[(f.code, f.message) for f in report.findings]}"
    return hits[0]


def assert_quiet(report) -> None:
    """No finding at all (no fail and no warn), and the guard ran."""
    assert report.error is None, report.error
    assert report.status == "pass", [(f.code, f.severity, f.message) for f in report.findings]
    assert report.findings == []
