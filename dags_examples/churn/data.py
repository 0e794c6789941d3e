"""Generated churn data and the pipeline steps that transform it, with one bug planted at a time.

Tables (parquet, under a work directory):
  features  one row per user per snapshot date: plan, country, monthly_spend_usd, tenure_months, …,
            feature_time (when the features were computed, UTC, before the label time)
  labels    one row per user at the latest snapshot: label_time, churned (0/1)
  training  labels LEFT JOIN features on (user_id, snapshot_date); then split by user into train / test
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SNAPSHOTS = 3


def extract(workdir: Path, *, seed: int, n_users: int = 20_000, bug: str | None = None,
            day: date = date(2026, 11, 1)) -> dict[str, Path]:
    """Write raw features and labels for the snapshot ending on `day`; plant `bug` where it lives."""
    rng = np.random.default_rng(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    users = np.arange(1, n_users + 1)
    plan = rng.choice(["basic", "standard", "premium"], n_users, p=[0.5, 0.3, 0.2])
    country = rng.choice(["US", "DE", "FR", "BR", "IN", "JP"], n_users, p=[0.35, 0.15, 0.15, 0.15, 0.1, 0.1])
    base_spend = rng.lognormal(3.4, 0.5, n_users) * np.where(plan == "premium", 2.0, 1.0)
    tenure = rng.integers(1, 72, n_users)

    snaps = [day - timedelta(days=30 * k) for k in reversed(range(SNAPSHOTS))]
    rows = []
    for s in snaps:
        spend = base_spend * rng.lognormal(0, 0.1, n_users)
        tickets = rng.poisson(0.6, n_users)
        login = rng.exponential(6.0, n_users)
        lead_h = rng.uniform(0.5, 12.0, n_users)  # features computed 0.5–12 h before the snapshot's label time
        ftime = np.datetime64(datetime.combine(s, datetime.min.time())) - (lead_h * 3600).astype("timedelta64[s]")
        rows.append(pa.table({
            "user_id": users, "snapshot_date": pa.array([s] * n_users, pa.date32()), "feature_time": ftime,
            "plan": plan, "country": country, "monthly_spend_usd": spend.round(2),
            "tenure_months": np.where(rng.random(n_users) < 0.01, None, tenure + 0).tolist(),
            "support_tickets": tickets, "days_since_login": login.round(3),
        }))
    features = pa.concat_tables(rows)
    last = snaps[-1]
    logit = -1.6 + 0.35 * rows[-1]["support_tickets"].to_numpy() + 0.08 * rows[-1]["days_since_login"].to_numpy() \
        - 0.02 * tenure
    churned = (rng.random(n_users) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    labels = pa.table({"user_id": users, "snapshot_date": pa.array([last] * n_users, pa.date32()),
                       "label_time": pa.array([datetime.combine(last, datetime.min.time())] * n_users, pa.timestamp("us")),
                       "churned": churned})
    features, labels = _plant_extract_bug(features, labels, bug, rng)
    paths = {"features": workdir / "features.parquet", "labels": workdir / "labels.parquet"}
    pq.write_table(features, paths["features"])
    pq.write_table(labels, paths["labels"])
    return paths


def _plant_extract_bug(features: pa.Table, labels: pa.Table, bug: str | None,
                       rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    if bug == "renamed_column":
        features = features.rename_columns(["monthly_spend" if c == "monthly_spend_usd" else c
                                            for c in features.column_names])
    elif bug == "unit_change":  # the upstream team switched to cents
        i = features.column_names.index("monthly_spend_usd")
        features = features.set_column(i, "monthly_spend_usd", pa.compute.multiply(features["monthly_spend_usd"], 100))
    elif bug == "null_explosion":  # a broken upstream join leaves most tenures empty
        i = features.column_names.index("tenure_months")
        vals = features["tenure_months"].to_numpy(zero_copy_only=False).astype(float)
        vals[rng.random(len(vals)) < 0.6] = np.nan
        features = features.set_column(i, "tenure_months", pa.array(vals, pa.int64(), from_pandas=True))
    elif bug == "empty_extract":  # the partition filter matched nothing
        features = features.slice(0, 0)
    elif bug == "key_type_mismatch":  # labels now arrive with zero-padded string ids
        i = labels.column_names.index("user_id")
        ids = [f"{u:08d}" for u in labels["user_id"].to_pylist()]
        labels = labels.set_column(i, "user_id", pa.array(ids, pa.string()))
    elif bug == "timezone_shift":  # feature timestamps written in UTC-5 local time, labelled as UTC
        i = features.column_names.index("feature_time")
        shifted = pa.compute.add(features["feature_time"], pa.scalar(timedelta(hours=5), pa.duration("us")))
        features = features.set_column(i, "feature_time", shifted)
    elif bug == "target_leak":  # the label export gains a column counted after the churn date
        churned = labels["churned"].to_numpy()
        requests = np.where(churned == 1, 1 + rng.poisson(1.5, len(churned)), (rng.random(len(churned)) < 0.01))
        labels = labels.append_column("cancel_requests_30d", pa.array(requests.astype(np.int64)))
    return features, labels


def preprocess(paths: dict[str, Path], workdir: Path, join_keys: list[str]) -> Path:
    """Join labels to features (a left join, as the training set must keep every label)."""
    out = workdir / "training.parquet"
    con = duckdb.connect()
    f, lab = str(paths["features"]), str(paths["labels"])
    on = " AND ".join(f'l."{k}"::VARCHAR = f."{k}"::VARCHAR' for k in join_keys)
    cols = ", ".join(f'f."{c}"' for c in con.sql(f"SELECT * FROM read_parquet('{f}') LIMIT 0").columns
                     if c not in join_keys)
    con.execute(f"""COPY (SELECT l.*, {cols} FROM read_parquet('{lab}') l LEFT JOIN read_parquet('{f}') f ON {on})
                    TO '{out}' (FORMAT parquet)""")
    return out


def split(training: Path, workdir: Path, *, bug: str | None = None, test_share: float = 0.2) -> dict[str, Path]:
    """Split by user (so no user is on both sides); the `train_test_overlap` bug splits rows at random and
    copies some training rows into test, as a careless re-split does."""
    con = duckdb.connect()
    t = str(training)
    paths = {"train": workdir / "train.parquet", "test": workdir / "test.parquet"}
    is_test = f"hash(user_id::VARCHAR) % 100 < {int(test_share * 100)}"
    con.execute(f"COPY (SELECT * FROM read_parquet('{t}') WHERE NOT ({is_test})) TO '{paths['train']}' (FORMAT parquet)")
    leak = f" UNION ALL (SELECT * FROM read_parquet('{t}') WHERE NOT ({is_test}) USING SAMPLE 5 PERCENT (bernoulli, 7))" \
        if bug == "train_test_overlap" else ""
    con.execute(f"COPY (SELECT * FROM read_parquet('{t}') WHERE {is_test}{leak}) TO '{paths['test']}' (FORMAT parquet)")
    return paths
