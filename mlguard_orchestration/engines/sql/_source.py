"""What a scan reads: a table by name or path, or a user's SELECT, optionally only its first rows.

A user's SELECT is parsed by sqlglot in the dialect and becomes a derived table: it must be ONE read-only
query (a SELECT, a UNION of them, with CTEs), never a statement that writes (SELECT … INTO, a
data-modifying CTE) or locks (FOR UPDATE). Functions the query calls are the database's business: run the
guard as a role that may only read.

A string is taken for SQL when its first word is a statement's (SELECT, WITH, or one that is refused:
INSERT, DELETE, …) followed by a space; anything else is a table name. A table whose name starts so is
passed as a one-element path, `("select x",)`, which is always a name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from mlguard_orchestration.errors import SpecError

Source = str | Sequence[str]
_QUERY = re.compile(r"\s*\(*\s*(select|with|values|table|insert|update|delete|merge|create|drop|alter|truncate|"
                    r"grant|revoke|call|exec|execute|copy|set|begin|commit)\s", re.IGNORECASE)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
           exp.Into, exp.Lock, exp.TruncateTable)
SOURCE_ALIAS = "mlguard source"


def is_query(source: Source) -> bool:
    return isinstance(source, str) and bool(_QUERY.match(source))


def describe(source: Source) -> str:
    """The source as an error message names it."""
    if is_query(source):
        assert isinstance(source, str)
        text = " ".join(source.split())
        return f"query {text[:80]!r}" + ("…" if len(text) > 80 else "")
    return f"table {source!r}" if isinstance(source, str) else f"table {'.'.join(source)!r}"


def table_ref(table: Source) -> exp.Table:
    """A table from a name or a (catalog,) schema, name path; every part quoted as given, none split on dots."""
    parts = [table] if isinstance(table, str) else list(table)
    if not 1 <= len(parts) <= 3 or not all(isinstance(p, str) and p for p in parts):
        raise SpecError(f"a table is a name or a (catalog, schema, name) path, got {table!r}")
    idents = [exp.to_identifier(p, quoted=True) for p in parts]
    return exp.Table(this=idents[-1], db=idents[-2] if len(idents) > 1 else None,
                     catalog=idents[-3] if len(idents) > 2 else None)


def parse_query(text: str, dialect: str) -> exp.Query:
    """The user's SELECT as a tree; anything else is a SpecError."""
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"the source query does not parse as {dialect} SQL: {first}") from None
    if len(statements) != 1:
        raise SpecError(f"the source query must be one SELECT statement, got {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SpecError(f"the source query must be a SELECT, got {type(tree).__name__.upper()}")
    bad = next((n for n in tree.walk() if isinstance(n, _WRITES)), None)
    if bad is not None or tree.args.get("into") is not None:
        raise SpecError("the source query must only read: no SELECT … INTO, no data-modifying CTE, no FOR UPDATE")
    return tree


def from_item(source: Source, dialect: str) -> exp.Expr:
    """The FROM item reading `source`: the table, or the query as a derived table."""
    if is_query(source):
        assert isinstance(source, str)
        return exp.Subquery(this=parse_query(source, dialect), alias=exp.TableAlias(
            this=exp.to_identifier(SOURCE_ALIAS, quoted=True)))
    return table_ref(source)


def rows(source: Source, dialect: str, *, limit: int | None = None,
         extra: Sequence[exp.Expr] = ()) -> exp.Expr:
    """The FROM item a scan or probe aggregates over: the source itself, or — when only its first `limit`
    rows count, or a per-row column must be drawn once (`extra`, e.g. the sample's random number) — one
    derived table `SELECT src.*, extra… FROM source [LIMIT n]`."""
    base = from_item(source, dialect)
    if limit is None and not extra:
        return base
    if limit is not None and limit < 0:
        raise SpecError(f"limit must be a number of rows >= 0, got {limit}")
    name = exp.to_identifier(SOURCE_ALIAS, quoted=True)
    if isinstance(base, exp.Table):
        base.set("alias", exp.TableAlias(this=name.copy()))
    inner = exp.select(exp.Column(this=exp.Star(), table=name.copy()), *extra).from_(base)
    if limit is not None:
        inner = inner.limit(limit)
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("mlguard rows", quoted=True)))
