"""The example churn DAG under real Airflow (`dag.test()`, SQLite metadata DB): a clean run registers a model;
each planted bug fails the right guard task, nothing downstream runs, and the report read back from the
metadata DB carries the expected finding and top cause."""

from __future__ import annotations

import pytest

from dags_examples.churn.pipeline import BUGS, EXPECTED
from dags_examples.churn_dag import build_dag
from tests.airflow.conftest import states, xcom_report

GUARDS = ("guard_extract", "guard_join", "guard_training", "guard_split")
ORDER = ["configure", "extract", "guard_extract", "guard_join", "preprocess", "guard_training", "split",
         "guard_split", "train", "evaluate", "register"]


@pytest.fixture(scope="module")
def clean_run():  # type: ignore[no-untyped-def]
    """Runs first: its passing extract guard promotes the reference the bug runs are compared with."""
    return build_dag().test(run_conf={"bug": "none"})


def test_clean_run_succeeds_end_to_end(clean_run) -> None:  # type: ignore[no-untyped-def]
    assert set(states(clean_run).values()) == {"success"}, states(clean_run)
    for task_id in GUARDS:
        report = xcom_report(clean_run, task_id)
        assert report is not None and report.status == "pass", (task_id, report and report.headline())
        assert report.context["dag_id"] == "mlguard_churn" and report.context["task_id"] == task_id


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_stops_at_its_guard(bug: str, clean_run) -> None:  # type: ignore[no-untyped-def]
    stage, code, top_cause = EXPECTED[bug]
    run = build_dag().test(run_conf={"bug": bug})
    got = states(run)
    assert got[stage] == "failed", got
    before, after = ORDER[: ORDER.index(stage)], ORDER[ORDER.index(stage) + 1:]
    assert all(got[t] == "success" for t in before), got
    assert all(got[t] != "success" for t in after), got  # downstream never ran
    assert got["register"] == "upstream_failed"
    report = xcom_report(run, stage)  # read back from the metadata DB
    assert report is not None and report.status == "fail"
    assert code in {f.code for f in report.findings}, [f.code for f in report.findings]
    assert report.top_cause is not None and report.top_cause.code == top_cause, report.headline()
