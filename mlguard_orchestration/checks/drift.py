"""Drift against a reference profile: numeric and categorical distributions, null rates, unseen categories,
the label's distribution.

Decisions use effect sizes — PSI on the reference's counted bins for numbers, Jensen–Shannon distance for
categories, absolute changes in rates — never a p-value alone, which fires on any million-row batch. Small
batches get a noise allowance (a PSI of (bins-1)/n is expected from sampling alone), so neither end cries wolf.
With no columns named, every reference column is judged except excluded and partition columns (see `Scope`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mlguard_orchestration.checks.base import (
    Answers,
    ReferenceCheck,
    ScanCheck,
    ScannedTable,
    TableContext,
    ordered,
)
from mlguard_orchestration.diagnose.drift import category_causes, distribution_causes
from mlguard_orchestration.distances import js_distance, psi, rate
from mlguard_orchestration.profile import QUANTILE_LEVELS, ColumnProfile
from mlguard_orchestration.report import Cause, Finding, Severity, cause
from mlguard_orchestration.sources import NUMERIC_KINDS

MIN_BIN_COUNT = 10  # values a bin must expect on the smaller side before PSI is computed on it
EVIDENCE_BINS = 24  # at most this many bins go into a finding's evidence (the report page draws them)


class Drift(ReferenceCheck):
    """Distribution drift of numeric (PSI) and categorical (Jensen–Shannon distance) columns.

    Numbers are compared on the reference's counted bins (`ColumnProfile.bins`): the batch is counted on the
    same edges in its scan, so identical data has identical shares, ties and discrete values included. Both
    sides are ~100k-value uniform samples; PSI's sampling noise, (bins-1)·(1/n₁ + 1/n₂), is allowed for."""

    kind: Literal["drift"] = "drift"
    psi_warn: float = Field(0.1, gt=0)
    psi_fail: float = Field(0.25, gt=0)
    js_warn: float = Field(0.1, gt=0, le=1)
    js_fail: float = Field(0.2, gt=0, le=1)
    min_rows: int = Field(100, ge=1, description="Batches with fewer non-null values are not judged.")

    @model_validator(mode="after")
    def _warn_below_fail(self) -> Drift:
        ordered(("psi_warn", self.psi_warn), ("psi_fail", self.psi_fail))
        ordered(("js_warn", self.js_warn), ("js_fail", self.js_fail))
        return self

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        out: list[Finding] = []
        for batch, ref in self._pairs(ctx, ("numeric",)):
            if ref.bins is None or batch.bins is None or batch.bins.edges != ref.bins.edges:
                continue
            expected, actual = _comparable_bins(batch, ref)
            n, m = sum(actual), sum(expected)
            if n < self.min_rows or not m:
                continue
            value = psi(expected, actual, smoothing=0.5)
            # PSI of two samples of one distribution is about (k-1)(1/n+1/m) ± sqrt(2(k-1))(1/n+1/m)
            dof = len(expected) - 1
            noise = (dof + 3 * math.sqrt(2 * dof)) * (1 / n + 1 / m)
            level = self._severity(value - noise, self.psi_warn, self.psi_fail)
            if level:
                causes = distribution_causes(batch, ref)
                out.append(self.finding(
                    "drift.numeric", f"{batch.name!r} drifted: PSI {value:.3f} (warn ≥ {self.psi_warn}, fail ≥ {self.psi_fail}); "
                    f"median {_g(batch.median)} vs reference {_g(ref.median)}", table=ctx.table.name, columns=[batch.name],
                    value=round(value, 4), threshold=self.psi_fail if level == "fail" else self.psi_warn,
                    evidence=_quantile_evidence(batch, ref), causes=causes, severity=self._judged(level, causes)))
        for batch, ref in self._pairs(ctx, ("categorical", "discrete")):
            if batch.categories is None or ref.categories is None or batch.non_null < self.min_rows:
                continue
            p = {k: float(v) for k, v in ref.categories.items()} | {"\x00other": float(ref.categories_other)}
            q = {k: float(v) for k, v in batch.categories.items()} | {"\x00other": float(batch.categories_other)}
            value = js_distance(p, q)
            noise = math.sqrt(len(p) / batch.non_null)
            level = self._severity(value - noise, self.js_warn, self.js_fail)
            if level:
                unseen = {k: v for k, v in batch.categories.items() if k not in ref.categories}
                causes = _value_causes(ctx, batch, ref, unseen)
                out.append(self.finding(
                    "drift.categorical", f"{batch.name!r} category mix changed: Jensen–Shannon distance {value:.3f} "
                    f"(warn ≥ {self.js_warn}, fail ≥ {self.js_fail})", table=ctx.table.name, columns=[batch.name],
                    value=round(value, 4), threshold=self.js_fail if level == "fail" else self.js_warn,
                    evidence=_share_evidence(batch, ref), causes=causes, severity=self._judged(level, causes)))
        return out


