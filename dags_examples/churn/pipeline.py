"""The guard stages of the churn pipeline and the bug switch.

Each stage is a guard spec (written as YAML so the CLI, and later the Airflow/Prefect adapters, run the very
same thing) over named tables. A stage that fails stops the pipeline there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlguard_orchestration.gate import GateSpec
from mlguard_orchestration.report import Report

DATA_BUGS: dict[str, str] = {
    "wrong_join_key": "preprocess joins labels to features on user_id only (features have one row per snapshot)",
    "key_type_mismatch": "labels arrive with zero-padded string user ids",
    "timezone_shift": "feature timestamps are written in local time (UTC-5) but read as UTC",
    "train_test_overlap": "the split copies some training rows into the test set",
    "renamed_column": "upstream renamed monthly_spend_usd to monthly_spend",
    "unit_change": "upstream switched monthly_spend_usd from dollars to cents",
    "null_explosion": "a broken upstream join leaves 60% of tenure_months empty",
    "empty_extract": "the features partition filter matched nothing",
}
TRAINING_BUGS: dict[str, str] = {
    "lr_too_high": "the learning rate is 500× too large",
    "corrupt_sample": "a broken transform turns one training row's feature into +inf",
    "labels_shuffled": "labels are shuffled separately from the features",
}
# Past every data guard and the training guard: only the evaluate → register gate can stop these.
GATE_BUGS: dict[str, str] = {
    "dropped_feature": "a config change drops days_since_login from the model's features: a worse model than "
                       "the champion",
    "country_features_lost": "the DE feature lookup at inference returns nothing: DE users get imputed means "
                             "while the overall AUC looks fine",
    "target_leak": "the label export gains cancel_requests_30d (counted after the churn date) and the model "
                   "takes every numeric column: validation AUC ≈ 1.0",
    "inference_features_null": "every feature arrives NULL at inference: the model predicts the same score for "
                               "everyone",
}
BUGS: dict[str, str] = {**DATA_BUGS, **TRAINING_BUGS, **GATE_BUGS}

# Which guard stage must stop each bug, and the finding / top cause it must report.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "wrong_join_key": ("guard_join", "join.fan_out", "cause.missing_join_key"),
    "key_type_mismatch": ("guard_join", "join.match_rate", "cause.key_format_mismatch"),
    "timezone_shift": ("guard_extract", "time.hour_shift", "cause.timezone_mismatch"),
    "train_test_overlap": ("guard_split", "leakage.row_overlap", "cause.rows_copied_across_split"),
    "renamed_column": ("guard_extract", "schema.missing_column", "cause.renamed_column"),
    "unit_change": ("guard_extract", "drift.numeric", "cause.unit_change"),
    "null_explosion": ("guard_extract", "drift.null_rate", "cause.upstream_nulls"),
    "empty_extract": ("guard_extract", "volume.row_count", "cause.empty_extract"),
    # caught by the training guard (the DAG's train task; the CLI pipeline has no training step)
    "lr_too_high": ("train", "training.update_ratio", "cause.learning_rate_too_high"),
    "corrupt_sample": ("train", "training.non_finite_loss", "cause.corrupt_input_sample"),
    "labels_shuffled": ("train", "training.loss_plateau", "cause.label_misalignment"),
    # caught by the evaluate → register gate (the DAG's/flow's gate task)
    "dropped_feature": ("gate", "gate.champion_regression", "cause.feature_not_used"),
    "country_features_lost": ("gate", "gate.slice", "cause.feature_not_used"),
    "target_leak": ("gate", "gate.too_good", "cause.feature_from_outcome"),
    "inference_features_null": ("gate", "gate.collapsed_predictions", "cause.prior_only"),
}

# The gate between evaluate and register (the same in the DAG and the flow). The champion is the model the
# last passing run registered; every run evaluates on the same held-out users, so they are compared.
GATE_SPEC = GateSpec(name="churn_gate", task="binary", model="churn", thresholds={"auc": {"min": 0.65}},
                     slices=["country", "plan"], max_plausible={"auc": 0.97}, label="churned",
                     prediction_column="score", group=["user_id"], leakage_exclude=["user_id"])

STAGES = ("guard_extract", "guard_join", "guard_training", "guard_split")


@dataclass
class PipelineConfig:
    bug: str | None = None
    join_keys: list[str] = field(default_factory=lambda: ["user_id", "snapshot_date"])

    def __post_init__(self) -> None:
        if self.bug is not None and self.bug not in BUGS:
            raise ValueError(f"unknown bug {self.bug!r}; choose one of {', '.join(BUGS)}")
        if self.bug == "wrong_join_key":
            self.join_keys = ["user_id"]


def specs(config: PipelineConfig) -> dict[str, dict]:
    """The guard spec of each stage."""
    return {
        "guard_extract": {"name": "churn_extract", "default_suite": ["features"], "checks": [
            {"kind": "schema", "table": "features", "columns": {
                "user_id": "integer", "snapshot_date": "date", "monthly_spend_usd": "numeric", "plan": "string"}},
            {"kind": "null_rate", "table": "features", "column": "monthly_spend_usd", "max": 0.0},
            {"kind": "row_count", "table": "features", "min": 1},
            {"kind": "unique", "table": "features", "columns": ["user_id", "snapshot_date"]},
            {"kind": "unique", "table": "labels", "columns": ["user_id"]},
            {"kind": "null_rate", "table": "labels", "column": "churned", "max": 0.0},
        ]},
        "guard_join": {"name": "churn_join", "checks": [
            {"kind": "join_keys", "left": "labels", "right": "features", "on": config.join_keys,
             "relationship": "many_to_one", "min_match_rate": 0.95, "max_fan_out": 1.0},
        ]},
        "guard_training": {"name": "churn_training", "checks": [
            {"kind": "point_in_time", "table": "training", "feature_time": "feature_time", "label_time": "label_time"},
            {"kind": "null_rate", "table": "training", "column": "churned", "max": 0.0},
        ]},
        "guard_split": {"name": "churn_split", "checks": [
            {"kind": "train_test_overlap", "train": "train", "test": "test", "max_rate": 0.0},
            {"kind": "group_overlap", "train": "train", "test": "test", "group": ["user_id"], "max_rate": 0.0},
        ]},
    }


def write_specs(config: PipelineConfig, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for stage, spec in specs(config).items():
        out[stage] = directory / f"{stage}.yaml"
        out[stage].write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def run_stage_tables(stage: str, paths: dict[str, Path]) -> dict[str, Path]:
    """Which tables each stage reads."""
    names = {"guard_extract": ["features", "labels"], "guard_join": ["labels", "features"],
             "guard_training": ["training"], "guard_split": ["train", "test"]}[stage]
    return {n: paths[n] for n in names}


# runner(stage, spec_path, tables, reference_profiles) -> Report
StageRunner = Callable[[str, Path, dict[str, Path], dict[str, Path]], Report]


@dataclass
class PipelineResult:
    reports: dict[str, Report]
    stopped_at: str | None

    @property
    def report(self) -> Report | None:
        return self.reports.get(self.stopped_at) if self.stopped_at else None


def run_pipeline(config: PipelineConfig, workdir: Path, references: dict[str, Path], runner: StageRunner,
                 *, seed: int = 2) -> PipelineResult:
    """extract → guard_extract → guard_join → preprocess → guard_training → split → guard_split.

    Stops at the first stage whose report is not passing, as an orchestrator would."""
    from dags_examples.churn.data import extract, preprocess, split

    specs_ = write_specs(config, workdir / "specs")
    paths: dict[str, Path] = dict(extract(workdir / "raw", seed=seed, bug=config.bug))
    reports: dict[str, Report] = {}
    for stage in STAGES:
        if stage == "guard_training":
            paths["training"] = preprocess(paths, workdir, config.join_keys)
        if stage == "guard_split":
            paths.update(split(paths["training"], workdir, bug=config.bug))
        tables = run_stage_tables(stage, paths)
        refs = {t: p for t, p in references.items() if t in tables}
        reports[stage] = runner(stage, specs_[stage], tables, refs)
        if not reports[stage].passed:
            return PipelineResult(reports, stage)
    return PipelineResult(reports, None)
