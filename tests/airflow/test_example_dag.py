"""The example churn DAG under real Airflow (`dag.test()`, SQLite metadata DB): a clean run passes the gate and
registers the champion; each planted bug fails the right task (a data guard, the training guard or the
evaluate → register gate), nothing downstream runs, the champion is unchanged, and the report read back from
the metadata DB carries the expected finding and top cause."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mlguard_orchestration as mg
from dags_examples.churn.pipeline import BUGS, EXPECTED, GATE_BUGS
from dags_examples.churn_dag import build_dag
from tests.airflow.conftest import states, xcom_report

GUARDS = ("guard_extract", "guard_join", "guard_training", "guard_split", "gate")
ORDER = ["configure", "extract", "guard_extract", "guard_join", "preprocess", "guard_training", "split",
         "guard_split", "train", "evaluate", "gate", "register"]
STORE = mg.ProfileStore(os.environ["MLGUARD_STORE"])


@pytest.fixture(scope="module")
def clean_run():  # type: ignore[no-untyped-def]
    """Runs first: its passing guards promote the references the bug runs are compared with, and its
    register step stores the champion the gate bugs are compared with."""
    return build_dag().test(run_conf={"bug": "none"})


def test_clean_run_succeeds_end_to_end(clean_run) -> None:  # type: ignore[no-untyped-def]
    assert set(states(clean_run).values()) == {"success"}, states(clean_run)
    for task_id in GUARDS:
        report = xcom_report(clean_run, task_id)
        assert report is not None and report.status == "pass", (task_id, report and report.headline())
        assert report.context["dag_id"] == "mlguard_churn" and report.context["task_id"] == task_id
    gate = xcom_report(clean_run, "gate")
    champion = STORE.load_champion("churn")
    assert champion is not None and gate is not None and gate.model is not None
    assert champion.metrics == gate.model.metrics  # register stored the gate's model as the champion


def test_first_run_ever_registers_and_the_next_clean_run_passes_against_it(tmp_path: Path) -> None:
    store = mg.ProfileStore(tmp_path / "store")
    first = build_dag(store=str(store.root)).test(run_conf={"bug": "none"})
    assert set(states(first).values()) == {"success"}, states(first)
    registered = store.load_champion("churn")
    assert registered is not None  # there was no champion to compare with: the gate passed on its own checks
    second = build_dag(store=str(store.root)).test(run_conf={"bug": "none"})
    assert set(states(second).values()) == {"success"}, states(second)
    report = xcom_report(second, "gate")
    assert report is not None and report.status == "pass" and report.findings == [], report and report.headline()
    assert report.checks_run > xcom_report(first, "gate").checks_run  # compared with the champion this time
    assert store.load_champion("churn").registered_at > registered.registered_at


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_stops_at_its_guard(bug: str, clean_run) -> None:  # type: ignore[no-untyped-def]
    stage, code, top_cause = EXPECTED[bug]
    champion = STORE.load_champion("churn")
    run = build_dag().test(run_conf={"bug": bug})
    got = states(run)
    assert got[stage] == "failed", got
    before, after = ORDER[: ORDER.index(stage)], ORDER[ORDER.index(stage) + 1:]
    assert all(got[t] == "success" for t in before), got
    assert all(got[t] != "success" for t in after), got  # downstream never ran
    assert got["register"] == "upstream_failed"
    assert STORE.load_champion("churn") == champion  # nothing was registered
    report = xcom_report(run, stage)  # read back from the metadata DB
    assert report is not None and report.status == "fail"
    assert code in {f.code for f in report.findings}, [f.code for f in report.findings]
    assert report.top_cause is not None and report.top_cause.code == top_cause, report.headline()
    if bug in GATE_BUGS:
        assert stage == "gate" and report.model is not None and report.model.model == "churn"
    if bug == "target_leak":  # the gate names the leaking column
        assert "cancel_requests_30d" in report.top_cause.summary, report.top_cause.summary
