"""Leakage checks: is the evaluation honest?

- TrainTestOverlap: identical rows on both sides of the split (row hashes, one semi-join).
- GroupOverlap: the same entity (user, patient, store …) on both sides of the split.
- TargetLeakage: a single feature predicts the label almost perfectly (one GROUP BY GROUPING SETS query
  over per-feature bins, planned in `leakage_plan`; scores are leave-one-out, so tiny bins cannot fake a
  perfect score: `leakage_scores`).
- PointInTime: features stamped at or after the label's time; on failure, one probe query tells whether a
  whole-hour shift (a timezone mix-up) explains it.

None of them puts raw values into a report: evidence is counts and rates (plus, for a two-valued label, which
value was taken as positive).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from mlguard_orchestration._sql import ident
from mlguard_orchestration.checks.base import (
    Answers,
    PlannedTable,
    QueryCheck,
    RunContext,
    ScanCheck,
    ScannedTable,
    TableContext,
    names,
)
from mlguard_orchestration.checks.leakage_plan import (
    FEATURES_PER_QUERY,
    Feature,
    Label,
    plan_features,
    plan_label,
    prequery,
    score,
)
from mlguard_orchestration.diagnose.timing import naive_in_pair, point_in_time_cause
from mlguard_orchestration.distances import rate
from mlguard_orchestration.engines.requests import (
    And,
    Col,
    CompareColumns,
    CountIf,
    IsNull,
    MaxGap,
    Not,
    ScanRequest,
)
from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.report import Finding, cause
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Column, Table

# -- shared helpers ---------------------------------------------------------------------------------------


def _comparable(a: Column, b: Column) -> tuple[str, str, bool]:
    """Expressions for the same column on two tables that compare (and hash) alike; True when cast."""
    if a.sql_type == b.sql_type:
        return a.q, b.q, False
    if a.kind == "integer" and b.kind == "integer":
        return f"{a.q}::HUGEINT", f"{b.q}::HUGEINT", True
    if a.kind in NUMERIC_KINDS and b.kind in NUMERIC_KINDS:
        return f"{a.q}::DOUBLE", f"{b.q}::DOUBLE", True
    if a.kind == b.kind == "timestamp" or {a.kind, b.kind} <= {"timestamp", "date"}:
        return f"{a.q}::TIMESTAMP", f"{b.q}::TIMESTAMP", True
    if a.kind == b.kind == "timestamp_tz":
        return a.q, b.q, False
    return f"{a.q}::VARCHAR", f"{b.q}::VARCHAR", True


def _pair_tables(check: QueryCheck, ctx: RunContext, train: str, test: str) -> tuple[Table, Table]:
    tr = ctx.table(train, check.label()).table
    te = ctx.table(test, check.label()).table
    return tr, te


# -- train / test overlap ---------------------------------------------------------------------------------


class TrainTestOverlap(QueryCheck):
    """At most `max_rate` of the test rows may also appear, identically, in the training table.

    Rows are compared on `columns` (default: every column the two tables share, minus `exclude` — exclude a
    row id or a split marker, which would make every row unique)."""

    kind: Literal["train_test_overlap"] = "train_test_overlap"
    train: str
    test: str
    columns_: list[str] | None = Field(None, alias="columns")
    exclude: list[str] = Field(default_factory=list)
    max_rate: float = Field(0.0, ge=0.0, le=1.0)

    model_config = ConfigDict(**QueryCheck.model_config, populate_by_name=True)

    _lists = field_validator("columns_", "exclude", mode="before")(classmethod(lambda cls, v: names(v)))

    @model_validator(mode="after")
    def _sides(self) -> TrainTestOverlap:
        if self.train == self.test:
            raise ValueError(f"train and test are the same table {self.train!r}")
        if self.columns_ is not None and not self.columns_:
            raise ValueError("columns must name at least one column (or be left out for all shared columns)")
        return self

    def label(self) -> str:
        return f"train_test_overlap({self.train}, {self.test})"

    def columns(self) -> list[str]:
        return list(self.columns_ or [])

    def tables(self) -> list[str]:
        return [self.train, self.test]

    def _resolve(self, tr: Table, te: Table) -> list[str]:
        for name in self.exclude:
            if name not in tr.columns and name not in te.columns:
                tr.column(name, f"tables {self.train!r} and {self.test!r} (exclude of {self.label()})")
        if self.columns_ is not None:
            cols = [c for c in self.columns_ if c not in self.exclude]
            for c in cols:
                tr.column(c, f"train table {self.train!r} ({tr.source})")
                te.column(c, f"test table {self.test!r} ({te.source})")
        else:
            cols = [c for c in te.columns if c in tr.columns and c not in self.exclude]
        if not cols:
            raise SpecError(f"{self.label()}: no columns to compare; the tables share "
                            f"{sorted(set(tr.columns) & set(te.columns))[:20]} and exclude is {self.exclude}.")
        return cols

    def run(self, ctx: RunContext) -> list[Finding]:
        tr, te = _pair_tables(self, ctx, self.train, self.test)
        cols = self._resolve(tr, te)
        pairs = [_comparable(tr.columns[c], te.columns[c]) for c in cols]
        cast = [c for c, p in zip(cols, pairs) if p[2]]
        h_tr = f"hash({', '.join(p[0] for p in pairs)})"
        h_te = f"hash({', '.join(p[1] for p in pairs)})"
        q = f"""
            WITH tr AS MATERIALIZED (SELECT h, count(*) AS n FROM (SELECT {h_tr} AS h FROM {tr.ref}) GROUP BY h),
                 te AS (SELECT {h_te} AS h FROM {te.ref})
            SELECT count(*), count(tr.h), count(DISTINCT te.h), count(DISTINCT te.h) FILTER (WHERE tr.h IS NOT NULL),
                   (SELECT coalesce(sum(n), 0) FROM tr), (SELECT count(*) FROM tr)
            FROM te LEFT JOIN tr ON te.h = tr.h"""
        test_rows, overlap, test_distinct, shared_distinct, train_rows, train_distinct = (
            int(x or 0) for x in ctx.engine.sql(q, table=te)[0])
        share = rate(overlap, test_rows)
        if overlap == 0 or share <= self.max_rate:
            return []
        msg = (f"{overlap:,} of {test_rows:,} test rows ({share:.2%}) also appear in train {self.train!r} "
               f"(compared on {len(cols)} column{'s' if len(cols) != 1 else ''}")
        msg += ")" if not self.exclude else f", excluding {', '.join(map(repr, self.exclude))})"
        if share > 0.99:
            msg += "; the test set is almost entirely contained in train"
        evidence: dict[str, Any] = {
            "test_rows": test_rows, "train_rows": train_rows, "overlapping_test_rows": overlap,
            "distinct_test_rows": test_distinct, "distinct_overlapping_rows": shared_distinct,
            "distinct_train_rows": train_distinct, "duplicate_rows_within_test": test_rows - test_distinct,
            "duplicate_rows_within_train": train_rows - train_distinct, "columns_compared": len(cols),
            "columns": cols[:50], "excluded": self.exclude, "method": "64-bit row hash",
        }
        if cast:
            evidence["cast_to_common_type"] = cast[:50]
        within = (test_rows - test_distinct) + (train_rows - train_distinct)
        if within:
            causes = [cause("cause.duplicates_before_split",
                            f"train and test each repeat rows ({within:,} duplicates within the sides): the data "
                            "was duplicated before a random split", 0.6, {"duplicates_within_sides": within})]
        else:
            causes = [cause("cause.rows_copied_across_split",
                            f"{shared_distinct:,} distinct rows of train reappear in test while neither side "
                            "repeats rows itself: rows were copied after the split", 0.9)]
        return [self.finding("leakage.row_overlap", msg, table=self.test, columns=cols[:50], value=round(share, 6),
                             threshold=self.max_rate, evidence=evidence, causes=causes)]


# -- group overlap ----------------------------------------------------------------------------------------


class GroupOverlap(QueryCheck):
    """At most `max_rate` of the test set's distinct groups (e.g. user ids) may also occur in train."""

    kind: Literal["group_overlap"] = "group_overlap"
    train: str
    test: str
    group: list[str] = Field(min_length=1)
    max_rate: float = Field(0.0, ge=0.0, le=1.0)

    _one = field_validator("group", mode="before")(classmethod(lambda cls, v: names(v)))

    @model_validator(mode="after")
    def _sides(self) -> GroupOverlap:
        if self.train == self.test:
            raise ValueError(f"train and test are the same table {self.train!r}")
        return self

    def label(self) -> str:
        return f"group_overlap({', '.join(self.group)})"

    def columns(self) -> list[str]:
        return list(self.group)

    def tables(self) -> list[str]:
        return [self.train, self.test]

    def run(self, ctx: RunContext) -> list[Finding]:
        tr, te = _pair_tables(self, ctx, self.train, self.test)
        pairs = [_comparable(tr.column(g, f"train table {self.train!r} ({tr.source})"),
                             te.column(g, f"test table {self.test!r} ({te.source})")) for g in self.group]
        keys = [ident(f"k{i}") for i in range(len(pairs))]
        sel_tr = ", ".join(f"{p[0]} AS {k}" for p, k in zip(pairs, keys))
        sel_te = ", ".join(f"{p[1]} AS {k}" for p, k in zip(pairs, keys))
        nn_tr = " AND ".join(f"{tr.columns[g].q} IS NOT NULL" for g in self.group)
        nn_te = " AND ".join(f"{te.columns[g].q} IS NOT NULL" for g in self.group)
        on = " AND ".join(f"te.{k} = tr.{k}" for k in keys)
        q = f"""
            WITH tr AS MATERIALIZED (SELECT DISTINCT {sel_tr} FROM {tr.ref} WHERE {nn_tr}),
                 te AS (SELECT {sel_te}, count(*) AS n FROM {te.ref} WHERE {nn_te} GROUP BY ALL),
                 j AS (SELECT te.n, tr.{keys[0]} IS NOT NULL AS shared FROM te LEFT JOIN tr ON {on})
            SELECT count(*), count_if(shared), coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE shared), 0),
                   (SELECT count(*) FROM tr), (SELECT count(*) FROM {te.ref})
            FROM j"""
        test_groups, shared, grouped_rows, shared_rows, train_groups, test_rows = (
            int(x or 0) for x in ctx.engine.sql(q, table=te)[0])
        share = rate(shared, test_groups)
        if shared == 0 or share <= self.max_rate:
            return []
        row_share = rate(shared_rows, test_rows)
        what = ", ".join(map(repr, self.group))
        msg = (f"{shared:,} of {test_groups:,} distinct {what} values in test ({share:.2%}) also occur in train "
               f"{self.train!r}; they hold {shared_rows:,} of {test_rows:,} test rows ({row_share:.2%})")
        return [self.finding("leakage.group_overlap", msg, table=self.test, value=round(share, 6),
                             threshold=self.max_rate,
                             evidence={"test_groups": test_groups, "train_groups": train_groups,
                                       "shared_groups": shared, "test_rows": test_rows,
                                       "test_rows_in_shared_groups": shared_rows,
                                       "share_of_test_rows": round(row_share, 6),
                                       "test_rows_with_null_group": test_rows - grouped_rows},
                             causes=[cause("cause.row_level_split",
                                           f"{share:.0%} of the test set's {what} values were also sent to train: "
                                           "rows were split, not entities", 0.5 + 0.3 * min(share * 5, 1.0))])]


