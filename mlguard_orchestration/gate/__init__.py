"""The evaluate → register gate: metrics, slices, degenerate predictions, overfit, champion comparison and
the too-good-to-be-true leakage path, orchestrator-agnostic (adapters call `evaluate_gate`)."""

from mlguard_orchestration.gate.champion import Champion, register_champion
from mlguard_orchestration.gate.gate import Bounds, GateSpec, evaluate_gate

__all__ = ["Bounds", "Champion", "GateSpec", "evaluate_gate", "register_champion"]
