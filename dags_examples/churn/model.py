"""train → evaluate → register for the churn example: a small torch MLP trained under the TrainingGuard.

Honest (it learns, and is evaluated on held-out users) and small (seconds on a CPU). Three planted training
bugs live here, where they would in a real project — after every data guard has passed:
  lr_too_high      a learning rate 500× too large
  corrupt_sample   one training row's feature turned into +inf by a broken transform
  labels_shuffled  labels shuffled separately from the features
torch is imported inside the functions: the DAG file must parse without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

FEATURES = ["monthly_spend_usd", "tenure_months", "support_tickets", "days_since_login"]
PLANS = ["basic", "standard", "premium"]
TRAINING_BUGS = ("lr_too_high", "corrupt_sample", "labels_shuffled")


def _design(path: Path, stats: dict[str, list[float]] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    cols = ", ".join(f'"{c}"::DOUBLE' for c in FEATURES)
    rows = duckdb.connect().execute(f"SELECT {cols}, plan, churned FROM read_parquet('{path}')").fetchall()
    x = np.array([[np.nan if v is None else v for v in r[:len(FEATURES)]] for r in rows], dtype=float)
    if stats is None:
        stats = {"mean": np.nanmean(x, axis=0).tolist(), "std": (np.nanstd(x, axis=0) + 1e-9).tolist()}
    x = np.where(np.isnan(x), np.asarray(stats["mean"]), x)
    x = (x - np.asarray(stats["mean"])) / np.asarray(stats["std"])
    plans = np.array([[float(r[len(FEATURES)] == p) for p in PLANS[1:]] for r in rows]).reshape(len(rows), -1)
    y = np.array([float(r[-1]) for r in rows])
    return np.hstack([x, plans]).astype(np.float32), y.astype(np.float32), stats


def _net(n_in: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(n_in, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                               torch.nn.ReLU(), torch.nn.Linear(16, 1))


def train(train_path: Path, out: Path, guard: Any, *, bug: str | None = None, epochs: int = 8,
          batch_size: int = 256, seed: int = 0) -> Path:
    """Train under `guard` (a factory: guard(model, optimizer, compute_loss=…) → TrainingGuard)."""
    import torch

    torch.manual_seed(seed)
    x, y, stats = _design(train_path)
    rng = np.random.default_rng(seed)
    if bug == "corrupt_sample":
        x[137, 0] = np.inf  # a broken transform: log(0) upstream of the spend feature, say
    if bug == "labels_shuffled":
        y = rng.permutation(y)
    from mlguard_orchestration.training import GuardConfig

    model = _net(x.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0 if bug == "lr_too_high" else 0.1, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    p = float(y.mean())  # the best constant prediction's loss: the label entropy
    config = GuardConfig(baseline_loss=-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    with guard(model, optimizer, config=config,
               compute_loss=lambda m, b: loss_fn(m(b[0]).squeeze(-1), b[1])) as g:
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(ys)))
            for i in range(0, len(ys), batch_size):
                idx = order[i:i + batch_size]
                xb, yb = xs[idx], ys[idx]
                optimizer.zero_grad()
                logits = model(xb).squeeze(-1)
                loss = loss_fn(logits, yb)
                loss.backward()
                g.step(loss, batch=(xb, yb), predictions=torch.sigmoid(logits), targets=yb)
    torch.save({"state_dict": model.state_dict(), "stats": stats, "n_in": x.shape[1]}, out)
    return out


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def evaluate(model_path: Path, test_path: Path, out: Path) -> dict[str, float]:
    import torch

    saved = torch.load(model_path, weights_only=False)
    model = _net(saved["n_in"])
    model.load_state_dict(saved["state_dict"])
    x, y, _ = _design(test_path, saved["stats"])
    with torch.no_grad():
        scores = model(torch.from_numpy(x)).squeeze(-1).numpy()
    metrics = {"auc": auc(scores, y), "rows": float(len(y)), "positive_rate": float(y.mean())}
    out.write_text(json.dumps(metrics))
    return metrics


def register(model_path: Path, metrics: dict[str, float], registry: Path, run_id: str) -> Path:
    registry.mkdir(parents=True, exist_ok=True)
    target = registry / f"churn-{run_id}.pt"
    target.write_bytes(model_path.read_bytes())
    (registry / f"churn-{run_id}.json").write_text(json.dumps(metrics))
    return target
