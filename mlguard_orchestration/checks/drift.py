"""Drift against a reference profile: numeric and categorical distributions, null rates, unseen categories,
the label's distribution.

Decisions use effect sizes — PSI on the reference's quantile bins for numbers, Jensen–Shannon distance for
categories, absolute changes in rates — never a p-value alone, which fires on any million-row batch. Small
batches get a noise allowance (a PSI of (bins-1)/n is expected from sampling alone), so neither end cries wolf.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from mlguard_orchestration._sql import literal_list
from mlguard_orchestration.checks.base import ScanCheck, TableContext, rate
from mlguard_orchestration.diagnose.drift import category_causes, distribution_causes
from mlguard_orchestration.profile import QUANTILE_LEVELS, ColumnProfile
from mlguard_orchestration.report import Finding, Severity
from mlguard_orchestration.sources import NUMERIC_KINDS

_EPS = 1e-4


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class _ReferenceCheck(ScanCheck):
    """Base: checks over a set of columns (all suitable reference columns by default)."""

    columns_: list[str] | None = Field(None, alias="columns")
    needs_reference: ClassVar[bool] = True
    model_config = ConfigDict(**ScanCheck.model_config, populate_by_name=True)

    _as_list = field_validator("columns_", mode="before")(classmethod(lambda cls, v: _as_list(v)))

    def columns(self) -> list[str]:
        return list(self.columns_ or [])

    def label(self) -> str:
        return f"{self.kind}({', '.join(self.columns_)})" if self.columns_ else self.kind

    def _pairs(self, ctx: TableContext, roles: tuple[str, ...]) -> list[tuple[ColumnProfile, ColumnProfile]]:
        """(batch, reference) profiles of the columns this check covers."""
        ref = ctx.require_reference(self.label())
        assert ctx.profile is not None
        names = self.columns_ or [n for n, c in ref.columns.items() if c.role in roles and not c.unique]
        return [(ctx.profile.columns[n], ref.columns[n]) for n in names
                if n in ctx.profile.columns and n in ref.columns and ref.columns[n].role in roles]

    def _severity(self, value: float, warn: float, fail: float) -> Severity | None:
        level: Severity | None = "fail" if value >= fail else "warn" if value >= warn else None
        return "warn" if level and self.severity == "warn" else level


def _edges(ref: ColumnProfile) -> tuple[list[float], list[float]]:
    """Interior bin edges from the reference quantiles and the reference's cumulative share at each edge."""
    cum: dict[float, float] = {}
    for value, level in zip(ref.quantiles or [], QUANTILE_LEVELS):
        cum[value] = level  # ties keep the highest level: P(x <= value)
    edges = sorted(cum)[:-1]  # the last edge is the maximum: everything above it is the overflow bin
    return edges, [cum[e] for e in edges]


def psi(expected: list[float], actual: list[float]) -> float:
    e = [max(x, _EPS) for x in expected]
    a = [max(x, _EPS) for x in actual]
    se, sa = sum(e), sum(a)
    return sum((ai / sa - ei / se) * math.log((ai / sa) / (ei / se)) for ei, ai in zip(e, a))


