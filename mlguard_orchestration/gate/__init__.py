"""The evaluate → register gate: metrics, slices, degenerate predictions, overfit, champion comparison and
the too-good-to-be-true leakage path, orchestrator-agnostic (adapters call `run_gate` with `GateInputs`)."""

from mlguard_orchestration.gate.champion import register_champion
from mlguard_orchestration.gate.gate import evaluate_gate
from mlguard_orchestration.gate.inputs import GateInputs, run_gate
from mlguard_orchestration.gate.spec import Bounds, GateSpec
from mlguard_orchestration.report import Champion

__all__ = ["Bounds", "Champion", "GateInputs", "GateSpec", "evaluate_gate", "register_champion", "run_gate"]
