"""Join checks: will joining `left` to `right` on these keys do what the pipeline assumes?

Measured WITHOUT materialising the join: each side is grouped by its key (rows per key), the two grouped
results are FULL OUTER JOINed on the key, and ONE aggregate over that gives every number: rows, distinct and
repeated keys per side, matched rows, the rows an inner and a left join would produce (sum of l.n * r.n),
orphan keys and NULL keys. Keys with any NULL component never match (as in SQL) and are counted apart.

Only when a finding fires does the check look further (`mlguard_orchestration.diagnose.keys`): which column
the join is missing when a side is not unique, and which normalisation (text cast, case, zero padding,
prefix, a one-day or one-hour shift) makes the keys match when too few do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlguard_orchestration.checks.base import QueryCheck, RunContext, TableContext, names
from mlguard_orchestration.checks.schema import missing_column_finding
from mlguard_orchestration.diagnose.keys import (
    KeyPair,
    format_causes,
    missing_key_causes,
    orphan_key_samples,
    probe_key_formats,
    repeated_key_samples,
    type_mismatch_causes,
    unmatched_key_samples,
)
from mlguard_orchestration.distances import rate
from mlguard_orchestration.report import Cause, Finding
from mlguard_orchestration.sources import Engine, Table

Relationship = Literal["one_to_one", "many_to_one", "one_to_many", "many_to_many"]

_EPS = 1e-9


@dataclass(frozen=True)
class JoinStats:
    """Every number of the join, from one query."""

    left_rows: int
    left_null_rows: int
    left_keys: int
    left_max: int
    left_repeated_keys: int
    right_rows: int
    right_null_rows: int
    right_keys: int
    right_max: int
    right_repeated_keys: int
    matched_left_rows: int
    matched_keys: int
    inner_rows: int
    orphan_right_keys: int
    orphan_right_rows: int

    @property
    def left_nonnull(self) -> int:
        return self.left_rows - self.left_null_rows

    @property
    def right_nonnull(self) -> int:
        return self.right_rows - self.right_null_rows

    @property
    def left_join_rows(self) -> int:
        return self.inner_rows + (self.left_rows - self.matched_left_rows)

    @property
    def match_rate(self) -> float:
        return rate(self.matched_left_rows, self.left_nonnull)


def measure(engine: Engine, left: Table, right: Table, pairs: list[KeyPair]) -> JoinStats:
    """The join's numbers in ONE query over the two grouped sides."""
    ks = [f"k{i}" for i in range(len(pairs))]
    lsel = ", ".join(f"{p.lexpr()} AS {k}" for p, k in zip(pairs, ks))
    rsel = ", ".join(f"{p.rexpr()} AS {k}" for p, k in zip(pairs, ks))
    on = " AND ".join(f"l.{k} = r.{k}" for k in ks)
    lnull = " OR ".join(f"l.{k} IS NULL" for k in ks)
    rnull = " OR ".join(f"r.{k} IS NULL" for k in ks)
    both = "ln IS NOT NULL AND rn IS NOT NULL"
    query = f"""
        WITH l AS (SELECT {lsel}, count(*) AS n FROM {left.ref} GROUP BY ALL),
             r AS (SELECT {rsel}, count(*) AS n FROM {right.ref} GROUP BY ALL),
             j AS (SELECT l.n AS ln, r.n AS rn,
                          coalesce(l.n IS NOT NULL AND ({lnull}), FALSE) AS lnk,
                          coalesce(r.n IS NOT NULL AND ({rnull}), FALSE) AS rnk
                   FROM l FULL OUTER JOIN r ON {on})
        SELECT
            coalesce(sum(ln), 0),
            coalesce(sum(ln) FILTER (WHERE lnk), 0),
            count(*) FILTER (WHERE ln IS NOT NULL AND NOT lnk),
            coalesce(max(ln) FILTER (WHERE NOT lnk), 0),
            count(*) FILTER (WHERE ln > 1 AND NOT lnk),
            coalesce(sum(rn), 0),
            coalesce(sum(rn) FILTER (WHERE rnk), 0),
            count(*) FILTER (WHERE rn IS NOT NULL AND NOT rnk),
            coalesce(max(rn) FILTER (WHERE NOT rnk), 0),
            count(*) FILTER (WHERE rn > 1 AND NOT rnk),
            coalesce(sum(ln) FILTER (WHERE {both}), 0),
            count(*) FILTER (WHERE {both}),
            coalesce(sum(ln::HUGEINT * rn) FILTER (WHERE {both}), 0),
            count(*) FILTER (WHERE rn IS NOT NULL AND ln IS NULL AND NOT rnk),
            coalesce(sum(rn) FILTER (WHERE rn IS NOT NULL AND ln IS NULL AND NOT rnk), 0)
        FROM j"""
    row = engine.sql(query, table=left)[0]
    return JoinStats(*(int(v or 0) for v in row))


