"""The registered model (champion): registering it, reading it back, and comparing a candidate with it.

A gate compares a candidate with the champion only on the same evaluation data, so the champion record keeps
the evaluation set's row count and a hash of its targets next to the metrics. `register_champion` is what the
register step calls after a passing gate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.gate.metrics import gain as metric_gain
from mlguard_orchestration.gate.metrics import relative as metric_relative
from mlguard_orchestration.gate.metrics import shortfall as metric_shortfall
from mlguard_orchestration.gate.run import GateRun
from mlguard_orchestration.report import Champion, Report
from mlguard_orchestration.store import ProfileStore


def register_champion(report: Report, store: ProfileStore | str | os.PathLike[str], *,
                      model: str | None = None) -> Champion:
    """Record the model a passing gate evaluated as the new champion of `model` (default: the gate's model).

    Raises SpecError when the report is not a passing gate report: registering a blocked model by accident is
    exactly what the gate exists to prevent."""
    if report.model is None:
        raise SpecError(f"report of {report.guard!r} is not a gate report (it has no model metrics); pass the "
                        "report returned by evaluate_gate(...).")
    if not report.passed:
        raise SpecError(f"gate {report.guard!r} did not pass ({report.status}): refusing to register the model. "
                        f"{report.headline()}")
    name = model or report.model.model
    if not name:
        raise SpecError(f"gate {report.guard!r} names no model: pass model='…' here or in the GateSpec.")
    champion = Champion(model=name, metrics=dict(report.model.metrics), eval_rows=report.model.eval_rows,
                        eval_digest=report.model.eval_digest, fingerprint=report.fingerprint)
    (store if isinstance(store, ProfileStore) else ProfileStore(store)).save_champion(champion)
    return champion


def resolve_champion(given: Mapping[str, float] | Champion | None, model: str | None,
                     store: ProfileStore | None) -> Champion | None:
    """The champion to compare with: the one given (a dict of metrics or a record), else the store's."""
    if isinstance(given, Champion):
        return given
    if given is not None:
        return Champion(model=model or "champion", metrics={k: float(v) for k, v in given.items()})
    if model is not None and store is not None:
        return store.load_champion(model)
    return None


def compare_champion(run: GateRun, values: dict[str, float], champ: Champion | None, rows: int, digest: str) -> list[str]:
    """Regressions become findings; jumps far beyond the champion are returned (too good to be true)."""
    if champ is None:
        return []
    run.checks += 1
    if champ.eval_digest is None:
        run.notes.append(f"champion metrics of {champ.model!r} were given by hand: the gate cannot verify "
                          "they were measured on this evaluation data")
    elif champ.eval_digest != digest or champ.eval_rows != rows:
        run.finding("gate.champion_other_data", "champion", f"champion {champ.model!r} was measured on other "
                     f"evaluation data ({champ.eval_rows:,} rows, targets {champ.eval_digest[:10]}…) than this "
                     f"model ({rows:,} rows, targets {digest[:10]}…): metrics not compared", severity="warn",
                     evidence={"champion_rows": champ.eval_rows, "champion_digest": champ.eval_digest,
                               "rows": rows, "digest": digest,
                               "registered_at": champ.registered_at.isoformat()})
        return []
    jumps = []
    for name in sorted(set(values) & set(champ.metrics)):
        higher = run.spec.direction(name)
        if higher is None:
            raise SpecError(f"cannot compare your metric {name!r} with the champion: say whether higher is "
                            f"better with higher_is_better={{{name!r}: True}} (or give it a min/max threshold).")
        v, c = values[name], champ.metrics[name]
        worse = metric_shortfall(name, higher, c, v)
        tol = run.spec.tolerance_for(name)
        if worse > tol:
            how = f"{worse:.1%}" if metric_relative(name) else f"{worse:.4g}"
            run.finding("gate.champion_regression", f"champion({name})",
                         f"{name} is {v:.4g}, worse than the champion {champ.model!r} ({c:.4g}) by {how} "
                         f"(tolerance {tol:g}{' relative' if metric_relative(name) else ''}) on the same "
                         "evaluation data", value=v, threshold=c,
                         evidence={"metric": name, "champion": c, "shortfall": round(worse, 6),
                                   "tolerance": tol, "registered_at": champ.registered_at.isoformat()})
        gain = metric_gain(name, higher, c, v)
        if gain is not None and gain > run.spec.max_jump and -worse > tol:
            jumps.append(f"{name} {v:.4g} removes {gain:.0%} of champion {champ.model!r}'s remaining error "
                         f"({c:.4g}) at once")
    return jumps


def plausible(run: GateRun, values: dict[str, float]) -> list[str]:
    out = []
    for name, limit in run.spec.max_plausible.items():
        run.checks += 1
        higher = run.spec.direction(name)
        v = values[name]
        if (v >= limit) if higher is not False else (v <= limit):
            out.append(f"{name} {v:.4g} is at or beyond {limit:g}, the best believable on this task")
    return out
