"""Reports built by hand, so that the payloads they produce can be asserted exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from mlguard_orchestration.report import Cause, Finding, Report

WHERE = {"orchestrator": "airflow", "dag_id": "churn", "task_id": "guard_join",
         "run_id": "manual__2026-11-01T00:00:00+00:00", "try_number": "1"}
MISSING_KEY = Cause(code="cause.missing_join_key", confidence=0.9,
                    summary="join is missing key column 'snapshot_date' (features is unique on (user_id, snapshot_date))",
                    next_check="count features rows per user_id: more than one means a wider key",
                    fix="join on (user_id, snapshot_date)")
TWICE = Cause(code="cause.duplicated_partition", confidence=0.3, summary="a partition was loaded twice",
              next_check="count rows per load date", fix="deduplicate the partition")


def join_report(**context: str) -> Report:
    """A failed join guard with two ranked causes, run at WHERE (or `context`)."""
    finding = Finding(code="join.fan_out", check="join_keys(labels, features)", severity="fail",
                      message="join multiplies rows 3.0x (labels 1000 -> 3000)", evidence={"fan_out": 3.0},
                      causes=[TWICE, MISSING_KEY])
    return Report(guard="churn_join", status="fail", checks_run=4, findings=[finding],
                  started_at=datetime(2026, 11, 1, tzinfo=UTC), duration_s=0.25, context=context or WHERE)


def huge_report(findings: int = 500, chars: int = 20_000) -> Report:
    """Far bigger than any service accepts (~70 MB as JSON): many findings, huge messages and causes."""
    cause = Cause(code="cause.unit_change", confidence=0.8, summary="s" * (chars // 4), next_check="n" * (chars // 4),
                  fix="f" * (chars // 4), evidence={"values": list(range(100))})
    return Report(guard="g" * 1_000, status="fail", context=dict(WHERE), findings=[
        Finding(code="schema.null_rate", check="c" * chars, severity="fail", message=f"{i} " + "m" * chars,
                evidence={"blob": "e" * chars}, causes=[cause] * 5) for i in range(findings)])