class JoinKeys(QueryCheck):
    """Joining `left` to `right` on the key keeps the declared relationship (no fan-out), matches at least
    `min_match_rate` of the left rows, and has few NULL keys (and, optionally, few orphan right keys).

    `on` names key columns present in both tables; `left_on`/`right_on` name them per side. `how` is the join
    the pipeline performs: fan-out is (joined rows / left rows) for a left join and (joined rows / matched
    left rows) for an inner join, whose lost rows the match rate already reports. `joined` names the actual
    join output, when the guard is given it, to report its real rows against the left side's.
    """

    kind: Literal["join_keys"] = "join_keys"
    left: str
    right: str
    on: list[str] | None = None
    left_on: list[str] | None = None
    right_on: list[str] | None = None
    relationship: Relationship | None = "many_to_one"
    how: Literal["left", "inner"] = "left"
    min_match_rate: float = Field(0.9, ge=0.0, le=1.0)
    max_fan_out: float = Field(1.0, ge=0.0)
    max_orphan_rate: float | None = Field(None, ge=0.0, le=1.0)
    max_null_key_rate: float = Field(0.0, ge=0.0, le=1.0)
    joined: str | None = None

    _names = field_validator("on", "left_on", "right_on", mode="before")(classmethod(lambda cls, v: names(v)))

    @model_validator(mode="after")
    def _keys(self) -> JoinKeys:
        per_side = self.left_on is not None or self.right_on is not None
        if self.on is not None and per_side:
            raise ValueError("join_keys takes either `on` or `left_on`/`right_on`, not both")
        if self.on is None and not per_side:
            raise ValueError("join_keys needs the key: `on` (same names on both sides) or `left_on` and `right_on`")
        if per_side and (self.left_on is None or self.right_on is None):
            raise ValueError("join_keys needs both `left_on` and `right_on`")
        left, right = self.left_keys(), self.right_keys()
        if not left:
            raise ValueError("join_keys needs at least one key column")
        if len(left) != len(right):
            raise ValueError(f"left_on has {len(left)} column(s) but right_on has {len(right)}; they pair up")
        if len(set(left)) != len(left) or len(set(right)) != len(right):
            raise ValueError("a join key names the same column twice")
        return self

    def left_keys(self) -> list[str]:
        return list(self.on if self.on is not None else self.left_on or [])

    def right_keys(self) -> list[str]:
        return list(self.on if self.on is not None else self.right_on or [])

    def tables(self) -> list[str]:
        names = [self.left, self.right] + ([self.joined] if self.joined else [])
        return list(dict.fromkeys(names))

    def columns(self) -> list[str]:
        return list(dict.fromkeys(self.left_keys() + self.right_keys()))

    def _key_text(self) -> str:
        if self.on is not None:
            return ", ".join(self.on)
        return ", ".join(a if a == b else f"{a}={b}" for a, b in zip(self.left_keys(), self.right_keys()))

    def label(self) -> str:
        return f"join_keys({self.left}→{self.right} on {self._key_text()})"

    # -- running ------------------------------------------------------------------------------------------

    def run(self, ctx: RunContext) -> list[Finding]:
        lctx, rctx = ctx.table(self.left, self.label()), ctx.table(self.right, self.label())
        missing: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        for tctx, keys in ((lctx, self.left_keys()), (rctx, self.right_keys())):
            for col in keys:
                if col not in tctx.table.columns and (tctx.table.name, col) not in seen:
                    seen.add((tctx.table.name, col))
                    missing.append(missing_column_finding(tctx, col, self.severity, self.label()))
        if missing:
            return missing
        left, right = lctx.table, rctx.table
        pairs = [KeyPair(left.columns[a], right.columns[b]) for a, b in zip(self.left_keys(), self.right_keys())]
        stats = measure(ctx.engine, left, right, pairs)
        ctx.note_rows(self.left, stats.left_rows)
        ctx.note_rows(self.right, stats.right_rows)
        return _Evaluation(self, ctx, lctx, rctx, pairs, stats).findings()


