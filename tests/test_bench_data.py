"""The benchmark's generated data is what its SQL says: independent streams and the intended distributions.

`benchmarks/data_guards.py` once drew its "independent" uniforms from `hash(i, seed, k)`, whose streams differ
by a constant XOR: corr 0.9996 between two of them, so `score` (the mean of two uniforms) came out uniform and
`amount` (Box-Muller from two uniforms) was not lognormal. The figures of every benchmark rest on this data.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import numpy as np
import pytest

ROWS = 100_000


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "data_guards.py"
    if str(path.parent) not in sys.path:  # as when run as a script: its helpers (_measure) beside it
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("bench_data_guards", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uniform_streams_are_uncorrelated_and_uniform(bench: ModuleType) -> None:
    cols = ", ".join(f"{bench._u(1, k)} AS u{k}" for k in range(1, 11))
    u = duckdb.sql(f"SELECT {cols} FROM (SELECT range AS i FROM range({ROWS}))").fetchnumpy()
    m = np.column_stack([u[f"u{k}"] for k in range(1, 11)])
    corr = np.corrcoef(m, rowvar=False)
    off_diagonal = np.abs(corr[~np.eye(10, dtype=bool)])
    assert off_diagonal.max() < 0.02, off_diagonal.max()  # 4.5 standard errors at 100k rows
    assert np.abs(m.mean(axis=0) - 0.5).max() < 0.005
    assert np.abs(m.std(axis=0) - math.sqrt(1 / 12)).max() < 0.005
    # the same stream of another seed is another stream
    other = duckdb.sql(f"SELECT {bench._u(2, 3)} AS v FROM (SELECT range AS i FROM range({ROWS}))").fetchnumpy()
    assert abs(np.corrcoef(u["u3"], other["v"])[0, 1]) < 0.02


def test_events_have_the_intended_distributions(bench: ModuleType) -> None:
    df = duckdb.sql(bench.events_sql(ROWS, bench.BATCH_SEED)).df()
    log_amount = np.log(df["amount"].to_numpy())
    assert abs(log_amount.mean() - 3.0) < 0.02 and abs(log_amount.std() - 1.0) < 0.02  # lognormal(3, 1)
    assert abs(((log_amount - 3.0) ** 3).mean()) < 0.05  # its log is symmetric
    score = df["score"].dropna().to_numpy()
    assert abs(df["score"].isna().mean() - 0.05) < 0.005
    # the mean of two independent uniforms is triangular: sd 100/sqrt(24) = 20.4 (a uniform's would be 28.9)
    assert abs(score.mean() - 50) < 0.5 and abs(score.std() - 100 / math.sqrt(24)) < 0.5
    plan = df["plan"].value_counts(normalize=True)
    for name, share in {"free": 0.5, "basic": 0.3, "pro": 0.15, "enterprise": 0.05}.items():
        assert abs(plan[name] - share) < 0.01, (name, plan[name])
    assert abs((df["country"] == "US").mean() - math.sqrt(1 / 20)) < 0.01  # floor(20 u^2) == 0
    assert abs(df["label"].mean() - 0.12) < 0.005
    assert abs(df["user_id"].mean() - 500_000) < 5_000
    numeric = df[["amount", "score", "label", "user_id"]].dropna().rank().corr().abs().to_numpy()
    assert numeric[~np.eye(4, dtype=bool)].max() < 0.02  # columns drawn from different streams are unrelated


def test_join_tables_have_the_intended_distributions(bench: ModuleType) -> None:
    labels = duckdb.sql(bench.labels_sql(bench.JOIN_SEED, 30)).df()
    days = (labels["snapshot_date"] - labels["snapshot_date"].min()).dt.days
    assert abs((days == 30).mean() - 0.01) < 0.002  # 1% ask for a date the features do not have
    assert days[days < 30].value_counts(normalize=True).max() < 1 / 30 + 0.002
    assert abs(labels["label"].mean() - 0.12) < 0.002
    features = duckdb.sql(bench.features_sql(ROWS, bench.JOIN_SEED)).df()
    assert abs(features["spend_30d"].mean() - 500) < 5
    assert abs(np.corrcoef(features["spend_30d"], features["sessions_30d"])[0, 1]) < 0.02
