"""`make demo-cli`: the churn pipeline run twice through the `mlguard` CLI — clean, then with a planted bug —
showing the guard stage that stops the bad run and its top cause.

    MLGUARD_BUG=unit_change make demo-cli    # any of: wrong_join_key (default), key_type_mismatch,
                                             # timezone_shift, train_test_overlap, renamed_column,
                                             # unit_change, null_explosion, empty_extract
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from dags_examples.churn.data import extract
from dags_examples.churn.pipeline import DATA_BUGS as BUGS
from dags_examples.churn.pipeline import PipelineConfig, run_pipeline
from mlguard_orchestration.report import Report

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mlguard" / "demo"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlguard_orchestration.cli", *args], text=True,
                          capture_output=True, check=False, env={**os.environ, "COLUMNS": "140"})


def cli_runner(show: bool):
    def run(stage: str, spec: Path, tables: dict[str, Path], refs: dict[str, Path]) -> Report:
        out = spec.with_suffix(".report.json")
        args = ["check", "--spec", str(spec), "--report", str(out)]
        args += [a for t, p in tables.items() for a in ("--table", f"{t}={p}")]
        args += [a for t, p in refs.items() for a in ("--reference", f"{t}={p}")]
        proc = cli(*args)
        report = Report.model_validate(json.loads(out.read_text()))
        print(f"  {stage:<15} {report.status.upper():<5} ({report.checks_run} checks, {report.duration_s:.2f}s)")
        if show and not report.passed:
            print("\n  $ mlguard " + " ".join(args[:3]) + " …\n")
            print("\n".join("    " + line for line in proc.stdout.splitlines()))
        return report
    return run


def main() -> int:
    bug = os.environ.get("MLGUARD_BUG", "wrong_join_key")
    if bug not in BUGS:
        print(f"MLGUARD_BUG={bug!r} is not a planted bug; choose one of: {', '.join(BUGS)}", file=sys.stderr)
        return 2
    shutil.rmtree(WORK, ignore_errors=True)
    print("1. reference: yesterday's clean features, profiled once")
    ref_paths = extract(WORK / "reference" / "raw", seed=1, day=date(2026, 10, 31))
    ref = WORK / "reference" / "features.profile.json"
    proc = cli("profile", str(ref_paths["features"]), "-o", str(ref))
    print("   $ mlguard profile features.parquet -o features.profile.json\n   " + proc.stdout.strip())
    refs = {"features": ref}

    print("\n2. today's batch, clean:")
    clean = run_pipeline(PipelineConfig(), WORK / "clean", refs, cli_runner(show=True))
    print("   → all guards passed" if clean.stopped_at is None else f"   → UNEXPECTED stop at {clean.stopped_at}")

    print(f"\n3. today's batch with a planted bug — {bug}: {BUGS[bug]}")
    bad = run_pipeline(PipelineConfig(bug=bug), WORK / "bug", refs, cli_runner(show=True))
    if bad.stopped_at is None or bad.report is None:
        print("   → the bug went through every guard: that is a bug in mlguard")
        return 1
    top = bad.report.top_finding
    cause = bad.report.top_cause
    print(f"\n   → stopped at task {bad.stopped_at!r}: [{top.code if top else '?'}] "
          f"{top.message if top else ''}")
    if cause is not None:
        print(f"   → top cause: {cause.summary} [{cause.code}]\n   → next check: {cause.next_check}")
    return 0 if clean.stopped_at is None else 1


if __name__ == "__main__":
    sys.exit(main())
