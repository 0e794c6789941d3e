"""The Alert says the same thing to every notifier: what failed where, the top cause first, a link to the run."""

from __future__ import annotations

import pytest

from mlguard_orchestration.notify import Alert, run_url
from tests.notify._reports import MISSING_KEY, TWICE, WHERE, join_report


def test_a_guard_alert_leads_with_the_top_cause_and_says_where() -> None:
    alert = Alert.of(join_report())
    assert alert.where == WHERE  # from the report's context
    assert alert.event == "mlguard.guard_failed"
    assert alert.title == "Guard 'churn_join' failed in churn.guard_join"
    assert alert.headline == (f"{MISSING_KEY.summary} — [join.fan_out] join multiplies rows 3.0x "
                              "(labels 1000 -> 3000)")
    assert alert.causes() == [MISSING_KEY, TWICE]
    assert alert.causes(limit=1) == [MISSING_KEY]
    assert alert.where_lines()[:2] == [("orchestrator", "airflow"), ("dag_id", "churn")]


def test_a_task_that_failed_for_another_reason_is_a_task_alert() -> None:
    alert = Alert.of(None, where={"orchestrator": "prefect", "flow_name": "churn", "task_name": "train"},
                     error=ValueError("boom"))
    assert alert.event == "mlguard.task_failed"
    assert alert.error == "ValueError: boom"
    assert alert.title == "Task failed in churn.train"
    assert alert.headline == "ValueError: boom"
    assert alert.causes() == []


def test_a_guard_that_could_not_run_says_so() -> None:
    from mlguard_orchestration.report import GuardErrorInfo, Report

    report = Report(guard="g", status="error", context=WHERE,
                    error=GuardErrorInfo(code="guard.source_error", type="SourceError", message="no such file x.parquet",
                                         retryable=True))
    alert = Alert.of(report)
    assert alert.title == "Guard 'g' could not run in churn.guard_join"
    assert alert.headline == "guard 'g' could not run: no such file x.parquet"


def test_a_passing_report_on_a_failed_task_is_not_a_guard_failure() -> None:
    report = join_report().model_copy(update={"status": "pass", "findings": []})
    alert = Alert.of(report, error="RuntimeError: later step")
    assert alert.event == "mlguard.task_failed" and alert.headline == "RuntimeError: later step"


def test_free_text_is_bounded() -> None:
    alert = Alert.of(None, where={"dag_id": "d" * 1_000, **{f"k{i}": "v" for i in range(30)}}, error="e" * 10_000)
    assert len(alert.error or "") == 2_000 and len(alert.headline) == 300 and len(alert.title) <= 150
    lines = alert.where_lines()
    assert len(lines) == 10 and max(len(v) for _, v in lines) == 200


@pytest.mark.parametrize(("where", "expected"), [
    (WHERE, "http://ui:8080/dags/churn/runs/manual__2026-11-01T00%3A00%3A00%2B00%3A00/tasks/guard_join?try_number=1"),
    ({**WHERE, "map_index": "3"},
     "http://ui:8080/dags/churn/runs/manual__2026-11-01T00%3A00%3A00%2B00%3A00/tasks/guard_join/mapped/3?try_number=1"),
    ({"orchestrator": "airflow", "dag_id": "churn", "run_id": "r1"}, "http://ui:8080/dags/churn/runs/r1"),
    ({"orchestrator": "prefect", "flow_run_id": "f-1", "task_run_id": "t-2"}, "http://ui:8080/runs/task-run/t-2"),
    ({"orchestrator": "prefect", "flow_run_id": "f-1"}, "http://ui:8080/runs/flow-run/f-1"),
])
def test_run_urls_follow_the_ui_routes(where: dict[str, str], expected: str) -> None:
    assert run_url("http://ui:8080/", where) == expected


@pytest.mark.parametrize(("base_url", "where"), [
    (None, WHERE),  # no UI configured
    ("http://ui", {"orchestrator": "airflow", "dag_id": "churn"}),  # no run to address
    ("http://ui", {"orchestrator": "dagster", "run_id": "r"}),  # an orchestrator we do not know
])
def test_no_link_when_the_run_cannot_be_addressed(base_url: str | None, where: dict[str, str]) -> None:
    assert run_url(base_url, where) is None


def test_an_explicit_url_wins_over_the_built_one() -> None:
    assert Alert.of(join_report(), url="https://elsewhere/run/1").link("http://ui") == "https://elsewhere/run/1"
    assert Alert.of(join_report()).link("http://ui").startswith("http://ui/dags/churn/runs/")
