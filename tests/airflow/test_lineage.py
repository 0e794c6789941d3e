"""OpenLineage data-quality facets from the guard operators, for real: a DAG of guard operators runs under
`dag.test()` in its own process with Airflow's OpenLineage integration on (the provider's listener, the
OpenLineage client, its file transport), and the events written to that file are read back.

Its own process: OpenLineage reads its configuration once per process, and the rest of the suite runs with it
off (no transport configured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.timeout(900)  # the fixtures start real servers and processes on a busy machine
SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from airflow.sdk import DAG
    from airflow.utils import db

    import mlguard_orchestration as mg
    from mlguard_orchestration.airflow import DataGuardOperator, ModelGateOperator, RowCountGuardOperator
    from tests.airflow.conftest import register

    d = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": np.arange(1_000), "spend": np.where(rng.random(1_000) < 0.3, np.nan, 5.0),
                  "plan": rng.choice(["a", "b"], 1_000)}).to_parquet(d / "features.parquet")
    pd.DataFrame({"score": rng.random(2_000), "churned": rng.integers(0, 2, 2_000)}).to_parquet(d / "eval.parquet")
    db.initdb()
    with DAG("lineage", schedule=None) as dag:
        DataGuardOperator(task_id="nulls", tables={"features": str(d / "features.parquet")}, store=str(d / "store"),
                          checks=[mg.NullRate(column="spend", table="features", max=0.01)])
        RowCountGuardOperator(task_id="rows", table=str(d / "features.parquet"), min_rows=10, store=str(d / "store"))
        ModelGateOperator(task_id="gate", store=str(d / "store"),
                          spec={"name": "gate", "task": "binary", "thresholds": {"auc": {"min": 0.9}},
                                "prediction_column": "score", "target_column": "churned"},
                          inputs={"predictions": str(d / "eval.parquet"), "targets": str(d / "eval.parquet")})
    run = register(dag).test()
    print({ti.task_id: ti.state for ti in run.get_task_instances()})
''')


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    d = tmp_path_factory.mktemp("lineage")
    home = d / "airflow"
    home.mkdir()
    log = d / "openlineage.jsonl"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/a.db",
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(log), "append": True}),
           "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlguard-test", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
           "PYTHONPATH": str(ROOT)}
    (d / "run.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(d / "run.py"), str(d)], env=env, capture_output=True, text=True,
                          timeout=900, check=False, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "'nulls': 'failed'" in proc.stdout and "'rows': 'success'" in proc.stdout, proc.stdout[-2000:]
    assert log.exists(), (proc.stdout + proc.stderr)[-4000:]
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _final(events: list[dict[str, Any]], task: str) -> dict[str, Any]:
    (event,) = [e for e in events if e["job"]["name"] == f"lineage.{task}" and e["eventType"] in ("COMPLETE", "FAIL")]
    return event


def test_a_failed_guard_reports_its_failed_assertions_and_the_table_statistics(events: list[dict[str, Any]],
                                                                              tmp_path: Path) -> None:
    event = _final(events, "nulls")
    assert event["eventType"] == "FAIL"
    (ds,) = event["inputs"]
    assert ds["namespace"] == "file" and ds["name"].endswith("/features.parquet")
    assertions = ds["facets"]["dataQualityAssertions"]["assertions"]
    whole = assertions[0]
    assert whole["assertion"] == "mlguard" and whole["success"] is False and "1 failed" in whole["description"]
    (null_rate,) = [a for a in assertions if a["assertion"] == "schema.null_rate"]
    assert null_rate["success"] is False and null_rate["severity"] == "error" and null_rate["column"] == "spend"
    assert float(null_rate["actual"]) > 0.2 and float(null_rate["expected"]) == 0.01
    metrics = ds["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 1_000
    spend = metrics["columnMetrics"]["spend"]
    assert 200 < spend["nullCount"] < 400 and spend["min"] == spend["max"] == 5.0
    assert metrics["columnMetrics"]["plan"]["distinctCount"] == 2


def test_a_passing_guard_and_the_gate_report_their_verdicts_too(events: list[dict[str, Any]]) -> None:
    rows = _final(events, "rows")
    assert rows["eventType"] == "COMPLETE"
    (ds,) = rows["inputs"]
    assert ds["facets"]["dataQualityAssertions"]["assertions"] == [
        {**ds["facets"]["dataQualityAssertions"]["assertions"][0], "assertion": "mlguard", "success": True}]
    assert ds["inputFacets"]["dataQualityMetrics"]["rowCount"] == 1_000
    gate = _final(events, "gate")
    (ds,) = gate["inputs"]
    verdict = ds["facets"]["dataQualityAssertions"]["assertions"]
    assert verdict[0]["assertion"] == "mlguard"
    assert (gate["eventType"] == "FAIL") == (verdict[0]["success"] is False)  # random scores: AUC ~0.5 < 0.9
    assert gate["eventType"] == "FAIL" and any(a["assertion"].startswith("gate.") for a in verdict[1:])