class NullRateDrift(ReferenceCheck):
    """The share of NULLs must not rise by more than `max_increase` (absolute) over the reference. With
    `unexplained='warn'` (the default suite), only an explosion — at least double the reference's share plus
    `max_increase` — fails; a modest rise on a column that is often empty anyway warns."""

    kind: Literal["null_rate_drift"] = "null_rate_drift"
    max_increase: float = Field(0.05, ge=0.0, le=1.0)

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        out = []
        roles = ("numeric", "discrete", "categorical", "temporal", "text", "other")
        for batch, ref in self._pairs(ctx, roles):
            p0, p1, n = ref.null_rate, batch.null_rate, batch.count
            if n == 0 or p1 - p0 <= self.max_increase:
                continue
            se = math.sqrt(max(p0 * (1 - p0), 1e-6) / n)
            if (p1 - p0) / se < 4:  # indistinguishable from sampling noise in a small batch
                continue
            explosion = p1 >= 2 * p0 + self.max_increase
            level: Severity = "fail" if explosion or self.unexplained == "fail" else "warn"
            out.append(self.finding(
                "drift.null_rate", f"{batch.name!r} is {p1:.1%} NULL against {p0:.1%} in the reference",
                table=ctx.table.name, columns=[batch.name], value=round(p1, 6), threshold=round(p0 + self.max_increase, 6),
                evidence={"nulls": batch.nulls, "rows": n, "reference_null_rate": round(p0, 6)},
                causes=[cause("cause.upstream_nulls", f"{batch.name!r} went from {p0:.1%} to {p1:.1%} missing",
                              0.7 if p1 > 0.2 and explosion else 0.5)], severity="warn" if self.severity == "warn" else level))
        return out


