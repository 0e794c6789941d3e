"""The churn-model pipeline as an Airflow 3 DAG, with mlguard guards between the tasks.

    configure → extract → guard_extract → guard_join → preprocess → guard_training → split → guard_split
              → train → evaluate → gate → register

The `bug` param plants one bug at a time (see dags_examples.churn.pipeline.BUGS); the guard that must stop it
fails its task, the downstream tasks never run, and the report is in XCom under "mlguard_report".
Reference profiles are promoted into MLGUARD_STORE (default .mlguard/profiles) by every passing guard; the gate
compares the model with the champion that `register` stored there on the last passing run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from dags_examples.churn.pipeline import BUGS, GATE_SPEC, PipelineConfig, write_specs
from mlguard_orchestration.airflow import DataGuardOperator, ModelGateOperator, training_task

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("MLGUARD_WORKDIR", ROOT / ".mlguard" / "runs"))
STORE = os.environ.get("MLGUARD_STORE", str(ROOT / ".mlguard" / "profiles"))
REGISTRY = Path(os.environ.get("MLGUARD_REGISTRY", ROOT / ".mlguard" / "registry"))
DAG_ID = "mlguard_churn"


def _pull(task_id: str, key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['" + key + "'] }}"


def build_dag(store: str = STORE, on_failure_callback: Sequence[Any] = ()) -> DAG:
    """A fresh DAG object (Airflow's params are per object: tests build one per run); `store` holds the
    references, the last good runs and the champion; `on_failure_callback` (e.g. the mlguard notifiers) is
    every task's, so the task a guard stops posts its diagnosis."""
    callbacks = {"on_failure_callback": list(on_failure_callback)} if on_failure_callback else {}
    with DAG(DAG_ID, schedule=None, catchup=False, tags=["mlguard", "example"],
             params={"bug": Param("none", type="string", enum=["none", *BUGS],
                                  description="Plant one bug to see which guard stops it.")},
             default_args={"retries": 0, **callbacks}) as dag:

        @task
        def configure(params: dict | None = None, run_id: str | None = None) -> dict:
            bug = None if (params or {}).get("bug", "none") == "none" else params["bug"]  # type: ignore[index]
            config = PipelineConfig(bug=bug)
            workdir = WORK / re.sub(r"[^A-Za-z0-9_.-]", "_", str(run_id))
            specs = write_specs(config, workdir / "specs")
            return {"bug": bug or "none", "workdir": str(workdir), "join_keys": config.join_keys,
                    **{stage: str(path) for stage, path in specs.items()}}

        @task
        def extract(cfg: dict) -> dict:
            from dags_examples.churn.data import extract as run_extract

            paths = run_extract(Path(cfg["workdir"]) / "raw", seed=2, bug=None if cfg["bug"] == "none" else cfg["bug"])
            return {name: str(p) for name, p in paths.items()}

        guard_extract = DataGuardOperator(
            task_id="guard_extract", spec=_pull("configure", "guard_extract"), store=store,
            tables={"features": _pull("extract", "features"), "labels": _pull("extract", "labels")})
        guard_join = DataGuardOperator(
            task_id="guard_join", spec=_pull("configure", "guard_join"),
            tables={"labels": _pull("extract", "labels"), "features": _pull("extract", "features")})

        @task
        def preprocess(cfg: dict, raw: dict) -> str:
            from dags_examples.churn.data import preprocess as run_preprocess

            return str(run_preprocess({k: Path(v) for k, v in raw.items()}, Path(cfg["workdir"]), cfg["join_keys"]))

        guard_training = DataGuardOperator(
            task_id="guard_training", spec=_pull("configure", "guard_training"),
            tables={"training": "{{ ti.xcom_pull(task_ids='preprocess') }}"})

        @task
        def split(cfg: dict, training: str) -> dict:
            from dags_examples.churn.data import split as run_split

            bug = None if cfg["bug"] == "none" else cfg["bug"]
            return {k: str(v) for k, v in run_split(Path(training), Path(cfg["workdir"]), bug=bug).items()}

        guard_split = DataGuardOperator(
            task_id="guard_split", spec=_pull("configure", "guard_split"),
            tables={"train": _pull("split", "train"), "test": _pull("split", "test")})

        @training_task
        def train(cfg: dict, parts: dict, guard=None) -> str:  # type: ignore[no-untyped-def]
            from dags_examples.churn.model import train as fit

            bug = None if cfg["bug"] == "none" else cfg["bug"]
            return str(fit(Path(parts["train"]), Path(cfg["workdir"]) / "model.pt", guard, bug=bug))

        @task
        def evaluate(cfg: dict, parts: dict, model: str) -> dict:
            from dags_examples.churn.model import evaluate as score

            bug = None if cfg["bug"] == "none" else cfg["bug"]
            return score(Path(model), Path(parts["train"]), Path(parts["test"]),
                         Path(cfg["workdir"]) / "scored.parquet", bug=bug)

        gate = ModelGateOperator(task_id="gate", spec=GATE_SPEC, inputs={"xcom": "evaluate"}, store=store)

        @task
        def register(model: str, report: dict, run_id: str | None = None) -> str:
            from dags_examples.churn.model import register as publish

            run = re.sub(r"[^A-Za-z0-9_.-]", "_", str(run_id))
            return str(publish(Path(model), report, REGISTRY, store, run))

        cfg = configure()
        raw = extract(cfg)
        training = preprocess(cfg, raw)
        parts = split(cfg, training)
        model = train(cfg, parts)
        raw >> guard_extract >> guard_join >> training
        training >> guard_training >> parts
        parts >> guard_split >> model
        evaluate(cfg, parts, model) >> gate
        register(model, gate.output)
    return dag


dag = build_dag()
