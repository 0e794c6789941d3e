"""The evaluate → register gate: each condition fires on a model built to show it and stays quiet on a
healthy one; the issue's four planted bugs are caught with the right cause."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.gate import GateSpec, evaluate_gate, register_champion
from tests._data import codes, only
from tests.gate._models import churn_eval, model_scores

N = 20_000


@pytest.fixture(scope="module")
def ev():
    return churn_eval(N, seed=1)


@pytest.fixture(scope="module")
def train_frame():
    return churn_eval(3 * N, seed=7).frame


def _spec(**kw) -> GateSpec:
    base = {"name": "churn_gate", "task": "binary", "model": "churn", "thresholds": {"auc": {"min": 0.7}},
            "slices": ["country", "plan"], "max_plausible": {"auc": 0.97}, "label": "churned",
            "leakage_exclude": ["user_id"]}
    return GateSpec(**{**base, **kw})


def _store(tmp_path) -> mg.ProfileStore:
    return mg.ProfileStore(tmp_path / "store")


def _registered(tmp_path, ev, noise: float = 0.7) -> mg.ProfileStore:
    """A store whose champion is a slightly weaker model evaluated on the same data."""
    store = _store(tmp_path)
    report = evaluate_gate(_spec(), model_scores(ev, seed=11, noise=noise), ev.y, slices=ev.frame, store=store)
    assert report.status == "pass", report.headline()
    register_champion(report, store)
    return store


# -- the healthy model --------------------------------------------------------------------------------------


def test_a_healthy_model_passes_every_check_and_is_registered(tmp_path, ev, train_frame) -> None:
    store = _registered(tmp_path, ev)
    pred = model_scores(ev, seed=2)
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame, train_metrics={"auc": 0.77, "log_loss": 0.37},
                           train=train_frame, eval_data=ev.frame, store=store)
    assert report.status == "pass", [(f.code, f.message) for f in report.findings]
    assert report.findings == []
    assert report.checks_run >= 8
    assert report.model is not None and 0.72 < report.model.metrics["auc"] < 0.8
    assert set(report.model.metrics) == {"accuracy", "auc", "log_loss"}
    champion = register_champion(report, store)
    assert store.load_champion("churn") == champion
    assert champion.metrics == report.model.metrics and champion.eval_rows == N


def test_a_healthy_regression_and_multiclass_model_pass() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 5000)
    y = 3 * x + rng.normal(0, 1, 5000)
    report = evaluate_gate(GateSpec(name="reg", task="regression", thresholds={"rmse": {"max": 1.5}}),
                           3 * x + rng.normal(0, 0.3, 5000), y, slices={"segment": rng.choice(["a", "b"], 5000)})
    assert report.status == "pass", [(f.code, f.message) for f in report.findings]
    assert report.model is not None and set(report.model.metrics) == {"rmse", "mae"}
    cls = rng.integers(0, 3, 5000)
    proba = rng.dirichlet([2, 2, 2], 5000) + np.eye(3)[cls]
    proba /= proba.sum(axis=1, keepdims=True)
    report = evaluate_gate(GateSpec(name="mc", task="multiclass"), proba, cls)
    assert report.status == "pass", [(f.code, f.message) for f in report.findings]
    assert report.model is not None and set(report.model.metrics) == {"accuracy", "auc", "log_loss"}


# -- the four planted bugs ------------------------------------------------------------------------------------


def test_planted_bug_a_model_worse_than_the_champion(tmp_path, ev) -> None:
    store = _registered(tmp_path, ev)
    report = evaluate_gate(_spec(), model_scores(ev, seed=3, noise=1.0), ev.y, slices=ev.frame, store=store)
    assert report.status == "fail"
    assert set(codes(report)) == {"gate.champion_regression"}  # above the threshold, below the champion
    f = next(f for f in report.findings if f.check == "champion(auc)")
    assert "the champion 'churn'" in f.message and "same evaluation data" in f.message
    assert f.evidence["shortfall"] > 0.01
    with pytest.raises(mg.SpecError, match="did not pass"):
        register_champion(report, store)
    assert store.load_champion("churn").metrics["auc"] > report.model.metrics["auc"]  # champion kept


def test_planted_bug_one_country_badly_served_while_overall_looks_fine(tmp_path, ev, train_frame) -> None:
    pred = model_scores(ev, seed=2)
    br = (ev.frame["country"] == "BR").to_numpy()
    pred[br] = np.random.default_rng(4).random(br.sum())  # the model knows nothing about Brazil
    rare = train_frame[(train_frame["country"] != "BR") | (np.arange(len(train_frame)) % 50 == 0)]
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame, train=rare)
    assert codes(report) == ["gate.slice"], [(f.code, f.message) for f in report.findings]
    f = report.findings[0]
    assert report.model.metrics["auc"] > 0.7  # the overall metric alone would have passed
    assert f.columns == ["country"] and "country='BR'" in f.message
    assert f.evidence["worst"][0]["value"] == "BR" and f.evidence["worst"][0]["size"] == br.sum()
    assert report.top_cause is not None and report.top_cause.code == "cause.slice_rare_in_training"
    assert "'BR'" in report.top_cause.summary


def test_planted_bug_target_leak_blocks_and_names_the_leaking_column(train_frame, ev) -> None:
    def leak(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)  # recorded after the outcome: the cancellation flag
        return frame.assign(cancel_requested=np.where(rng.random(len(frame)) < 0.002, 1 - frame["churned"],
                                                      frame["churned"]))

    train, evaluation = leak(train_frame, 1), leak(ev.frame, 2)
    pred = 0.02 + 0.96 * evaluation["cancel_requested"].to_numpy() * 0.99  # the model found the leak
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame, train=train, eval_data=evaluation)
    assert report.status == "fail"
    assert report.model.metrics["auc"] > 0.99
    too_good = only(report, "gate.too_good")
    assert too_good.severity == "fail" and "auc" in too_good.message
    leak_finding = [f for f in report.findings if f.code == "leakage.target"]
    assert len(leak_finding) == 1 and leak_finding[0].columns[0] == "cancel_requested"
    assert report.top_cause is not None and report.top_cause.code == "cause.feature_from_outcome"
    assert "'cancel_requested'" in report.top_cause.summary


def test_planted_bug_collapsed_predictions(ev) -> None:
    rate = float(ev.y.mean())
    pred = rate + np.random.default_rng(5).normal(0, 1e-4, N)
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame)
    assert report.status == "fail"
    f = only(report, "gate.collapsed_predictions")
    assert f.value < 0.02
    assert f.causes[0].code == "cause.prior_only"
    assert "gate.slice" not in codes(report)  # degenerate predictions are not also blamed on every slice


# -- each condition on its own ------------------------------------------------------------------------------


def test_tiny_slices_never_fire_alone(ev) -> None:
    pred = model_scores(ev, seed=2)
    iceland = (ev.frame["country"] == "IS").to_numpy()
    assert 5 <= iceland.sum() < 100
    pred[iceland] = 1 - ev.y[iceland]  # every prediction wrong, but on a handful of rows
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame)
    assert report.status == "pass", [(f.code, f.message) for f in report.findings]
    # even without a minimum size, the confidence bound alone keeps a handful of rows from firing
    assert codes(evaluate_gate(_spec(slice_min_size=1), pred, ev.y, slices=ev.frame)) == []


def test_a_slice_below_its_own_threshold_fires(ev) -> None:
    pred = model_scores(ev, seed=2)
    quiet = evaluate_gate(_spec(slice_threshold=0.6), pred, ev.y, slices=ev.frame)
    assert quiet.status == "pass"
    loud = evaluate_gate(_spec(slice_threshold=0.85), pred, ev.y, slices=ev.frame)
    assert set(codes(loud)) == {"gate.slice"} and len(loud.findings) == 2  # country and plan
    assert all(len(f.evidence["worst"]) <= 5 for f in loud.findings)


def test_different_evaluation_data_is_flagged_not_compared(tmp_path, ev) -> None:
    store = _registered(tmp_path, ev)
    other = churn_eval(N, seed=99)
    report = evaluate_gate(_spec(), model_scores(other, seed=3, noise=1.6), other.y, slices=other.frame,
                           store=store)
    f = only(report, "gate.champion_other_data")
    assert f.severity == "warn" and "not compared" in f.message
    assert "gate.champion_regression" not in codes(report)


def test_explicit_champion_metrics_are_compared_with_a_note(ev) -> None:
    pred = model_scores(ev, seed=2)
    report = evaluate_gate(_spec(model=None, slices=None), pred, ev.y, champion={"auc": 0.9})
    assert only(report, "gate.champion_regression").threshold == 0.9
    assert any("given by hand" in n for n in report.notes)
    assert evaluate_gate(_spec(model=None, slices=None), pred, ev.y, champion={"auc": 0.74}).status == "pass"


def test_a_jump_far_beyond_the_champion_is_too_good_and_checks_for_leaks(ev, train_frame) -> None:
    pred = model_scores(ev, seed=2, noise=0.6)
    report = evaluate_gate(_spec(model=None, max_plausible={}), pred, ev.y, slices=ev.frame, champion={"log_loss": 1.0},
                           train=train_frame, eval_data=ev.frame)
    f = only(report, "gate.too_good")
    assert "remaining error" in f.message and "found nothing" in f.message
    assert f.severity == "warn"  # the leakage checks ran clean: review, but no proof of a leak
    assert evaluate_gate(_spec(model=None, max_plausible={}), pred, ev.y, slices=ev.frame,
                         champion={"log_loss": 1.0}).findings[0].severity == "fail"  # no data: cannot rule it out


def test_exploded_predictions(ev) -> None:
    pred = model_scores(ev, seed=2)
    pred[:40] = np.nan
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame)
    f = only(report, "gate.exploded_predictions")
    assert f.evidence["non_finite"] == 40
    assert report.model.metrics["auc"] > 0.7  # computed on the finite rows
    rng = np.random.default_rng(6)
    y = rng.lognormal(3, 0.5, 3000)
    spec = GateSpec(name="reg", task="regression")
    scaled = evaluate_gate(spec, y * 1000 + rng.normal(0, 5, 3000), y)  # cents instead of dollars
    f = only(scaled, "gate.exploded_predictions")
    assert f.causes[0].code == "cause.output_scale"
    assert evaluate_gate(spec, y + rng.normal(0, 3, 3000), y).status == "pass"


def test_a_single_predicted_class() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(5000) < 0.1).astype(int)
    report = evaluate_gate(GateSpec(name="labels", task="binary"), np.zeros(5000, dtype=int), y)
    f = only(report, "gate.single_class")
    assert f.causes[0].code == "cause.majority_class"
    cls = rng.integers(0, 4, 5000)
    mc = evaluate_gate(GateSpec(name="mc", task="multiclass"), np.full(5000, "cat"), np.array(["cat", "dog",
                       "cow", "pig"])[cls])
    assert codes(mc) == ["gate.single_class"]
    good = np.where(rng.random(5000) < 0.8, cls, rng.integers(0, 4, 5000))
    assert evaluate_gate(GateSpec(name="mc", task="multiclass"), good, cls).status == "pass"


def test_predictions_unrelated_to_the_targets(ev) -> None:
    shuffled = np.random.default_rng(8).permutation(model_scores(ev, seed=2))
    report = evaluate_gate(_spec(thresholds={}), shuffled, ev.y, slices=ev.frame)
    f = only(report, "gate.no_correlation")
    assert f.causes[0].code == "cause.label_misalignment"


def test_overfit_gap_between_train_and_validation(ev) -> None:
    pred = model_scores(ev, seed=2)
    report = evaluate_gate(_spec(), pred, ev.y, slices=ev.frame, train_metrics={"accuracy": 0.99, "auc": 0.999})
    assert codes(report) == ["gate.overfit", "gate.overfit"]  # auc 0.999 vs ~0.75, accuracy 0.99 vs ~0.85
    assert {f.check for f in report.findings} == {"overfit(accuracy)", "overfit(auc)"}
    assert report.findings[0].causes[0].code == "cause.memorisation"
    assert evaluate_gate(_spec(), pred, ev.y, slices=ev.frame, train_metrics={"auc": 0.8}).status == "pass"
    collapsed = evaluate_gate(_spec(thresholds={}), np.full(N, ev.y.mean()), ev.y, slices=ev.frame,
                              train_metrics={"auc": 0.8})
    assert codes(collapsed) == ["gate.collapsed_predictions"]  # the collapse explains the gap: not memorisation


def test_metric_thresholds_and_user_metrics(ev) -> None:
    pred = model_scores(ev, seed=2)

    def top_decile_precision(p: np.ndarray, y: np.ndarray) -> float:
        top = p >= np.quantile(p, 0.9)
        return float(y[top].mean())

    spec = _spec(thresholds={"auc": {"min": 0.9}, "log_loss": {"max": 0.2}, "precision@10": {"min": 0.3}})
    report = evaluate_gate(spec, pred, ev.y, slices=ev.frame,
                           metrics={"precision@10": top_decile_precision, "calls": 3})
    assert sorted(f.check for f in report.findings) == ["threshold(auc)", "threshold(log_loss)"]
    assert report.model.metrics["calls"] == 3 and 0.3 < report.model.metrics["precision@10"] <= 1


# -- bad input: a clear error report, never an exception ----------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"predictions": np.zeros(5), "targets": np.zeros(6)}, "predictions have 5 rows but targets 6"),
    ({"targets": np.array([0, 1, 2, 1, 0])}, "binary targets must be 0/1"),
    ({"spec": {"name": "g", "task": "binary", "thresholds": {"acu": {"min": 0.5}}}}, "Did you mean 'auc'"),
    ({"spec": {"name": "g", "task": "binary", "slices": ["contry"]}, "slices": {"country": ["US"] * 5}},
     "Did you mean 'country'"),
    ({"spec": {"name": "g", "task": "binray"}}, "invalid gate spec: task"),
    ({"metrics": {"f1": lambda p, y: 1 / 0}}, "your metric 'f1' raised ZeroDivisionError"),
    ({"champion": {"f1": 0.5}, "metrics": {"f1": 0.4}}, "higher_is_better"),
])
def test_bad_input_becomes_an_error_report(kwargs, message) -> None:
    args = {"spec": {"name": "g", "task": "binary"}, "predictions": np.array([0.1, 0.8, 0.3, 0.9, 0.2]),
            "targets": np.array([0, 1, 0, 1, 0]), **kwargs}
    report = evaluate_gate(args.pop("spec"), args.pop("predictions"), args.pop("targets"), **args)
    assert report.status == "error" and report.error is not None
    assert message in report.error.message
    assert report.error.code == "guard.spec_error" and not report.error.retryable


def test_register_champion_needs_a_gate_report(tmp_path) -> None:
    guard_report = mg.Guard("g", checks=[mg.NullRate(column="x", max=0.0)]).run(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(mg.SpecError, match="not a gate report"):
        register_champion(guard_report, tmp_path)
    unnamed = evaluate_gate({"name": "g", "task": "regression"}, np.arange(50.0), np.arange(50.0) + 0.5)
    with pytest.raises(mg.SpecError, match="names no model"):
        register_champion(unnamed, tmp_path)
    assert register_champion(unnamed, tmp_path, model="reg").eval_rows == 50
