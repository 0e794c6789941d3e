"""`make demo`: the churn pipeline run for real by an orchestrator — clean, then with one planted bug, then (for
a data or training bug) with a target leak the evaluate → register gate must block — printing which task
stopped each bad run and why.

- Airflow 3 (the default): `dags_examples/churn_dag.py` with `dag.test()`, SQLite metadata DB under .airflow/.
- Prefect 3: `dags_examples/churn_flow.py` on an ephemeral Prefect API (SQLite under .mlguard/demo-prefect/).

    MLGUARD_BUG=unit_change make demo                  # any of dags_examples.churn.pipeline.BUGS
    make demo ORCHESTRATOR=prefect                     # or MLGUARD_ORCHESTRATOR=prefect, or
    python -m dags_examples.demo --orchestrator prefect

The orchestrators' own logs are silenced (the report is printed once, here, and its page written next to the
run); AIRFLOW__LOGGING__LOGGING_LEVEL=INFO or PREFECT_LOGGING_LEVEL=INFO brings them back.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))
ORCHESTRATORS = ("airflow", "prefect")
ORDER = ["configure", "extract", "guard_extract", "guard_join", "preprocess", "guard_training", "split",
         "guard_split", "train", "evaluate", "gate", "register"]
GATE_DEMO_BUG = "target_leak"  # shown after the chosen bug: the gate blocks the model and names the column


def _environment(orchestrator: str) -> Path:
    """Before the orchestrator is imported: its home and DB, and a fresh mlguard store for a reproducible demo."""
    demo = ROOT / ".mlguard" / f"demo-{orchestrator}"
    shutil.rmtree(demo, ignore_errors=True)
    os.environ.update({"MLGUARD_STORE": str(demo / "profiles"), "MLGUARD_WORKDIR": str(demo / "runs"),
                       "MLGUARD_REGISTRY": str(demo / "registry")})
    if orchestrator == "airflow":
        os.environ.update({
            "AIRFLOW_HOME": str(HOME), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL"),
        })
    else:  # no PREFECT_API_URL: Prefect starts an ephemeral API server on a SQLite DB in PREFECT_HOME
        os.environ.pop("PREFECT_API_URL", None)
        (demo / "prefect").mkdir(parents=True)
        os.environ.update({"PREFECT_HOME": str(demo / "prefect"),
                           "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(demo / "prefect" / "storage"),
                           "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # a busy laptop needs >20 s
                           "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "CRITICAL")})
    return demo


def _print_states(got: dict[str, str | None]) -> None:
    print("   " + " → ".join(f"{t}:{got.get(t) or 'not run'}" for t in ORDER))


def _print_stop(stage: str, not_run: list[str], report, where: str) -> None:  # type: ignore[no-untyped-def]
    from mlguard_orchestration.adapters import log_text
    from mlguard_orchestration.html import to_html

    print(f"\n   → stopped at task {stage!r}; downstream tasks did not run ({', '.join(not_run)})")
    if report is None:
        return
    cause = report.top_cause
    if cause is not None:
        print(f"   → top cause: {cause.summary} [{cause.code}]")
    page = Path(os.environ["MLGUARD_WORKDIR"]).parent / "pages" / f"{stage}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(to_html(report), encoding="utf-8")
    print(f"\n   report ({where}; page {page.relative_to(ROOT)}):\n"
          + "\n".join("     " + line for line in log_text(report).splitlines()))


def _bugs(bug: str) -> list[str]:
    from dags_examples.churn.pipeline import GATE_BUGS

    return [bug] if bug in GATE_BUGS else [bug, GATE_DEMO_BUG]


def airflow_demo(bug: str) -> int:
    from airflow.utils import db

    from dags_examples.churn.pipeline import BUGS
    from dags_examples.churn_dag import build_dag
    from mlguard_orchestration.airflow import read_report

    def run(bug: str):  # type: ignore[no-untyped-def]
        dag_run = build_dag().test(run_conf={"bug": bug})
        got = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        _print_states(got)
        return dag_run, got

    HOME.mkdir(parents=True, exist_ok=True)
    print(f"Airflow home {HOME} (SQLite), DAG mlguard_churn from dags_examples/churn_dag.py")
    db.initdb()
    print("\n1. clean run (its passing guards promote the reference profiles):")
    _, got = run("none")
    clean_ok = set(got.values()) == {"success"}
    print("   → every task succeeded; model registered" if clean_ok else "   → UNEXPECTED: the clean run did not pass")
    for step, planted in enumerate(_bugs(bug), start=2):
        print(f"\n{step}. run with a planted bug — {planted}: {BUGS[planted]}")
        dag_run, got = run(planted)
        failed = [t for t in ORDER if got.get(t) == "failed"]
        if not failed:
            print("   → the bug went through every guard: that is a bug in mlguard")
            return 1
        _print_stop(failed[0], [t for t in ORDER if got.get(t) == "upstream_failed"],
                    read_report(dag_run, failed[0]), "XCom key 'mlguard_report'")
    return 0 if clean_ok else 1


def prefect_demo(bug: str) -> int:
    from dags_examples.churn.pipeline import BUGS
    from dags_examples.churn_flow import churn_pipeline, task_states

    def run(bug: str):  # type: ignore[no-untyped-def]
        state = churn_pipeline(bug, return_state=True)
        got = task_states(state.state_details.flow_run_id)
        _print_states(got)
        return state, got

    print(f"Prefect (ephemeral API server, SQLite in {os.environ['PREFECT_HOME']}), flow mlguard-churn from "
          "dags_examples/churn_flow.py")
    print("\n1. clean run (its passing guards promote the reference profiles):")
    state, got = run("none")
    clean_ok = state.is_completed()
    print("   → every task succeeded; model registered" if clean_ok else "   → UNEXPECTED: the clean run did not pass")
    for step, planted in enumerate(_bugs(bug), start=2):
        print(f"\n{step}. run with a planted bug — {planted}: {BUGS[planted]}")
        state, got = run(planted)
        failed = [t for t in ORDER if got.get(t) == "Failed"]
        if not failed:
            print("   → the bug went through every guard: that is a bug in mlguard")
            return 1
        error = state.result(raise_on_failure=False)
        _print_stop(failed[0], [t for t in ORDER if t not in got], getattr(error, "report", None),
                    "the task run's artifacts 'mlguard-…'")
    return 0 if clean_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrator", choices=ORCHESTRATORS,
                        default=os.environ.get("MLGUARD_ORCHESTRATOR") or "airflow",
                        help="which orchestrator runs the pipeline (default: $MLGUARD_ORCHESTRATOR, else airflow)")
    args = parser.parse_args(argv)
    if args.orchestrator not in ORCHESTRATORS:
        parser.error(f"MLGUARD_ORCHESTRATOR={args.orchestrator!r}: choose one of {', '.join(ORCHESTRATORS)}")
    from dags_examples.churn.pipeline import BUGS

    bug = os.environ.get("MLGUARD_BUG", "wrong_join_key")
    if bug not in BUGS:
        print(f"MLGUARD_BUG={bug!r} is not a planted bug; choose one of: {', '.join(BUGS)}", file=sys.stderr)
        return 2
    _environment(args.orchestrator)
    return (airflow_demo if args.orchestrator == "airflow" else prefect_demo)(bug)


if __name__ == "__main__":
    sys.exit(main())
