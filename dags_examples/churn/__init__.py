"""The example churn-model pipeline: extract → guard → preprocess (join labels to features) → guard → split
→ guard. Each planted bug (`BUGS`) is caught by one guard stage; `make demo` shows it through the CLI."""

from dags_examples.churn.data import extract, preprocess, split
from dags_examples.churn.pipeline import (
    BUGS,
    EXPECTED,
    STAGES,
    PipelineConfig,
    run_pipeline,
    run_stage_tables,
    write_specs,
)

__all__ = ["BUGS", "EXPECTED", "STAGES", "PipelineConfig", "extract", "preprocess", "run_pipeline", "run_stage_tables", "split", "write_specs"]
