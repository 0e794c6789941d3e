"""Every emitted code is documented, every documented code is emitted, and the docs page is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlguard_orchestration.catalogue import CATALOGUE, explain, render_markdown
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.report import Cause, Finding

PKG = Path(__file__).resolve().parent.parent / "mlguard_orchestration"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md"
CODE_RE = re.compile(r"""["']((?:schema|volume|join|freshness|time|drift|leakage|guard|cause|training|preflight|gate|change)\.[a-z_]+)["']""")


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in PKG.rglob("*.py"):
        if path.name == "catalogue.py":
            continue
        found |= set(CODE_RE.findall(path.read_text()))
    return found


def test_every_code_in_the_source_is_in_the_catalogue() -> None:
    missing = _codes_in_source() - set(CATALOGUE)
    assert not missing, f"codes emitted but not documented in catalogue.py: {sorted(missing)}"


def test_every_catalogue_code_is_emitted_somewhere() -> None:
    unused = set(CATALOGUE) - _codes_in_source()
    assert not unused, f"catalogue codes nothing emits (dead entries): {sorted(unused)}"


def test_report_model_refuses_an_undocumented_code() -> None:
    with pytest.raises(ValueError, match="not in the catalogue"):
        Finding(code="join.fanout", check="x", severity="fail", message="m")
    with pytest.raises(ValueError, match="not in the catalogue"):
        Cause(code="join.fan_out", summary="a finding code used as a cause", confidence=0.5, next_check="n", fix="f")


def test_docs_page_is_generated_from_the_catalogue() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/diagnostics.md is stale: run `python -m mlguard_orchestration.catalogue > docs/diagnostics.md`")


def test_explain_suggests_the_closest_code() -> None:
    assert explain("join.fan_out").title
    with pytest.raises(SpecError, match="Did you mean 'join.fan_out'"):
        explain("join.fanout")


def test_entries_are_written_for_people() -> None:
    for e in CATALOGUE.values():
        assert len(e.explanation) > 40 and e.next_check and e.fix, e.code
