"""train → evaluate → register for the churn example: a small numpy logistic regression. Honest (it learns
and is evaluated on held-out users) and small (a second on 16k rows); the torch training guards replace it
in a later issue."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np

FEATURES = ["monthly_spend_usd", "tenure_months", "support_tickets", "days_since_login"]
PLANS = ["basic", "standard", "premium"]


def _design(path: Path, stats: dict[str, list[float]] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    con = duckdb.connect()
    cols = ", ".join(f'"{c}"::DOUBLE' for c in FEATURES)
    rows = con.execute(f"SELECT {cols}, plan, churned FROM read_parquet('{path}')").fetchall()
    x = np.array([[np.nan if v is None else v for v in r[:len(FEATURES)]] for r in rows], dtype=float)
    if stats is None:
        stats = {"mean": np.nanmean(x, axis=0).tolist(), "std": (np.nanstd(x, axis=0) + 1e-9).tolist()}
    x = np.where(np.isnan(x), np.asarray(stats["mean"]), x)
    x = (x - np.asarray(stats["mean"])) / np.asarray(stats["std"])
    plans = np.array([[float(r[len(FEATURES)] == p) for p in PLANS[1:]] for r in rows])
    y = np.array([float(r[-1]) for r in rows])
    return np.hstack([np.ones((len(rows), 1)), x, plans.reshape(len(rows), -1)]), y, stats


def train(train_path: Path, out: Path, *, steps: int = 300, lr: float = 0.5) -> Path:
    x, y, stats = _design(train_path)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= lr * x.T @ (p - y) / len(y)
    out.write_text(json.dumps({"weights": w.tolist(), "stats": stats, "features": FEATURES}))
    return out


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def evaluate(model_path: Path, test_path: Path, out: Path) -> dict[str, float]:
    model = json.loads(model_path.read_text())
    x, y, _ = _design(test_path, model["stats"])
    scores = x @ np.asarray(model["weights"])
    metrics = {"auc": auc(scores, y), "rows": float(len(y)), "positive_rate": float(y.mean())}
    out.write_text(json.dumps(metrics))
    return metrics


def register(model_path: Path, metrics: dict[str, float], registry: Path, run_id: str) -> Path:
    registry.mkdir(parents=True, exist_ok=True)
    target = registry / f"churn-{run_id}.json"
    target.write_text(json.dumps({"model": json.loads(model_path.read_text()), "metrics": metrics}))
    return target
