"""Test-session settings that must exist before anything imports Airflow: one throwaway Airflow home (SQLite
metadata DB, no example DAGs) and one mlguard store/workdir for the whole session, shared by every
`dag.test()` in this process (Airflow's first run in a process costs ~5 s; later ones ~0.3 s)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION = Path(tempfile.mkdtemp(prefix="mlguard-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "dags_examples")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION / 'airflow' / 'airflow.db'}"
os.environ["MLGUARD_STORE"] = str(_SESSION / "profiles")
os.environ["MLGUARD_WORKDIR"] = str(_SESSION / "runs")
os.environ["MLGUARD_REGISTRY"] = str(_SESSION / "registry")
(_SESSION / "airflow").mkdir()
