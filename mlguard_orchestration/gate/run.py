"""One gate evaluation in progress: the spec, the store, the confidence level as a z-score, and what the
judges (predictions.py, champion.py, slices.py, fit.py, features.py) have found so far. Each judge is a
function of the run and the evidence it needs; this object only collects."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from mlguard_orchestration.gate.spec import GateSpec
from mlguard_orchestration.report import Cause, Finding
from mlguard_orchestration.store import ProfileStore


@dataclass
class GateRun:
    spec: GateSpec
    store: ProfileStore | None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: int = 0
    finite: np.ndarray | None = None  # rows with finite predictions, when some are not
    inputs: dict[str, Any] = field(default_factory=dict)  # the fingerprint's view of the evaluation data

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.spec.confidence)

    def finding(self, code: str, check: str, message: str, *, severity: Literal["warn", "fail"] = "fail",
                columns: list[str] | None = None, value: Any = None, threshold: Any = None,
                evidence: dict[str, Any] | None = None, causes: list[Cause] | None = None) -> None:
        self.findings.append(Finding(code=code, check=check, severity=severity, message=message,
                                     columns=columns or [], value=value, threshold=threshold,
                                     evidence=evidence or {}, causes=causes or []))
