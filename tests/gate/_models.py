"""Synthetic evaluation sets and models for the gate tests: a churn-like binary task where a real model's
predictions come from the true risk plus estimation noise, and planted bugs that each break one thing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "BR", "IS"])
COUNTRY_P = [0.35, 0.2, 0.15, 0.12, 0.1, 0.079, 0.001]  # Iceland: a tiny slice (~0.1 %)


@dataclass
class EvalSet:
    frame: pd.DataFrame  # features, country, plan, label 'churned'
    risk: np.ndarray  # the true logit
    y: np.ndarray


def churn_eval(n: int, seed: int) -> EvalSet:
    """Rows with a true churn risk driven by tenure, spend and support calls; ~20 % churn."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 120, n)
    spend = rng.lognormal(3.5, 0.6, n)
    calls = rng.poisson(1.5, n)
    risk = -1.2 - 0.025 * tenure + 0.012 * (spend - 35) + 0.55 * calls - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(np.int64)
    frame = pd.DataFrame({
        "user_id": rng.permutation(n).astype(np.int64) + seed * 10_000_000,
        "tenure_months": tenure, "monthly_spend_usd": spend, "support_calls": calls,
        "country": rng.choice(COUNTRIES, n, p=COUNTRY_P), "plan": rng.choice(["basic", "plus", "pro"], n),
        "churned": y,
    })
    return EvalSet(frame, risk, y)


def model_scores(ev: EvalSet, seed: int, noise: float = 0.6) -> np.ndarray:
    """A real model's probabilities: its estimate of the risk is the truth plus estimation noise."""
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(ev.risk + rng.normal(0, noise, ev.risk.shape[0]))))
