"""Every check, by family. Each is a pydantic spec with a `kind` discriminator, so a YAML/JSON spec file
entry `{kind: null_rate, column: plan, max: 0.01}` and `NullRate(column="plan", max=0.01)` are the same."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mlguard_orchestration.checks.base import Check, QueryCheck, ScanCheck
from mlguard_orchestration.checks.drift import Drift, LabelDrift, NullRateDrift, UnseenCategories
from mlguard_orchestration.checks.freshness import Freshness
from mlguard_orchestration.checks.joins import JoinKeys
from mlguard_orchestration.checks.leakage import GroupOverlap, PointInTime, TargetLeakage, TrainTestOverlap
from mlguard_orchestration.checks.schema import (
    AllowedValues,
    Finite,
    NullRate,
    Pattern,
    Range,
    ReferenceRange,
    Schema,
    Unique,
)
from mlguard_orchestration.checks.time import TimeDrift
from mlguard_orchestration.checks.volume import DuplicateRows, RowCount, RowCountChange

ALL_CHECKS: tuple[type[Check], ...] = (
    Schema, NullRate, Range, Finite, AllowedValues, Pattern, Unique, ReferenceRange,
    RowCount, RowCountChange, DuplicateRows,
    JoinKeys,
    Freshness, TimeDrift,
    Drift, NullRateDrift, UnseenCategories, LabelDrift,
    TrainTestOverlap, GroupOverlap, TargetLeakage, PointInTime,
)

AnyCheck = Annotated[
    Schema | NullRate | Range | Finite | AllowedValues | Pattern | Unique | ReferenceRange | RowCount | RowCountChange
    | DuplicateRows | JoinKeys | Freshness | TimeDrift | Drift | NullRateDrift | UnseenCategories | LabelDrift
    | TrainTestOverlap | GroupOverlap | TargetLeakage | PointInTime,
    Field(discriminator="kind"),
]

# spelled out (not built from ALL_CHECKS) so that type checkers see what the package exports
__all__ = [
    "ALL_CHECKS",
    "AllowedValues",
    "AnyCheck",
    "Check",
    "Drift",
    "DuplicateRows",
    "Finite",
    "Freshness",
    "GroupOverlap",
    "JoinKeys",
    "LabelDrift",
    "NullRate",
    "NullRateDrift",
    "Pattern",
    "PointInTime",
    "QueryCheck",
    "Range",
    "ReferenceRange",
    "RowCount",
    "RowCountChange",
    "ScanCheck",
    "Schema",
    "TargetLeakage",
    "TimeDrift",
    "TrainTestOverlap",
    "Unique",
    "UnseenCategories",
]
