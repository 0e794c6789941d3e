"""`mlguard check` exits 0 pass/warn, 1 a check failed, 2 the guard itself could not run — also when what
cannot be read or written is the spec, the reference or an output file. A scheduler must never take a broken
guard for bad data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def mlguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlguard_orchestration.cli", *args], capture_output=True,
                          text=True, check=False, cwd=cwd, env={"COLUMNS": "160", "PATH": ""})


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=2_000), "plan": rng.choice(["a", "b"], 2_000)}).to_parquet(d / "data.parquet")
    (d / "good.yaml").write_text("name: g\nchecks:\n  - {kind: row_count, min: 1}\n")
    (d / "spec_dir.yaml").mkdir()
    (d / "latin1.yaml").write_bytes("name: gärten\n".encode("latin-1"))
    (d / "deep.yaml").write_text("checks: " + "[" * 30_000 + "]" * 30_000)
    (d / "nonsense.yaml").write_text("checks:\n  - {kind: row_count, min: 10, max: 1}\n")
    (d / "ref_dir").mkdir()
    (d / "locked").write_text("a file, so nothing can be written below it")
    return d


CASES = {
    "spec is a directory": (["--spec", "spec_dir.yaml"], "not a regular file"),
    "spec is not UTF-8": (["--spec", "latin1.yaml"], "not UTF-8"),
    "spec nests too deep": (["--spec", "deep.yaml"], "nests deeper"),
    "spec says nonsense": (["--spec", "nonsense.yaml"], "must not exceed"),
    "reference is a directory": (["--reference", "ref_dir"], "is a directory"),
    "report cannot be written": (["--spec", "good.yaml", "--report", "locked/report.json"], "cannot write --report"),
    "nothing to check": ([], "nothing to check"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_guard_own_trouble_exits_2(ws: Path, case: str) -> None:
    args, words = CASES[case]
    proc = mlguard("check", "data.parquet", *args, cwd=ws)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert words in " ".join(out.split()), out
    assert "Traceback" not in out


def test_profile_output_that_cannot_be_written_exits_2(ws: Path) -> None:
    proc = mlguard("profile", "data.parquet", "-o", "locked/ref.json", cwd=ws)
    assert proc.returncode == 2 and "cannot write -o/--output" in proc.stderr and "Traceback" not in proc.stderr


def test_pass_and_fail_keep_their_codes(ws: Path) -> None:
    assert mlguard("check", "data.parquet", "--spec", "good.yaml", cwd=ws).returncode == 0
    (ws / "strict.yaml").write_text("checks:\n  - {kind: row_count, min: 1000000}\n")
    assert mlguard("check", "data.parquet", "--spec", "strict.yaml", cwd=ws).returncode == 1
    assert os.path.exists(ws / "data.parquet")
