"""The churn-model pipeline as a Prefect 3 flow, with mlguard guards between the tasks — the same stages and
the same bug switch as the Airflow DAG (dags_examples/churn_dag.py):

    configure → extract → guard_extract → guard_join → preprocess → guard_training → split → guard_split
              → train → evaluate → gate → register

The `bug` parameter plants one bug at a time (see dags_examples.churn.pipeline.BUGS); the guard that must stop
it fails its task, the flow fails with the guard's message, and the task run carries the report as artifacts.
Reference profiles are promoted into MLGUARD_STORE (default .mlguard/profiles) by every passing guard; the gate
compares the model with the champion that `register` stored there on the last passing run.

    python -m dags_examples.churn_flow unit_change      # one run on an ephemeral Prefect server; exits 1 when
                                                        # the flow fails (a guard stopped it), 0 when it completed
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from prefect.runtime import flow_run

from dags_examples.churn.pipeline import BUGS, GATE_SPEC, PipelineConfig, write_specs
from mlguard_orchestration.prefect import guard_data, guard_gate, guard_training
from mlguard_orchestration.report import Report

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("MLGUARD_WORKDIR", ROOT / ".mlguard" / "runs"))
STORE = os.environ.get("MLGUARD_STORE", str(ROOT / ".mlguard" / "profiles"))
REGISTRY = Path(os.environ.get("MLGUARD_REGISTRY", ROOT / ".mlguard" / "registry"))
FLOW_NAME = "mlguard-churn"
ORDER = ["configure", "extract", "guard_extract", "guard_join", "preprocess", "guard_training", "split",
         "guard_split", "train", "evaluate", "gate", "register"]
Bug = Literal[("none", *BUGS)]  # type: ignore[valid-type]  # the UI shows the choices, as the Airflow Param enum


def _bug(cfg: dict[str, Any]) -> str | None:
    return None if cfg["bug"] == "none" else cfg["bug"]


@task
def configure(bug: str) -> dict[str, Any]:
    config = PipelineConfig(bug=None if bug == "none" else bug)
    workdir = WORK / re.sub(r"[^A-Za-z0-9_.-]", "_", str(flow_run.id))
    specs = write_specs(config, workdir / "specs")
    return {"bug": bug, "workdir": str(workdir), "join_keys": config.join_keys,
            **{stage: str(path) for stage, path in specs.items()}}


@task
def extract(cfg: dict[str, Any]) -> dict[str, str]:
    from dags_examples.churn.data import extract as run_extract

    paths = run_extract(Path(cfg["workdir"]) / "raw", seed=2, bug=_bug(cfg))
    return {name: str(p) for name, p in paths.items()}


@task
def preprocess(cfg: dict[str, Any], raw: dict[str, str]) -> str:
    from dags_examples.churn.data import preprocess as run_preprocess

    return str(run_preprocess({k: Path(v) for k, v in raw.items()}, Path(cfg["workdir"]), cfg["join_keys"]))


@task
def split(cfg: dict[str, Any], training: str) -> dict[str, str]:
    from dags_examples.churn.data import split as run_split

    return {k: str(v) for k, v in run_split(Path(training), Path(cfg["workdir"]), bug=_bug(cfg)).items()}


@task
@guard_training()
def train(cfg: dict[str, Any], parts: dict[str, str], guard: Any = None) -> str:
    from dags_examples.churn.model import train as fit

    return str(fit(Path(parts["train"]), Path(cfg["workdir"]) / "model.pt", guard, bug=_bug(cfg)))


@task
def evaluate(cfg: dict[str, Any], parts: dict[str, str], model: str) -> dict[str, Any]:
    from dags_examples.churn.model import evaluate as score

    return score(Path(model), Path(parts["train"]), Path(parts["test"]), Path(cfg["workdir"]) / "scored.parquet",
                 bug=_bug(cfg))


@task
@guard_gate(spec=GATE_SPEC, store=STORE)
def gate(scored: dict[str, Any]) -> dict[str, Any]:
    return scored  # evaluate's paths and train metric are the gate inputs


@task
def register(model: str, report: Report) -> str:
    from dags_examples.churn.model import register as publish

    run = re.sub(r"[^A-Za-z0-9_.-]", "_", str(flow_run.id))
    return str(publish(Path(model), report.model_dump(mode="json"), REGISTRY, STORE, run))


@flow(name=FLOW_NAME)
def churn_pipeline(bug: Bug = "none") -> str:  # type: ignore[valid-type]
    """Plant one bug to see which guard stops it; "none" runs clean and registers a model."""
    cfg = configure(bug)
    raw = extract(cfg)
    guard_data.with_options(name="guard_extract")({"features": raw["features"], "labels": raw["labels"]},
                                                  spec=cfg["guard_extract"], store=STORE)
    guard_data.with_options(name="guard_join")({"labels": raw["labels"], "features": raw["features"]},
                                               spec=cfg["guard_join"])
    training = preprocess(cfg, raw)
    guard_data.with_options(name="guard_training")({"training": training}, spec=cfg["guard_training"])
    parts = split(cfg, training)
    guard_data.with_options(name="guard_split")({"train": parts["train"], "test": parts["test"]},
                                                spec=cfg["guard_split"])
    model = train(cfg, parts)
    return register(model, gate(evaluate(cfg, parts, model)))


def task_states(flow_run_id: Any) -> dict[str, str]:
    """{task name: final state name} of a flow run, read back from the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs if r.state is not None}


def main(argv: list[str]) -> int:
    """Run the flow once; exit 0 when it completed, 1 when a guard (or anything else) failed it, 2 for an
    unknown bug name — so a shell or CI step can tell."""
    bug = argv[0] if argv else "none"
    if bug != "none" and bug not in BUGS:
        print(f"unknown bug {bug!r}; choose one of: none, {', '.join(BUGS)}", file=sys.stderr)
        return 2
    state = churn_pipeline(bug, return_state=True)
    print(state)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
