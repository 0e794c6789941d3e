"""The standalone report page in a real browser (Debian's chromium through Playwright): rendered on a phone-sized
and a desktop screen, the verdict and the top cause read first, every finding's picture drawn (SVG elements
with a size), nothing wider than the screen, and no request leaves the page. Screenshots under
.artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlguard_orchestration.html import to_html
from mlguard_orchestration.report import Report
from tests import _browser
from tests.html import _reports


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Report, Path]]:
    d = tmp_path_factory.mktemp("pages")
    reports = {"drift": _reports.drift_report(d / "store"), "join": _reports.join_report(),
               "gate": _reports.gate_report(), "training": _reports.training_report(),
               "thousands": _reports.adversarial_reports()["thousands_of_findings"]}
    out = {}
    for name, report in reports.items():
        path = d / f"{name}.html"
        path.write_text(to_html(report), encoding="utf-8")
        out[name] = (report, path)
    return out


@pytest.mark.parametrize("name", ["drift", "join", "gate", "training"])
def test_the_page_reads_on_a_phone_with_its_pictures(name: str, pages: dict[str, tuple[Report, Path]],
                                                     tmp_path: Path) -> None:
    report, path = pages[name]
    requests: list[str] = []
    with _browser.browser(tmp_path / "profile", _browser.PHONE) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        text = page.locator("main").inner_text()
        assert text.index("FAIL") < text.index("Findings (")
        top = report.top_cause.summary if report.top_cause else report.top_finding.message  # type: ignore[union-attr]
        assert top[:80] in text and text.index(top[:80]) < text.index("Findings (")  # the cause comes first
        figures = page.locator("figure svg")
        assert figures.count() >= 1
        for i in range(figures.count()):
            box = figures.nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 20, box  # drawn, readable size
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= _browser.PHONE["width"], wide  # nothing scrolls sideways on a phone
        _browser.screenshot(page, f"page-{name}-phone")
    assert requests == [path.as_uri()]  # self-contained: the page fetched nothing else


def test_thousands_of_findings_render_in_a_browser_within_the_stated_size(pages: dict[str, tuple[Report, Path]],
                                                                          tmp_path: Path) -> None:
    _, path = pages["thousands"]
    with _browser.browser(tmp_path / "profile", _browser.DESKTOP) as page:
        page.goto(path.as_uri())
        assert "more finding(s) not shown" in page.locator("main").inner_text()
        assert page.evaluate("document.scripts.length") == 0
        _browser.screenshot(page, "page-thousands-desktop")
