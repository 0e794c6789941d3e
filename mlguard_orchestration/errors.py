"""The exception tree.

    MlguardError                 anything this package raises on purpose
    ├── SpecError                the guard was asked something impossible: unknown column, bad threshold
    ├── SourceError              the data could not be read: missing file, corrupt parquet, bad SQL
    └── GuardFailed              the data was read and a check failed; carries the Report

A guard's own problem (SpecError, SourceError) is never reported as failed data: adapters retry the former
kinds and fail fast on GuardFailed. Every error pickles, because orchestrators ship exceptions between
processes.

This is the bottom of the package: it imports nothing of it, so every module can raise these at the top of
its file. `GuardFailed` holds a `Report` but knows it only as something with a headline (`Judged`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar


class Judged(Protocol):
    """What `GuardFailed` needs of the report it carries (`report.Report` is the one implementation)."""

    def headline(self) -> str: ...


R = TypeVar("R", bound=Judged)


class MlguardError(Exception):
    """Base class of every error this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


class SpecError(MlguardError):
    """A check or spec asks for something the data or the rules cannot give (a fix on the user's side)."""


class SourceError(MlguardError):
    """The data could not be read. Often transient (a file not yet written, a database away): retryable."""


class GuardFailed(MlguardError, Generic[R]):
    """The data was read and at least one check failed. `report` holds the full diagnosis (a `Report`)."""

    def __init__(self, report: R) -> None:
        self.report = report
        super().__init__(report.headline())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to `name`, for 'did you mean …?' hints; None when nothing is close."""
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if hits:
        return lowered[hits[0]]
    prefixed = [c for c in options if c.lower().startswith(name.lower()) or name.lower().startswith(c.lower())]
    return prefixed[0] if prefixed else None


def suggestion(hint: str | None) -> str:
    """The ' Did you mean …?' sentence every error ends with when a close name exists (else nothing)."""
    return f" Did you mean {hint!r}?" if hint else ""


def missing_column_error(column: str, available: Iterable[str], where: str) -> SpecError:
    """The standard message for a column that is not there: what, where, what exists, the closest name."""
    cols = list(available)
    hint = did_you_mean(column, cols)
    shown = ", ".join(cols[:40]) + (f", … ({len(cols)} in all)" if len(cols) > 40 else "")
    msg = f"column {column!r} not found in {where}. Available columns: {shown}."
    return SpecError(msg + suggestion(hint))


def missing_table_error(table: str, available: Iterable[str], asked_by: str) -> SpecError:
    """The standard message for a table the guard was not given: who asked for it (`asked_by`, e.g. "check
    null_rate(x) reads"), the tables there are, the closest name."""
    tables = sorted(available)
    return SpecError(f"{asked_by} table {table!r}, but the guard was given tables {tables}."
                     + suggestion(did_you_mean(table, tables)))
