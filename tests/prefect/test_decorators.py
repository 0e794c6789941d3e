"""The guard decorators under a real Prefect API: they compose with `@task` (parameters, retries, caching,
async), publish artifacts, and fail the task the way the report says — a failed check is never retried, an
unreadable source is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow, task
from prefect.cache_policies import INPUTS

import mlguard_orchestration as mg
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.prefect import (
    GuardCheckFailed,
    GuardSourceUnavailable,
    GuardSpecInvalid,
    artifact_key,
    guard_inputs,
    guard_output,
    guard_training,
    retry_condition,
)
from tests.prefect.conftest import artifacts, task_runs

NO_NULLS = [mg.NullRate(column="spend", max=0.0)]
CALLS: list[str] = []  # what the task bodies ran, in order (module-level: tasks may run in worker threads)


def frame(nulls: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"user_id": range(10), "spend": [None] * nulls + [1.0] * (10 - nulls)})


@task(retries=2)
@guard_output(checks=NO_NULLS, name="spend")
def produce(nulls: int, day: str = "2024-01-01") -> pd.DataFrame:
    """Builds the day's spend table."""
    CALLS.append(f"produce:{nulls}")
    return frame(nulls)


@task(retries=2)
@guard_output(checks=NO_NULLS, name="spend_async")
async def produce_async(nulls: int) -> pd.DataFrame:
    await asyncio.sleep(0)
    CALLS.append(f"produce_async:{nulls}")
    return frame(nulls)


@task(retries=2)
@guard_output(checks=NO_NULLS, name="from_path")
def point_at(path: str) -> str:
    CALLS.append("point_at")
    return path


@task(retries=2)
@guard_output(checks=[mg.NullRate(column="spend", table="features", max=0.0)], name="typo")  # returns "data"
def typo() -> pd.DataFrame:
    CALLS.append("typo")
    return frame()


@task(cache_policy=INPUTS)
@guard_output(checks=NO_NULLS, name="cached")
def cached(nulls: int) -> pd.DataFrame:
    CALLS.append(f"cached:{nulls}")
    return frame(nulls)


@task
@guard_inputs("features", checks=[mg.NullRate(column="spend", table="features", max=0.0)])
def consume(features: pd.DataFrame, factor: float = 2.0) -> float:
    CALLS.append("consume")
    return float(features["spend"].sum() * factor)


def run_flow(body: Any) -> Any:
    """Run `body` as a flow; its final state."""
    CALLS.clear()
    return flow(name="decorated")(body)(return_state=True)


def only_task(state: Any) -> Any:
    (run,) = task_runs(state.state_details.flow_run_id).values()
    return run


def test_output_that_passes_is_returned_with_a_report_artifact() -> None:
    state = run_flow(lambda: produce(0, day="2024-02-01"))
    assert state.is_completed()
    assert state.result().equals(frame(0)) is True
    run = only_task(state)
    assert set(run.task_inputs) == {"nulls", "day"}  # Prefect saw the function's own parameters
    assert set(artifacts(run.id)) == {"markdown", "link"} and artifacts(run.id)["markdown"].key == "mlguard-spend"


def test_failed_check_fails_the_task_once_without_retry() -> None:
    state = run_flow(lambda: produce(3))
    assert state.is_failed()
    assert CALLS == ["produce:3"]  # retries=2, but data will not fix itself
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed) and error.report.top_finding.code == "schema.null_rate"
    run = only_task(state)
    assert run.run_count == 1 and run.state.name == "Failed"
    assert set(artifacts(run.id)) == {"markdown", "table", "link"}


def run_async_flow(body: Any) -> Any:
    """Run the coroutine function `body` as an async flow; its final state."""
    CALLS.clear()
    return asyncio.run(flow(name="decorated-async")(body)(return_state=True))


def test_async_task_is_guarded_on_the_same_path() -> None:
    async def ok_body() -> Any:
        return await produce_async(0)

    async def bad_body() -> Any:
        return await produce_async(4)

    ok = run_async_flow(ok_body)
    assert ok.is_completed() and CALLS == ["produce_async:0"]
    assert set(only_task(ok).task_inputs) == {"nulls"}
    bad = run_async_flow(bad_body)
    assert bad.is_failed() and CALLS == ["produce_async:4"]  # not retried either
    error = bad.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed) and error.report.guard == "spend_async"
    assert set(artifacts(only_task(bad).id)) == {"markdown", "table", "link"}


