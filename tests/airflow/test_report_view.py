"""The report inside Airflow 3, for real: the example DAG runs with a planted bug (`dag.test()` on the session's
metadata DB), a real `airflow api-server` on loopback serves the plugin's report view, and

- an anonymous, a wrongly signed or an unauthorised request gets 401/403 and no report content;
- an authorised one gets the report page (from XCom, or from the store when XCom holds only a pointer);
- the UI lists the views on the task-instance and DAG-run pages, and headless Chromium, logged in, shows the
  verdict and the top cause inside the task-instance page (screenshots under .artifacts/screenshots/).

Also what the guard leaves in Airflow besides: a big report's pointer in XCom, a passing guard's summary in the
`extra` of its task's asset events.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from dags_examples.churn_dag import DAG_ID, build_dag
from mlguard_orchestration.airflow import DataGuardOperator
from mlguard_orchestration.airflow._report import XCOM_FULL_KEY, XCOM_KEY
from tests import _browser
from tests._airflow_server import ApiServer, api_server
from tests.airflow.conftest import register, states, xcom_report

BIG_COLUMNS = 300
pytestmark = pytest.mark.timeout(900)  # the fixtures start real servers and processes on a busy machine


def _xcom(dag_run: Any, task_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id,
                                                 key=key)).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The example DAG with the wrong join key planted: guard_join fails."""
    run = build_dag(store=str(tmp_path_factory.mktemp("store"))).test(run_conf={"bug": "wrong_join_key"})
    assert states(run)["guard_join"] == "failed", states(run)
    return run


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, str]:
    """A guard whose report is far larger than XCom's compact one, and a passing guard with an asset outlet."""
    from airflow.sdk import DAG, Asset

    d = tmp_path_factory.mktemp("big")
    pd.DataFrame({f"c{i:03d}": np.full(50, np.nan) for i in range(BIG_COLUMNS)}).to_parquet(d / "wide.parquet")
    pd.DataFrame({"x": np.arange(50)}).to_parquet(d / "ok.parquet")
    asset = Asset(uri=(d / "ok.parquet").as_uri(), name="ok_features")
    with DAG("mlguard_big_report", schedule=None) as dag:
        DataGuardOperator(task_id="wide", tables=str(d / "wide.parquet"), store=str(d / "store"),
                          checks=[{"kind": "null_rate", "column": f"c{i:03d}", "max": 0.0} for i in range(BIG_COLUMNS)])
        DataGuardOperator(task_id="ok", tables=str(d / "ok.parquet"), store=str(d / "store"),
                          checks=[mg.RowCount(min=1)], outlets=[asset])
    run = register(dag).test()
    assert states(run) == {"wide": "failed", "ok": "success"}, states(run)
    return run, d / "store", asset.uri


