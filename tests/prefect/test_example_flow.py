"""The example churn flow under a real Prefect API (the test harness): a clean run registers a model; each
planted bug fails the right task with the expected finding and top cause, nothing downstream runs, and the
report is readable from the API afterwards as the task run's artifacts and as an `mlguard.guard.failed` event.
The gate bugs stop at the evaluate → register gate and leave the clean run's champion in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mlguard_orchestration as mg
from dags_examples.churn.pipeline import BUGS, EXPECTED, GATE_BUGS
from dags_examples.churn_flow import ORDER, churn_pipeline
from mlguard_orchestration.prefect import GuardCheckFailed
from tests.prefect.conftest import artifacts, guard_events, linked, task_runs

GUARDS = ("guard_extract", "guard_join", "guard_training", "guard_split", "train", "gate")
STORE = mg.ProfileStore(os.environ["MLGUARD_STORE"])


class Runs:
    """The flow runs of this module, each run once, when a test first asks for it: the clean run first (its
    passing extract guard promotes the reference the bug runs are compared with, and its register step stores
    the champion), then a bug's run when its test asks (in the suite, BUGS order: the parametrized tests come in
    that order). So no test does more than a flow run or two of work; a test that needs every run (the events,
    the champion after all of them) comes last and finds them done."""

    def __init__(self) -> None:
        self._states: dict[str, Any] = {}
        self.champion_clean: Any = None

    def __getitem__(self, bug: str) -> Any:
        if "none" not in self._states:
            self._states["none"] = churn_pipeline("none", return_state=True)
            self.champion_clean = STORE.load_champion("churn")
        if bug not in self._states:
            self._states[bug] = churn_pipeline(bug, return_state=True)
        return self._states[bug]

    def every(self) -> dict[str, Any]:
        """{bug: final flow state} for the clean run and every bug, running those not run yet."""
        return {bug: self[bug] for bug in ("none", *BUGS)}


@pytest.fixture(scope="module")
def runs() -> Runs:
    return Runs()


def test_clean_run_completes_every_task(runs: Runs) -> None:
    state = runs["none"]
    assert state.is_completed(), state.message
    got = task_runs(state.state_details.flow_run_id)
    assert {name: r.state.name for name, r in got.items()} == dict.fromkeys(ORDER, "Completed")
    for name in GUARDS:
        attached = artifacts(got[name].id)
        assert set(attached) == {"markdown", "link"}, (name, set(attached))  # no findings: no findings table
        assert attached["markdown"].data.startswith("### PASS"), attached["markdown"].data
    gate = state.result()  # register's return value: the registered model's path
    assert gate.endswith(".pt") and runs.champion_clean is not None


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_fails_its_task_with_the_cause_first(bug: str, runs: Runs) -> None:
    stage, code, top_cause = EXPECTED[bug]
    state = runs[bug]
    assert state.is_failed()
    got = {name: r.state.name for name, r in task_runs(state.state_details.flow_run_id).items()}
    assert got[stage] == "Failed", got
    assert all(got[t] == "Completed" for t in ORDER[: ORDER.index(stage)]), got
    assert not set(got) & set(ORDER[ORDER.index(stage) + 1:]), got  # downstream never ran
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GuardCheckFailed)
    report = error.report
    assert code in {f.code for f in report.findings}, [f.code for f in report.findings]
    assert report.top_cause is not None and report.top_cause.code == top_cause, report.headline()
    assert str(error).startswith(f"{report.top_cause.summary} [{top_cause}]"), str(error)
    assert report.context["flow_name"] == "mlguard-churn" and report.context["task_name"] == stage


@pytest.mark.parametrize("bug", list(BUGS))
def test_the_report_is_readable_from_the_api(bug: str, runs: Runs) -> None:
    stage, code, top_cause = EXPECTED[bug]
    failed = task_runs(runs[bug].state_details.flow_run_id)[stage]
    attached = artifacts(failed.id)
    guard = runs[bug].result(raise_on_failure=False).report.guard
    assert attached["markdown"].key == attached["table"].key.removesuffix("-findings") == f"mlguard-{guard}".replace("_", "-")
    assert attached["markdown"].data.startswith(f"### FAIL — guard `{guard}`")
    report = runs[bug].result(raise_on_failure=False).report
    shown = attached["markdown"].data.replace("\\", "")  # Markdown escapes undone
    assert report.top_finding.message in shown and report.top_cause.summary in shown  # nothing cut
    page = linked(attached["link"])  # the report page, written into the guard's store
    assert page.startswith("file://") and page in attached["markdown"].data
    html = Path(page.removeprefix("file://")).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "FAIL" in html and top_cause in html  # pictures: tests/html
    assert Path(page.removeprefix("file://")).is_relative_to(STORE.root)
    rows = json.loads(attached["table"].data)
    assert code in {r["code"] for r in rows} and top_cause in {r["cause_code"] for r in rows}, rows
    assert rows[0]["severity"] == "fail"


# The two tests below need every run: in the suite the parametrized tests above ran them; alone, they run
# all 16 flows, which on a loaded 2-core machine can pass the 300 s default. No assertion is about time.
@pytest.mark.timeout(1200)
def test_gate_bugs_leave_the_champion_in_place(runs: Runs) -> None:
    runs.every()
    assert STORE.load_champion("churn") == runs.champion_clean  # no bad model was registered
    leak = runs["target_leak"].result(raise_on_failure=False).report
    assert "cancel_requests_30d" in leak.top_cause.summary  # the gate names the leaking column
    for bug in GATE_BUGS:
        assert EXPECTED[bug][0] == "gate" and runs[bug].result(raise_on_failure=False).report.model is not None


@pytest.mark.timeout(1200)
def test_one_failed_guard_event_per_bad_run_and_none_for_the_clean_one(runs: Runs) -> None:
    ids = {f"prefect.flow-run.{state.state_details.flow_run_id}": bug for bug, state in runs.every().items()}
    events = guard_events(list(ids), expected=len(BUGS))
    got = {}
    for event in events:
        (bug,) = {ids[r.id] for r in event.related if r.id in ids}
        got[bug] = event
    assert set(got) == set(BUGS)  # the clean run emitted none
    for bug, event in got.items():
        report = runs[bug].result(raise_on_failure=False).report
        assert event.resource.id == f"mlguard.guard.{report.guard}"
        page = event.payload.pop("page")
        assert event.payload == {"guard": report.guard, "status": "fail", "code": report.top_finding.code,
                                 "cause": EXPECTED[bug][2], "headline": report.headline()}
        assert page.startswith("file://") and page.endswith(".html")
        assert any(r.id.startswith("prefect.task-run.") for r in event.related)


@pytest.mark.timeout(900)  # its own ephemeral Prefect server, twice, on a busy machine
def test_the_flow_module_exits_non_zero_when_the_flow_fails(tmp_path: Path) -> None:
    """`python -m dags_examples.churn_flow <bug>` on its own ephemeral Prefect server: a shell or CI step can
    tell a stopped pipeline from a finished one."""
    home = tmp_path / "prefect"
    home.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(home), "MLGUARD_STORE": str(tmp_path / "store"),
           "MLGUARD_WORKDIR": str(tmp_path / "runs"), "MLGUARD_REGISTRY": str(tmp_path / "registry"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    bad = subprocess.run([sys.executable, "-m", "dags_examples.churn_flow", "empty_extract"], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert bad.returncode == 1, (bad.stdout + bad.stderr)[-3000:]
    assert "Failed" in bad.stdout
    unknown = subprocess.run([sys.executable, "-m", "dags_examples.churn_flow", "no_such_bug"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert unknown.returncode == 2 and "unknown bug" in unknown.stderr
