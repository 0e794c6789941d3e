"""Why keys repeat: a partition loaded twice (exact copies) or an upstream join on too few columns."""

from __future__ import annotations

from mlguard_orchestration._sql import columns_tuple, ident
from mlguard_orchestration.checks.base import TableContext
from mlguard_orchestration.report import Cause, cause

MAX_CANDIDATES = 12


def duplicate_causes(ctx: TableContext, key: list[str]) -> list[Cause]:
    """One query: how many repeated keys are exact row copies, and which columns vary within a key. (Not yet
    asked of a table that stays in its database or Spark: the finding stands without this diagnosis.)"""
    table = ctx.table
    if table.remote is not None:
        return []
    others = [c for c, col in table.columns.items() if c not in key and col.kind != "nested"][:MAX_CANDIDATES]
    k = columns_tuple(key)
    all_cols = ", ".join(ident(c) for c in [*key, *others])
    sel = [f"count(*) - count(DISTINCT {k})", f"count(*) - count(DISTINCT hash({all_cols}))"]
    sel += [f"count(DISTINCT ({', '.join(ident(c) for c in key)}, {ident(c)}))" for c in others]
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in key)
    row = ctx.engine.sql(f"SELECT {', '.join(sel)} FROM {table.ref} WHERE {not_null}", table=table)[0]
    key_dups, exact_dups = int(row[0]), int(row[1])
    if key_dups == 0:
        return []
    causes: list[Cause] = []
    copies = exact_dups / key_dups
    if copies >= 0.5:
        causes.append(cause("cause.duplicated_partition",
                            f"{copies:.0%} of the repeated rows are exact copies of another row",
                            0.5 + 0.4 * copies, {"repeated_rows": key_dups, "exact_copies": exact_dups}))
    if copies < 0.9:
        distinct_keys = None
        n_keys = ctx.engine.sql(f"SELECT count(DISTINCT {k}) FROM {table.ref} WHERE {not_null}", table=table)[0][0]
        distinct_keys = int(n_keys)
        varying = [c for c, n in zip(others, row[2:]) if int(n) > distinct_keys]
        if varying and len(varying) <= 3:
            causes.append(cause("cause.missing_join_key",
                                f"rows sharing a key differ only in {', '.join(map(repr, varying))}: an upstream join "
                                f"or aggregation used too few key columns", 0.6 * (1 - copies) + 0.2,
                                {"varying_columns": varying}))
    return causes
