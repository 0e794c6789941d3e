"""OpenLineage from every guard operator: Airflow's OpenLineage integration calls
`get_openlineage_facets_on_complete` (and `…_on_failure`, since a failed guard is the news) on the operator
that ran; the mixin answers with one input dataset per guarded table, carrying `dataQualityMetrics` (row count,
column statistics) and `dataQualityAssertions` (the guard's verdict and one failed assertion per finding),
built from `mlguard_orchestration.lineage`. Without the OpenLineage provider installed or configured, Airflow
never calls these methods; they import OpenLineage only when called.
"""

from __future__ import annotations

from typing import Any

from mlguard_orchestration.lineage import quality
from mlguard_orchestration.profile import TableProfile
from mlguard_orchestration.report import Report


class GuardLineage:
    """Mixed into the guard operators: `judged` is the report of the last execute, `profiles` its tables'."""

    judged: Report | None = None
    profiles: dict[str, TableProfile] | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return lineage(self.judged, self.profiles)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return lineage(self.judged, self.profiles)


def lineage(report: Report | None, profiles: dict[str, TableProfile] | None) -> Any:
    """The OperatorLineage of a guard run (empty when the guard never produced a report)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )
    from openlineage.client.generated.data_quality_metrics_input_dataset import (
        ColumnMetrics,
        DataQualityMetricsInputDatasetFacet,
    )

    if report is None:
        return OperatorLineage()
    inputs = []
    for t in quality(report, profiles):
        metrics = DataQualityMetricsInputDatasetFacet(
            rowCount=t["rows"], columnMetrics={name: ColumnMetrics(**m) for name, m in t["columns"].items()})
        assertions = DataQualityAssertionsDatasetFacet(assertions=[Assertion(**a) for a in t["assertions"]])
        inputs.append(InputDataset(namespace=t["namespace"], name=t["name"],
                                   # OpenLineage's client types this facet as an input facet; lineage readers
                                   # (and tests/airflow/test_lineage.py) find it in the dataset's facets
                                   facets={"dataQualityAssertions": assertions},  # type: ignore[dict-item]
                                   inputFacets={"dataQualityMetrics": metrics}))
    return OperatorLineage(inputs=inputs)
