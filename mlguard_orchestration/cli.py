"""`mlguard profile | check | accept | report | explain` — the guards from a terminal or any scheduler's shell step.

Exit codes of `check`: 0 pass or warn, 1 a check failed, 2 the guard itself could not run (bad spec,
unreadable data). Scripts can rely on them.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from mlguard_orchestration.errors import MlguardError

if TYPE_CHECKING:  # imported where used: `mlguard --help` loads no engine, no pandas
    from mlguard_orchestration.report import Report

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=False, highlight=False)
errors = Console(stderr=True, highlight=False)

EXIT = {"pass": 0, "warn": 0, "fail": 1, "error": 2}


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for v in values or []:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"expected NAME=PATH, got {v!r}", param_hint=option)
        out[name] = path
    return out


@app.command()
def profile(
    data: Annotated[str, typer.Argument(help="Parquet/CSV file, directory or glob, or a database: "
                                             "URL#db.table or URL#SELECT ….")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the profile JSON.")],
) -> None:
    """Build a reference profile of DATA in one pass (in the database, for a database URL)."""
    from mlguard_orchestration.profile import build_profile
    from mlguard_orchestration.remote import source_from_url

    try:
        with console.status("profiling …"):
            prof = build_profile(source_from_url(data) or data)
    except MlguardError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    _write(output, prof.model_dump_json(indent=1), "-o/--output")
    console.print(f"profiled {prof.rows:,} rows × {len(prof.columns)} columns → {output}")


@app.command()
def check(
    data: Annotated[str | None, typer.Argument(help="The main table (named 'data' in the spec): a path, or a "
                                                     "database URL#db.table or URL#SELECT ….")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", "-s", help="Guard spec (YAML/JSON).")] = None,
    reference: Annotated[list[str] | None, typer.Option(
        "--reference", "-r", help="Reference profile: PATH for the main table, or NAME=PATH. Implies the "
                                  "default suite unless --no-default-suite.")] = None,
    table: Annotated[list[str] | None, typer.Option("--table", "-t", help="Another table: NAME=PATH (or a "
                                                                          "database URL#table).")] = None,
    name: Annotated[str | None, typer.Option(help="Guard name (default: the spec's).")] = None,
    default_suite: Annotated[bool | None, typer.Option(
        "--default-suite/--no-default-suite", help="Run the reference-derived suite (default: on when a "
                                                   "reference or store is given).")] = None,
    store: Annotated[str | None, typer.Option(help="Profile store (path or fsspec URL): references come from it "
                                                   "and a passing run is promoted into it.")] = None,
    partition_by: Annotated[list[str] | None, typer.Option(
        "--partition-by", help="A partition column (repeatable): compared as a partition key, never drift.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="A column the default suite leaves out (repeatable).")] = None,
    logical_date: Annotated[datetime | None, typer.Option(help="The run's logical date (freshness).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the compact report as JSON.")] = False,
    sample_values: Annotated[bool, typer.Option(help="Include a few raw values in evidence.")] = False,
    report_file: Annotated[Path | None, typer.Option("--report", help="Also write the compact JSON report here.")] = None,
) -> None:
    """Check DATA (and --table tables) against a spec and/or a reference; exit 0 pass/warn, 1 fail, 2 error.

    A reference (or a store) implies the default suite; a run that would check nothing is an error (exit 2),
    not a pass."""
    from mlguard_orchestration.guard import Guard
    from mlguard_orchestration.remote import source_from_url
    from mlguard_orchestration.report import Report
    from mlguard_orchestration.spec import GuardSpec, load_spec
    from mlguard_orchestration.store import ProfileStore
    from mlguard_orchestration.suite import SuiteOptions

    tables: dict[str, str] = {"data": data} if data else {}
    tables.update(_pairs(table, "--table"))
    refs: dict[str, str] = {}
    for r in reference or []:
        refs.update(_pairs([r], "--reference") if "=" in r else {"data": r})
    if not tables:
        errors.print("[red]error:[/red] give DATA or at least one --table NAME=PATH")
        raise typer.Exit(2)
    if spec is None and not refs and store is None:
        errors.print("[red]error:[/red] nothing to check: give --spec, --reference or --store")
        raise typer.Exit(2)
    try:  # the flags say what they add to the spec; Guard.from_spec merges them as every front end does
        s = load_spec(spec) if spec else GuardSpec(name="cli")
        suite = SuiteOptions(**{**s.suite.model_dump(), "partition_by": [*s.suite.partition_by, *(partition_by or [])],
                                "exclude": [*s.suite.exclude, *(exclude or [])]}) if partition_by or exclude else None
        guard = Guard.from_spec(
            s, name=name, reference=refs or None, store=ProfileStore(store) if store is not None else None,
            default_suite=default_suite if default_suite is not None else (
                s.default_suite or bool(refs) or store is not None),
            suite=suite, sample_values=sample_values or None)
    except MlguardError as exc:
        _finish(Report.of_error(name or "cli", exc), as_json, report_file)
        return
    try:
        sources = {n: source_from_url(v) or v for n, v in tables.items()}
    except MlguardError as exc:
        _finish(Report.of_error(name or "cli", exc), as_json, report_file)
        return
    with console.status("checking …") if not as_json else _null():
        report = guard.run(sources, logical_date=logical_date, promote=store is not None)
    if report.status != "error" and report.checks_run == 0:
        errors.print("[yellow]warning:[/yellow] no check ran (a spec without checks, and no reference yet): "
                     "the data was not judged")
    _finish(report, as_json, report_file)


@app.command()
def accept(
    guard_name: Annotated[str, typer.Argument(metavar="GUARD", help="The guard whose reference changes.")],
    store: Annotated[str, typer.Option(help="The guard's profile store (path or fsspec URL).")],
    reason: Annotated[str, typer.Option(help="Why the change is accepted (kept in the store's log).")],
    table: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only these tables (repeatable).")] = None,
    data: Annotated[list[str] | None, typer.Option(
        "--data", help="Profile this data instead of the last failed run's: PATH, or NAME=PATH.")] = None,
    by: Annotated[str | None, typer.Option(help="Who reviewed it (default: $USER).")] = None,
) -> None:
    """Accept a reviewed change: the last failed run's profiles (or --data) become GUARD's reference."""
    from mlguard_orchestration.guard import Guard

    sources: dict[str, str] = {}
    for d in data or []:
        sources.update(_pairs([d], "--data") if "=" in d else {"data": d})
    try:
        entry = Guard(guard_name, store=store).accept(reason, by=by, tables=table, data=sources or None)
    except MlguardError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"accepted: tables {', '.join(entry.tables)} of guard {entry.guard!r} are the new reference "
                  f"({entry.by}, {entry.at:%Y-%m-%d %H:%M} UTC): {entry.reason}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(metavar="RUN.json", help="A JSON report (mlguard check --report/--json, "
                                                                 "or XCom's mlguard_report).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the HTML page.")],
) -> None:
    """Render a JSON report as one self-contained HTML page with pictures (no JavaScript, bounded in size)."""
    from mlguard_orchestration.html import to_html
    from mlguard_orchestration.report import Report

    try:
        parsed = Report.model_validate_json(run.read_bytes())
    except OSError as exc:
        errors.print(f"[red]error:[/red] cannot read {str(run)!r}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    except ValueError as exc:
        errors.print(f"[red]error:[/red] {str(run)!r} is not an mlguard report: {str(exc).splitlines()[0]}")
        raise typer.Exit(2) from None
    page = to_html(parsed)
    _write(output, page, "-o/--output")
    console.print(f"{parsed.status.upper()} guard {parsed.guard!r}: {len(page.encode()):,} bytes → {output}")


@app.command()
def explain(
    code: Annotated[str | None, typer.Argument(help="A diagnostic code, e.g. join.fan_out.")] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List every code.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the whole catalogue as Markdown.")] = False,
) -> None:
    """Explain a diagnostic code in plain words."""
    from mlguard_orchestration.catalogue import CATALOGUE
    from mlguard_orchestration.catalogue import explain as explain_code

    if markdown:
        from mlguard_orchestration.catalogue import render_markdown

        sys.stdout.write(render_markdown())
        return
    if list_all or not code:
        t = Table("code", "title", box=None)
        for e in CATALOGUE.values():
            t.add_row(e.code, e.title)
        console.print(t)
        return
    try:
        e = explain_code(code)
    except MlguardError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"[bold]{e.code}[/bold] — {e.title}\n\n{e.explanation}\n\n"
                  f"[bold]Next check:[/bold] {e.next_check}\n[bold]Fix:[/bold] {e.fix}")


def _write(path: Path, text: str, option: str) -> None:
    """Write an output file; a path that cannot be written is the guard's own error (exit 2), never exit 1."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        errors.print(f"[red]error:[/red] cannot write {option} {str(path)!r}: {exc.strerror or exc}")
        raise typer.Exit(2) from None