class UnseenCategories(ReferenceCheck):
    """Values of categorical columns that the reference never had: warn above `warn_share` of rows, fail above
    `fail_share`, beyond what chance allows (values seen once in the reference predict how many a new batch
    brings). Only columns whose reference lists every category are judged."""

    kind: Literal["unseen_categories"] = "unseen_categories"
    warn_share: float = Field(0.001, ge=0.0, le=1.0)
    fail_share: float = Field(0.01, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _warn_below_fail(self) -> UnseenCategories:
        ordered(("warn_share", self.warn_share), ("fail_share", self.fail_share))
        return self

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        out = []
        for batch, ref in self._pairs(ctx, ("categorical", "discrete")):
            if not ref.categories_complete or batch.categories is None or not batch.non_null:
                continue
            assert ref.categories is not None
            unseen = {k: v for k, v in batch.categories.items() if k not in ref.categories}
            share = rate(sum(unseen.values()) + batch.categories_other, batch.non_null)
            level = self._severity(share - _unseen_allowance(ref, batch.non_null), self.warn_share,
                                   self.fail_share) if unseen else None
            if level is None:
                continue
            shown = dict(sorted(unseen.items(), key=lambda kv: -kv[1])[:10])
            causes = _value_causes(ctx, batch, ref, unseen)
            out.append(self.finding(
                "drift.unseen_categories",
                f"{share:.2%} of {batch.name!r} are values the reference never had: "
                + ", ".join(repr(k) for k in list(shown)[:5]), table=ctx.table.name, columns=[batch.name],
                value=round(share, 6), threshold=self.fail_share if level == "fail" else self.warn_share,
                evidence={"unseen": shown, "unseen_values": len(unseen)},
                causes=causes, severity=self._judged(level, causes)))
        return out


class LabelDrift(ScanCheck):
    """The label's distribution: class shares (categorical/discrete labels) may move by at most `max_shift`
    (absolute); a numeric label's mean by at most `max_shift` reference standard deviations."""

    kind: Literal["label_drift"] = "label_drift"
    column: str
    max_shift: float = Field(0.05, gt=0.0)
    needs_reference: ClassVar[bool] = True

    def columns(self) -> list[str]:
        return [self.column]

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        ref = ctx.require_reference(self.label()).columns.get(self.column)
        batch = ctx.profile.columns[self.column]
        if ref is None or not batch.non_null:
            return []
        if ref.categories is not None and batch.categories is not None:
            p = {k: v / max(ref.non_null, 1) for k, v in ref.categories.items()}
            q = {k: v / max(batch.non_null, 1) for k, v in batch.categories.items()}
            shifts = {k: q.get(k, 0.0) - p.get(k, 0.0) for k in set(p) | set(q)}
            worst = max(shifts, key=lambda k: abs(shifts[k]))
            value = abs(shifts[worst])
            noise = 3 * math.sqrt(max(p.get(worst, 0.0) * (1 - p.get(worst, 0.0)), 1e-6) / batch.non_null)
            if value <= self.max_shift + noise:
                return []
            msg = (f"label {self.column!r}: share of {worst!r} is {q.get(worst, 0):.1%} against {p.get(worst, 0):.1%} "
                   "in the reference")
            evidence: dict[str, Any] = {"shares": {k: round(v, 4) for k, v in list(q.items())[:20]},
                        "reference_shares": {k: round(v, 4) for k, v in list(p.items())[:20]}}
        elif batch.mean is not None and ref.mean is not None and ref.std:
            value = abs(batch.mean - ref.mean) / ref.std
            if value <= self.max_shift:
                return []
            msg = f"label {self.column!r}: mean {batch.mean:.4g} against {ref.mean:.4g} ({value:.2f} reference std)"
            evidence = {"mean": batch.mean, "reference_mean": ref.mean, "reference_std": ref.std}
        else:
            return []
        return [self.finding("drift.label", msg, table=ctx.table.name, value=round(value, 4),
                             threshold=self.max_shift, evidence=evidence)]


def _value_causes(ctx: TableContext, batch: ColumnProfile, ref: ColumnProfile,
                  unseen: dict[str, int]) -> list[Cause]:
    """Causes for changed values of a categorical or discrete column: spellings for text, and for a number
    with few values the same conversions as for any number (its quantiles are profiled too)."""
    assert ref.categories is not None and ctx.reference is not None
    causes = category_causes(batch, ref, unseen, rows_ratio=batch.count / max(ctx.reference.rows_per_run, 1))
    if not causes and batch.kind in NUMERIC_KINDS and ref.kind in NUMERIC_KINDS:
        causes = distribution_causes(batch, ref)
    return causes


def _comparable_bins(batch: ColumnProfile, ref: ColumnProfile) -> tuple[list[float], list[float]]:
    """(reference, batch) counts on the reference's bins. A day-of-month column (integers from 1 to 28–31 on
    both sides) is compared on the days both months have: February's missing 29th–31st are the calendar,
    not drift."""
    assert batch.bins is not None and ref.bins is not None
    expected, actual = [float(c) for c in ref.bins.counts], [float(c) for c in batch.bins.counts]
    if _day_of_month(batch) and _day_of_month(ref):
        last = min(batch.max or 0, ref.max or 0) + 0.5
        keep = [i for i, edge in enumerate(ref.bins.edges) if edge <= last]
        expected, actual = [expected[i] for i in keep], [actual[i] for i in keep]
    return _merge_sparse(expected, actual)


def _merge_sparse(expected: list[float], actual: list[float]) -> tuple[list[float], list[float]]:
    """Merge neighbouring bins until each holds at least MIN_BIN_COUNT values of the smaller side (by the
    reference's shares): PSI on a few dozen values spread over 20 bins measures only the empty bins."""
    m, n = sum(expected), sum(actual)
    if not m or not n:
        return expected, actual
    need = MIN_BIN_COUNT / min(m, n)
    out_e: list[float] = []
    out_a: list[float] = []
    acc_e = acc_a = 0.0
    for e, a in zip(expected, actual):
        acc_e, acc_a = acc_e + e, acc_a + a
        if acc_e / m >= need:
            out_e.append(acc_e)
            out_a.append(acc_a)
            acc_e = acc_a = 0.0
    if acc_e or acc_a:
        if out_e:
            out_e[-1] += acc_e
            out_a[-1] += acc_a
        else:
            out_e, out_a = [acc_e], [acc_a]
    return out_e, out_a


def _day_of_month(col: ColumnProfile) -> bool:
    return col.kind == "integer" and col.min == 1 and col.max is not None and 28 <= col.max <= 31


def _unseen_allowance(ref: ColumnProfile, n: int) -> float:
    """The share of a batch that may be new values by chance: the reference's missing mass (Good–Turing: the
    share of its values seen only once) plus three binomial standard errors of it in a batch of `n`."""
    assert ref.categories is not None
    singletons = sum(1 for v in ref.categories.values() if v == 1)
    missing = singletons / max(ref.non_null, 1)
    return missing + 3 * math.sqrt(max(missing, 1 / max(ref.non_null, 1)) / max(n, 1))


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _quantile_evidence(batch: ColumnProfile, ref: ColumnProfile) -> dict[str, Any]:
    pick = [1, 5, 10, 15, 19]  # p5, p25, p50, p75, p95
    out: dict[str, Any] = {
        "quantiles": {f"p{round(QUANTILE_LEVELS[i] * 100)}": [_r(batch.quantiles, i), _r(ref.quantiles, i)]
                      for i in pick}, "columns_of_pairs": ["batch", "reference"], "mean": [batch.mean, ref.mean]}
    if batch.bins is not None and ref.bins is not None and batch.bins.edges == ref.bins.edges:
        out["bins"] = bins_evidence(ref.bins.edges, batch.bins.counts, ref.bins.counts)
    return out


def bins_evidence(edges: list[float], batch: list[int], reference: list[int],
                  max_bins: int = EVIDENCE_BINS) -> dict[str, Any]:
    """Both sides' counts on the reference's edges, neighbouring bins merged down to at most `max_bins`, so a
    person can see the two distributions (the report page draws them) at a bounded size. Bin i holds
    (edges[i-1], edges[i]]; the first bin everything up to edges[0], the last everything above edges[-1]."""
    n = len(batch)
    if n != len(reference) or n != len(edges) + 1:
        return {}
    step = max(1, math.ceil(n / max_bins))
    groups = [range(i, min(i + step, n)) for i in range(0, n, step)]
    return {"edges": [float(f"{edges[g[-1]]:.6g}") for g in groups[:-1]],
            "batch": [sum(batch[i] for i in g) for g in groups],
            "reference": [sum(reference[i] for i in g) for g in groups]}


def _r(q: list[float] | None, i: int) -> float | None:
    return None if not q else float(f"{q[i]:.6g}")


def _share_evidence(batch: ColumnProfile, ref: ColumnProfile) -> dict[str, Any]:
    assert batch.categories is not None and ref.categories is not None
    keys = list(dict.fromkeys([*list(ref.categories)[:10], *list(batch.categories)[:10]]))
    return {"shares": {k: [round(rate(batch.categories.get(k, 0), batch.non_null), 4),
                           round(rate(ref.categories.get(k, 0), ref.non_null), 4)] for k in keys},
            "columns_of_pairs": ["batch", "reference"]}


__all__ = ["Drift", "LabelDrift", "NullRateDrift", "UnseenCategories", "js_distance", "psi"]
