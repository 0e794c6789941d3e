"""Reports of every family, produced by the real guards on small planted data (no report built by hand except
the adversarial ones and a training finding with a loss history, whose shape the training guard may or may not
write): what the page must draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import mlguard_orchestration as mg
from mlguard_orchestration.fingerprint import Change
from mlguard_orchestration.gate import GateSpec, evaluate_gate
from mlguard_orchestration.report import Cause, Finding, Report
from tests.gate._models import churn_eval, model_scores


def drift_report(store: Path) -> Report:
    """A unit change (×100), a category that appeared and a NULL explosion, against a stored reference — run
    twice after a clean run, so the second failure has a previous run to compare with."""
    rng = np.random.default_rng(0)
    n = 5_000
    ref = pd.DataFrame({"monthly_spend_usd": rng.lognormal(3, 0.5, n), "plan": rng.choice(["basic", "pro"], n),
                        "tenure_days": rng.integers(1, 900, n).astype(float)})
    guard = mg.Guard("features", default_suite=True, store=store)
    guard.run(ref)
    nulls = ref.assign(tenure_days=np.where(rng.random(n) < 0.4, np.nan, ref["tenure_days"]))
    guard.run(nulls)
    bad = nulls.assign(monthly_spend_usd=ref["monthly_spend_usd"] * 100,
                       plan=rng.choice(["basic", "pro", "enterprise"], n))
    return guard.run(bad)


def join_report() -> Report:
    """Labels joined on user_id alone to features that are unique on (user_id, snapshot_date)."""
    rng = np.random.default_rng(1)
    n = 1_000
    labels = pd.DataFrame({"user_id": np.arange(n), "label": rng.integers(0, 2, n)})
    days = pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"]).date
    features = pd.DataFrame({"user_id": np.repeat(np.arange(200, n + 200), 3), "snapshot_date": np.tile(days, n),
                             "spend": rng.lognormal(3, 0.5, 3 * n)})
    guard = mg.Guard("join", [mg.JoinKeys(left="labels", right="features", on=["user_id"],
                                          relationship="many_to_one", max_orphan_rate=0.05)])
    return guard.run({"labels": labels, "features": features})


def split_report() -> Report:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"user_id": np.arange(2_000), "x": rng.normal(0, 1, 2_000)})
    train, test = frame.iloc[:1_500], pd.concat([frame.iloc[1_500:], frame.iloc[:300]])
    return mg.Guard("split", [mg.TrainTestOverlap(train="train", test="test")]).run({"train": train, "test": test})


def gate_report() -> Report:
    """One country the model knows nothing about, while the overall AUC looks fine."""
    ev = churn_eval(20_000, seed=1)
    pred = model_scores(ev, seed=2)
    br = (ev.frame["country"] == "BR").to_numpy()
    pred[br] = np.random.default_rng(4).random(br.sum())
    spec = GateSpec(name="churn_gate", task="binary", model="churn", thresholds={"auc": {"min": 0.7}},
                    slices=["country", "plan"])
    return evaluate_gate(spec, pred, ev.y, slices=ev.frame)


def training_report() -> Report:
    """A loss spike with the evidence a training guard may carry: the loss and gradient-norm histories and the
    per-layer gradient norms (built here: the drawing must not depend on which of them the guard writes)."""
    loss = [2.3 * 0.97 ** i for i in range(60)] + [55.0]
    grads = [1.0 + 0.05 * (i % 7) for i in range(60)] + [480.0]
    finding = Finding(code="training.loss_spike", check="training_guard(train)", severity="fail",
                      message="loss 55 at step 61 is more than 10 robust sigmas above the recent median",
                      value=55.0, threshold=3.1, evidence={
                          "step": 61, "loss": 55.0, "median": 0.45, "loss_history": loss,
                          "grad_norm_history": grads,
                          "layers": {"encoder.0.weight": 412.0, "encoder.2.weight": 61.5, "head.weight": 6.2}},
                      causes=[Cause(code="cause.learning_rate_too_high", summary="learning rate 0.5 is too high for this model",
                                    confidence=0.8, next_check="lower the learning rate tenfold and rerun",
                                    fix="use a smaller learning rate or a warm-up")])
    return Report(guard="train", status="fail", checks_run=61, findings=[finding])


# -- adversarial ----------------------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def adversarial_reports() -> dict[str, Report]:
    """Reports built to break a page: thousands of findings, megabyte messages, huge unicode names, markup in
    every string, many changes, evidence of every odd shape."""
    wide = "💥ü漢" * 50_000
    cause = Cause(code="cause.unit_change", confidence=0.9, summary=HOSTILE + wide, next_check=wide, fix=wide,
                  evidence={"x": wide})
    odd = [{"bins": {"edges": "nope", "batch": [1, "a", None], "reference": {"a": 1}}},
           {"quantiles": {"p5": [float("nan"), float("inf")], "p50": "x"}}, {"worst": [1, None, {"value": HOSTILE}]},
           {"loss_history": [float("nan")] * 5000 + [1.0, 2.0, 3.0]}, {"layers": {HOSTILE: 1e308, "b": -1e308}},
           {"shares": {HOSTILE * 100: [0.5, "x"]}}, {}]
    many = [Finding(code="drift.numeric", check=HOSTILE * 10, severity="fail", message=f"{i} {HOSTILE} " + wide,
                    table=wide, columns=[wide] * 50, value=float("inf"), threshold=HOSTILE,
                    evidence=odd[i % len(odd)], causes=[cause] * 5) for i in range(3_000)]
    changes = [Change(code="change.package_version", kind="package", subject=wide, summary=HOSTILE + wide,
                      relevance=0.5) for _ in range(500)]
    return {
        "thousands_of_findings": Report(guard="g", status="fail", findings=many[:3_000], changes=changes,
                                        notes=[wide] * 1_000, context={wide: wide}),
        "huge_names": Report(guard=wide, status="fail", findings=many[:3], context={"dag_id": wide, "task_id": HOSTILE},
                             tables={wide: mg.report.TableSummary(source=wide, rows=1)}),
        "odd_evidence": Report(guard=HOSTILE, status="warn", findings=[f.model_copy(update={
            "message": HOSTILE, "columns": ["c"], "table": "t", "check": "c", "severity": "warn", "causes": []})
            for f in many[: len(odd)]]),
        "error": Report(guard="g", status="error", error=mg.report.GuardErrorInfo(
            code="guard.source_error", type="SourceError", message=HOSTILE + wide, retryable=True)),
    }
