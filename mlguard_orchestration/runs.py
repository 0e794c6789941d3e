"""A run's bookkeeping, after its checks have judged: attach the run's fingerprint to its report, keep it as the
guard's last good one or list what changed since then, and compare the findings with the guard's previous run.

Its own module because it ties four others together — the report, the store, the fingerprint and the run
history — none of which should know the rest. Both the data guard (`guard.py`) and the model gate call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlguard_orchestration.errors import MlguardError
from mlguard_orchestration.fingerprint import Fingerprint, diff
from mlguard_orchestration.history import RunRecord, SinceLastRun, compare
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import ProfileStore


def record_run(report: Report, store: ProfileStore | None, fingerprint: Fingerprint, *,
               user_packages: Iterable[str] = (), promote: bool = True) -> Report:
    """Attach `fingerprint` to `report`; with a store, keep it as the guard's last good one on pass/warn,
    or, on fail, list what changed since the last good one; and compare the findings with the guard's
    previous run (`since_last_run`), then record this run as the next one's previous (unless `promote` is
    False: a dry run leaves the store as it was). Store trouble becomes a note, never an error: this
    bookkeeping must not decide a run."""
    update: dict[str, Any] = {"fingerprint": fingerprint}
    notes = list(report.notes)
    if store is not None and report.status != "error":  # a run that judged nothing is no "previous run"
        try:
            update["since_last_run"] = _since_last_run(report, store, promote)
        except (MlguardError, OSError) as exc:
            notes.append(f"previous run not compared/recorded: {exc}")
    if store is not None:
        try:
            if report.passed and promote:
                store.save_last_good(report.guard, fingerprint)
            elif report.status == "fail":
                last = store.load_last_good(report.guard)
                if last is None:
                    notes.append("no passing run recorded yet: nothing to compare this run's fingerprint with")
                else:
                    update["changes"] = diff(last, fingerprint, [f.code for f in report.findings],
                                             user_packages=user_packages)
                    if not update["changes"]:
                        notes.append(f"nothing changed since the last good run ({last.created_at:%Y-%m-%d %H:%M}"
                                     " UTC) in packages, hardware, code or input schemas and row counts")
        except (MlguardError, OSError) as exc:
            notes.append(f"run fingerprint not compared/stored: {exc}")
    update["notes"] = notes
    return report.model_copy(update=update)


def _since_last_run(report: Report, store: ProfileStore, record: bool) -> SinceLastRun | None:
    previous = store.load_last_run(report.guard)
    current = RunRecord.of(report.guard, report.status, report.findings, at=report.started_at)
    if record:
        store.save_last_run(report.guard, current)
    return None if previous is None else compare(previous, current)
