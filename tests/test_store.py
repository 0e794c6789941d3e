"""The profile store: atomic promotion under concurrency, promotion only on pass, fsspec URLs."""

from __future__ import annotations

import functools
import multiprocessing
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from mlguard_orchestration.profile import TableProfile
from tests._data import churn_frame

WRITERS = 8
PROMOTIONS = 20
COLUMNS = 60


@functools.lru_cache(maxsize=1)
def _base_profile() -> TableProfile:
    rng = np.random.default_rng(0)
    return mg.build_profile(pd.DataFrame({f"c{j}": rng.normal(0, 1, 200) for j in range(COLUMNS)}))


def _wide_profile(writer: int) -> TableProfile:
    """A distinct, fairly large profile (tens of KB of JSON), so a torn write would be visible."""
    return _base_profile().model_copy(update={"rows": 1000 + writer, "source": f"writer-{writer}"})


def _check_loaded(prof: TableProfile | None) -> None:
    assert prof is not None
    writer = prof.rows - 1000
    assert 0 <= writer < WRITERS
    assert prof.source == f"writer-{writer}"  # the whole document comes from one writer
    assert len(prof.columns) == COLUMNS


def _promote_many(root: str, writer: int, profile_json: str | None = None) -> None:
    store = mg.ProfileStore(root)
    prof = TableProfile.model_validate_json(profile_json) if profile_json else _wide_profile(writer)
    for _ in range(PROMOTIONS):
        store.promote("churn", "data", prof)


def _read_until(store: mg.ProfileStore, done: threading.Event | None, errors: list[BaseException],
                counter: list[int], procs: list | None = None) -> None:
    def finished() -> bool:
        if done is not None:
            return done.is_set()
        return all(not p.is_alive() for p in procs or [])

    while not finished():
        try:
            prof = store.load("churn", "data")
            if prof is not None:
                _check_loaded(prof)
                counter[0] += 1
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
            errors.append(exc)
            return


def test_concurrent_promotions_never_tear_the_reference_threads(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    store = mg.ProfileStore(root)
    store.promote("churn", "data", _wide_profile(0))  # so every load has something to read
    done = threading.Event()
    errors: list[BaseException] = []
    counts = [[0] for _ in range(3)]
    readers = [threading.Thread(target=_read_until, args=(store, done, errors, c)) for c in counts]
    writers = [threading.Thread(target=_promote_many, args=(root, w)) for w in range(WRITERS)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert errors == []
    assert all(c[0] > 0 for c in counts)
    _check_loaded(store.load("churn", "data"))
    leftovers = [p.name for p in (tmp_path / "store" / "churn").iterdir() if p.name != "data.json"]
    assert leftovers == []  # no temporary files left behind


def test_concurrent_promotions_never_tear_the_reference_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    store = mg.ProfileStore(root)
    store.promote("churn", "data", _wide_profile(0))
    # spawn, not fork: a forked child would inherit whatever threads and handlers the session started (the
    # Prefect harness's log and event workers), which has nothing to do with the store under test
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_promote_many, args=(root, w, _wide_profile(w).model_dump_json()))
             for w in range(4)]
    for p in procs:
        p.start()
    errors: list[BaseException] = []
    count = [0]
    _read_until(store, None, errors, count, procs)
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * 4
    assert errors == []
    _check_loaded(store.load("churn", "data"))


# -- the guard's use of the store --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batches() -> list[pd.DataFrame]:
    return [churn_frame(5_000, seed=s) for s in (61, 62, 63)]


def test_first_run_notes_then_promotes_and_second_run_uses_reference(tmp_path: Path,
                                                                    batches: list[pd.DataFrame]) -> None:
    root = tmp_path / "profiles"
    guard = mg.Guard("churn", default_suite=True, label="churned", store=root)
    first = guard.run(batches[0])
    assert first.status == "pass"
    assert any("no reference yet" in n for n in first.notes)
    stored = mg.ProfileStore(root).load("churn", "data")
    assert stored is not None and stored.rows == 5_000
    assert stored.columns["user_id"].unique

    second = guard.run(batches[1])
    assert second.status == "pass", [(f.code, f.message) for f in second.findings]
    assert second.notes == []
    assert second.checks_run > first.checks_run  # the default suite ran this time

    # the reference is used: a broken batch is caught against it
    broken = guard.run(batches[2].assign(monthly_spend_usd=batches[2]["monthly_spend_usd"] * 100))
    assert broken.status == "fail"
    assert "drift.numeric" in {f.code for f in broken.findings}


def test_failing_run_does_not_promote(tmp_path: Path, batches: list[pd.DataFrame]) -> None:
    root = tmp_path / "profiles"
    guard = mg.Guard("churn", default_suite=True, store=root)
    guard.run(batches[0])
    before = (root / "churn" / "data.json").read_bytes()
    bad = batches[1].iloc[:0]
    assert guard.run(bad).status == "fail"
    assert (root / "churn" / "data.json").read_bytes() == before
    # an error (unreadable source) does not promote either
    assert guard.run(str(tmp_path / "missing.parquet")).status == "error"
    assert (root / "churn" / "data.json").read_bytes() == before


def test_warn_promotes_and_promote_false_does_not(tmp_path: Path, batches: list[pd.DataFrame]) -> None:
    root = tmp_path / "profiles"
    store = mg.ProfileStore(root)
    warn_check = mg.NullRate(column="avg_session_min", max=0.0, severity="warn")
    guard = mg.Guard("g", [warn_check], store=store)
    assert guard.run(batches[0], promote=False).status == "warn"
    assert store.load("g") is None
    assert guard.run(batches[0]).status == "warn"
    assert store.load("g") is not None


def test_memory_fsspec_store(batches: list[pd.DataFrame]) -> None:
    url = f"memory://mlguard-{uuid.uuid4().hex}/profiles"
    guard = mg.Guard("churn", default_suite=True, store=url)
    assert guard.run(batches[0]).status == "pass"
    store = mg.ProfileStore(url)
    ref = store.load("churn", "data")
    assert ref is not None and ref.rows == 5_000
    second = guard.run(batches[1])
    assert second.status == "pass" and second.notes == []
    assert store.load("churn", "other") is None


def test_store_keys_are_validated(tmp_path: Path) -> None:
    store = mg.ProfileStore(tmp_path)
    prof = _wide_profile(1)
    for bad in ("../escape", "a/b", "", ".."):
        with pytest.raises(mg.SpecError, match="store key"):
            store.promote(bad, "data", prof)
    with pytest.raises(mg.SpecError):
        store.load("ok", "with space")


def test_corrupt_reference_is_a_source_error(tmp_path: Path, batches: list[pd.DataFrame]) -> None:
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "data.json").write_text('{"rows": 1, "columns": {"x": ')
    with pytest.raises(mg.SourceError, match="not a valid profile"):
        mg.ProfileStore(tmp_path).load("churn")
    report = mg.Guard("churn", default_suite=True, store=tmp_path).run(batches[0])
    assert report.status == "error"
    assert report.error is not None and report.error.type == "SourceError"
