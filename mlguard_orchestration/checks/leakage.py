# PLACEHOLDER — being written by a helper; will be replaced.
from typing import Literal
from mlguard_orchestration.checks.base import QueryCheck, ScanCheck
class TrainTestOverlap(QueryCheck):
    kind: Literal["train_test_overlap"] = "train_test_overlap"
class GroupOverlap(QueryCheck):
    kind: Literal["group_overlap"] = "group_overlap"
class TargetLeakage(QueryCheck):
    kind: Literal["target_leakage"] = "target_leakage"
class PointInTime(ScanCheck):
    kind: Literal["point_in_time"] = "point_in_time"