# -- target leakage ---------------------------------------------------------------------------------------

class TargetLeakage(QueryCheck):
    """No single feature may predict `label` almost perfectly from its values alone.

    Binary labels (boolean, two numbers, two strings): leave-one-out AUC of the feature's per-bin positive
    rate must stay at or below `max_auc`. Numeric labels with more than two values: the share of variance
    explained by the feature's bins (correlation ratio, also on the label's ranks) at or below `max_r2`.
    Other labels (several classes): the accuracy of each bin's majority class at or below `max_accuracy`.
    Numeric features are cut at ~20 quantiles, others binned by value (top 50; the rest pooled)."""

    kind: Literal["target_leakage"] = "target_leakage"
    table: str = "data"
    label_: str = Field(alias="label")
    features: list[str] | None = None
    max_auc: float = Field(0.98, ge=0.5, le=1.0)
    max_r2: float = Field(0.98, ge=0.0, le=1.0)
    max_accuracy: float = Field(0.98, ge=0.0, le=1.0)

    model_config = ConfigDict(**QueryCheck.model_config, populate_by_name=True)

    _one = field_validator("features", mode="before")(classmethod(lambda cls, v: names(v)))

    def label(self) -> str:
        return f"target_leakage({self.label_})"

    def columns(self) -> list[str]:
        return [self.label_, *(self.features or [])]

    def tables(self) -> list[str]:
        return [self.table]

    # -- which features (the binning and the queries: leakage_plan; the scores: leakage_scores) --

    def _candidates(self, t: Table) -> tuple[list[Feature], dict[str, str]]:
        where = f"table {self.table!r} ({t.source})"
        skipped: dict[str, str] = {}
        if self.features is not None:
            out = []
            for name in self.features:
                col = t.column(name, where)
                if name == self.label_:
                    raise SpecError(f"{self.label()}: the label {name!r} is also listed as a feature.")
                if col.kind not in NUMERIC_KINDS | {"string", "boolean", *TEMPORAL_KINDS}:
                    raise SpecError(f"{self.label()}: feature {name!r} is {col.sql_type}; only numbers, text, "
                                    "booleans and times can be binned.")
                out.append(Feature(name, col))
            return out, skipped
        out = []
        for name, col in t.columns.items():
            if name == self.label_:
                continue
            if col.kind in TEMPORAL_KINDS:
                skipped[name] = "timestamp"
            elif col.kind not in NUMERIC_KINDS | {"string", "boolean"}:
                skipped[name] = f"type {col.sql_type}"
            else:
                out.append(Feature(name, col))
        return out, skipped

    # -- running --

    def run(self, ctx: RunContext) -> list[Finding]:
        tctx = ctx.table(self.table, self.label())
        t = tctx.table
        lab = t.column(self.label_, f"table {self.table!r} ({t.source})")
        feats, skipped = self._candidates(t)
        pre = prequery(tctx, t, lab, feats)
        spec = plan_label(lab, pre, self.label())
        feats = plan_features(feats, skipped, explicit=self.features is not None)
        if spec is None or not feats:
            return []
        scores: dict[str, dict[str, Any]] = {}
        for start in range(0, len(feats), FEATURES_PER_QUERY):
            scores.update(score(tctx, t, spec, feats[start:start + FEATURES_PER_QUERY]))
        return self._judge(t, spec, feats, scores, skipped)

    def _judge(self, t: Table, spec: Label, feats: list[Feature], scores: dict[str, dict[str, Any]],
               skipped: dict[str, str]) -> list[Finding]:
        metric, limit = {"binary": ("auc", self.max_auc), "regression": ("r2", self.max_r2),
                         "multiclass": ("accuracy", self.max_accuracy)}[spec.task]
        leaky = [(name, s) for name, s in scores.items() if s.get(metric) is not None and s[metric] > limit
                 and (spec.task != "multiclass" or s.get("gain", 0) >= 0.9)]
        if not leaky:
            return []
        leaky.sort(key=lambda kv: -kv[1][metric])
        name_metric = {"auc": "AUC", "r2": "R²", "accuracy": "accuracy"}[metric]
        parts = []
        for name, s in leaky[:5]:
            txt = f"{name!r} ({name_metric} {s[metric]:.3f}"
            if s.get("equal_to_label", 0) >= 0.99:
                txt += f"; equal to the label on {s['equal_to_label']:.1%} of rows"
            parts.append(txt + ")")
        more = f" and {len(leaky) - 5} more" if len(leaky) > 5 else ""
        msg = (f"{len(leaky)} feature{'s' if len(leaky) > 1 else ''} predict{'' if len(leaky) > 1 else 's'} "
               f"{self.label_!r} almost perfectly on {'its' if len(leaky) == 1 else 'their'} own: "
               f"{', '.join(parts)}{more}; allowed {name_metric} {limit}")
        evidence: dict[str, Any] = {
            "task": spec.task, "metric": name_metric, "features_checked": len(feats),
            "leaky": {name: s for name, s in leaky[:20]},
            "strongest_other_features": {n: s.get(metric) for n, s in sorted(
                ((n, s) for n, s in scores.items() if n not in dict(leaky)),
                key=lambda kv: -(kv[1].get(metric) or 0))[:5]},
        }
        if spec.task == "binary":
            evidence["positive_label"] = _jsonable(spec.positive)
            evidence["negative_label"] = _jsonable(spec.negative)
            msg += f" (positive class: {spec.positive!r})"
        if skipped:
            evidence["skipped_features"] = dict(list(skipped.items())[:30])
        top = leaky[0][0]
        return [self.finding("leakage.target", msg, table=t.name, columns=[n for n, _ in leaky[:50]],
                             value=round(leaky[0][1][metric], 6), threshold=limit, evidence=evidence,
                             causes=[cause("cause.feature_from_outcome",
                                           f"{top!r} alone predicts {self.label_!r} ({name_metric} "
                                           f"{leaky[0][1][metric]:.3f}): it is probably derived from the outcome",
                                           0.8)])]


