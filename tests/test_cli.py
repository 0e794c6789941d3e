"""The `mlguard` command end to end, as a user runs it: real files, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def mlguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlguard_orchestration.cli", *args], capture_output=True,
                          check=False, text=True, env={"COLUMNS": "160", "PATH": ""})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)

    def frame(n: int, scale: float = 1.0) -> pd.DataFrame:
        return pd.DataFrame({"user_id": np.arange(n), "monthly_spend_usd": rng.lognormal(3, 0.5, n) * scale,
                             "plan": rng.choice(["basic", "premium"], n)})

    paths = {"ref": d / "ref.parquet", "good": d / "good.parquet", "cents": d / "cents.parquet"}
    frame(20_000).to_parquet(paths["ref"])
    frame(20_000).to_parquet(paths["good"])
    frame(20_000, 100.0).to_parquet(paths["cents"])
    paths["spec"] = d / "guards.yaml"
    paths["spec"].write_text("name: spend\ndefault_suite: true\nchecks:\n"
                             "  - {kind: null_rate, column: monthly_spend_usd, max: 0.0}\n")
    paths["profile"] = d / "ref.json"
    return paths


def test_profile_writes_a_reference(files: dict[str, Path]) -> None:
    proc = mlguard("profile", str(files["ref"]), "-o", str(files["profile"]))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(files["profile"].read_text())["rows"] == 20_000


def test_check_passes_clean_data_with_exit_0(files: dict[str, Path]) -> None:
    mlguard("profile", str(files["ref"]), "-o", str(files["profile"]))
    proc = mlguard("check", str(files["good"]), "--spec", str(files["spec"]), "--reference", str(files["profile"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout


def test_check_fails_a_unit_change_with_exit_1_and_names_the_cause(files: dict[str, Path]) -> None:
    mlguard("profile", str(files["ref"]), "-o", str(files["profile"]))
    proc = mlguard("check", str(files["cents"]), "--spec", str(files["spec"]), "--reference",
                   str(files["profile"]), "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "fail"
    codes = {f["code"] for f in report["findings"]}
    assert "drift.numeric" in codes
    causes = [c["code"] for f in report["findings"] for c in f["causes"]]
    assert "cause.unit_change" in causes


def test_guard_error_is_exit_2_not_a_failed_check(files: dict[str, Path], tmp_path: Path) -> None:
    proc = mlguard("check", str(tmp_path / "missing.parquet"), "--spec", str(files["spec"]), "--json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["status"] == "error"
    assert "missing.parquet" in report["error"]["message"]


def test_bad_spec_is_exit_2_with_a_located_message(files: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("checks:\n  - {kind: null_rates, column: x}\n")
    proc = mlguard("check", str(files["good"]), "--spec", str(spec))
    assert proc.returncode == 2
    assert "did you mean 'null_rate'" in proc.stdout.lower()


def test_explain_prints_the_catalogue_entry() -> None:
    proc = mlguard("explain", "cause.unit_change")
    assert proc.returncode == 0
    assert "power of ten" in proc.stdout
    assert mlguard("explain", "nope.nope").returncode == 2
