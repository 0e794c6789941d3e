"""Test-session settings that must exist before anything imports Airflow: one throwaway Airflow home (SQLite
metadata DB, no example DAGs) and one mlguard store/workdir for the whole session, shared by every
`dag.test()` in this process (Airflow's first run in a process costs ~5 s; later ones ~0.3 s)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

_SESSION = Path(tempfile.mkdtemp(prefix="mlguard-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "dags_examples")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION / 'airflow' / 'airflow.db'}"
os.environ["MLGUARD_STORE"] = str(_SESSION / "profiles")
os.environ["MLGUARD_WORKDIR"] = str(_SESSION / "runs")
os.environ["MLGUARD_REGISTRY"] = str(_SESSION / "registry")
(_SESSION / "airflow").mkdir()

# Under `make test` (pytest-xdist, `-n 2 --dist loadgroup`) tests go to a worker by group: a whole directory
# for those sharing a session server (one Prefect API, one PostgreSQL cluster and Spark session per worker that
# needs them, so each starts once), else their module (module fixtures such as the example DAG's clean run, the
# api-server or the browser pages are built once). Each worker is its own process with its own session folders
# above, so workers share no Airflow DB, store or port. The groups are made here rather than with xdist_group
# marks, which xdist 3.8 cannot read under pytest 9 (it renames `item._nodeid`, which pytest 9 no longer reads).
_SHARED_SERVER_DIRS = ("prefect", "engines")
# Groups of minutes each, handed out first so that neither worker is left alone with one at the end.
_LONGEST = ("prefect", "test_readme.py", "airflow/test_example_dag.py", "training/test_ddp.py")


def _group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0].removeprefix("tests/")
    top = module.split("/", 1)[0]
    return top if top in _SHARED_SERVER_DIRS else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed:
                first = [n for n in next(iter(self.registered_collections.values())) if _group(n) in _LONGEST]
                for nodeid in sorted(first, key=lambda n: _LONGEST.index(_group(n))):
                    self.workqueue.setdefault(_group(nodeid), {})[nodeid] = False
            super().schedule()

    return Groups(config, log)
