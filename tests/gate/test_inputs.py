"""What adapters hand the gate (GateInputs, run_gate): values or paths read in row order; bad input is an error
report, not a traceback; and the feature diagnosis that says which column a weak model or slice misses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlguard_orchestration.gate import GateInputs, GateSpec, evaluate_gate, run_gate
from tests.gate._models import churn_eval, model_scores

N = 20_000


@pytest.fixture(scope="module")
def ev():
    return churn_eval(N, seed=1)


def _spec(**kw) -> GateSpec:
    base = {"name": "g", "task": "binary", "thresholds": {"auc": {"min": 0.75}}, "slices": ["country"],
            "label": "churned", "leakage_exclude": ["user_id"], "group": ["user_id"]}
    return GateSpec(**{**base, **kw})


def _without_calls(frame: pd.DataFrame, seed: int = 3) -> np.ndarray:
    """A model that never got support_calls: its risk uses the column's mean instead."""
    risk = -1.2 - 0.025 * frame.tenure_months + 0.012 * (frame.monthly_spend_usd - 35) \
        + 0.55 * frame.support_calls.mean() - 0.3
    return (1 / (1 + np.exp(-(risk + np.random.default_rng(seed).normal(0, 0.3, len(frame)))))).to_numpy()


def test_paths_are_read_in_row_order_once_and_match_the_values(tmp_path, ev) -> None:
    pred = model_scores(ev, seed=2)
    scored = ev.frame[["churned", "country"]].assign(score=pred)
    scored.to_parquet(tmp_path / "eval.parquet")
    ev.frame.to_parquet(tmp_path / "test.parquet")
    spec = _spec(prediction_column="score", thresholds={"auc": {"min": 0.7}})
    from_paths = run_gate(spec, {"predictions": tmp_path / "eval.parquet", "targets": str(tmp_path / "eval.parquet"),
                                 "slices": str(tmp_path / "eval.parquet"), "eval_data": str(tmp_path / "test.parquet")},
                          store=None)
    from_values = evaluate_gate(spec, pred, ev.y, slices=ev.frame)
    assert from_paths.status == "pass", from_paths.headline()
    assert from_paths.model is not None and from_values.model is not None
    assert from_paths.model.metrics == from_values.model.metrics
    assert from_paths.model.eval_digest == from_values.model.eval_digest  # same targets, same order


def test_bad_inputs_are_error_reports_naming_what_exists(tmp_path, ev) -> None:
    not_inputs = run_gate(_spec(), [1, 2, 3], store=None)
    assert not_inputs.status == "error" and "must return its gate inputs" in not_inputs.error.message
    typo = run_gate(_spec(), {"predictions": [0.1], "target": [1]}, store=None)
    assert typo.status == "error" and "expected keys" in typo.error.message and "'target'" in typo.error.message
    ev.frame.assign(score=0.5).to_parquet(tmp_path / "eval.parquet")
    wrong_column = run_gate(_spec(), {"predictions": tmp_path / "eval.parquet", "targets": ev.y}, store=None)
    assert wrong_column.status == "error" and not wrong_column.error.retryable
    assert "column 'prediction' is not in" in wrong_column.error.message and "'score'" in wrong_column.error.message
    missing = run_gate(_spec(prediction_column="score"), GateInputs(predictions=tmp_path / "gone.parquet",
                                                                    targets=ev.y), store=None)
    assert missing.status == "error" and missing.error.retryable  # the file may not be written yet
    no_target = run_gate(_spec(label=None, prediction_column="score"),
                         {"predictions": ev.y.astype(float), "targets": tmp_path / "eval.parquet"}, store=None)
    assert no_target.status == "error" and "target_column" in no_target.error.message


def test_a_weak_model_names_the_column_it_never_got(ev) -> None:
    report = evaluate_gate(_spec(), _without_calls(ev.frame), ev.y, slices=ev.frame, eval_data=ev.frame)
    assert report.status == "fail"
    assert report.top_cause is not None and report.top_cause.code == "cause.feature_not_used"
    assert report.top_cause.evidence["column"] == "support_calls", report.top_cause.summary


def test_a_weak_model_that_uses_every_column_blames_none(ev) -> None:
    report = evaluate_gate(_spec(), model_scores(ev, seed=2, noise=2.5), ev.y, slices=ev.frame, eval_data=ev.frame)
    assert [f.code for f in report.findings] == ["gate.metric_threshold"]
    assert report.findings[0].causes == []


def test_a_badly_served_slice_names_the_column_lost_for_it(ev) -> None:
    pred = model_scores(ev, seed=2, noise=0.3)
    us = (ev.frame.country == "US").to_numpy()
    pred[us] = np.random.default_rng(4).uniform(0.15, 0.25, us.sum())  # every feature lost for US users
    report = evaluate_gate(_spec(thresholds={}), pred, ev.y, slices=ev.frame, eval_data=ev.frame)
    finding = next(f for f in report.findings if f.code == "gate.slice")
    assert finding.evidence["worst"][0]["value"] == "US"
    assert finding.causes[0].code == "cause.feature_not_used" and "within country='US'" in finding.causes[0].summary
    assert finding.causes[0].evidence["column"] in {"support_calls", "tenure_months", "monthly_spend_usd"}


def test_eval_data_in_another_order_is_not_used_for_the_diagnosis(ev) -> None:
    shuffled = ev.frame.sample(frac=1.0, random_state=0)
    report = evaluate_gate(_spec(), _without_calls(ev.frame), ev.y, slices=ev.frame, eval_data=shuffled)
    assert report.findings[0].causes == []
    assert any("not the predictions' rows in order" in n for n in report.notes), report.notes
