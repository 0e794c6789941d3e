"""A guard run as data-quality lineage: per input table, its row count and column statistics and the
assertions the guard made about it — what OpenLineage's `DataQualityMetrics` and `DataQualityAssertions`
facets carry, so catalogs (Marquez, DataHub, …) show the verdicts next to the datasets.

Plain dicts shaped like those facets; no OpenLineage import here (the Airflow adapter builds the facet objects).
The guard reports findings, not every passing check, so each table gets one assertion per finding
(`success: false`, its severity, the measured value and the limit) and one for the guard as a whole
(`assertion: "mlguard"`, success when the guard passed, the counts of failed and warning findings). Bounded:
at most MAX_COLUMNS columns and MAX_ASSERTIONS assertions per table; no raw values, only statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlguard_orchestration.profile import QUANTILE_LEVELS, TableProfile
from mlguard_orchestration.report import Report

MAX_COLUMNS = 200
MAX_ASSERTIONS = 200
_SEVERITY = {"fail": "error", "warn": "warn"}


def dataset_name(source: str, guard: str, table: str) -> tuple[str, str]:
    """(namespace, name) of a table's dataset by OpenLineage's naming: an object-store URI splits into its
    bucket and key, a local path is `file` and the path; anything else (a DataFrame, a query) is named after
    the guard and the table in the `mlguard` namespace."""
    if "://" in source and " " not in source:
        scheme, rest = source.split("://", 1)
        bucket, _, key = rest.partition("/")
        return (f"{scheme}://{bucket}", key or "/") if scheme != "file" else ("file", "/" + rest.lstrip("/"))
    if source.startswith("/") and "\n" not in source:
        return "file", source
    return "mlguard", f"{guard}.{table}"


def quality(report: Report, profiles: Mapping[str, TableProfile] | None = None) -> list[dict[str, Any]]:
    """One entry per input table: {table, namespace, name, rows, columns, assertions}."""
    profiles = profiles or {}
    out = []
    names = list(report.tables) or sorted({f.table for f in report.findings if f.table}) or ["data"]
    for table in names:
        summary = report.tables.get(table)
        namespace, name = dataset_name(summary.source if summary else "", report.guard, table)
        prof = profiles.get(table)
        out.append({"table": table, "namespace": namespace, "name": name,
                    "rows": prof.rows if prof else (summary.rows if summary else None),
                    "columns": _columns(prof) if prof else {}, "assertions": _assertions(report, table, names)})
    return out


def _columns(prof: TableProfile) -> dict[str, dict[str, Any]]:
    out = {}
    for name, col in list(prof.columns.items())[:MAX_COLUMNS]:
        numeric = col.role in ("numeric", "discrete")
        quantiles = ({f"{q:g}": v for q, v in zip(QUANTILE_LEVELS, col.quantiles)
                      if q in (0.05, 0.25, 0.5, 0.75, 0.95)} if numeric and col.quantiles else {})
        out[name] = {"nullCount": col.nulls, "distinctCount": col.distinct, "count": float(col.count),
                     "min": col.min if numeric else None, "max": col.max if numeric else None,
                     "quantiles": quantiles}
    return out


def _assertions(report: Report, table: str, tables: list[str]) -> list[dict[str, Any]]:
    mine = [f for f in report.findings if f.table == table or (f.table is None or f.table not in tables)]
    failed = sum(f.severity == "fail" for f in mine)
    warned = sum(f.severity == "warn" for f in mine)
    whole = {"assertion": "mlguard", "name": report.guard[:200], "success": report.status in ("pass", "warn"),
             "severity": "error", "description": f"{report.checks_run} checks: {failed} failed, {warned} warned"
             + (f"; the guard could not run: {report.error.message[:300]}" if report.error else ""),
             "actual": report.status}
    out = [whole]
    for f in mine[: MAX_ASSERTIONS - 1]:
        out.append({"assertion": f.code, "name": f.check[:200], "success": False,
                    "severity": _SEVERITY[f.severity], "column": f.columns[0][:200] if f.columns else None,
                    "description": f.message[:500],
                    "expected": None if f.threshold is None else str(f.threshold)[:100],
                    "actual": None if f.value is None else str(f.value)[:100]})
    return out
