"""The churn example: a clean run passes every guard; each planted bug stops at the right guard with the
right finding and top cause. This is the pipeline `make demo` runs through the CLI."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dags_examples.churn.data import extract
from dags_examples.churn.pipeline import DATA_BUGS, EXPECTED, PipelineConfig, run_pipeline
from mlguard_orchestration import Guard, build_profile
from mlguard_orchestration.report import Report


def api_runner(stage: str, spec: Path, tables: dict[str, Path], refs: dict[str, Path]) -> Report:
    guard = Guard.from_spec(spec)
    guard.reference = {t: build_profile_cached(p) for t, p in refs.items()}
    return guard.run(tables, promote=False)


_PROFILES: dict[Path, object] = {}


def build_profile_cached(path: Path):  # type: ignore[no-untyped-def]
    from mlguard_orchestration.profile import TableProfile

    if path not in _PROFILES:
        _PROFILES[path] = TableProfile.load(path)
    return _PROFILES[path]


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("reference")
    paths = extract(d / "raw", seed=1, day=date(2026, 10, 31))
    ref = d / "features.profile.json"
    build_profile(paths["features"]).save(ref)
    return {"features": ref}


def test_clean_run_passes_every_guard(references: dict[str, Path], tmp_path: Path) -> None:
    result = run_pipeline(PipelineConfig(), tmp_path, references, api_runner)
    assert result.stopped_at is None, result.report and result.report.headline()
    assert all(r.status == "pass" for r in result.reports.values()), {
        s: [f.code for f in r.findings] for s, r in result.reports.items()}


@pytest.mark.parametrize("bug", list(DATA_BUGS))
def test_each_planted_bug_stops_at_the_right_guard(bug: str, references: dict[str, Path], tmp_path: Path) -> None:
    stage, code, top_cause = EXPECTED[bug]
    result = run_pipeline(PipelineConfig(bug=bug), tmp_path, references, api_runner)
    assert result.stopped_at == stage, (result.stopped_at, result.report and result.report.headline())
    report = result.report
    assert report is not None and report.status == "fail"
    assert code in {f.code for f in report.findings}, [f.code for f in report.findings]
    assert report.top_cause is not None and report.top_cause.code == top_cause, report.headline()