def _jsonable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


# -- point in time ----------------------------------------------------------------------------------------


class PointInTime(ScanCheck):
    """Each row's `feature_time` must be strictly before its `label_time`; at most `max_violation_rate` of
    the rows with both times may not be. Compared in UTC (a naive time paired with a zoned one is read as
    UTC). On failure, one probe query tests whole-hour shifts of `feature_time` for a timezone mix-up."""

    kind: Literal["point_in_time"] = "point_in_time"
    feature_time: str
    label_time: str
    max_violation_rate: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _distinct(self) -> PointInTime:
        if self.feature_time == self.label_time:
            raise ValueError("feature_time and label_time are the same column")
        return self

    def columns(self) -> list[str]:
        return [self.feature_time, self.label_time]

    def _pair(self, ctx: TableContext) -> tuple[Column, Column, list[str]]:
        fc, lc = ctx.table.column(self.feature_time), ctx.table.column(self.label_time)
        for c in (fc, lc):
            if c.kind not in TEMPORAL_KINDS:
                raise SpecError(f"point_in_time needs time columns; {c.name!r} is {c.sql_type} ({c.kind}). "
                                "Parse it to TIMESTAMP first.")
        return fc, lc, naive_in_pair(fc, lc)

    def _metrics(self) -> tuple[CountIf, CountIf, CountIf, MaxGap]:
        """Rows with the feature at or after the label, exactly equal, with both times; the largest lead."""
        f, lab = Col(self.feature_time, "epoch"), Col(self.label_time, "epoch")
        both = And(Not(IsNull(self.feature_time)), Not(IsNull(self.label_time)))
        return (CountIf(CompareColumns(f, ">=", lab)), CountIf(CompareColumns(f, "=", lab)), CountIf(both),
                MaxGap(f, lab))

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        self._pair(ctx)
        return list(self._metrics())

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        violations, same, with_both, gap = self._metrics()
        bad = int(values[violations].value)
        compared = int(values[with_both].value)
        share = rate(bad, compared)
        if bad == 0 or share <= self.max_violation_rate:
            return []
        fc, lc, naive = self._pair(ctx)
        equal = int(values[same].value)
        ahead = values[gap].value
        evidence: dict[str, Any] = {"violations": bad, "rows_compared": compared, "equal_times": equal,
                                    "max_seconds_feature_after_label": round(float(ahead), 3) if ahead else None,
                                    "feature_time_type": fc.sql_type, "label_time_type": lc.sql_type}
        if naive:
            evidence["naive_treated_as_utc"] = naive
        causes = []
        tz = point_in_time_cause(ctx.engine, ctx.table, fc, lc, compared, naive)
        if tz is not None:
            causes.append(tz)
        msg = (f"{bad:,} of {compared:,} rows ({share:.2%}) have {self.feature_time!r} at or after "
               f"{self.label_time!r}")
        if equal:
            msg += f" ({equal:,} exactly equal)"
        return [self.finding("leakage.point_in_time", msg, table=ctx.table.name, value=round(share, 6),
                             threshold=self.max_violation_rate, evidence=evidence, causes=causes)]
