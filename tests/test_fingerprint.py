"""Run fingerprints and 'what changed since the last good run', read back from real failing reports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

import mlguard_orchestration as mg
from mlguard_orchestration.fingerprint import Fingerprint, code_version, collect, diff, input_profile
from tests._data import churn_frame

SCHEMA = {"user_id": "integer", "monthly_spend_usd": "numeric", "plan": "string"}


def _guard(store: mg.ProfileStore, **kw) -> mg.Guard:
    return mg.Guard("features", checks=[mg.Schema(columns=SCHEMA), mg.NullRate(column="plan", max=0.0)],
                    store=store, **kw)


def test_every_report_carries_the_fingerprint_of_its_run() -> None:
    report = mg.Guard("g", checks=[mg.NullRate(column="x", max=0.0)]).run(pd.DataFrame({"x": [1.0, 2.0]}))
    fp = report.fingerprint
    assert fp is not None
    assert fp.packages["numpy"] == np.__version__ and fp.packages["pandas"] == pd.__version__
    assert fp.packages["mlguard-orchestration"] == mg.__version__
    assert fp.python == ".".join(map(str, sys.version_info[:3]))
    assert fp.hardware.cores >= 1 and fp.hardware.cpu
    assert fp.inputs["data"].columns == {"x": "DOUBLE"} and fp.inputs["data"].rows == 2
    assert report.compact()["fingerprint"]["packages"]["numpy"] == np.__version__


def test_collecting_never_imports_torch_or_an_orchestrator() -> None:
    probe = ("import sys; from mlguard_orchestration.fingerprint import collect; fp = collect(packages=['httpx']);"
             "assert fp.packages['torch'] and fp.packages['httpx'];"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'airflow', 'prefect')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_package_version_change_is_read_back_from_the_failure_report(tmp_path) -> None:
    store = mg.ProfileStore(tmp_path)
    good = churn_frame(2_000, seed=1)
    assert _guard(store).run(good).status == "pass"
    last = store.load_last_good("features")
    assert last is not None and last.inputs["data"].rows == 2_000
    # the last good run had older numpy, pandas and pyarrow: record it so
    old = {"numpy": "1.26.4", "pandas": "2.2.3", "pyarrow": "26.0.0"}
    store.save_last_good("features", last.model_copy(update={"packages": {**last.packages, **old}}))
    bad = good.assign(plan=good["plan"].where(np.arange(len(good)) % 10 != 0))
    report = _guard(store).run(bad)
    assert report.status == "fail"
    pandas = report.changes[0]
    assert pandas.code == "change.package_version" and pandas.before == "2.2.3" and pandas.after == pd.__version__
    assert "pandas upgraded from 2.2.3" in pandas.summary
    # for missing values, data libraries outrank numeric ones, and a major version change outranks a patch
    assert [c.subject for c in report.changes] == ["pandas", "pyarrow", "numpy"]
    assert "changed since the last good run: pandas upgraded" in report.headline()
    assert report.compact()["changes"][0]["subject"] == "pandas"
    assert store.load_last_good("features").packages["numpy"] == "1.26.4"  # a failed run is not the new good


def test_a_schema_change_ranks_first_for_a_schema_finding(tmp_path) -> None:
    store = mg.ProfileStore(tmp_path)
    good = churn_frame(2_000, seed=1)
    assert _guard(store).run(good).passed
    last = store.load_last_good("features")
    store.save_last_good("features", last.model_copy(update={"packages": {**last.packages, "torch": "1.13.0"}}))
    renamed = churn_frame(3_000, seed=2).rename(columns={"plan": "plan_name"})
    report = _guard(store).run(renamed)
    assert [c.code for c in report.changes[:2]] == ["change.schema", "change.row_count"]
    schema = report.changes[0]
    assert "removed 'plan'" in schema.summary and "added 'plan_name'" in schema.summary
    assert report.changes[1].before == 2_000 and report.changes[1].after == 3_000
    assert report.changes[-1].subject == "torch"  # a torch downgrade rarely explains a renamed column


def test_ranking_follows_the_findings() -> None:
    base = collect(inputs={"features": input_profile(1000, {"user_id": "BIGINT", "spend": "DOUBLE"})})
    now = base.model_copy(update={
        "packages": {**base.packages, "torch": "9.0.0"},
        "inputs": {"features": input_profile(1000, {"user_id": "VARCHAR", "spend": "DOUBLE"})}})
    training = diff(base, now, ["training.non_finite_loss"])
    join = diff(base, now, ["join.fan_out"])
    assert [c.subject for c in training] == ["torch", "features"]
    assert [c.subject for c in join] == ["features", "torch"]
    assert "retyped 'user_id' (BIGINT -> VARCHAR)" in join[0].summary
    assert diff(base, base, ["join.fan_out"]) == []


def test_a_hardware_and_a_code_change(tmp_path) -> None:
    base = collect()
    moved = base.model_copy(update={"hardware": base.hardware.model_copy(update={"gpu": "NVIDIA H100",
                                                                                  "cuda": "12.4"})})
    changes = diff(moved, base, ["training.non_finite_gradients"])
    assert {c.subject for c in changes} == {"gpu", "cuda"} and all(c.code == "change.hardware" for c in changes)
    dag = tmp_path / "dag.py"
    dag.write_text("x = 1\n")
    outside = code_version(dag)  # not a git checkout: no error, the file hash still tells
    assert outside.commit is None and outside.file_sha
    dag.write_text("x = 2\n")
    change = diff(base.model_copy(update={"code": outside}), base.model_copy(update={"code": code_version(dag)}))
    assert [c.code for c in change] == ["change.code"] and "dag.py was edited" in change[0].summary
    assert change[0].relevance >= 0.5  # a code change is always a plausible explanation


def test_a_code_change_in_a_git_checkout(tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    dag = repo / "dag.py"
    dag.write_text("JOIN_KEY = ['user_id', 'snapshot_date']\n")
    subprocess.run([*git, "add", "dag.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    store = mg.ProfileStore(tmp_path / "store")
    good = churn_frame(1_000, seed=1)
    assert _guard(store, code_path=dag).run(good).passed
    first = store.load_last_good("features").code
    assert first is not None and first.commit and first.dirty is False
    dag.write_text("JOIN_KEY = ['user_id']\n")
    subprocess.run([*git, "commit", "-qam", "second"], check=True)
    report = _guard(store, code_path=dag).run(good.assign(plan=None))
    change = next(c for c in report.changes if c.code == "change.code")
    assert first.commit[:10] in change.summary and change.after["commit"] != first.commit


def test_no_last_good_run_and_nothing_changed_are_said(tmp_path) -> None:
    store = mg.ProfileStore(tmp_path)
    good = churn_frame(500, seed=1)
    bad = good.assign(plan=good["plan"].where(good["tenure_months"] > 5))
    first = _guard(store).run(bad)
    assert first.changes == [] and any("no passing run recorded yet" in n for n in first.notes)
    assert _guard(store).run(good).passed
    again = _guard(store).run(bad)
    assert again.changes == [] and any("nothing changed since the last good run" in n for n in again.notes)


def test_the_gate_records_and_compares_fingerprints_too(tmp_path) -> None:
    store = mg.ProfileStore(tmp_path)
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.3).astype(int)
    good = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, 3000), 0, 1)
    spec = mg.GateSpec(name="gate", task="binary", thresholds={"auc": {"min": 0.7}})
    assert mg.evaluate_gate(spec, good, y, store=store).passed
    last = store.load_last_good("gate")
    store.save_last_good("gate", last.model_copy(update={"packages": {**last.packages, "torch": "1.0.0"}}))
    report = mg.evaluate_gate(spec, rng.random(3000), y, store=store)
    assert report.status == "fail"
    assert [c.subject for c in report.changes] == ["torch"]


def test_compact_stays_bounded_with_a_wide_fingerprint(tmp_path) -> None:
    wide = {f"feature_{i:05d}_with_a_long_descriptive_name": "DOUBLE" for i in range(5_000)}
    fp = collect(inputs={f"t{i}": input_profile(10, wide) for i in range(30)})
    changes = diff(Fingerprint(**{**fp.model_dump(), "inputs": {}}), fp, ["schema.missing_column"])
    report = mg.Report(guard="g", status="fail", fingerprint=fp, changes=changes)
    data = report.compact()
    assert len(json.dumps(data).encode()) <= 48_000
    assert len(data["changes"]) == 20 and data["changes"][0]["code"] == "change.schema"