def _finish(report: Report, as_json: bool, report_file: Path | None = None) -> None:
    if report_file is not None:
        _write(report_file, json.dumps(report.compact(), indent=2), "--report")
    if as_json:
        sys.stdout.write(json.dumps(report.compact(), indent=2) + "\n")
    else:
        render(report)
    raise typer.Exit(EXIT[report.status])


def render(report: Report) -> None:
    """The report as rich tables: verdict first, then findings with their top causes."""
    colour = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red"}[report.status]
    console.print(f"[bold {colour}]{report.status.upper()}[/bold {colour}] guard [bold]{report.guard}[/bold]: "
                  f"{report.checks_run} checks, {len(report.findings)} finding(s) in {report.duration_s:.2f}s")
    for tname, t in report.tables.items():
        console.print(f"  [dim]{tname}: {t.rows if t.rows is not None else '?'} rows — {t.source}[/dim]")
    if report.error:
        console.print(f"  [red]the guard could not run ({report.error.type}):[/red] {report.error.message}")
    if report.findings:
        grid = Table("", "code", "finding", "likely cause → next check", show_lines=True, expand=True)
        for f in report.findings:
            c = f.causes[0] if f.causes else None
            grid.add_row(f"[{'red' if f.severity == 'fail' else 'yellow'}]{f.severity}[/]", f.code, f.message,
                         f"{c.summary} ({c.confidence:.0%})\n→ {c.next_check}" if c else "")
        console.print(grid)
    for n in report.notes:
        console.print(f"  [dim]note: {n}[/dim]")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


if __name__ == "__main__":
    app()