class _Evaluation:
    """Turns one JoinStats into findings, running each diagnosis at most once."""

    def __init__(self, check: JoinKeys, ctx: RunContext, lctx: TableContext, rctx: TableContext,
                 pairs: list[KeyPair], stats: JoinStats) -> None:
        self.check, self.ctx, self.lctx, self.rctx, self.pairs, self.s = check, ctx, lctx, rctx, pairs, stats
        self.left, self.right = lctx.table, rctx.table
        self._missing_key: dict[str, list[Cause]] = {}
        self._probe: Any = None

    # diagnoses, computed lazily and shared between findings
    def missing_key_causes(self, side: str) -> list[Cause]:
        if side not in self._missing_key:
            lk, rk = self.check.left_keys(), self.check.right_keys()
            if side == "right":
                args = (self.right, rk, self.left, lk)
            else:
                args = (self.left, lk, self.right, rk)
            self._missing_key[side] = missing_key_causes(self.ctx.engine, *args)
        return self._missing_key[side]

    def probe(self) -> Any:
        if self._probe is None:
            self._probe = probe_key_formats(self.ctx.engine, self.left, self.right, self.pairs)
        return self._probe

    def samples(self) -> bool:
        return self.ctx.options.sample_values

    def findings(self) -> list[Finding]:
        s, c = self.s, self.check
        out: list[Finding] = []
        out += self._type_mismatch()
        out += self._null_keys()
        needs_left_unique = c.relationship in ("one_to_many", "one_to_one")
        needs_right_unique = c.relationship in ("many_to_one", "one_to_one")
        if needs_left_unique and s.left_repeated_keys:
            out.append(self._not_unique("left"))
        if needs_right_unique and s.right_repeated_keys:
            out.append(self._not_unique("right"))
        out += self._fan_out()
        out += self._match_rate()
        out += self._orphans()
        return out

    # -- individual findings ------------------------------------------------------------------------------

    def _type_mismatch(self) -> list[Finding]:
        bad = [p for p in self.pairs if p.mismatch]
        if not bad:
            return []
        desc = "; ".join(f"{p.left.name!r} is {p.left.sql_type} ({p.left.kind}) in {self.left.name!r} but "
                         f"{p.right.name!r} is {p.right.sql_type} ({p.right.kind}) in {self.right.name!r}"
                         for p in bad)
        evidence: dict[str, Any] = {
            "pairs": [{"left": p.left.name, "left_type": p.left.sql_type, "right": p.right.name,
                       "right_type": p.right.sql_type} for p in bad],
            "compared_as": "text",
            "match_rate_as_text": round(self.s.match_rate, 6),
        }
        return [self.check.finding(
            "join.key_type_mismatch", f"join key types differ: {desc}. Compared as text, "
            f"{self.s.match_rate:.1%} of left rows find a partner.", table=self.left.name,
            columns=[p.left.name for p in bad], value=bad[0].left.kind, threshold=bad[0].right.kind,
            evidence=evidence, causes=type_mismatch_causes(self.probe()))]

    def _null_keys(self) -> list[Finding]:
        out = []
        s, c = self.s, self.check
        for side, table, rows, nulls, keys in (("left", self.left, s.left_rows, s.left_null_rows, c.left_keys()),
                                               ("right", self.right, s.right_rows, s.right_null_rows,
                                                c.right_keys())):
            share = rate(nulls, rows)
            if nulls == 0 or share <= c.max_null_key_rate + _EPS:
                continue
            what = "a NULL join key" if len(keys) == 1 else "a NULL in some join key column"
            consequence = ("they never find a partner" if side == "left"
                           else "they can never be joined to")
            out.append(c.finding(
                "join.null_keys", f"{nulls:,} of {rows:,} rows of {table.name!r} ({share:.2%}) have {what} "
                f"({', '.join(keys)}), so {consequence}; allowed {c.max_null_key_rate:.2%}",
                table=table.name, columns=keys, value=round(share, 6), threshold=c.max_null_key_rate,
                evidence={"side": side, "null_key_rows": nulls, "rows": rows}))
        return out

    def _not_unique(self, side: str) -> Finding:
        s, c = self.s, self.check
        if side == "right":
            table, keys, rows, distinct = self.right, c.right_keys(), s.right_nonnull, s.right_keys
            repeated, most = s.right_repeated_keys, s.right_max
        else:
            table, keys, rows, distinct = self.left, c.left_keys(), s.left_nonnull, s.left_keys
            repeated, most = s.left_repeated_keys, s.left_max
        dup = rows - distinct
        share = rate(dup, rows)
        evidence: dict[str, Any] = {"rows": rows, "distinct_keys": distinct, "repeated_keys": repeated,
                                    "max_rows_per_key": most, "relationship": c.relationship}
        if self.samples():
            tctx = self.rctx if side == "right" else self.lctx
            pairs_cols = [p.right if side == "right" else p.left for p in self.pairs]
            evidence["most_repeated_keys"] = repeated_key_samples(self.ctx.engine, table, pairs_cols,
                                                                  redact=tctx.options.redact)
        return c.finding(
            "join.left_not_unique" if side == "left" else "join.right_not_unique",
            f"{repeated:,} join keys repeat in {table.name!r} (up to {most:,} rows per key of "
            f"({', '.join(keys)})), but the relationship is declared {c.relationship}",
            table=table.name, columns=keys, value=round(share, 6), threshold=0, evidence=evidence,
            causes=self.missing_key_causes(side))

    def _fan_out(self) -> list[Finding]:
        s, c = self.s, self.check
        if c.how == "left":
            joined, base, base_what = s.left_join_rows, s.left_rows, "left rows"
        else:
            joined, base, base_what = s.inner_rows, s.matched_left_rows, "matched left rows"
        fan_out = rate(joined, base)
        evidence: dict[str, Any] = {
            "left_rows": s.left_rows, "predicted_joined_rows": joined, "how": c.how,
            "inner_join_rows": s.inner_rows, "left_join_rows": s.left_join_rows,
            "right_max_rows_per_key": s.right_max, "right_repeated_keys": s.right_repeated_keys,
        }
        actual_fan_out = None
        if c.joined:
            jt = self.ctx.table(c.joined, c.label()).table
            actual = self.ctx.rows(c.joined)
            if actual is None:
                actual = int(self.ctx.engine.sql(f"SELECT count(*) FROM {jt.ref}", table=jt)[0][0])
                self.ctx.note_rows(c.joined, actual)
            actual_fan_out = rate(actual, s.left_rows)
            evidence.update({"joined_table": c.joined, "actual_joined_rows": actual,
                             "actual_fan_out": round(actual_fan_out, 6)})
        worst = max(fan_out, actual_fan_out or 0.0)
        if worst <= c.max_fan_out + _EPS:
            return []
        message = (f"joining {self.left.name!r} to {self.right.name!r} on ({c._key_text()}) turns {base:,} "
                   f"{base_what} into {joined:,} rows (fan-out {fan_out:.3g}×")
        message += (f"; the joined table {c.joined!r} has {evidence['actual_joined_rows']:,} rows, "
                    f"{actual_fan_out:.3g}× the left rows)" if actual_fan_out is not None else ")")
        message += f"; allowed {c.max_fan_out:g}×"
        causes = self.missing_key_causes("right") if s.right_max > 1 else []
        return [c.finding("join.fan_out", message, table=self.right.name, columns=c.right_keys(),
                          value=round(worst, 6), threshold=c.max_fan_out, evidence=evidence, causes=causes)]

    def _match_rate(self) -> list[Finding]:
        s, c = self.s, self.check
        if s.left_nonnull == 0 or s.match_rate >= c.min_match_rate - _EPS:
            return []
        evidence: dict[str, Any] = {
            "left_rows": s.left_rows, "left_rows_with_key": s.left_nonnull,
            "matched_left_rows": s.matched_left_rows, "left_keys": s.left_keys, "matched_keys": s.matched_keys,
            "right_keys": s.right_keys, "how": c.how,
        }
        probe = self.probe()
        if probe is not None:
            evidence["key_probe"] = probe.evidence()
        if self.samples():
            evidence.update(unmatched_key_samples(self.ctx.engine, self.left, self.right, self.pairs,
                                                  redact=self.ctx.options.redact))
        lost = ("get NULL features from a left join" if c.how == "left" else "are dropped by the inner join")
        return [c.finding(
            "join.match_rate",
            f"only {s.match_rate:.1%} of {self.left.name!r} rows ({s.matched_left_rows:,} of {s.left_nonnull:,}) "
            f"find a partner in {self.right.name!r} on ({c._key_text()}); the rest {lost}. Required "
            f"{c.min_match_rate:.1%}", table=self.left.name, columns=c.left_keys(),
            value=round(s.match_rate, 6), threshold=c.min_match_rate, evidence=evidence,
            causes=format_causes(probe))]

    def _orphans(self) -> list[Finding]:
        s, c = self.s, self.check
        if c.max_orphan_rate is None or s.right_keys == 0:
            return []
        share = rate(s.orphan_right_keys, s.right_keys)
        if share <= c.max_orphan_rate + _EPS:
            return []
        evidence: dict[str, Any] = {"right_keys": s.right_keys, "orphan_right_keys": s.orphan_right_keys,
                                    "orphan_right_rows": s.orphan_right_rows, "left_keys": s.left_keys}
        if self.samples():
            evidence["orphan_keys"] = orphan_key_samples(self.ctx.engine, self.left, self.right, self.pairs,
                                                         redact=self.ctx.options.redact)
        return [c.finding(
            "join.orphans", f"{share:.1%} of the keys of {self.right.name!r} ({s.orphan_right_keys:,} of "
            f"{s.right_keys:,}) have no partner in {self.left.name!r}; allowed {c.max_orphan_rate:.1%}",
            table=self.right.name, columns=c.right_keys(), value=round(share, 6), threshold=c.max_orphan_rate,
            evidence=evidence)]


__all__ = ["JoinKeys", "JoinStats", "KeyPair", "measure"]
