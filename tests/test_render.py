"""Reports in words: the verdict and the top cause come first, and the output stays bounded."""

from __future__ import annotations

import pandas as pd

import mlguard_orchestration as mg
from mlguard_orchestration.notify import to_markdown, to_text


def _failing_report() -> mg.Report:
    ref = mg.build_profile(pd.DataFrame({"spend": [10.0 + i % 50 for i in range(2_000)]}))
    batch = pd.DataFrame({"spend": [(10.0 + i % 50) * 100 for i in range(2_000)]})
    return mg.Guard("spend", default_suite=True, reference=ref).run(batch)


def test_text_leads_with_the_verdict_and_names_the_cause() -> None:
    report = _failing_report()
    text = to_text(report)
    first = text.splitlines()[0]
    assert first.startswith("FAIL guard 'spend'")
    assert "cause.unit_change" in text and "next:" in text and "fix:" in text


def test_markdown_puts_the_top_cause_before_the_table() -> None:
    md = to_markdown(_failing_report())
    assert md.index("**Likely cause:**") < md.index("| severity | code | finding |")


def test_rendering_is_bounded() -> None:
    report = _failing_report()
    many = report.model_copy(update={"findings": report.findings * 200})
    assert len(to_text(many, max_findings=10).splitlines()) < 80
    assert "more finding(s)" in to_text(many, max_findings=10)


def test_a_guard_error_is_rendered_as_such() -> None:
    report = mg.Guard("g").run("/nonexistent/file.parquet")
    assert report.status == "error"
    assert "could not run" in to_text(report)
    assert "/nonexistent/file.parquet" in to_markdown(report)


def test_changes_since_the_last_good_run_come_right_after_the_verdict(tmp_path) -> None:
    from tests._data import churn_frame

    store = mg.ProfileStore(tmp_path)
    guard = mg.Guard("features", checks=[mg.Schema(columns={"plan": "string"})], store=store)
    assert guard.run(churn_frame(2_000, seed=1)).passed
    report = guard.run(churn_frame(3_000, seed=2).rename(columns={"plan": "plan_name"}))
    text = to_text(report)
    lines = text.splitlines()
    assert lines[1] == "  changed since the last good run:"
    assert "removed 'plan'" in lines[2] and "[change.schema]" in lines[2]
    assert "(`change.schema`)" in to_markdown(report)


def test_a_passing_report_without_a_store_shows_no_changes_block() -> None:
    text = to_text(mg.Guard("g", checks=[mg.NullRate(column="x", max=0.0)]).run(pd.DataFrame({"x": [1.0]})))
    assert "changed since" not in text
