"""The deferrable half of DatasetReadySensor: waits in the triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlguard_orchestration.airflow._sources import resolve
from mlguard_orchestration.readiness import Readiness, check_ready


class DatasetReadyTrigger(BaseTrigger):
    """Re-judges the dataset every `poke_interval` seconds (in a thread: DuckDB is blocking) until it is
    ready, the spec proves impossible, or `timeout` seconds pass — the timeout is enforced here, so it holds
    wherever the trigger runs."""

    def __init__(self, source: Any, *, min_rows: int = 1, columns: dict[str, str | None] | None = None,
                 time_column: str | None = None, max_age: str | float | None = None,
                 logical_date: str | None = None,
                 poke_interval: float = 60.0, timeout: float = 7 * 24 * 3600.0) -> None:
        super().__init__()
        self.source, self.min_rows, self.columns = source, min_rows, columns
        self.time_column, self.max_age, self.logical_date = time_column, max_age, logical_date
        self.poke_interval, self.timeout = poke_interval, timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("mlguard_orchestration.airflow.triggers.DatasetReadyTrigger", {
            "source": self.source, "min_rows": self.min_rows, "columns": self.columns,
            "time_column": self.time_column, "max_age": self.max_age, "logical_date": self.logical_date,
            "poke_interval": self.poke_interval, "timeout": self.timeout})

    def _judge(self, when: datetime | None) -> Readiness:
        return check_ready(resolve(self.source, None), min_rows=self.min_rows, columns=self.columns,
                           time_column=self.time_column, max_age=self.max_age, logical_date=when)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        when = datetime.fromisoformat(self.logical_date) if self.logical_date else None
        while True:
            result = await asyncio.to_thread(self._judge, when)
            if result.ready or result.final:
                yield TriggerEvent({"status": "ready" if result.ready else "impossible", "reason": result.reason,
                                    "report": result.report.compact()})
                return
            if time.monotonic() + self.poke_interval > deadline:
                yield TriggerEvent({"status": "timeout", "reason": result.reason, "report": result.report.compact()})
                return
            await asyncio.sleep(self.poke_interval)
