"""The Report model: bounded compact form, stable codes, headline, pickling, error vs fail, no raw values."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest
from pydantic import ValidationError

import mlguard_orchestration as mg
from mlguard_orchestration.report import COMPACT_MAX_BYTES, Finding, Report, cause
from tests._data import emails, run_checks


def _finding(i: int, evidence_chars: int, severity: str = "fail") -> Finding:
    return Finding(code="schema.null_rate", check=f"null_rate(c{i})", severity=severity,
                   message=f"column c{i} is mostly NULL " + "x" * 300, table="data", columns=[f"c{i}"],
                   value=0.5, threshold=0.01,
                   evidence={"blob": "y" * evidence_chars, "series": list(range(evidence_chars // 10))},
                   causes=[cause("cause.upstream_nulls", f"c{i} went missing", 0.7, {"raw": "z" * evidence_chars})])


def _size(data: dict) -> int:
    return len(json.dumps(data).encode())


# -- compact() ---------------------------------------------------------------------------------------------


def test_compact_small_report_is_untouched() -> None:
    report = Report(guard="g", status="fail", findings=[_finding(i, 50) for i in range(3)])
    data = report.compact()
    assert data == json.loads(json.dumps(report.model_dump(mode="json")))
    assert not any("trimmed" in n for n in data["notes"])


def test_compact_bounds_thousands_of_findings_with_huge_evidence() -> None:
    findings = [_finding(i, 5_000, "fail" if i % 2 else "warn") for i in range(3_000)]
    report = Report(guard="g", status="fail", findings=findings)
    data = report.compact()
    assert _size(data) <= COMPACT_MAX_BYTES
    assert len(json.dumps(data, indent=2).encode()) < 2 * COMPACT_MAX_BYTES
    assert len(data["findings"]) > 1 and len(data["findings"]) < 3_000
    assert all(f["severity"] == "fail" for f in data["findings"])  # worst first: warnings are trimmed first
    note = next(n for n in data["notes"] if "trimmed" in n)
    assert str(3_000 - len(data["findings"])) in note and "omitted" in note
    json.dumps(data)  # JSON-ready


def test_compact_keeps_few_findings_by_trimming_their_evidence() -> None:
    report = Report(guard="g", status="fail", findings=[_finding(i, 2_000_000) for i in range(3)])
    data = report.compact()
    assert _size(data) <= COMPACT_MAX_BYTES
    assert len(data["findings"]) == 3  # nothing needed dropping: only the bulky evidence goes
    assert all("omitted" in f["evidence"] for f in data["findings"])
    assert any("trimmed" in n for n in data["notes"])


def test_compact_bounds_pathological_strings_everywhere() -> None:
    big = Finding(code="schema.unexpected_column", check="c" * 100_000, severity="warn", message="m" * 100_000,
                  columns=["ü" * 1_000] * 5_000)
    report = Report(guard="g", status="warn", findings=[big], notes=["n" * 10_000] * 200,
                    context={"k" * 1_000: "v" * 100_000})
    data = report.compact()
    assert _size(data) <= COMPACT_MAX_BYTES
    assert data["findings"][0]["code"] == "schema.unexpected_column"
    assert any("trimmed" in n for n in data["notes"])


def test_compact_respects_custom_bound() -> None:
    report = Report(guard="g", status="fail", findings=[_finding(i, 500) for i in range(200)])
    data = report.compact(max_bytes=8_000)
    assert _size(data) <= 8_000
    assert data["findings"]


# -- codes, headline, status -------------------------------------------------------------------------------


def test_unknown_codes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="not in the catalogue"):
        Finding(code="schema.nul_rate", check="x", severity="fail", message="m")
    with pytest.raises(ValidationError, match="not in the catalogue"):
        Finding(code="cause.unit_change", check="x", severity="fail", message="m")  # a cause is not a finding
    with pytest.raises(KeyError):
        cause("cause.made_up", "s", 0.5)
    with pytest.raises(mg.SpecError, match="Did you mean"):
        mg.explain("drift.numerik")


def test_causes_are_ranked_and_headline_leads_with_top_cause() -> None:
    weak = cause("cause.location_shift", "moved by +3", 0.3)
    strong = cause("cause.unit_change", "spend is x100 its reference", 0.95)
    top = Finding(code="drift.numeric", check="drift", severity="fail", message="'spend' drifted",
                  causes=[weak, strong])
    other = Finding(code="schema.unexpected_column", check="schema", severity="warn", message="new column")
    report = Report(guard="churn", status=Report.status_of([other, top]), findings=[other, top])
    assert report.status == "fail"
    assert [c.code for c in top.causes] == ["cause.unit_change", "cause.location_shift"]
    assert report.top_finding == top
    assert report.top_cause == strong
    line = report.headline()
    assert line.startswith("guard 'churn' fail: [drift.numeric]")
    assert "likely cause: spend is x100 its reference" in line
    assert "(+1 more finding)" in line


def test_headline_of_pass_and_error() -> None:
    assert "passed" in Report(guard="g", status="pass", checks_run=4).headline()
    report = run_checks("/nonexistent/dir/data.parquet", [mg.RowCount()])
    assert "could not run" in report.headline() and "/nonexistent/dir/data.parquet" in report.headline()


def test_status_of_findings() -> None:
    assert Report.status_of([]) == "pass"
    warn = Finding(code="schema.unexpected_column", check="s", severity="warn", message="m")
    assert Report.status_of([warn]) == "warn"


# -- errors pickle (orchestrators ship them between processes) ---------------------------------------------


def test_errors_pickle_round_trip() -> None:
    failing = run_checks(pd.DataFrame({"x": [1.0, None]}), [mg.NullRate(column="x")])
    exc = pytest.raises(mg.GuardFailed, failing.raise_for_status).value
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is mg.GuardFailed
    assert back.report == failing and str(back) == str(exc) == failing.headline()
    for cls in (mg.SpecError, mg.SourceError):
        err = pickle.loads(pickle.dumps(cls("column 'x' not found")))
        assert type(err) is cls and err.message == "column 'x' not found" and str(err) == err.message
        assert isinstance(err, mg.MlguardError)
    assert pickle.loads(pickle.dumps(failing)) == failing


def test_error_and_fail_are_distinct(tmp_path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not a parquet file" * 50)
    report = run_checks(str(bad), [mg.RowCount(min=10**9)])  # would fail if the data could be read
    assert report.status == "error" and not report.passed
    assert report.findings == []
    assert report.error is not None and report.error.type == "SourceError" and report.error.retryable
    with pytest.raises(mg.SourceError) as info:
        report.raise_for_status()
    assert not isinstance(info.value, mg.GuardFailed)
    assert "broken.parquet" in str(info.value)

    spec_err = run_checks(pd.DataFrame({"x": [1]}), [mg.Drift()])  # needs a reference: the guard's problem
    assert spec_err.status == "error" and spec_err.error is not None and not spec_err.error.retryable
    with pytest.raises(mg.SpecError):
        spec_err.raise_for_status()

    failed = run_checks(pd.DataFrame({"x": [1]}), [mg.RowCount(min=10)])
    assert failed.status == "fail" and failed.error is None
    with pytest.raises(mg.GuardFailed):
        failed.raise_for_status()


def test_compact_and_json_of_real_report() -> None:
    report = run_checks(pd.DataFrame({"x": [1.0, None] * 10}), [mg.NullRate(column="x")],
                        )
    data = json.loads(report.to_json())
    assert data["status"] == "fail" and data["findings"][0]["code"] == "schema.null_rate"
    assert Report.model_validate(report.model_dump(mode="json")) == report


# -- no raw row values unless asked ------------------------------------------------------------------------


def test_failing_report_contains_no_raw_values_by_default() -> None:
    mails = emails(3_000)
    mails[10] = "not-an-email-" + mails[10]  # breaks the pattern
    mails[20] = mails[21]                    # breaks uniqueness
    df = pd.DataFrame({"email": mails, "n": range(3_000)})
    checks = [mg.Pattern(column="email", regex=r"[a-z0-9.]+@[a-z0-9.\-]+\.[a-z]+"), mg.Unique(columns="email"),
              mg.AllowedValues(column="email", values=["x@y.org"])]
    ref = mg.build_profile(pd.DataFrame({"email": emails(3_000, seed=1), "n": range(3_000)}))
    report = mg.Guard("g", checks=checks, default_suite=True, reference=ref).run(df)
    assert report.status == "fail"
    found = {f.code for f in report.findings}
    assert {"schema.pattern_mismatch", "schema.not_unique", "schema.not_allowed"} <= found
    text = json.dumps(report.compact()) + report.headline() + report.model_dump_json()
    leaked = [m for m in set(mails) | set(emails(3_000, seed=1)) if m in text]
    assert leaked == []
    assert "secret@" not in text


def test_sample_values_are_redacted_when_asked() -> None:
    df = pd.DataFrame({"email": emails(500)})
    guard = mg.Guard("g", [mg.AllowedValues(column="email", values=["x@y.org"])], sample_values=True, redact=True)
    report = guard.run(df)
    f = report.findings[0]
    assert f.evidence["unexpected_values"]  # hashes are shown …
    assert "secret@" not in json.dumps(report.compact())  # … never the values
