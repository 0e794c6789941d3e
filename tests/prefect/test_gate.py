"""`guard_gate` under a real Prefect API: a healthy model passes, the task returns the Report and a register
task stores the champion; a collapsed model fails the task once (retries are not for verdicts) with its
artifacts, sync and async alike; a value that is not gate inputs is a spec error; the report's fingerprint
holds the flow file's git commit."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow, task

import mlguard_orchestration as mg
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.prefect import GuardCheckFailed, GuardSpecInvalid, guard_gate
from tests.gate._models import churn_eval, model_scores
from tests.prefect.conftest import artifacts, task_runs

SPEC = {"name": "pf_gate", "task": "binary", "model": "pf_churn", "thresholds": {"auc": {"min": 0.7}},
        "slices": ["country", "plan"], "label": "churned", "prediction_column": "score"}


def in_this_checkout(commit: str | None) -> bool:
    """`commit` is this checkout's HEAD or one of its ancestors (HEAD moves if someone commits meanwhile)."""
    return commit is not None and len(commit) == 40 and subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=Path(__file__).parent, check=False).returncode == 0


CALLS: list[str] = []


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pf-gate")
    ev = churn_eval(5_000, seed=1)
    frame = ev.frame[["churned", "country", "plan"]]
    frame.assign(score=model_scores(ev, seed=2)).to_parquet(d / "healthy.parquet")
    frame.assign(score=np.full(len(frame), ev.y.mean())).to_parquet(d / "collapsed.parquet")
    return {"healthy": str(d / "healthy.parquet"), "collapsed": str(d / "collapsed.parquet"), "dir": str(d)}


def _inputs(path: str) -> dict[str, Any]:
    return {"predictions": path, "targets": path, "slices": path}


def _gates(store: str) -> tuple[Any, Any, Any]:
    @task(retries=2)
    @guard_gate(spec=SPEC, store=store)
    def gate(path: str) -> dict:
        CALLS.append("gate")
        return _inputs(path)

    @task(retries=2)
    @guard_gate(spec=SPEC, store=store, register=True)
    async def gate_async(path: str) -> dict:
        await asyncio.sleep(0)
        CALLS.append("gate_async")
        return _inputs(path)

    @task
    def register(report: mg.Report) -> str:
        return mg.register_champion(report, store).model

    return gate, gate_async, register


def test_a_healthy_model_passes_and_is_registered_downstream(scored: dict[str, str], tmp_path: Path) -> None:
    gate, _, register = _gates(str(tmp_path / "store"))
    state = flow(name="gate-ok")(lambda: register(gate(scored["healthy"])))(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == "pf_churn"
    champion = mg.ProfileStore(tmp_path / "store").load_champion("pf_churn")
    assert champion is not None and champion.metrics["auc"] > 0.7
    run = task_runs(state.state_details.flow_run_id)["gate"]
    assert set(run.task_inputs) == {"path"} and set(artifacts(run.id)) == {"markdown", "link"}
    assert champion.fingerprint is not None and champion.fingerprint.code is not None
    assert champion.fingerprint.code.path == str(Path(__file__).resolve())
    assert in_this_checkout(champion.fingerprint.code.commit)  # the flow's file, at its git commit


def test_a_collapsed_model_fails_once_and_nothing_is_registered(scored: dict[str, str], tmp_path: Path) -> None:
    gate, _, register = _gates(str(tmp_path / "store"))
    CALLS.clear()
    state = flow(name="gate-bad")(lambda: register(gate(scored["collapsed"])))(return_state=True)
    assert state.is_failed() and CALLS == ["gate"]  # retries=2, but retraining the same way gives the same model
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed) and error.report.top_finding.code == "gate.collapsed_predictions"
    assert error.report.top_cause.code == "cause.prior_only" and str(error).startswith(error.report.top_cause.summary)
    runs = task_runs(state.state_details.flow_run_id)
    assert set(runs) == {"gate"} and runs["gate"].run_count == 1  # register never ran
    assert set(artifacts(runs["gate"].id)) == {"markdown", "table", "link"}
    assert mg.ProfileStore(tmp_path / "store").load_champion("pf_churn") is None


def test_async_gate_runs_the_same_path_and_registers_when_asked(scored: dict[str, str], tmp_path: Path) -> None:
    _, gate_async, _ = _gates(str(tmp_path / "store"))

    async def ok() -> Any:
        return await gate_async(scored["healthy"])

    async def bad() -> Any:
        return await gate_async(scored["collapsed"])

    CALLS.clear()
    good = asyncio.run(flow(name="gate-async-ok")(ok)(return_state=True))
    assert good.is_completed() and isinstance(good.result(), mg.Report) and good.result().status == "pass"
    assert mg.ProfileStore(tmp_path / "store").load_champion("pf_churn") is not None  # register=True
    failed = asyncio.run(flow(name="gate-async-bad")(bad)(return_state=True))
    assert failed.is_failed() and CALLS == ["gate_async", "gate_async"]  # one attempt each
    assert isinstance(failed.result(raise_on_failure=False), GuardCheckFailed)


def test_bad_gate_settings_and_values_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="tresholds"):
        guard_gate(spec={**SPEC, "tresholds": {}})

    @task(retries=2)
    @guard_gate(spec=SPEC, store=str(tmp_path / "store"))
    def not_inputs() -> list:
        CALLS.append("not_inputs")
        return [1, 2]

    CALLS.clear()
    state = flow(name="gate-spec")(lambda: not_inputs())(return_state=True)
    assert state.is_failed() and CALLS == ["not_inputs"]  # the flow must change: not retried
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardSpecInvalid) and "must return its gate inputs" in str(error)


def test_a_data_guard_in_a_flow_records_the_flow_files_git_commit() -> None:
    import pandas as pd

    from mlguard_orchestration.prefect import guard_output

    @task
    @guard_output(checks=[mg.NullRate(column="spend", max=0.0)], name="pf_code")
    def produce() -> pd.DataFrame:
        return pd.DataFrame({"spend": [1.0, None]})

    state = flow(name="guard-code")(lambda: produce())(return_state=True)
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed)
    code = error.report.fingerprint.code
    assert code is not None and code.path == str(Path(__file__).resolve()) and in_this_checkout(code.commit)
