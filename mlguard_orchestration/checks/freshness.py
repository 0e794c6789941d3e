# PLACEHOLDER — being written by a helper; will be replaced.
from typing import Literal
from mlguard_orchestration.checks.base import ScanCheck
class Freshness(ScanCheck):
    kind: Literal["freshness"] = "freshness"
