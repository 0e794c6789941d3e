"""The report page: verdict and top cause first, each family's evidence drawn, self-contained, escaped, and never
larger than MAX_PAGE_BYTES whatever the report (the adversarial inputs of the contract issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlguard_orchestration.html import MAX_PAGE_BYTES, to_html
from mlguard_orchestration.html.evidence import pictures
from mlguard_orchestration.report import Report
from tests.html import _reports


class Tags(HTMLParser):
    """Every start tag and attribute the browser would see, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    t = Tags()
    t.feed(page)
    t.close()
    return t


@pytest.fixture(scope="module")
def drift(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return _reports.drift_report(tmp_path_factory.mktemp("store"))


def _self_contained(page: str) -> None:
    tags = parse(page)
    names = {t for t, _ in tags.tags}
    assert not names & {"script", "img", "link", "iframe", "object", "embed"}, names
    for tag, attrs in tags.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)  # no event handlers
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)  # nothing fetched, nowhere to go
    assert "url(" not in page and "@import" not in page


def test_the_verdict_and_top_cause_come_first_then_each_finding_drawn(drift: Report) -> None:
    page = to_html(drift)
    _self_contained(page)
    text = " ".join(parse(page).text)
    assert drift.top_cause is not None and drift.status == "fail"
    order = [text.index(s) for s in ("FAIL", "Likely cause (95%)", "Since the previous run", "Findings (5")]
    assert order == sorted(order), order
    assert "×100" in text and "monthly_spend_usd" in text
    assert page.count("<figure>") == len(drift.findings)  # every finding of the drift family has a picture
    assert len(page.encode()) < 40_000


def test_drift_evidence_carries_bounded_bins_that_the_page_draws_as_two_distributions(drift: Report) -> None:
    f = next(f for f in drift.findings if f.code == "drift.numeric")
    bins = f.evidence["bins"]
    assert 2 <= len(bins["batch"]) <= 24 and len(bins["batch"]) == len(bins["reference"]) == len(bins["edges"]) + 1
    assert sum(bins["reference"]) > 1_000 and sum(bins["batch"]) > 1_000
    assert bins["batch"][-1] > 0.9 * sum(bins["batch"])  # ×100: the batch sits above the reference's last edge
    (svg,) = pictures(f)
    assert "this batch" in svg and "reference" in svg and svg.count("<rect") >= 2 * len(bins["batch"])


def test_since_the_previous_run_lists_new_and_persisting_findings(drift: Report) -> None:
    s = drift.since_last_run
    assert s is not None and s.previous_status == "fail"
    assert (s.new_count, s.persisting_count, s.resolved_count) == (4, 1, 0)
    assert [r.code for r in s.persisting] == ["drift.null_rate"]
    assert "4 new" in s.line() and "drift.numeric(monthly_spend_usd)" in s.line()


@pytest.mark.parametrize(("build", "marks"), [
    (_reports.join_report, ["rows without a partner", "keys without a partner", "joined (predicted)"]),
    (_reports.split_report, ["test rows also in train"]),
    (_reports.gate_report, ["<circle", "overall", "limit", "BR (n="]),
    (_reports.training_report, ["<polyline", "loss history", "grad norm history", "encoder.0.weight"]),
])
def test_every_family_draws_its_evidence(build, marks: list[str]) -> None:
    report = build()
    assert report.status == "fail", report.headline()
    page = to_html(report)
    _self_contained(page)
    for mark in marks:
        assert mark in page, mark
    assert "<svg" in page


def test_a_page_with_nothing_to_draw_still_reads(tmp_path: Path) -> None:
    page = to_html(Report(guard="quiet", status="pass", checks_run=7))
    assert "All 7 checks passed" in " ".join(parse(page).text) and "<svg" not in page


@pytest.mark.parametrize("name", list(_reports.adversarial_reports()))
def test_adversarial_reports_stay_under_the_stated_size_escaped_and_whole(name: str) -> None:
    report = _reports.adversarial_reports()[name]
    page = to_html(report)
    assert len(page.encode()) <= MAX_PAGE_BYTES
    _self_contained(page)
    assert _reports.HOSTILE not in page and "<script" not in page
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    text = " ".join(parse(page).text)
    assert report.status.upper() in text
    if report.findings:
        assert "Findings (" in text or "too large for this page" in text


def test_thousands_of_findings_keep_the_first_ones_drawn_and_say_how_many_are_left_out() -> None:
    report = _reports.adversarial_reports()["thousands_of_findings"]
    text = " ".join(parse(to_html(report)).text)
    assert "Findings (3000" in text and "more finding(s) not shown" in text


def test_a_smaller_stated_size_is_kept_too() -> None:
    report = _reports.adversarial_reports()["thousands_of_findings"]
    for limit in (100_000, 30_000):
        assert len(to_html(report, max_bytes=limit).encode()) <= limit


def test_mlguard_report_writes_the_page_from_a_json_report(tmp_path: Path, drift: Report) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps(drift.compact()))
    out = tmp_path / "page.html"
    cli = [sys.executable, "-m", "mlguard_orchestration.cli", "report"]
    proc = subprocess.run([*cli, str(run), "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "FAIL guard 'features'" in proc.stdout and "<svg" in out.read_text(encoding="utf-8")
    (tmp_path / "bad.json").write_text('{"not": "a report"}')
    proc = subprocess.run([*cli, str(tmp_path / "bad.json"), "-o", str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and "not an mlguard report" in proc.stderr
    proc = subprocess.run([*cli, str(tmp_path / "missing.json"), "-o", str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
