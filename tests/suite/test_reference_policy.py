"""The reference's life: last good run (default), a rolling merge of passing runs, or pinned; a warn never
blocks promotion; a failed run's profile waits as a candidate until a person accepts it (Python and CLI),
and every acceptance is logged."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg


def batch(seed: int, n: int = 20_000, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.lognormal(3, 0.4, n) * scale, "plan": rng.choice(["a", "b"], n)})


def test_last_good_is_the_default_and_a_warn_still_promotes(tmp_path: Path) -> None:
    guard = mg.Guard("g", [mg.RowCount(min=1, max=15_000, severity="warn")], default_suite=True, store=tmp_path)
    first = guard.run(batch(1))
    assert first.status == "warn"
    assert guard.store.load("g") is not None  # a warning never blocks promotion
    guard.run(batch(2, n=16_000))
    assert guard.store.load("g").rows == 16_000


def test_rolling_reference_merges_the_last_n_passing_runs(tmp_path: Path) -> None:
    guard = mg.Guard("g", default_suite=True, store=tmp_path, reference_policy="rolling:3")
    for seed in range(5):
        assert guard.run(batch(seed, n=10_000 + seed)).status == "pass"
    ref = guard.store.load("g")
    assert ref.runs == 3 and ref.rows == 10_002 + 10_003 + 10_004
    assert len(list((tmp_path / "g" / "_history" / "data").glob("*.json"))) == 3


def test_a_pinned_reference_stays_until_accepted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    guard = mg.Guard("g", default_suite=True, store=tmp_path, reference_policy={"mode": "pinned"})
    guard.run(batch(1, n=10_000))
    report = guard.run(batch(2, n=11_000))
    assert report.status == "pass" and any("pinned" in n for n in report.notes)
    assert guard.store.load("g").rows == 10_000
    cents = guard.run(batch(3, scale=100))  # a reviewed, intended change: prices now in cents
    assert cents.status == "fail"
    with caplog.at_level(logging.WARNING, logger="mlguard_orchestration"):
        entry = guard.accept("prices are in cents from now on (reviewed by the pricing team)", by="ana")
    assert entry.tables == ["data"] and entry.by == "ana"
    assert "accepted a reviewed change" in caplog.text and "cents" in caplog.text
    assert guard.run(batch(4, scale=100)).status == "pass"
    assert [a.reason for a in guard.store.acceptances("g")] == [entry.reason]


def test_accept_without_a_failed_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(mg.SpecError, match="no failed run to accept"):
        mg.Guard("g", store=tmp_path).accept("nothing to review")
    with pytest.raises(mg.SpecError, match="needs a reason"):
        mg.Guard("g", store=tmp_path).accept("  ")


def test_accept_from_the_command_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = tmp_path / "cents.parquet"
    batch(3, scale=100).to_parquet(data)
    guard = mg.Guard("spend", default_suite=True, store=store)
    guard.run(batch(1))
    assert guard.run(str(data)).status == "fail"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mlguard_orchestration.cli", *args], capture_output=True,
                              text=True, check=False, env={"COLUMNS": "160", "PATH": "", "USER": "ops"})

    proc = cli("accept", "spend", "--store", str(store), "--reason", "cents are intended")
    assert proc.returncode == 0, proc.stderr
    assert "accepted" in proc.stdout and "spend" in proc.stdout
    check = cli("check", str(data), "--store", str(store), "--name", "spend", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert mg.ProfileStore(store).acceptances("spend")[0].by == "ops"
    again = cli("accept", "spend", "--store", str(store), "--reason", "twice")
    assert again.returncode == 2 and "no failed run to accept" in again.stderr


def test_policy_in_a_spec_file_and_bad_policies(tmp_path: Path) -> None:
    spec = tmp_path / "g.yaml"
    spec.write_text("name: g\ndefault_suite: true\nreference_policy: rolling:5\n"
                    "suite: {partition_by: [month], exclude: [row_id], columns: {zip: {role: categorical}}}\n")
    guard = mg.Guard.from_spec(spec)
    assert guard.reference_policy == mg.ReferencePolicy(mode="rolling", runs=5)
    assert guard.suite.partition_by == ["month"] and guard.suite.columns["zip"].role == "categorical"
    spec.write_text("name: g\nreference_policy: sometimes\n")
    with pytest.raises(mg.SpecError, match="reference_policy"):
        mg.load_spec(spec)
