"""Spec files: YAML and JSON load into the same checks as the Python API; errors name the entry at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import mlguard_orchestration as mg
from tests._data import churn_frame

SPEC = {
    "name": "churn_features",
    "default_suite": True,
    "label": "churned",
    "checks": [
        {"kind": "schema", "columns": {"user_id": "integer", "plan": "string"}},
        {"kind": "null_rate", "column": "monthly_spend_usd", "max": 0.01},
        {"kind": "range", "column": "tenure_months", "min": 0, "max": 240, "severity": "warn"},
        {"kind": "allowed_values", "column": "plan", "values": ["basic", "standard", "premium"]},
        {"kind": "pattern", "column": "country", "regex": "[A-Z]{2}"},
        {"kind": "unique", "columns": ["user_id"]},
        {"kind": "row_count", "min": 100},
        {"kind": "duplicate_rows", "max_rate": 0.01},
        {"kind": "drift", "columns": ["monthly_spend_usd"], "psi_fail": 0.3},
        {"kind": "label_drift", "column": "churned", "max_shift": 0.05},
    ],
}

PYTHON = [
    mg.Schema(columns={"user_id": "integer", "plan": "string"}),
    mg.NullRate(column="monthly_spend_usd", max=0.01),
    mg.Range(column="tenure_months", min=0, max=240, severity="warn"),
    mg.AllowedValues(column="plan", values=["basic", "standard", "premium"]),
    mg.Pattern(column="country", regex="[A-Z]{2}"),
    mg.Unique(columns=["user_id"]),
    mg.RowCount(min=100),
    mg.DuplicateRows(max_rate=0.01),
    mg.Drift(columns=["monthly_spend_usd"], psi_fail=0.3),
    mg.LabelDrift(column="churned", max_shift=0.05),
]


@pytest.fixture()
def yaml_path(tmp_path: Path) -> Path:
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return path


@pytest.fixture()
def json_path(tmp_path: Path) -> Path:
    path = tmp_path / "guard.json"
    path.write_text(json.dumps(SPEC))
    return path


def test_yaml_and_json_load_the_same_checks_as_python(yaml_path: Path, json_path: Path) -> None:
    from_yaml, from_json, from_dict = mg.load_spec(yaml_path), mg.load_spec(str(json_path)), mg.load_spec(SPEC)
    assert from_yaml == from_json == from_dict
    assert from_yaml.checks == PYTHON
    assert [type(c) for c in from_yaml.checks] == [type(c) for c in PYTHON]
    assert (from_yaml.name, from_yaml.default_suite, from_yaml.label) == ("churn_features", True, "churned")


def test_yaml_list_of_checks_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "checks.yml"
    path.write_text("- {kind: null_rate, column: plan}\n- kind: row_count\n  min: 5\n")
    spec = mg.load_spec(path)
    assert spec.checks == [mg.NullRate(column="plan"), mg.RowCount(min=5)]


def test_unknown_kind_suggests_the_closest(yaml_path: Path) -> None:
    bad = {**SPEC, "checks": [*SPEC["checks"][:2], {"kind": "nul_rate", "column": "plan"}]}
    with pytest.raises(mg.SpecError) as info:
        mg.load_spec(bad)
    msg = str(info.value)
    assert "checks[2]" in msg and "'nul_rate'" in msg
    assert "Did you mean 'null_rate'?" in msg


def test_missing_kind_is_a_spec_error() -> None:
    with pytest.raises(mg.SpecError, match=r"checks\[0\]"):
        mg.load_spec({"checks": [{"column": "plan"}]})


@pytest.mark.parametrize(("entry", "field"), [
    ({"kind": "null_rate", "column": "plan", "max": 2}, "max"),
    ({"kind": "range", "column": "x", "min": "low"}, "min"),
    ({"kind": "unique", "columns": ["a"], "bogus": 1}, "bogus"),
    ({"kind": "schema", "columns": {"a": "integr"}}, "columns"),
])
def test_bad_field_names_entry_and_field(entry: dict, field: str) -> None:
    spec = {"checks": [{"kind": "row_count"}, {"kind": "row_count"}, {"kind": "row_count"}, entry]}
    with pytest.raises(mg.SpecError) as info:
        mg.load_spec(spec)
    msg = str(info.value)
    assert f"checks[3].{field}" in msg, msg


def test_model_level_error_names_entry() -> None:
    with pytest.raises(mg.SpecError, match=r"checks\[0\].*min, max or both"):
        mg.load_spec({"checks": [{"kind": "range", "column": "x"}]})


def test_unknown_top_level_key_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(mg.SpecError, match="nmae"):
        mg.load_spec({"nmae": "x", "checks": []})
    with pytest.raises(mg.SpecError, match="does not exist"):
        mg.load_spec(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("checks: [ {kind: null_rate\n")
    with pytest.raises(mg.SpecError, match="not valid YAML"):
        mg.load_spec(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{")
    with pytest.raises(mg.SpecError, match="not valid JSON"):
        mg.load_spec(broken_json)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(mg.SpecError, match="mapping"):
        mg.load_spec(scalar)


def test_from_spec_end_to_end(tmp_path: Path, yaml_path: Path) -> None:
    ref_path = tmp_path / "ref.json"
    mg.build_profile(churn_frame(5_000, seed=71)).save(ref_path)
    guard = mg.Guard.from_spec(yaml_path, reference=str(ref_path))
    assert guard.name == "churn_features" and guard.label == "churned" and guard.default_suite
    assert guard.checks == PYTHON

    good = guard.run(churn_frame(5_000, seed=72))
    assert good.status == "pass", [(f.code, f.message) for f in good.findings]
    assert good.guard == "churn_features"

    data = churn_frame(5_000, seed=73)
    data.loc[data.index[:200], "monthly_spend_usd"] = None
    data.loc[data.index[:10], "plan"] = "gold"
    bad = guard.run(data)
    assert bad.status == "fail"
    assert {"schema.null_rate", "schema.not_allowed"} <= {f.code for f in bad.findings}


def test_from_spec_reference_and_store_in_file(tmp_path: Path) -> None:
    ref_path = tmp_path / "ref.json"
    mg.build_profile(churn_frame(2_000, seed=74)).save(ref_path)
    spec = {"name": "g", "reference": str(ref_path), "checks": [{"kind": "drift"}]}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec))
    report = mg.Guard.from_spec(path).run(churn_frame(2_000, seed=75))
    assert report.status == "pass", report.findings
    shifted = churn_frame(2_000, seed=75).assign(tenure_months=lambda d: d["tenure_months"] * 10)
    assert mg.Guard.from_spec(path).run(shifted).status == "fail"

    store_spec = {"name": "g2", "store": str(tmp_path / "store"), "checks": [{"kind": "row_count"}]}
    guard = mg.Guard.from_spec(store_spec, name="renamed")
    assert guard.name == "renamed"
    assert guard.run(pd.DataFrame({"x": [1, 2]})).status == "pass"
    assert mg.ProfileStore(tmp_path / "store").load("renamed") is not None


def test_spec_check_on_unknown_table_is_a_spec_error() -> None:
    guard = mg.Guard.from_spec({"checks": [{"kind": "row_count", "table": "featurs"}]})
    report = guard.run({"features": pd.DataFrame({"x": [1]})})
    assert report.status == "error"
    assert report.error is not None and "Did you mean 'features'?" in report.error.message


def test_yaml_reads_on_off_yes_no_as_strings(tmp_path) -> None:
    """YAML 1.2 booleans: the README's join spec (`on: [...]`) loads; only true/false are booleans."""
    import mlguard_orchestration as mg

    path = tmp_path / "guards.yaml"
    path.write_text("name: j\nsample_values: false\ndefault_suite: True\nchecks:\n"
                    "  - {kind: join_keys, left: labels, right: features, on: [user_id, snapshot_date]}\n"
                    "  - {kind: allowed_values, column: answer, values: [yes, no, on, off, y, n]}\n")
    spec = mg.load_spec(path)
    assert spec.default_suite is True and spec.sample_values is False
    assert spec.checks[0].on == ["user_id", "snapshot_date"]
    assert spec.checks[1].values == ["yes", "no", "on", "off", "y", "n"]


def test_a_spec_column_that_never_existed_is_a_spec_error_with_a_hint() -> None:
    import pandas as pd

    import mlguard_orchestration as mg

    df = pd.DataFrame({"monthly_spend_usd": [1.0, 2.0, 3.0]})
    report = mg.Guard("g", [mg.NullRate(column="monthly_spnd_usd")], reference=mg.build_profile(df)).run(df)
    assert report.status == "error" and report.error is not None and report.error.code == "guard.spec_error"
    assert "Did you mean 'monthly_spend_usd'?" in report.error.message
    # without a reference nothing tells a typo from an upstream rename: a finding that says both
    plain = mg.Guard("g", [mg.NullRate(column="monthly_spnd_usd")]).run(df)
    assert plain.status == "fail" and plain.findings[0].code == "schema.missing_column"
    assert "misspelt in the spec" in plain.findings[0].causes[0].summary
