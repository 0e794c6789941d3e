"""Why a join misbehaves, inferred from the keys. Only run when a join finding fires.

- A side that repeats its key (fan-out, not unique): which column is missing from the join key? ONE
  aggregate over that side counts distinct (key…, candidate) for up to a dozen candidate columns; a candidate
  that makes the side unique is the missing key. Pairs of the best candidates are tried when none alone works,
  and exact copies point at a partition loaded twice.
- Too few keys match: which normalisation makes them match? A sample of distinct left keys is looked up,
  transformed, against ALL the right side's distinct keys transformed the same way (a semi-join in DuckDB),
  for a text cast, case/whitespace, zero padding, an alphabetic prefix, digits only, and for dates and times
  a shift of one day or one hour.

Evidence holds numbers only; raw key values only with sample values on (hashed when redacting).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlguard_orchestration._sql import ident
from mlguard_orchestration.distances import rate
from mlguard_orchestration.report import Cause, cause, sample_value
from mlguard_orchestration.sources import NUMERIC_KINDS, TEMPORAL_KINDS, Column, Engine, Table


def key_family(kind: str) -> str:
    """Which key kinds join without a cast: any number with any number, every other kind only with itself. Not
    `sources.kind_family`, which lets a date and a timestamp be compared as times: as join keys they never
    match (midnight against 10:00), so there they are a type mismatch."""
    return "numeric" if kind in NUMERIC_KINDS else kind


@dataclass(frozen=True)
class KeyPair:
    """One component of the join key: the column on each side and how the two are compared."""

    left: Column
    right: Column

    @property
    def mismatch(self) -> bool:
        """The logical kinds differ (integer vs string, timestamp vs date, …): compared as text."""
        return key_family(self.left.kind) != key_family(self.right.kind)

    @property
    def as_text(self) -> bool:
        # Same logical kind but a different storage type that DuckDB may refuse to compare (uuid vs varchar).
        return self.mismatch or (self.left.kind == "string" and self.left.sql_type != self.right.sql_type)

    def lexpr(self, alias: str | None = None) -> str:
        return _expr(self.left, self.as_text, alias)

    def rexpr(self, alias: str | None = None) -> str:
        return _expr(self.right, self.as_text, alias)


def _expr(col: Column, as_text: bool, alias: str | None) -> str:
    ref = f"{alias}.{col.q}" if alias else col.q
    return f"{ref}::VARCHAR" if as_text else ref


MAX_CANDIDATES = 12
PAIR_CANDIDATES = 4  # pairs of the best this many single candidates are tried when none alone works
NEARLY_UNIQUE = 0.999
PROBE_SAMPLE = 20_000  # distinct left keys looked up against every right key
MIN_PROBE_RATE = 0.5
MIN_PROBE_GAIN = 0.3
SAMPLE_VALUES = 5

_KEYLIKE = re.compile(r"(^|_)(id|key|date|day|dt|ts|time|timestamp|month|week|year|version|snapshot|asof|as_of|"
                      r"period|partition|ds|at|date_key|valid_from|valid_to|effective)(_|$)", re.IGNORECASE)
_NOT_CANDIDATE_KINDS = frozenset({"nested", "binary", "other", "interval"})


# -- missing key column ------------------------------------------------------------------------------------


def _candidates(side: Table, keys: list[str], other: Table) -> list[tuple[str, bool]]:
    """Non-key columns of `side` that could complete the key, most plausible first: (name, in other table)."""
    found = []
    for name, col in side.columns.items():
        if name in keys or col.kind in _NOT_CANDIDATE_KINDS:
            continue
        in_other = name in other.columns
        if col.kind in ("float", "decimal") and not in_other:
            continue  # measurements are (nearly) unique by accident, not keys
        keylike = bool(_KEYLIKE.search(name)) or col.kind in TEMPORAL_KINDS
        similarity = max(difflib.SequenceMatcher(None, name.lower(), k.lower()).ratio() for k in keys)
        found.append((not in_other, not keylike, -similarity, name, in_other))
    found.sort()
    return [(f[3], f[4]) for f in found[:MAX_CANDIDATES]]


def _row(cols: list[str]) -> str:
    return "(" + ", ".join(ident(c) for c in cols) + ")" if len(cols) > 1 else ident(cols[0])


def missing_key_causes(engine: Engine, side: Table, keys: list[str], other: Table,
                       other_keys: list[str]) -> list[Cause]:
    """Causes for `side` repeating `keys`: a missing key column (or pair), or exact duplicate rows."""
    cands = _candidates(side, keys, other)
    not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in keys)
    all_cols = list(side.columns)
    exprs = ["count(*)", f"count(DISTINCT {_row(keys)})"]
    exprs.append(f"count(DISTINCT {_row(all_cols)})" if len(all_cols) <= 300 else "NULL")
    for name, _ in cands:
        exprs += [f"count(DISTINCT {_row(keys + [name])})", f"approx_count_distinct({ident(name)})"]
    row = engine.sql(f"SELECT {', '.join(exprs)} FROM {side.ref} WHERE {not_null}", table=side)[0]
    n, dk, d_full = int(row[0] or 0), int(row[1] or 0), row[2]
    if n == 0 or dk >= n:
        return []
    causes: list[Cause] = []
    dup_rows = n - dk
    if d_full is not None:
        exact = n - int(d_full)
        if exact >= 0.9 * dup_rows:
            causes.append(cause(
                "cause.duplicated_partition",
                f"{exact:,} of the {dup_rows:,} repeated rows of {side.name!r} are exact copies of another row: "
                "the same data was loaded twice, not a missing key column", 0.5 + 0.35 * rate(exact, dup_rows),
                {"rows": n, "distinct_keys": dk, "exact_duplicate_rows": exact}))
            return causes
    singles = []
    for i, (name, in_other) in enumerate(cands):
        d, approx = int(row[3 + 2 * i] or 0), int(row[4 + 2 * i] or 0)
        singles.append((name, in_other, d, approx))
    keyset = ", ".join(keys)
    working = [s for s in singles if rate(s[2], n) >= NEARLY_UNIQUE]
    working.sort(key=lambda s: (not s[1], -s[2], s[3], s[0]))
    # A column nearly unique on its own (a row id, a measurement) makes any key unique: not a missing key,
    # unless the other table has it too.
    working = [s for s in working if s[1] or s[3] < 0.9 * n]
    for rank, (name, in_other, d, approx) in enumerate(working[:3]):
        exact_unique = d == n
        row_id = approx >= 0.9 * n
        confidence = (0.7 if row_id else 0.9 if in_other else 0.6) - (0.0 if exact_unique else 0.1) - 0.05 * rank
        unique_txt = "unique" if exact_unique else f"nearly unique ({rate(d, n):.2%} distinct)"
        summary = f"join is missing key column {name!r} ({side.name} is {unique_txt} on ({keyset}, {name}))"
        if not in_other:
            summary += (f"; {name!r} is not in {other.name!r}, so filter {side.name!r} to one value of it or "
                        "aggregate over it before joining")
        if row_id:
            summary += f"; {name!r} is nearly unique on its own, so it may be a row id rather than a key"
        causes.append(cause("cause.missing_join_key", summary, confidence, {
            "columns": [name], "in_both_tables": in_other, "rows": n, "distinct_keys": dk,
            "distinct_with_columns": d, "column_distinct_approx": approx}))
    if working:
        return causes
    # No single column completes the key: try pairs of the candidates that help most.
    helpful = sorted((s for s in singles if s[2] > dk), key=lambda s: -s[2])[:PAIR_CANDIDATES]
    combos = [(a, b) for i, a in enumerate(helpful) for b in helpful[i + 1:]]
    if not combos:
        return causes
    pair_exprs = [f"count(DISTINCT {_row(keys + [a[0], b[0]])})" for a, b in combos]
    prow = engine.sql(f"SELECT {', '.join(pair_exprs)} FROM {side.ref} WHERE {not_null}", table=side)[0]
    found = sorted(((int(d or 0), a, b) for d, (a, b) in zip(prow, combos) if rate(int(d or 0), n) >= NEARLY_UNIQUE),
                   key=lambda t: (-(t[1][1] + t[2][1]), -t[0]))
    for rank, (d, a, b) in enumerate(found[:2]):
        both_other = a[1] and b[1]
        confidence = (0.85 if both_other else 0.6 if (a[1] or b[1]) else 0.45) - 0.05 * rank
        causes.append(cause(
            "cause.missing_join_key",
            f"join is missing key columns {a[0]!r} and {b[0]!r} ({side.name} is unique on "
            f"({keyset}, {a[0]}, {b[0]}))", confidence,
            {"columns": [a[0], b[0]], "in_both_tables": [a[1], b[1]], "rows": n, "distinct_keys": dk,
             "distinct_with_columns": d}))
    return causes


# -- key normalisation probes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    name: str
    code: str
    what: str  # completes "keys match once …"
    left: Callable[[str], str]
    right: Callable[[str], str]
    penalty: float = 0.0


def _txt(x: str) -> str:
    return f"({x})::VARCHAR"


def _ts(x: str) -> str:
    return f"TRY_CAST({x} AS TIMESTAMP)"


def _shifted(sign: str, amount: str) -> Callable[[str], str]:
    """A key as a timestamp moved by `sign` `amount` (an SQL interval such as '1 day')."""
    return lambda x: f"({_ts(x)} {sign} INTERVAL '{amount}')"


def _nz(x: str) -> str:  # an empty result is no key at all, not a key equal to every other empty one
    return f"nullif({x}, '')"


def _prefix(x: str) -> str:
    return f"regexp_replace({x}, '^[A-Za-z]+[-_:]?', '')"


def _unpad(x: str) -> str:  # '00042' → '42', but '000' → '0'
    return f"regexp_replace({x}, '^0+([0-9])', '\\1')"


def _digits(x: str) -> str:
    return f"regexp_replace({x}, '[^0-9]', '', 'g')"


def _same(f: Callable[[str], str]) -> tuple[Callable[[str], str], Callable[[str], str]]:
    return f, f


def _transforms(pair: KeyPair) -> list[Transform]:
    lk, rk = pair.left.kind, pair.right.kind
    out: list[Transform] = []
    if "string" in (lk, rk) or pair.mismatch:
        if pair.mismatch:
            out.append(Transform("text", "cause.key_type_mismatch", "both are cast to text", *_same(_txt)))
        if "string" in (lk, rk):
            out += [
                Transform("case_whitespace", "cause.key_format_mismatch",
                          "letter case and surrounding whitespace are ignored (lower-cased and trimmed)",
                          *_same(lambda x: _nz(f"lower(trim({_txt(x)}))"))),
                Transform("zero_padding", "cause.key_format_mismatch", "leading zeros (zero padding) are removed",
                          *_same(lambda x: _nz(_unpad(_txt(x))))),
                Transform("prefix", "cause.key_format_mismatch",
                          "an alphabetic prefix (like 'U-' or 'cust_') is removed",
                          *_same(lambda x: _nz(_prefix(_txt(x))))),
                Transform("prefix_zero_padding", "cause.key_format_mismatch",
                          "an alphabetic prefix and leading zeros (zero padding) are removed",
                          *_same(lambda x: _nz(_unpad(_prefix(_txt(x)))))),
                Transform("digits", "cause.key_format_mismatch", "only their digits are compared",
                          *_same(lambda x: _nz(_digits(_txt(x)))), penalty=0.1),
                Transform("digits_zero_padding", "cause.key_format_mismatch",
                          "only their digits are compared, without leading zeros",
                          *_same(lambda x: _nz(_unpad(_digits(_txt(x))))), penalty=0.1),
            ]
    if lk in TEMPORAL_KINDS and rk in TEMPORAL_KINDS:
        if pair.mismatch:
            out.append(Transform("as_timestamp", "cause.key_type_mismatch",
                                 f"both are compared as timestamps ({pair.left.sql_type} vs {pair.right.sql_type})",
                                 *_same(_ts)))
        if "timestamp" in (lk, rk) or "timestamp_tz" in (lk, rk):
            out.append(Transform("to_date", "cause.key_type_mismatch" if pair.mismatch else "cause.key_format_mismatch",
                                 "the time of day is dropped (both truncated to the date)",
                                 *_same(lambda x: f"TRY_CAST({x} AS DATE)"), penalty=0.05))
        steps = [("1 day", "d")] + ([] if lk == rk == "date" else [("1 hour", "h")])
        for amount, unit in steps:
            for sign, word in (("+", "later"), ("-", "earlier")):
                out.append(Transform(
                    f"shift_{sign}1{unit}", "cause.key_time_shift",
                    f"the right side is taken to be {amount} {word} than the left",
                    _shifted(sign, amount), _ts))
    return out


@dataclass
class Probe:
    """Match rates of a sample of left keys under each transform."""

    pair: KeyPair
    left: str
    right: str
    sample_keys: int
    baseline: float
    transforms: list[Transform]
    rates: dict[str, float] = field(default_factory=dict)
    column_rates: dict[str, float] | None = None

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"left_column": self.pair.left.name, "right_column": self.pair.right.name,
                              "sampled_left_keys": self.sample_keys, "baseline_match_rate": round(self.baseline, 4),
                              "match_rate_by_transform": {k: round(v, 4) for k, v in self.rates.items()}}
        if self.column_rates is not None:
            ev["match_rate_by_key_column"] = {k: round(v, 4) for k, v in self.column_rates.items()}
        return ev

    def best(self, codes: set[str] | None = None) -> tuple[Transform, float] | None:
        # ties go to the exact transform (a shift beats dropping the time of day), then to the simpler one
        ranked = [(self.rates[t.name] - t.penalty, -i, t) for i, t in enumerate(self.transforms)
                  if codes is None or t.code in codes]
        if not ranked:
            return None
        t = max(ranked, key=lambda x: (x[0], x[1]))[2]
        return t, self.rates[t.name]


def _sample_cte(pair: KeyPair, left: Table, right: Table) -> str:
    lq, rq = pair.left.q, pair.right.q
    return (f"ls AS MATERIALIZED (SELECT k FROM (SELECT DISTINCT {lq} AS k FROM {left.ref} WHERE {lq} IS NOT NULL) "
            f"ORDER BY hash(k) LIMIT {PROBE_SAMPLE}), "
            f"rs AS MATERIALIZED (SELECT DISTINCT {rq} AS k FROM {right.ref} WHERE {rq} IS NOT NULL)")


def _column_rates(engine: Engine, left: Table, right: Table, pairs: list[KeyPair]) -> list[float]:
    """Per key column: share of (a sample of) distinct left values found among the right values."""
    parts = []
    for p in pairs:
        lq, rq = p.lexpr(), p.rexpr()
        sample = (f"(SELECT k FROM (SELECT DISTINCT {lq} AS k FROM {left.ref} WHERE {lq} IS NOT NULL) "
                  f"ORDER BY hash(k) LIMIT {PROBE_SAMPLE})")
        parts.append(f"(SELECT count(*) FROM {sample} s WHERE s.k IN (SELECT {rq} FROM {right.ref}))::DOUBLE / "
                     f"nullif((SELECT count(*) FROM {sample} s), 0)")
    row = engine.sql("SELECT " + ", ".join(parts), table=left)[0]
    return [float(v) if v is not None else 1.0 for v in row]


def probe_key_formats(engine: Engine, left: Table, right: Table, pairs: list[KeyPair]) -> Probe | None:
    """Measure how many sampled left keys match under each normalisation; None when nothing to probe."""
    column_rates = None
    pair = pairs[0]
    if len(pairs) > 1:
        rates_ = _column_rates(engine, left, right, pairs)
        column_rates = {p.left.name: r for p, r in zip(pairs, rates_)}
        i = min(range(len(pairs)), key=lambda j: (rates_[j], not pairs[j].mismatch, j))
        pair = pairs[i]
        if rates_[i] >= 0.95 and not pair.mismatch:
            return None  # each column matches on its own: the combination, not a format, is the problem
    transforms = _transforms(pair)
    if not transforms:
        return None
    lk, rk = ("ls.k::VARCHAR", "rs.k::VARCHAR") if pair.as_text else ("ls.k", "rs.k")
    base = f"{lk} IN (SELECT {rk} FROM rs)"
    exprs = ["(SELECT count(*) FROM ls)", f"(SELECT count(*) FROM ls WHERE {base})"]
    for t in transforms:
        exprs.append(f"(SELECT count(*) FROM ls WHERE {t.left('ls.k')} IN (SELECT {t.right('rs.k')} FROM rs))")
    row = engine.sql(f"WITH {_sample_cte(pair, left, right)} SELECT {', '.join(exprs)}", table=left)[0]
    n = int(row[0] or 0)
    if n == 0:
        return None
    probe = Probe(pair, left.name, right.name, n, rate(row[1] or 0, n), transforms, column_rates=column_rates)
    probe.rates = {t.name: rate(v or 0, n) for t, v in zip(transforms, row[2:])}
    return probe


def _probe_cause(probe: Probe, t: Transform, r: float) -> Cause:
    p = probe.pair
    lname = f"{probe.left}.{p.left.name}"
    rname = f"{probe.right}.{p.right.name}"
    if t.code == "cause.key_type_mismatch":
        head = (f"{lname!r} ({p.left.sql_type}) and {rname!r} ({p.right.sql_type}) hold the same keys in "
                f"different types")
    elif t.code == "cause.key_time_shift":
        head = f"{rname!r} is shifted in time against {lname!r}"
    else:
        head = f"{lname!r} and {rname!r} write the keys in different formats"
    summary = (f"{head}: {r:.1%} of sampled left keys match once {t.what} (vs {probe.baseline:.1%} as compared)")
    return cause(t.code, summary, 0.4 + 0.55 * r - t.penalty,
                 {"transform": t.name, "match_rate": round(r, 4), "baseline_match_rate": round(probe.baseline, 4),
                  "sampled_left_keys": probe.sample_keys, "left_column": p.left.name, "right_column": p.right.name})


def format_causes(probe: Probe | None) -> list[Cause]:
    """The best normalisation, when it lifts the match rate to at least 0.5 and by at least 0.3."""
    if probe is None:
        return []
    best = probe.best()
    if best is None:
        return []
    t, r = best
    if r < MIN_PROBE_RATE or r < probe.baseline + MIN_PROBE_GAIN:
        return []
    return [_probe_cause(probe, t, r)]


def type_mismatch_causes(probe: Probe | None) -> list[Cause]:
    """For a key type mismatch: do the values agree once cast (to text or a common time type)? Plus the best
    normalisation when a format differs too."""
    if probe is None or not probe.pair.mismatch:
        return []
    out = []
    best = probe.best({"cause.key_type_mismatch"})
    if best is not None and best[1] >= MIN_PROBE_RATE:
        out.append(_probe_cause(probe, *best))
    for c in format_causes(probe):
        if not out or c.evidence.get("transform") != out[0].evidence.get("transform"):
            out.append(c)
    return out


# -- sample values (only with sample_values on) -------------------------------------------------------------


def _key_value(values: tuple[Any, ...], redact: bool) -> str | list[str]:
    shown = [sample_value(v, redact) for v in values]
    return shown[0] if len(shown) == 1 else shown


def repeated_key_samples(engine: Engine, table: Table, cols: list[Column], *, redact: bool) -> list[dict[str, Any]]:
    keys = ", ".join(c.q for c in cols)
    not_null = " AND ".join(f"{c.q} IS NOT NULL" for c in cols)
    rows = engine.sql(f"SELECT {keys}, count(*) AS n FROM {table.ref} WHERE {not_null} GROUP BY {keys} "
                      f"HAVING count(*) > 1 ORDER BY n DESC, hash({keys}) LIMIT {SAMPLE_VALUES}", table=table)
    return [{"key": _key_value(r[:-1], redact), "rows": int(r[-1])} for r in rows]


def _anti(engine: Engine, a: Table, b: Table, a_expr: Callable[[KeyPair, str], str],
          b_expr: Callable[[KeyPair, str], str], pairs: list[KeyPair], redact: bool) -> list[str | list[str]]:
    sel = ", ".join(a_expr(p, "a") for p in pairs)
    not_null = " AND ".join(f"{a_expr(p, 'a')} IS NOT NULL" for p in pairs)
    on = " AND ".join(f"{a_expr(p, 'a')} = {b_expr(p, 'b')}" for p in pairs)
    rows = engine.sql(f"SELECT DISTINCT {sel} FROM {a.ref} AS a ANTI JOIN {b.ref} AS b ON {on} "
                      f"WHERE {not_null} LIMIT {SAMPLE_VALUES}", table=a)
    return [_key_value(r, redact) for r in rows]


def unmatched_key_samples(engine: Engine, left: Table, right: Table, pairs: list[KeyPair], *,
                          redact: bool) -> dict[str, Any]:
    """A few left keys without a partner, and a few right keys to compare them with."""
    unmatched = _anti(engine, left, right, lambda p, al: p.lexpr(al), lambda p, al: p.rexpr(al), pairs, redact)
    sel = ", ".join(p.rexpr() for p in pairs)
    not_null = " AND ".join(f"{p.rexpr()} IS NOT NULL" for p in pairs)
    rows = engine.sql(f"SELECT DISTINCT {sel} FROM {right.ref} WHERE {not_null} LIMIT {SAMPLE_VALUES}", table=right)
    return {"unmatched_left_keys": unmatched, "right_keys_sample": [_key_value(r, redact) for r in rows]}


def orphan_key_samples(engine: Engine, left: Table, right: Table, pairs: list[KeyPair], *,
                       redact: bool) -> list[str | list[str]]:
    return _anti(engine, right, left, lambda p, al: p.rexpr(al), lambda p, al: p.lexpr(al), pairs, redact)
