"""mlguard-orchestration: guards that stop a broken ML pipeline at the task where it broke, with a diagnosis.

    import mlguard_orchestration as mg

    guard = mg.Guard("features", checks=[mg.NullRate(column="plan", max=0.01)], default_suite=True,
                     store=".mlguard/profiles")
    report = guard.run("data/features.parquet")
    report.raise_for_status()

The core imports neither Airflow, Prefect nor torch; the adapters live in subpackages. Names are imported
lazily, on first use: `import mlguard_orchestration` costs nothing, so every CLI call and every spawned worker
pays only for what it uses.

The layers, lowest first; a module imports its own layer and those below, never one above, and no two modules
import each other, even lazily or only for types (tests/test_layers.py holds the package to this table):

    base      errors, _version, _json, _sql, _paths, _frames, _wide, _zones, distances   no package imports but these
    engines   engines/                     metric requests, and how each engine computes them in one scan
    model     report, catalogue, remote, sources, profile, fingerprint, history, store, lineage, runs
    checks    checks/, diagnose/           specs and judging; evidence -> ranked causes
    guard     guard, suite, spec, html     run the checks on tables; the report as a page
    features  gate/, training/, notify/, readiness
    adapters  adapters, airflow/, prefect/, cli    (airflow/ and prefect/ never import each other)

Airflow and Prefect are imported only in their subpackages, torch only in `training/`. A name two layers need
lives in the lower one (`report.cause`, `distances.rate`); a function-local import is for import time only
(this namespace, the CLI, torch), never to dodge a circle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlguard_orchestration._version import __version__

_WHERE: dict[str, str] = {  # public name -> the module that defines it
    "AllowedValues": "checks",
    "Cause": "report",
    "Champion": "gate",
    "Change": "fingerprint",
    "ColumnProfile": "profile",
    "ColumnRule": "suite",
    "Drift": "checks",
    "DuplicateRows": "checks",
    "Finding": "report",
    "Fingerprint": "fingerprint",
    "Finite": "checks",
    "Freshness": "checks",
    "GateSpec": "gate",
    "GroupOverlap": "checks",
    "Guard": "guard",
    "GuardFailed": "errors",
    "GuardSpec": "spec",
    "JoinKeys": "checks",
    "LabelDrift": "checks",
    "MlguardError": "errors",
    "NullRate": "checks",
    "NullRateDrift": "checks",
    "Pattern": "checks",
    "PointInTime": "checks",
    "ProfileStore": "store",
    "Range": "checks",
    "ReferencePolicy": "store",
    "ReferenceRange": "checks",
    "Report": "report",
    "RowCount": "checks",
    "RowCountChange": "checks",
    "Schema": "checks",
    "SourceError": "errors",
    "SpecError": "errors",
    "Sql": "remote",
    "SqlTable": "remote",
    "SuiteOptions": "suite",
    "TableProfile": "profile",
    "TargetLeakage": "checks",
    "TimeDrift": "checks",
    "TrainTestOverlap": "checks",
    "Unique": "checks",
    "UnseenCategories": "checks",
    "build_profile": "profile",
    "evaluate_gate": "gate",
    "explain": "catalogue",
    "load_spec": "spec",
    "register_champion": "gate",
}
__all__ = [
    "AllowedValues",
    "Cause",
    "Champion",
    "Change",
    "ColumnProfile",
    "ColumnRule",
    "Drift",
    "DuplicateRows",
    "Finding",
    "Fingerprint",
    "Finite",
    "Freshness",
    "GateSpec",
    "GroupOverlap",
    "Guard",
    "GuardFailed",
    "GuardSpec",
    "JoinKeys",
    "LabelDrift",
    "MlguardError",
    "NullRate",
    "NullRateDrift",
    "Pattern",
    "PointInTime",
    "ProfileStore",
    "Range",
    "ReferencePolicy",
    "ReferenceRange",
    "Report",
    "RowCount",
    "RowCountChange",
    "Schema",
    "SourceError",
    "SpecError",
    "Sql",
    "SqlTable",
    "SuiteOptions",
    "TableProfile",
    "TargetLeakage",
    "TimeDrift",
    "TrainTestOverlap",
    "Unique",
    "UnseenCategories",
    "__version__",
    "build_profile",
    "evaluate_gate",
    "explain",
    "load_spec",
    "register_champion",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from mlguard_orchestration.catalogue import explain
    from mlguard_orchestration.checks import (
        AllowedValues,
        Drift,
        DuplicateRows,
        Finite,
        Freshness,
        GroupOverlap,
        JoinKeys,
        LabelDrift,
        NullRate,
        NullRateDrift,
        Pattern,
        PointInTime,
        Range,
        ReferenceRange,
        RowCount,
        RowCountChange,
        Schema,
        TargetLeakage,
        TimeDrift,
        TrainTestOverlap,
        Unique,
        UnseenCategories,
    )
    from mlguard_orchestration.errors import GuardFailed, MlguardError, SourceError, SpecError
    from mlguard_orchestration.fingerprint import Change, Fingerprint
    from mlguard_orchestration.gate import Champion, GateSpec, evaluate_gate, register_champion
    from mlguard_orchestration.guard import Guard
    from mlguard_orchestration.profile import ColumnProfile, TableProfile, build_profile
    from mlguard_orchestration.remote import Sql, SqlTable
    from mlguard_orchestration.report import Cause, Finding, Report
    from mlguard_orchestration.spec import GuardSpec, load_spec
    from mlguard_orchestration.store import ProfileStore, ReferencePolicy
    from mlguard_orchestration.suite import ColumnRule, SuiteOptions
