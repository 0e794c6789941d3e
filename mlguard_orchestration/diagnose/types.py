"""Why a column's type changed: numbers or timestamps that arrive as text (a CSV hop, a cast that lost the
type). One bounded probe over the one column, run only when a type mismatch was found, counting how many of
its values parse — a share, never a value, so nothing sensitive reaches the report."""

from __future__ import annotations

from mlguard_orchestration.checks.base import TableContext
from mlguard_orchestration.engines.requests import Col, Count, NullCount, ScanRequest
from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS

PARSE_SHARE = 0.9  # at least this share of the non-null values must parse for the cause to be named


def text_type_causes(ctx: TableContext, column: str, expected_kinds: frozenset[str]) -> list[Cause]:
    """`cause.numbers_as_text` / `cause.times_as_text` when a text column was expected to hold numbers or
    timestamps and most of its values parse as such."""
    col = ctx.table.columns.get(column)
    if col is None or col.kind != "string":
        return []
    wants_number = bool(expected_kinds & NUMERIC_KINDS)
    wants_time = bool(expected_kinds & TEMPORAL_KINDS)
    if not (wants_number or wants_time):
        return []
    asked: list[ScanRequest] = [Count(), NullCount(column), NullCount(Col(column, "number")), NullCount(Col(column, "epoch"))]
    rows, nulls, not_numbers, not_times = (m.value for m in ctx.engine.measure(ctx.table, asked).values())
    n, numbers, times = rows - nulls, rows - not_numbers, rows - not_times
    if not n:
        return []
    if wants_number and numbers / n >= PARSE_SHARE:
        return [cause("cause.numbers_as_text",
                      f"numbers arrive as text: {numbers / n:.0%} of {column!r}'s values parse as numbers "
                      "(a CSV hop or a cast lost the type)", 0.9 if numbers == n else 0.8,
                      {"parse_share": round(numbers / n, 4), "values": int(n)})]
    if wants_time and times / n >= PARSE_SHARE:
        return [cause("cause.times_as_text",
                      f"timestamps arrive as text: {times / n:.0%} of {column!r}'s values parse as timestamps "
                      "(a CSV or JSON hop lost the type)", 0.9 if times == n else 0.8,
                      {"parse_share": round(times / n, 4), "values": int(n)})]
    return []