@pytest.fixture(scope="module")
def server(churn: Any, big: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(tmp_path_factory.mktemp("api")) as s:
        yield s


def _paths(run: Any) -> list[str]:
    rid = quote(run.run_id, safe="")
    return [f"/mlguard/report/{DAG_ID}/{rid}/guard_join", f"/mlguard/run/{DAG_ID}/{rid}"]


def test_anonymous_forged_and_unauthorised_requests_get_nothing(server: ApiServer, churn: Any) -> None:
    summary = xcom_report(churn, "guard_join").top_cause.summary
    for path in _paths(churn):
        anonymous = server.get(path)
        assert anonymous.status_code == 401, (path, anonymous.status_code)
        forged = httpx_get(server, path, headers={"Authorization": "Bearer not.a.jwt"})
        assert forged.status_code in (401, 403), forged.status_code
        nobody = server.get(path, user="nobody")  # signed in, but no role: may read no DAG
        assert nobody.status_code == 403, (path, nobody.status_code)
        cookie = httpx_get(server, path, cookies={"_token": server.token("nobody")})  # the UI's way
        assert cookie.status_code == 403
        for r in (anonymous, forged, nobody, cookie):
            assert "guard_join" not in r.text and escape(summary) not in r.text and "<svg" not in r.text


def httpx_get(server: ApiServer, path: str, **kw: Any) -> Any:
    import httpx

    return httpx.get(f"{server.url}{path}", timeout=60, **kw)


def test_a_reader_of_the_dag_gets_the_report_page(server: ApiServer, churn: Any) -> None:
    report = xcom_report(churn, "guard_join")
    task, run = (server.get(p, user="viewer") for p in _paths(churn))
    assert task.status_code == 200 and task.headers["content-type"].startswith("text/html")
    assert "script-src" not in task.headers["content-security-policy"]  # default-src 'none': no script at all
    assert escape(report.top_cause.summary) in task.text and "FAIL" in task.text and "<svg" in task.text
    assert run.status_code == 200 and "Guards in this run (2)" in run.text  # guard_extract passed, guard_join not
    assert run.text.index("guard_join") < run.text.index("guard_extract")  # worst first
    cookie = httpx_get(server, _paths(churn)[0], cookies={"_token": server.token("viewer")})
    assert cookie.status_code == 200 and escape(report.top_cause.summary) in cookie.text
    missing = server.get(f"/mlguard/report/{DAG_ID}/{quote(churn.run_id, safe='')}/preprocess", user="viewer")
    assert missing.status_code == 404 and "no mlguard report" in missing.text


def test_the_ui_offers_the_views_on_task_instances_and_dag_runs(server: ApiServer) -> None:
    plugins = server.get("/api/v2/plugins", user="admin").json()["plugins"]
    (mine,) = [p for p in plugins if p["name"] == "mlguard"]
    assert {(v["destination"], v["url_route"]) for v in mine["external_views"]} == {
        ("task_instance", "mlguard_report"), ("dag_run", "mlguard_run_report")}
    assert [a["url_prefix"] for a in mine["fastapi_apps"]] == ["/mlguard"]


def test_a_big_report_goes_to_the_store_and_xcom_keeps_a_pointer_and_the_summary(big: Any,
                                                                                  server: ApiServer) -> None:
    run, store, _ = big
    compact = _xcom(run, "wide", XCOM_KEY)
    pointer = _xcom(run, "wide", XCOM_FULL_KEY)
    assert pointer["store"] == str(store) and "/_reports/" in pointer["path"] and Path(pointer["path"]).is_file()
    assert len(compact["findings"]) < BIG_COLUMNS and any("trimmed" in n for n in compact["notes"])
    full = mg.Report.model_validate_json(mg.ProfileStore(store).read_report(pointer["path"]))
    assert len(full.findings) == BIG_COLUMNS
    page = server.get(f"/mlguard/report/mlguard_big_report/{quote(run.run_id, safe='')}/wide", user="viewer")
    assert page.status_code == 200 and f"Findings ({BIG_COLUMNS}," in page.text  # read from the store
    assert _xcom(run, "ok", XCOM_FULL_KEY) is None  # a small report stays whole in XCom


def test_a_passing_guard_puts_its_summary_on_its_asset_events(big: Any) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _, _, uri = big
    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                 .where(AssetModel.uri == uri)).all()
        extras = [e.extra for e in events]
    assert len(extras) == 1, extras
    summary = extras[0]["mlguard"]
    assert summary["guard"] == "ok" and summary["status"] == "pass" and summary["checks_run"] == 1
    assert summary["findings"] == 0 and summary["top_cause"] is None


def test_in_a_real_browser_the_task_instance_page_shows_the_verdict_and_top_cause(
        server: ApiServer, churn: Any, tmp_path: Path) -> None:
    report = xcom_report(churn, "guard_join")
    rid = quote(churn.run_id, safe="")
    with _browser.browser(tmp_path / "profile", _browser.DESKTOP) as page:
        page.goto(f"{server.url}/dags/{DAG_ID}/runs/{rid}/tasks/guard_join/plugin/mlguard_report")
        page.locator('input[name="username"]').fill("viewer")
        page.locator('input[name="password"]').fill("viewer-pw")
        page.locator('button[type="submit"]').click()
        frame = page.frame_locator("iframe")
        frame.locator("h1").wait_for(timeout=120_000)
        text = frame.locator("body").inner_text()
        assert "FAIL" in text and report.top_cause.summary in text, text[:2000]
        assert frame.locator("svg").count() >= 2
        page.wait_for_timeout(500)  # let the UI's own panels settle before the picture (no assertion on time)
        shot = _browser.screenshot(page, "airflow-task-instance-report")
        page.goto(f"{server.url}/dags/{DAG_ID}/runs/{rid}/plugin/mlguard_run_report")
        frame = page.frame_locator("iframe")
        frame.locator("h1").wait_for(timeout=120_000)
        assert "Guards in this run" in frame.locator("body").inner_text()
        _browser.screenshot(page, "airflow-dag-run-reports")
    assert shot.stat().st_size > 10_000
