"""train → evaluate → register for the churn example: a small torch MLP trained under the TrainingGuard.

Honest (it learns, and is evaluated on held-out users) and small (seconds on a CPU). The model's features are
every numeric column of the training table but the id and the label (plus the plan, one-hot), as in many real
projects — which is how an outcome-derived column that appears upstream reaches it. Planted bugs live here,
where they would in a real project — after every data guard has passed:
  lr_too_high           a learning rate 500× too large                                 (training guard)
  corrupt_sample        one training row's feature turned into +inf by a broken transform
  labels_shuffled       labels shuffled separately from the features
  dropped_feature       days_since_login left out of the features by a config change   (the gate)
  country_features_lost the DE feature lookup at inference returns nothing: DE users get imputed means
  inference_features_null every feature arrives NULL at inference: everyone gets the same input
torch is imported inside the functions: the DAG file must parse without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LABEL = "churned"
NOT_FEATURES = {"user_id", LABEL}
PLANS = ["basic", "standard", "premium"]
TRAINING_BUGS = ("lr_too_high", "corrupt_sample", "labels_shuffled")


def feature_columns(path: Path, *, bug: str | None = None) -> list[str]:
    """Every numeric column but the id and the label."""
    described = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE", "HUGEINT", "UBIGINT", "UINTEGER")
    cols = [name for name, kind, *_ in described if kind in numeric or kind.startswith("DECIMAL")]
    dropped = {"days_since_login"} if bug == "dropped_feature" else set()
    return [c for c in cols if c not in NOT_FEATURES | dropped]


def _design(path: Path, features: list[str], stats: dict[str, list[float]] | None = None, *,
            lost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The model's input matrix and the labels, in the file's row order. `lost` marks rows whose features
    arrive empty (NULL) at inference: they get the training means, as the imputer does for any NULL."""
    cols = ", ".join(f'"{c}"::DOUBLE' for c in features)
    rows = duckdb.connect().execute(f"SELECT {cols}, plan, {LABEL} FROM read_parquet('{path}')").fetchall()
    x = np.array([[np.nan if v is None else v for v in r[:len(features)]] for r in rows], dtype=float)
    x = x.reshape(len(rows), len(features))
    plans = np.array([[float(r[len(features)] == p) for p in PLANS[1:]] for r in rows]).reshape(len(rows), -1)
    if lost is not None:
        x[lost] = np.nan
        plans[lost] = 0.0
    if stats is None:
        stats = {"mean": np.nanmean(x, axis=0).tolist(), "std": (np.nanstd(x, axis=0) + 1e-9).tolist()}
    x = np.where(np.isnan(x), np.asarray(stats["mean"]), x)
    x = (x - np.asarray(stats["mean"])) / np.asarray(stats["std"])
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
    features = feature_columns(train_path, bug=bug)
    x, y, stats = _design(train_path, features)
    rng = np.random.default_rng(seed)
    if bug == "corrupt_sample":
        x[137, 0] = np.inf  # a broken transform: log(0) upstream of the spend feature, say
    if bug == "labels_shuffled":
        y = rng.permutation(y)
    model = _net(x.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0 if bug == "lr_too_high" else 0.1, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    # no baseline to give: the guard estimates the constant-prediction loss from the targets passed to step()
    with guard(model, optimizer, compute_loss=lambda m, b: loss_fn(m(b[0]).squeeze(-1), b[1])) as g:
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
    torch.save({"state_dict": model.state_dict(), "stats": stats, "n_in": x.shape[1], "features": features}, out)
    return out


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def _scores(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.sigmoid(model(torch.from_numpy(x)).squeeze(-1)).numpy().astype(np.float64)


def evaluate(model_path: Path, train_path: Path, test_path: Path, out: Path, *, bug: str | None = None) -> dict:
    """Score the held-out users as serving would, write the scores next to the target and the slice columns
    (`out`, in the test table's row order), and return the gate inputs: paths and the train metric."""
    import torch

    saved = torch.load(model_path, weights_only=False)
    model = _net(saved["n_in"])
    model.load_state_dict(saved["state_dict"])
    features = saved["features"]
    test = pq.read_table(test_path, columns=["country", "plan", LABEL])
    lost = None
    if bug == "country_features_lost":
        lost = np.asarray(test.column("country").to_pylist()) == "DE"
    elif bug == "inference_features_null":
        lost = np.ones(test.num_rows, dtype=bool)
    x, _, _ = _design(test_path, features, saved["stats"], lost=lost)
    x_train, y_train, _ = _design(train_path, features, saved["stats"])
    scores = _scores(model, x)
    pq.write_table(test.append_column("score", pa.array(scores)), out)
    return {"predictions": str(out), "targets": str(out), "slices": str(out),
            "train_metrics": {"auc": round(auc(_scores(model, x_train), y_train), 6)},
            "train": str(train_path), "eval_data": str(test_path)}


def register(model_path: Path, report: dict, registry: Path, store: str, run_id: str) -> Path:
    """Copy the model into the registry and make it the champion the next gate compares with."""
    from mlguard_orchestration import Report, register_champion

    champion = register_champion(Report.model_validate(report), store)
    registry.mkdir(parents=True, exist_ok=True)
    target = registry / f"churn-{run_id}.pt"
    target.write_bytes(model_path.read_bytes())
    (registry / f"churn-{run_id}.json").write_text(json.dumps(champion.metrics))
    return target
