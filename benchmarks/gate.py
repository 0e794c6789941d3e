"""Benchmark: the evaluate → register gate on 1M predictions against a pandas groupby baseline.

    python benchmarks/gate.py              # 1M rows, 2 slice columns (10 countries, 3 plans)
    python benchmarks/gate.py --rows 200000

What is timed (best of --repeat, default 3, in one process):
- gate: `evaluate_gate(...)` with AUC, accuracy and log loss overall, every slice of both slice columns with
  its confidence bound, the degenerate-prediction and correlation checks, thresholds and a champion comparison.
- baseline: the same overall and per-slice AUC / accuracy / log loss the way one writes it with pandas: a
  `groupby` per slice column and, per slice, AUC from pandas' average ranks (`Series.rank`). No confidence
  bounds, no degenerate checks: a floor for the metrics alone.

The last line is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from mlguard_orchestration import GateSpec, evaluate_gate


def _data(rows: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(0)
    risk = rng.normal(-1.2, 1.0, rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-risk))).astype(np.int64)
    pred = 1 / (1 + np.exp(-(risk + rng.normal(0, 0.6, rows))))
    slices = pd.DataFrame({"country": rng.choice([f"c{i}" for i in range(10)], rows),
                           "plan": rng.choice(["basic", "plus", "pro"], rows)})
    return pred, y, slices


def _auc(score: pd.Series, y: pd.Series) -> float:
    ranks = score.rank()  # average ranks for ties
    n1 = float(y.sum())
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _baseline(pred: np.ndarray, y: np.ndarray, slices: pd.DataFrame) -> dict[str, float]:
    df = slices.assign(pred=pred, y=y)
    p = np.clip(df["pred"], 1e-15, 1 - 1e-15)
    df["ll"] = -(df["y"] * np.log(p) + (1 - df["y"]) * np.log(1 - p))
    df["hit"] = ((df["pred"] >= 0.5).astype(int) == df["y"]).astype(float)
    out = {"auc": _auc(df["pred"], df["y"]), "accuracy": df["hit"].mean(), "log_loss": df["ll"].mean()}
    for col in slices.columns:
        for value, part in df.groupby(col):
            out[f"{col}={value}:auc"] = _auc(part["pred"], part["y"])
            out[f"{col}={value}:accuracy"] = part["hit"].mean()
            out[f"{col}={value}:log_loss"] = part["ll"].mean()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pred, y, slices = _data(args.rows)
    spec = GateSpec(name="bench", task="binary", thresholds={"auc": {"min": 0.6}}, slices=["country", "plan"])
    first = _baseline(pred, y, slices)  # a champion slightly worse than this model: the passing path is timed
    champion = {"auc": first["auc"] - 0.005, "log_loss": first["log_loss"] + 0.005}
    gate_s, base_s = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        report = evaluate_gate(spec, pred, y, slices=slices, champion=champion)
        gate_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        base = _baseline(pred, y, slices)
        base_s.append(time.perf_counter() - t)
    assert report.model is not None and abs(report.model.metrics["auc"] - base["auc"]) < 1e-6, "metrics disagree"
    g, b = min(gate_s), min(base_s)
    print(f"rows: {args.rows:,}; gate status {report.status}, {report.checks_run} checks")
    print(f"gate (metrics + slices with bounds + degenerate checks): {g:.3f} s")
    print(f"baseline (pandas groupby, metrics only):                 {b:.3f} s")
    print(f"baseline / gate: {b / g:.2f}x")
    print(json.dumps({"rows": args.rows, "gate_s": round(g, 4), "baseline_s": round(b, 4),
                      "ratio": round(b / g, 3)}))


if __name__ == "__main__":
    main()
