"""`Guard.run()` returns a report whatever it is given — pass, warn, fail, or `error` naming what went wrong:
bad arguments, unreadable or hand-edited references, a store that cannot be written (the verdict is kept
and the failed promotion becomes a note), and even an unexpected bug of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=5_000), "plan": rng.choice(["a", "b"], 5_000)})


@pytest.mark.parametrize("threads", [0, -2, 1.5, "2"])
def test_threads_must_be_a_positive_whole_number(threads: object) -> None:
    with pytest.raises(mg.SpecError, match="threads must be"):
        mg.Guard("g", threads=threads)  # type: ignore[arg-type]


@pytest.mark.parametrize("tables", [{1: "x"}, {"": "x"}, {None: "x"}, {("a",): "x"}])
def test_table_names_must_be_strings(frame: pd.DataFrame, tables: dict, tmp_path: Path) -> None:
    report = mg.Guard("g", [mg.RowCount()], store=tmp_path).run({k: frame for k in tables})
    assert report.status == "error" and report.error is not None
    assert "table names must be non-empty strings" in report.error.message


def test_default_suite_naming_an_unknown_table_is_an_error(frame: pd.DataFrame) -> None:
    report = mg.Guard("g", default_suite=["featurs"]).run({"features": frame})
    assert report.status == "error" and "Did you mean 'features'" in report.error.message


def _profile_file(tmp_path: Path, frame: pd.DataFrame, edit=None) -> Path:
    path = tmp_path / "ref.json"
    data = json.loads(mg.build_profile(frame).model_dump_json())
    if edit:
        edit(data)
    path.write_text(json.dumps(data))
    return path


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


REFERENCES = {
    "a directory": (lambda p, f: (p / "dir").mkdir() or p / "dir", "SourceError", "is a directory"),
    "missing": (lambda p, f: p / "nope.json", "SourceError", "does not exist"),
    "not json": (lambda p, f: _file(p / "r.json", b"{oops"), "SourceError", "not a valid"),
    "NaN in a quantile": (lambda p, f: _profile_file(p, f, lambda d: d["columns"]["x"].__setitem__("min", "NaN")),
                          "SourceError", "not a valid profile"),
    "a future version": (lambda p, f: _profile_file(p, f, lambda d: d.__setitem__("version", 99)),
                         "SpecError", "newer mlguard-orchestration"),
    "not utf-8": (lambda p, f: _file(p / "r.json", b"\xff\xfe{}"), "SourceError", "valid"),
}


@pytest.mark.parametrize("case", list(REFERENCES))
def test_bad_reference_files_are_errors_naming_the_file(tmp_path: Path, frame: pd.DataFrame, case: str) -> None:
    make, kind, words = REFERENCES[case]
    path = make(tmp_path, frame)
    report = mg.Guard("g", default_suite=True, reference=path).run(frame)
    assert report.status == "error" and report.error is not None
    assert report.error.type == kind and words in report.error.message, report.error.message
    assert "Traceback" not in report.error.message


def test_a_reference_whose_nan_is_written_as_a_json_number_is_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    text = mg.build_profile(frame).model_dump_json().replace('"max":', '"max":NaN,"_":', 1)
    (tmp_path / "r.json").write_text(text)
    report = mg.Guard("g", default_suite=True, reference=tmp_path / "r.json").run(frame)
    assert report.status == "error"


def test_a_store_that_cannot_be_written_keeps_the_verdict(tmp_path: Path, frame: pd.DataFrame) -> None:
    """The store's root is a file, so nothing can be written under it (permissions would not stop root)."""
    blocker = tmp_path / "store"
    blocker.write_text("not a directory")
    report = mg.Guard("g", [mg.RowCount()], store=blocker).run(frame)
    assert report.status == "pass" and report.error is None
    assert any("could not be promoted" in n for n in report.notes), report.notes
    failed = mg.Guard("g", [mg.RowCount(min=10**9)], store=blocker).run(frame)
    assert failed.status == "fail"  # the verdict stands; keeping the candidate failed, and says so
    assert any("could not be kept" in n for n in failed.notes), failed.notes


@pytest.mark.parametrize("name", ["my guard", "../escape", "g/h", ".."])
def test_a_name_the_store_refuses_with_an_explicit_reference(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    report = mg.Guard(name, default_suite=True, reference=mg.build_profile(frame), store=tmp_path).run(frame)
    assert report.status == "pass", report.error
    assert any("cannot be used as a store key" in n for n in report.notes), report.notes
    assert not (tmp_path.parent / "escape").exists()


def test_an_unexpected_bug_is_an_internal_error_not_bad_data(frame: pd.DataFrame) -> None:
    class Broken(mg.RowCount):
        def evaluate(self, ctx, values):
            raise ZeroDivisionError("division by zero")

    report = mg.Guard("g", [Broken()]).run(frame)
    assert report.status == "error" and report.error is not None
    assert report.error.code == "guard.internal_error" and not report.error.retryable
    assert "ZeroDivisionError" in report.error.message and "bug in mlguard" in report.error.message
