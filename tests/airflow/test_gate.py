"""`ModelGateOperator` and `@task.mlguard_gate` under real Airflow (`dag.test()`): a healthy model passes and is
registered downstream; a broken one fails the gate without retry, nothing downstream runs and the champion is
unchanged; the report (read back from the metadata DB) carries the DAG file's git commit, as the data guards'
reports do."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from airflow.sdk import DAG, task

import mlguard_orchestration as mg
from mlguard_orchestration.airflow import DataGuardOperator, ModelGateOperator
from tests.airflow.conftest import register, states, xcom_report
from tests.gate._models import churn_eval, model_scores

SPEC = {"name": "af_gate", "task": "binary", "model": "af_churn", "thresholds": {"auc": {"min": 0.7}},
        "slices": ["country", "plan"], "label": "churned", "prediction_column": "score"}


def in_this_checkout(commit: str | None) -> bool:
    """`commit` is this checkout's HEAD or one of its ancestors (HEAD moves if someone commits meanwhile)."""
    return commit is not None and len(commit) == 40 and subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=Path(__file__).parent, check=False).returncode == 0


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Evaluation files: a healthy model's scores and collapsed ones (weights lost: the base rate for all)."""
    d = tmp_path_factory.mktemp("af-gate")
    ev = churn_eval(5_000, seed=1)
    frame = ev.frame[["churned", "country", "plan"]]
    frame.assign(score=model_scores(ev, seed=2)).to_parquet(d / "healthy.parquet")
    frame.assign(score=np.full(len(frame), ev.y.mean())).to_parquet(d / "collapsed.parquet")
    ev.frame.to_parquet(d / "test.parquet")
    return {"healthy": str(d / "healthy.parquet"), "collapsed": str(d / "collapsed.parquet"),
            "test": str(d / "test.parquet"), "dir": str(d)}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, catchup=False, default_args={"retries": 2, "retry_delay": timedelta(0)})


def _inputs(path: str) -> dict[str, Any]:
    return {"predictions": path, "targets": path, "slices": path}


def test_operator_registers_a_healthy_model_and_blocks_a_collapsed_one(scored: dict[str, str],
                                                                        tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with _dag("t_gate_op") as dag:
        for name in ("healthy", "collapsed"):
            gate = ModelGateOperator(task_id=f"gate_{name}", spec=SPEC, inputs=_inputs(scored[name]), store=store)

            @task(task_id=f"register_{name}")
            def register_model(report: dict) -> str:
                return mg.register_champion(mg.Report.model_validate(report), store).model

            register_model(gate.output)
    run = register(dag).test()
    got = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert got["gate_healthy"][0] == "success" and got["register_healthy"][0] == "success", got
    assert got["gate_collapsed"] == ("failed", 1)  # the gate's verdict is final: no retry although retries=2
    assert got["register_collapsed"][0] == "upstream_failed"
    healthy, collapsed = xcom_report(run, "gate_healthy"), xcom_report(run, "gate_collapsed")
    assert healthy is not None and healthy.status == "pass", healthy and healthy.headline()
    assert collapsed is not None and collapsed.status == "fail"
    assert collapsed.findings[0].code == "gate.collapsed_predictions"
    assert collapsed.top_cause is not None and collapsed.top_cause.code == "cause.prior_only"
    assert collapsed.context["task_id"] == "gate_collapsed"
    champion = mg.ProfileStore(store).load_champion("af_churn")  # the healthy model, not the collapsed one
    assert champion is not None and healthy.model is not None and champion.metrics == healthy.model.metrics
    assert healthy.fingerprint is not None and healthy.fingerprint.code is not None
    assert healthy.fingerprint.code.path == str(Path(__file__).resolve())
    assert in_this_checkout(healthy.fingerprint.code.commit)


def test_operator_pulls_the_inputs_an_upstream_task_returned(scored: dict[str, str], tmp_path: Path) -> None:
    with _dag("t_gate_xcom") as dag:

        @task
        def evaluate() -> dict:
            return {**_inputs(scored["healthy"]), "eval_data": scored["test"], "train_metrics": {"auc": 0.78}}

        evaluate() >> ModelGateOperator(task_id="gate", spec=SPEC, inputs={"xcom": "evaluate"},
                                        store=str(tmp_path / "store"), register=True)
        ModelGateOperator(task_id="gate_missing", spec=SPEC, inputs={"xcom": "no_such_task"}, retries=0)
    run = register(dag).test()
    assert states(run) == {"evaluate": "success", "gate": "success", "gate_missing": "failed"}
    report = xcom_report(run, "gate")
    assert report is not None and report.status == "pass", report and report.headline()
    assert mg.ProfileStore(tmp_path / "store").load_champion("af_churn") is not None  # register=True
    missing = xcom_report(run, "gate_missing")
    assert missing is not None and missing.status == "error" and "no_such_task" in missing.error.message


def test_taskflow_gate_returns_the_report_and_blocks_a_bad_model(scored: dict[str, str], tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with _dag("t_gate_taskflow") as dag:

        @task.mlguard_gate(spec=SPEC, store=store)
        def gate(path: str) -> dict:
            return _inputs(path)

        @task
        def register_model(report: dict) -> str:
            return mg.register_champion(mg.Report.model_validate(report), store).model

        register_model.override(task_id="register_good")(gate.override(task_id="good")(scored["healthy"]))
        register_model.override(task_id="register_bad")(gate.override(task_id="bad")(scored["collapsed"]))

        @task.mlguard_gate(spec=SPEC, store=store)
        def not_inputs(path: str) -> list:
            return [path]

        not_inputs(scored["healthy"])
    run = register(dag).test()
    got = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert got["good"][0] == "success" and got["register_good"][0] == "success", got
    assert got["bad"] == ("failed", 1) and got["register_bad"][0] == "upstream_failed"
    assert got["not_inputs"] == ("failed", 1)  # a spec problem: fix the DAG, do not retry
    bad = xcom_report(run, "bad")
    assert bad is not None and bad.top_cause is not None and bad.top_cause.code == "cause.prior_only"
    wrong = xcom_report(run, "not_inputs")
    assert wrong is not None and wrong.status == "error" and "must return its gate inputs" in wrong.error.message


def test_gate_spec_errors_fail_the_dag_at_parse_time() -> None:
    with pytest.raises(mg.SpecError, match="tresholds"):
        ModelGateOperator(task_id="g", spec={**SPEC, "tresholds": {}}, inputs={"xcom": "evaluate"})


def test_a_data_guard_in_a_dag_records_the_dag_files_git_commit(scored: dict[str, str]) -> None:
    with _dag("t_guard_code") as dag:
        DataGuardOperator(task_id="guard", tables={"data": scored["test"]}, checks=[mg.RowCount(min=1)],
                          store=scored["dir"] + "/profiles")
    run = register(dag).test()
    report = xcom_report(run, "guard")
    assert report is not None and report.status == "pass"
    assert report.fingerprint is not None and report.fingerprint.code is not None
    code = report.fingerprint.code
    assert code.path == str(Path(__file__).resolve()) and in_this_checkout(code.commit) and code.file_sha


def test_provider_lists_the_gate_decorator() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "mlguard_gate" in ProvidersManagerTaskRuntime().taskflow_decorators
