"""The public namespace is deliberate: this test pins it, and the core never imports an orchestrator."""

from __future__ import annotations

import subprocess
import sys

import mlguard_orchestration as mg

PUBLIC = {
    "AllowedValues", "Cause", "ColumnProfile", "Drift", "DuplicateRows", "Finding", "Finite", "Freshness",
    "Guard", "GuardFailed", "GuardSpec", "GroupOverlap", "JoinKeys", "LabelDrift", "MlguardError", "NullRate",
    "NullRateDrift", "Pattern", "PointInTime", "ProfileStore", "Range", "Report", "RowCount", "RowCountChange",
    "Schema", "SourceError", "SpecError", "Sql", "SqlTable", "TableProfile", "TargetLeakage", "TrainTestOverlap", "Unique",
    "UnseenCategories", "build_profile", "explain", "load_spec", "__version__",
    "Champion", "Change", "Fingerprint", "GateSpec", "evaluate_gate", "register_champion",
    "ColumnRule", "ReferencePolicy", "ReferenceRange", "SuiteOptions", "TimeDrift",
}


def test_public_names_are_pinned() -> None:
    assert set(mg.__all__) == PUBLIC
    for name in mg.__all__:
        assert hasattr(mg, name), name


BLOCKED = ("airflow", "prefect", "torch")

_PROBE = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None   # any `import name` now raises ImportError, as if not installed
import pandas as pd
import mlguard_orchestration as mg
import mlguard_orchestration.cli
report = mg.Guard("g", checks=[mg.NullRate(column="x", max=0.0)]).run(pd.DataFrame({{"x": [1.0, None]}}))
assert report.status == "fail", report.status
loaded = sorted(m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] in {blocked!r})
assert not loaded, loaded
print("core-ok")
"""


def test_core_imports_and_runs_without_airflow_prefect_or_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(blocked=BLOCKED)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "core-ok" in proc.stdout


def test_importing_the_package_loads_no_engine() -> None:
    """The root namespace is lazy: `import mlguard_orchestration` (every CLI call, every spawned worker) loads
    neither DuckDB, pandas nor pyarrow until a name that needs them is used."""
    probe = ("import sys, mlguard_orchestration as mg\n"
             "heavy = sorted(m for m in ('duckdb', 'pandas', 'pyarrow', 'numpy', 'fsspec') if m in sys.modules)\n"
             "assert not heavy, heavy\n"
             "mg.Guard\n"
             "assert 'duckdb' in sys.modules\n"
             "print('lazy-ok')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "lazy-ok" in out.stdout, out.stderr


def test_checks_package_exports_every_check() -> None:
    """checks.__all__ is spelled out for type checkers: it must still name every check."""
    from mlguard_orchestration import checks

    assert {c.__name__ for c in checks.ALL_CHECKS} <= set(checks.__all__)
    for name in checks.__all__:
        assert hasattr(checks, name), name
