"""What's new since the previous run: new, resolved and persisting findings against the guard's previous run,
recorded in the store whatever the status (but never for a run that could not judge data), bounded on the
report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import mlguard_orchestration as mg
from mlguard_orchestration.history import MAX_LISTED, RunRecord, compare
from mlguard_orchestration.report import Finding, Report


def frame(n: int = 2_000, seed: int = 0, **overrides: object) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"spend": rng.lognormal(3, 0.5, n), "plan": rng.choice(["a", "b"], n)}).assign(**overrides)


def guard(tmp_path) -> mg.Guard:  # type: ignore[no-untyped-def]
    return mg.Guard("g", [mg.NullRate(column="spend", max=0.01), mg.NullRate(column="plan", max=0.01)],
                    store=tmp_path / "store")


def test_new_then_persisting_then_resolved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = guard(tmp_path)
    first = g.run(frame())
    assert first.since_last_run is None  # nothing to compare with yet
    second = g.run(frame(spend=np.nan))
    s = second.since_last_run
    assert s is not None and (s.previous_status, s.new_count, s.resolved_count, s.persisting_count) == ("pass", 1, 0, 0)
    assert s.new[0].columns == ["spend"]
    third = g.run(frame(spend=np.nan, plan=None))
    s = third.since_last_run
    assert s is not None and (s.new_count, s.persisting_count) == (1, 1)
    assert s.new[0].columns == ["plan"] and s.persisting[0].columns == ["spend"]
    fourth = g.run(frame(plan=None))
    s = fourth.since_last_run
    assert s is not None and (s.new_count, s.resolved_count, s.persisting_count) == (0, 1, 1)
    assert s.resolved[0].columns == ["spend"] and "1 resolved" in s.line()


def test_an_error_run_and_a_dry_run_are_not_the_previous_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = guard(tmp_path)
    g.run(frame(spend=np.nan))
    error = g.run(tmp_path / "missing.parquet")
    assert error.status == "error" and error.since_last_run is None
    dry = g.run(frame(), promote=False)
    assert dry.since_last_run is not None and dry.since_last_run.resolved_count == 1
    again = g.run(frame(spend=np.nan))
    assert again.since_last_run is not None and again.since_last_run.persisting_count == 1  # still vs the first


def test_a_changed_severity_is_persisting_with_the_previous_severity() -> None:
    def f(severity: str) -> Finding:
        return Finding(code="schema.null_rate", check="null_rate(x)", severity=severity, message="m", columns=["x"])

    before = RunRecord.of("g", "warn", [f("warn")])
    s = compare(before, RunRecord.of("g", "fail", [f("fail")]))
    assert s.persisting_count == 1 and s.persisting[0].previous_severity == "warn"


def test_lists_are_bounded_and_counts_exact_and_the_compact_report_stays_small() -> None:
    many = [Finding(code="schema.null_rate", check=f"null_rate(c{i})", severity="fail", message="m" * 10_000,
                    columns=[f"c{i}" * 1_000]) for i in range(2_000)]
    s = compare(RunRecord.of("g", "pass", []), RunRecord.of("g", "fail", many))
    assert len(s.new) == MAX_LISTED and s.new_count == 500 and s.partial  # a record keeps 500
    assert len(s.new[0].message) <= 160
    report = Report(guard="g", status="fail", findings=many[:50], since_last_run=s)
    compact = report.compact(20_000)
    assert len(json.dumps(compact).encode()) <= 20_000
    assert len(compact["since_last_run"]["new"]) <= 5
