"""mlguard-orchestration: guards that stop a broken ML pipeline at the task where it broke, with a diagnosis.

    import mlguard_orchestration as mg

    guard = mg.Guard("features", checks=[mg.NullRate(column="plan", max=0.01)], default_suite=True,
                     store=".mlguard/profiles")
    report = guard.run("data/features.parquet")
    report.raise_for_status()

The core imports neither Airflow, Prefect nor torch; the adapters live in subpackages.
"""

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
from mlguard_orchestration.report import Cause, Finding, Report
from mlguard_orchestration.sources import Sql
from mlguard_orchestration.spec import GuardSpec, load_spec
from mlguard_orchestration.store import ProfileStore, ReferencePolicy
from mlguard_orchestration.suite import ColumnRule, SuiteOptions

__version__ = "0.1.0"

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
