"""`make demo`: the churn DAG run for real by Airflow 3 (`dag.test()`, SQLite metadata DB under .airflow/,
examples off) — clean, then with one planted bug — printing which task stopped the bad run and why.

    MLGUARD_BUG=unit_change make demo     # any of dags_examples.churn.pipeline.BUGS; default wrong_join_key
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".mlguard" / "demo-airflow"
HOME = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))

# Before Airflow is imported: its home, DB and DAG folder, and a fresh mlguard store for a reproducible demo.
os.environ.update({
    "AIRFLOW_HOME": str(HOME), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    "MLGUARD_STORE": str(DEMO / "profiles"), "MLGUARD_WORKDIR": str(DEMO / "runs"),
    "MLGUARD_REGISTRY": str(DEMO / "registry"),
})

ORDER = ["configure", "extract", "guard_extract", "guard_join", "preprocess", "guard_training", "split",
         "guard_split", "train", "evaluate", "register"]


def run(bug: str):  # type: ignore[no-untyped-def]
    from dags_examples.churn_dag import build_dag

    dag_run = build_dag().test(run_conf={"bug": bug})
    got = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    print("   " + " → ".join(f"{t}:{got.get(t)}" for t in ORDER))
    return dag_run, got


def main() -> int:
    from dags_examples.churn.pipeline import BUGS

    bug = os.environ.get("MLGUARD_BUG", "wrong_join_key")
    if bug not in BUGS:
        print(f"MLGUARD_BUG={bug!r} is not a planted bug; choose one of: {', '.join(BUGS)}", file=sys.stderr)
        return 2
    shutil.rmtree(DEMO, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    from airflow.utils import db

    print(f"Airflow home {HOME} (SQLite), DAG mlguard_churn from dags_examples/churn_dag.py")
    db.initdb()

    print("\n1. clean run (its passing guards promote the reference profiles):")
    _, got = run("none")
    clean_ok = set(got.values()) == {"success"}
    print("   → every task succeeded; model registered" if clean_ok else "   → UNEXPECTED: the clean run did not pass")

    print(f"\n2. run with a planted bug — {bug}: {BUGS[bug]}")
    dag_run, got = run(bug)
    failed = [t for t in ORDER if got.get(t) == "failed"]
    if not failed:
        print("   → the bug went through every guard: that is a bug in mlguard")
        return 1
    from mlguard_orchestration.airflow import read_report
    from mlguard_orchestration.notify import to_text

    report = read_report(dag_run, failed[0])
    print(f"\n   → stopped at task {failed[0]!r}; downstream tasks did not run "
          f"({', '.join(t for t in ORDER if got.get(t) == 'upstream_failed')})")
    if report is not None:
        cause = report.top_cause
        if cause is not None:
            print(f"   → top cause: {cause.summary} [{cause.code}]")
        print("\n   report (XCom key 'mlguard_report'):\n" + "\n".join("     " + line for line in to_text(report).splitlines()))
    return 0 if clean_ok else 1


if __name__ == "__main__":
    sys.exit(main())