def test_unreadable_source_is_retried(tmp_path: Path) -> None:
    state = run_flow(lambda: point_at(str(tmp_path / "not-written-yet.parquet")))
    assert state.is_failed()
    assert CALLS == ["point_at"] * 3  # 1 + retries=2
    assert isinstance(state.result(raise_on_failure=False), GuardSourceUnavailable)
    assert only_task(state).run_count == 3


def test_spec_error_is_not_retried() -> None:
    state = run_flow(typo)
    assert state.is_failed() and CALLS == ["typo"]
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardSpecInvalid) and "reads table 'features'" in str(error), str(error)


def test_a_task_with_its_own_retry_condition_keeps_it() -> None:
    always = produce.with_options(retry_condition_fn=lambda task, run, state: True)
    state = run_flow(lambda: always(2))
    assert state.is_failed() and CALLS == ["produce:2"] * 3


def test_cached_by_inputs_runs_the_body_and_guard_once_per_input() -> None:
    def body() -> list[Any]:
        return [cached(0), cached(0), cached(1)]

    state = run_flow(body)
    assert state.is_failed()  # cached(1) has a null
    assert CALLS == ["cached:0", "cached:1"]  # the second cached(0) came from the cache
    assert isinstance(state.result(raise_on_failure=False), GuardCheckFailed)


def test_inputs_are_guarded_before_the_body_runs() -> None:
    ok = run_flow(lambda: consume(frame(0)))
    assert ok.is_completed() and ok.result() == 20.0 and CALLS == ["consume"]
    assert set(only_task(ok).task_inputs) == {"features", "factor"}
    bad = run_flow(lambda: consume(frame(5)))
    assert bad.is_failed() and CALLS == []  # the body never ran
    assert bad.result(raise_on_failure=False).report.findings[0].table == "features"


def test_retry_condition_retries_everything_but_guard_verdicts() -> None:
    from prefect.states import Failed

    report = mg.Guard("g", checks=NO_NULLS).run(frame(1))
    assert retry_condition(None, None, Failed(data=GuardCheckFailed(report))) is False
    assert retry_condition(None, None, Failed(data=SpecError("bad spec"))) is False
    assert retry_condition(None, None, Failed(data=mg.SourceError("file not there yet"))) is True
    assert retry_condition(None, None, Failed(data=ConnectionError("reset"))) is True


def test_artifact_keys_are_valid_prefect_keys() -> None:
    assert artifact_key("Churn_Join v2") == "mlguard-churn-join-v2"
    assert artifact_key("__") == "mlguard-guard"


def test_bad_settings_fail_when_the_decorator_is_applied() -> None:
    with pytest.raises(SpecError, match="nul_rate"):
        guard_output(checks=[{"kind": "nul_rate", "column": "x"}])
    with pytest.raises(SpecError, match=r"parameter\(s\) \['featurs'\].*\['features'\]"):
        guard_inputs("featurs")(lambda features: features)
    with pytest.raises(SpecError, match="names of the parameters"):
        guard_inputs()


@task
@guard_training()
def fit(steps: int, guard: Any = None) -> int:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 3), torch.randn(64)
    with guard(model, opt) as g:
        for _ in range(steps):
            opt.zero_grad()
            out = model(x).squeeze(-1)
            loss = torch.nn.functional.mse_loss(out, y)
            loss.backward()
            g.step(loss, batch=(x, y), predictions=out, targets=y)
    return steps


def test_training_task_gets_a_guard_and_publishes_its_report() -> None:
    state = run_flow(lambda: fit(5))
    assert state.is_completed() and state.result() == 5
    run = only_task(state)
    assert set(run.task_inputs) == {"steps"}  # the injected `guard` is no task parameter
    assert artifacts(run.id)["markdown"].key == "mlguard-fit"


def test_training_decorator_checks_its_function_and_config() -> None:
    with pytest.raises(SpecError, match="must take a `guard` parameter"):
        guard_training()(lambda steps: steps)
    with pytest.raises(SpecError, match="invalid config"):
        guard_training(config={"no_such_setting": 1})


def test_an_unreachable_api_never_changes_the_verdict(refused_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    def table(nulls: int) -> pd.DataFrame:
        return frame(nulls)

    guarded = guard_output(checks=NO_NULLS, name="offline")(table)  # no @task: a plain call, no run
    with temporary_settings({PREFECT_API_URL: refused_url.removesuffix("/hook") + "/api",
                             PREFECT_CLIENT_MAX_RETRIES: 0}):
        assert guarded(0).equals(frame(0))
        with pytest.raises(GuardCheckFailed):
            guarded(2)
    assert caplog.text.count("could not publish the report of guard 'offline'") == 2
