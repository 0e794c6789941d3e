"""Hangs: a source that is not a regular file (a FIFO, a socket, a device) is refused before anything opens it.

Opening a FIFO with no writer blocks forever, inside a production DAG. Each case here would hang or never end
without the refusal; the timeout only stops a regression from hanging the test run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlguard_orchestration as mg
from tests._data import run_checks

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "events.parquet"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "feed.parquet"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
        yield path


def _refused(report: mg.Report, path: Path | str, what: str) -> str:
    assert report.status == "error" and report.findings == []
    assert report.error is not None and report.error.type == "SpecError" and not report.error.retryable
    message = report.error.message
    assert str(path) in message and what in message and "not a regular file" in message, message
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("as_path", [False, True])
def test_a_fifo_as_the_source(fifo: Path, as_path: bool) -> None:
    message = _refused(run_checks(fifo if as_path else str(fifo), [mg.RowCount()]), fifo, "FIFO")
    assert "RecordBatchReader" in message  # what to do instead


def test_a_fifo_in_the_default_suite_and_build_profile(fifo: Path) -> None:
    _refused(mg.Guard("g", default_suite=True).run(str(fifo)), fifo, "FIFO")
    with pytest.raises(mg.SpecError, match="FIFO"):
        mg.build_profile(str(fifo))


def test_a_fifo_inside_a_directory(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "a.parquet")
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "b.parquet")
    message = _refused(run_checks(str(tmp_path), [mg.RowCount()]), tmp_path / "sub" / "b.parquet", "FIFO")
    assert f"in the directory {str(tmp_path)!r}" in message


def test_a_fifo_matched_by_a_glob(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "a.parquet")
    os.mkfifo(tmp_path / "b.parquet")
    pattern = str(tmp_path / "*.parquet")
    message = _refused(run_checks(pattern, [mg.RowCount()]), tmp_path / "b.parquet", "FIFO")
    assert "matched by the pattern" in message


def test_a_symlink_to_a_fifo(tmp_path: Path, fifo: Path) -> None:
    link = tmp_path / "link.parquet"
    link.symlink_to(fifo)
    _refused(run_checks(str(link), [mg.RowCount()]), link, "FIFO")


def test_a_socket(unix_socket: Path) -> None:
    _refused(run_checks(str(unix_socket), [mg.RowCount()]), unix_socket, "socket")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/urandom"])
def test_a_character_device(device: str) -> None:
    _refused(run_checks(device, [mg.RowCount()]), device, "character device")


def test_a_fifo_among_several_tables_is_named(fifo: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), good)
    report = mg.Guard("g", [mg.RowCount(table="a"), mg.RowCount(table="b")]).run({"a": str(good), "b": str(fifo)})
    _refused(report, fifo, "FIFO")


def test_a_dangling_symlink_is_a_missing_file(tmp_path: Path) -> None:
    link = tmp_path / "gone.parquet"
    link.symlink_to(tmp_path / "never-written.parquet")
    report = run_checks(str(link), [mg.RowCount()])
    assert report.status == "error" and report.error is not None and report.error.type == "SourceError"
    assert str(link) in report.error.message


def test_a_regular_file_next_to_a_fifo_is_read(fifo: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), good)
    report = run_checks(str(good), [mg.RowCount(min=3, max=3)])
    assert report.status == "pass" and report.tables["data"].rows == 3
