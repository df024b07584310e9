"""The scorecard in the monthly report: computed, its CSV and points written, its sheet added."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import Workbook
from rich.console import Console
from rich.table import Table

from rules.servicelevel.definitions import PROVIDERS, Definitions, Service
from rules.servicelevel.export import SERVICE_ZH, add_sheet, csv_path, service_lines, write_csv
from rules.servicelevel.monthly import ServiceReport, service_report
from rules.servicelevel.scorecard import ServiceLevel
from rules.servicelevel.usage import RegisterMonth
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["ScorecardJob", "print_scorecard"]

log = logging.getLogger("waystation.report")


@dataclass
class ScorecardJob:
    """One month's scorecard next to the allocation (`app` hands it to the report job)."""

    registry: Registry
    store: InfluxStore
    out_dir: Path
    definitions: Definitions
    stations: list[str] | None = None
    write_influx: bool = True
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    last: ServiceReport | None = None
    last_path: Path | None = None
    # The usage notes' codes in the registry's language, for the sheet (`app` gives them).
    note_labels: Mapping[str, str] = field(default_factory=dict)

    def run(
        self, month: date, usage: Mapping[tuple[str, str], RegisterMonth] | None = None
    ) -> Callable[[Workbook], None]:
        """Compute and write the month's scorecard; what adds its sheet to the workbook.

        `usage`: the allocation's registers of the month, keyed (device, field), for the
        usage beside the levels; without it the usage columns stay empty.
        """
        report = service_report(self.store, self.registry, self.definitions, month,
                                now=self.clock(), stations=self.stations,
                                usage=usage)  # fmt: skip
        path = write_csv(report, self.registry, csv_path(self.out_dir, report, self.stations))
        if self.write_influx:
            lines = service_lines(report, self.registry)
            self.store.write_lines(lines)
            log.info("wrote %d service_level points for %s", len(lines), f"{month:%Y-%m}")
        self.last, self.last_path = report, path
        return lambda wb: add_sheet(wb, report, self.registry, self.note_labels)


def print_scorecard(console: Console, report: ServiceReport | None) -> None:
    """Each operator's availability per service, side by side (nothing if none was made)."""
    if report is None:
        return
    services = list(PROVIDERS)
    table = Table(title=f"{report.month:%Y-%m} 服务水平 service levels (%)")
    table.add_column("运营方 operator")
    for service in services:
        table.add_column(f"{SERVICE_ZH[service]} {service.value}", justify="right")
    table.add_column("中断 outages", justify="right")
    by: dict[str, dict[Service, ServiceLevel]] = {}
    for row in report.operators:
        by.setdefault(row.operator, {})[row.service] = row
    for operator, rows in by.items():
        cells = [str(rows[s].availability_pct) if s in rows and rows[s].availability_pct
                 is not None else "-" for s in services]  # fmt: skip
        table.add_row(operator, *cells, str(sum(r.outages for r in rows.values())))
    console.print(table)
