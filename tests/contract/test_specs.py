"""Specs that cannot be read or say nonsense: a SpecError at load naming the field, the value and what is
allowed (with the closest field for a typo) — never a traceback, never a check that silently means nothing."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

import mlguard_orchestration as mg

FILES = {
    "directory": lambda p: (p.mkdir(), "not a regular file"),
    "not utf-8": lambda p: (p.write_bytes(b"name: g\nchecks: []\n\xff\xfe\xfa"), "not UTF-8"),
    "deep yaml": lambda p: (p.write_text("a: " + "[" * 20_000 + "]" * 20_000), "nests deeper"),
    "deep flow mapping": lambda p: (p.write_text("x: " + "{a: " * 5_000 + "1" + "}" * 5_000), "nests deeper"),
    "huge": lambda p: (p.write_text("# " + "x" * 1_100_000), "at most"),
    "not yaml": lambda p: (p.write_text("name: [unclosed\n"), "not valid YAML"),
    "a scalar": lambda p: (p.write_text("42\n"), "must be a mapping"),
    "fifo": lambda p: (os.mkfifo(p), "not a regular file"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_unreadable_spec_files_are_spec_errors(tmp_path: Path, case: str) -> None:
    path = tmp_path / "guard.yaml"
    _, words = FILES[case](path)
    with pytest.raises(mg.SpecError, match=words):
        mg.load_spec(path)


def test_deep_json_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "guard.json"
    path.write_text('{"checks": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(mg.SpecError, match="nests deeper"):
        mg.load_spec(path)


NONSENSE = [
    ({"kind": "drift", "psi_fail": -0.1}, "psi_fail", "greater than 0"),
    ({"kind": "drift", "psi_warn": 0.5, "psi_fail": 0.2}, "psi_warn", "must not exceed psi_fail"),
    ({"kind": "drift", "js_warn": 0.3, "js_fail": 0.2}, "js_warn", "must not exceed js_fail"),
    ({"kind": "unseen_categories", "warn_share": 0.5, "fail_share": 0.1}, "warn_share", "must not exceed"),
    ({"kind": "time_drift", "max_fraction_outside": 0.5, "fail_fraction_outside": 0.1}, "max_fraction", "exceed"),
    ({"kind": "range", "column": "x", "min": math.nan}, "NaN", "cannot be NaN"),
    ({"kind": "range", "column": "x", "min": 1, "max": math.nan}, "NaN", "cannot be NaN"),
    ({"kind": "row_count", "min": 10, "max": 5}, "min", "must not exceed max"),
    ({"kind": "row_count_change", "min_ratio": 2, "max_ratio": 1}, "min_ratio", "must not exceed"),
    ({"kind": "null_rate", "column": "x", "max": 1.5}, "max", "less than or equal to 1"),
    ({"kind": "null_rate", "column": "x", "maxx": 0.1}, "maxx", "Did you mean 'max'"),
    ({"kind": "drift", "psi_fial": 0.3}, "psi_fial", "Did you mean 'psi_fail'"),
    ({"kind": "schema", "columns": [["a", "b"]]}, "columns", "must be names"),
    ({"kind": "schema", "columns": [1, 2]}, "columns", "must be names"),
    ({"kind": "label_drift", "column": "y", "max_shift": 0}, "max_shift", "greater than 0"),
    ({"kind": "reference_range", "margin": -1}, "margin", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("entry", "field", "words"), NONSENSE, ids=[f"{e['kind']}-{f}" for e, f, _ in NONSENSE])
def test_nonsense_thresholds_are_refused_at_load(entry: dict, field: str, words: str) -> None:
    with pytest.raises(mg.SpecError) as info:
        mg.load_spec({"checks": [entry]})
    message = str(info.value)
    assert "checks[0]" in message and field in message and words in message, message


def test_top_level_typo_gets_a_hint() -> None:
    with pytest.raises(mg.SpecError, match="Did you mean 'default_suite'"):
        mg.load_spec({"defualt_suite": True})
    with pytest.raises(mg.SpecError, match="reference_policy"):
        mg.load_spec({"reference_policy": "every_tuesday"})
    with pytest.raises(mg.SpecError, match="suite.partition_bye"):
        mg.load_spec({"suite": {"partition_bye": ["month"]}})


def test_the_same_nonsense_from_python_is_refused_too() -> None:
    for build in (lambda: mg.RowCount(min=5, max=1), lambda: mg.Range(column="x", min=math.nan),
                  lambda: mg.Drift(psi_warn=0.9, psi_fail=0.3), lambda: mg.Schema(columns=[["a"]])):
        with pytest.raises(ValueError, match="must|cannot|names"):
            build()
