"""The report for people: one self-contained HTML page with pictures (`to_html`), bounded in size.

    page = to_html(report)                       # or: mlguard report RUN.json -o page.html

`page` lays the page out (verdict and top cause first); `evidence` turns each finding's evidence into
pictures; `svg` draws them. Core: imports neither Airflow, Prefect nor torch. A view of the report model, so
it sits above `report` (the model knows nothing of its pages).
"""

from __future__ import annotations

from mlguard_orchestration.html.page import MAX_PAGE_BYTES, to_html

__all__ = ["MAX_PAGE_BYTES", "to_html"]