def js_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1])."""
    keys = set(p) | set(q)
    sp, sq = sum(p.values()) or 1.0, sum(q.values()) or 1.0
    total = 0.0
    for k in keys:
        pk, qk = p.get(k, 0.0) / sp, q.get(k, 0.0) / sq
        mk = (pk + qk) / 2
        total += (pk * math.log2(pk / mk) if pk else 0.0) + (qk * math.log2(qk / mk) if qk else 0.0)
    return math.sqrt(max(total / 2, 0.0))


class Drift(_ReferenceCheck):
    """Distribution drift of numeric (PSI) and categorical (Jensen–Shannon distance) columns."""

    kind: Literal["drift"] = "drift"
    psi_warn: float = 0.1
    psi_fail: float = 0.25
    js_warn: float = 0.1
    js_fail: float = 0.2
    min_rows: int = Field(100, ge=1, description="Batches with fewer non-null values are not judged.")

    def _key(self, col: str) -> str:
        return f"drift:{col}:bins"

    def metrics(self, ctx: TableContext) -> dict[str, str]:
        """Counts on the reference's bins, over the scan's uniform sample (~100k values): PSI's sampling
        noise at that size is ~(bins-1)/n ≈ 0.0002, far below any threshold, at 1 % of the cost."""
        assert ctx.plan is not None
        m = {}
        for _, ref in self._numeric(ctx):
            edges, _ = _edges(ref)
            if edges:
                x = ctx.plan.value(ref.name)
                m[self._key(ref.name)] = (f"histogram({x}, {literal_list(edges)}) "
                                          f"FILTER (WHERE {ctx.plan.sampled} AND {x} IS NOT NULL)")
        return m

    def _numeric(self, ctx: TableContext) -> list[tuple[str, ColumnProfile]]:
        ref = ctx.require_reference(self.label())
        names = self.columns_ or [n for n, c in ref.columns.items() if c.role == "numeric" and not c.unique]
        return [(n, ref.columns[n]) for n in names
                if n in ctx.table.columns and n in ref.columns and ref.columns[n].role == "numeric"
                and ref.columns[n].quantiles and ctx.table.columns[n].kind in NUMERIC_KINDS]

    def evaluate(self, ctx: TableContext, values: dict[str, Any]) -> list[Finding]:
        out: list[Finding] = []
        assert ctx.profile is not None
        for name, ref in self._numeric(ctx):
            batch = ctx.profile.columns[name]
            hist = values.get(self._key(name))
            if hist is None:
                continue
            edges, cum = _edges(ref)
            expected = [b - a for a, b in zip([0.0, *cum], [*cum, 1.0])]
            counts = [float(hist.get(e, 0)) for e in edges] + [float(sum(v for k, v in hist.items() if k not in set(edges)))]
            n = sum(counts)  # values in the sample
            if n < self.min_rows:
                continue
            value = psi(expected, counts)
            noise = 2 * (len(expected) - 1) / n
            level = self._severity(value - noise, self.psi_warn, self.psi_fail)
            if level:
                out.append(self.finding(
                    "drift.numeric", f"{name!r} drifted: PSI {value:.3f} (warn ≥ {self.psi_warn}, fail ≥ {self.psi_fail}); "
                    f"median {_g(batch.median)} vs reference {_g(ref.median)}", table=ctx.table.name, columns=[name],
                    value=round(value, 4), threshold=self.psi_fail if level == "fail" else self.psi_warn,
                    evidence=_quantile_evidence(batch, ref), causes=distribution_causes(batch, ref), severity=level))
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
                out.append(self.finding(
                    "drift.categorical", f"{batch.name!r} category mix changed: Jensen–Shannon distance {value:.3f} "
                    f"(warn ≥ {self.js_warn}, fail ≥ {self.js_fail})", table=ctx.table.name, columns=[batch.name],
                    value=round(value, 4), threshold=self.js_fail if level == "fail" else self.js_warn,
                    evidence=_share_evidence(batch, ref), causes=category_causes(batch.name, unseen, ref.categories),
                    severity=level))
        return out


class NullRateDrift(_ReferenceCheck):
    """The share of NULLs must not rise by more than `max_increase` (absolute) over the reference."""

    kind: Literal["null_rate_drift"] = "null_rate_drift"
    max_increase: float = Field(0.05, ge=0.0, le=1.0)

    def evaluate(self, ctx: TableContext, values: dict[str, Any]) -> list[Finding]:
        from mlguard_orchestration.checks.base import cause

        out = []
        roles = ("numeric", "discrete", "categorical", "temporal", "text", "other")
        for batch, ref in self._pairs(ctx, roles):
            p0, p1, n = ref.null_rate, batch.null_rate, batch.count
            if n == 0 or p1 - p0 <= self.max_increase:
                continue
            se = math.sqrt(max(p0 * (1 - p0), 1e-6) / n)
            if (p1 - p0) / se < 4:  # indistinguishable from sampling noise in a small batch
                continue
            out.append(self.finding(
                "drift.null_rate", f"{batch.name!r} is {p1:.1%} NULL against {p0:.1%} in the reference",
                table=ctx.table.name, columns=[batch.name], value=round(p1, 6), threshold=round(p0 + self.max_increase, 6),
                evidence={"nulls": batch.nulls, "rows": n, "reference_null_rate": round(p0, 6)},
                causes=[cause("cause.upstream_nulls", f"{batch.name!r} went from {p0:.1%} to {p1:.1%} missing",
                              0.7 if p1 > 0.2 else 0.5)]))
        return out


class UnseenCategories(_ReferenceCheck):
    """Values of categorical columns that the reference never had: warn above `warn_share` of rows, fail above
    `fail_share`. Only columns whose reference lists every category are judged."""

    kind: Literal["unseen_categories"] = "unseen_categories"
    warn_share: float = Field(0.001, ge=0.0, le=1.0)
    fail_share: float = Field(0.01, ge=0.0, le=1.0)

    def evaluate(self, ctx: TableContext, values: dict[str, Any]) -> list[Finding]:
        out = []
        for batch, ref in self._pairs(ctx, ("categorical", "discrete")):
            if not ref.categories_complete or batch.categories is None or not batch.non_null:
                continue
            assert ref.categories is not None
            unseen = {k: v for k, v in batch.categories.items() if k not in ref.categories}
            share = rate(sum(unseen.values()) + batch.categories_other, batch.non_null)
            level = self._severity(share, self.warn_share, self.fail_share) if unseen else None
            if level is None or share <= self.warn_share:
                continue
            shown = dict(sorted(unseen.items(), key=lambda kv: -kv[1])[:10])
            out.append(self.finding(
                "drift.unseen_categories",
                f"{share:.2%} of {batch.name!r} are values the reference never had: "
                + ", ".join(repr(k) for k in list(shown)[:5]), table=ctx.table.name, columns=[batch.name],
                value=round(share, 6), threshold=self.fail_share if level == "fail" else self.warn_share,
                evidence={"unseen": shown, "unseen_values": len(unseen)},
                causes=category_causes(batch.name, unseen, ref.categories), severity=level))
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

    def evaluate(self, ctx: TableContext, values: dict[str, Any]) -> list[Finding]:
        ref = ctx.require_reference(self.label()).columns.get(self.column)
        assert ctx.profile is not None
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
            evidence = {"shares": {k: round(v, 4) for k, v in list(q.items())[:20]},
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


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _quantile_evidence(batch: ColumnProfile, ref: ColumnProfile) -> dict[str, Any]:
    pick = [1, 5, 10, 15, 19]  # p5, p25, p50, p75, p95
    return {"quantiles": {f"p{round(QUANTILE_LEVELS[i] * 100)}": [_r(batch.quantiles, i), _r(ref.quantiles, i)]
                          for i in pick}, "columns_of_pairs": ["batch", "reference"],
            "mean": [batch.mean, ref.mean]}


def _r(q: list[float] | None, i: int) -> float | None:
    return None if not q else float(f"{q[i]:.6g}")


def _share_evidence(batch: ColumnProfile, ref: ColumnProfile) -> dict[str, Any]:
    assert batch.categories is not None and ref.categories is not None
    keys = list(dict.fromkeys([*list(ref.categories)[:10], *list(batch.categories)[:10]]))
    return {"shares": {k: [round(rate(batch.categories.get(k, 0), batch.non_null), 4),
                           round(rate(ref.categories.get(k, 0), ref.non_null), 4)] for k in keys},
            "columns_of_pairs": ["batch", "reference"]}


__all__ = ["Drift", "LabelDrift", "NullRateDrift", "UnseenCategories", "js_distance", "psi"]
