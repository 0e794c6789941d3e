"""A guard run as data-quality lineage (the core half; tests/airflow/test_lineage.py runs it through Airflow's
OpenLineage integration): dataset names by OpenLineage's naming, one failed assertion per finding, statistics
without raw values, bounded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import mlguard_orchestration as mg
from mlguard_orchestration.lineage import MAX_ASSERTIONS, dataset_name, quality


def test_dataset_names_follow_openlineage_naming() -> None:
    assert dataset_name("s3://lake/features/2024-06-01/", "g", "data") == ("s3://lake", "features/2024-06-01/")
    assert dataset_name("/data/f.parquet", "g", "data") == ("file", "/data/f.parquet")
    assert dataset_name("file:///data/f.parquet", "g", "data") == ("file", "/data/f.parquet")
    assert dataset_name("pandas.DataFrame (10, 2)", "g", "labels") == ("mlguard", "g.labels")


def test_each_table_gets_its_statistics_and_the_findings_about_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"user_id": np.arange(500), "secret": [f"ssn-{i}" for i in range(500)]})
    feats = pd.DataFrame({"user_id": np.arange(500), "spend": np.where(rng.random(500) < 0.5, np.nan, 3.0)})
    feats.to_parquet(tmp_path / "features.parquet")
    guard = mg.Guard("g", [mg.NullRate(column="spend", table="features", max=0.0)], store=tmp_path / "store")
    report = guard.run({"labels": labels, "features": str(tmp_path / "features.parquet")})
    got = {t["table"]: t for t in quality(report, guard.last_profiles)}
    assert got["features"]["namespace"] == "file" and got["labels"]["name"] == "g.labels"
    assert got["features"]["rows"] == 500 and got["features"]["columns"]["spend"]["max"] == 3.0
    whole, *findings = got["features"]["assertions"]
    assert whole == {**whole, "assertion": "mlguard", "success": False}
    assert [(a["assertion"], a["column"], a["severity"]) for a in findings] == [("schema.null_rate", "spend", "error")]
    assert got["labels"]["assertions"][1:] == []  # the finding is about features only
    assert "ssn-" not in json.dumps(got)  # statistics, never values


def test_assertions_are_bounded() -> None:
    findings = [mg.Finding(code="schema.null_rate", check=f"null_rate(c{i})", severity="warn", message="m",
                           table="data", columns=[f"c{i}"]) for i in range(1_000)]
    report = mg.Report(guard="g", status="warn", findings=findings,
                       tables={"data": mg.report.TableSummary(source="/x.parquet", rows=1)})
    (t,) = quality(report)
    assert len(t["assertions"]) == MAX_ASSERTIONS and t["assertions"][0]["success"] is True
