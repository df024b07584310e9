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

from rules.progressbar import progress_bar
from rules.servicelevel.definitions import PROVIDERS, Definitions, Service
from rules.servicelevel.export import SERVICE_ZH, add_sheet, csv_path, service_lines, write_csv
from rules.servicelevel.monthly import ServiceReport, service_report
from rules.servicelevel.scorecard import ServiceLevel
from rules.servicelevel.usage import RegisterMonth
from waystation.language import Language
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["WORDS", "ScorecardJob", "print_scorecard"]

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
    # Where its progress is shown (`report` gives the terminal; the monthly job none).
    console: Console | None = None

    def run(
        self, month: date, usage: Mapping[tuple[str, str], RegisterMonth] | None = None
    ) -> Callable[[Workbook], None]:
        """Compute and write the month's scorecard; what adds its sheet to the workbook.

        `usage`: the allocation's registers of the month, keyed (device, field), for the
        usage beside the levels; without it the usage columns stay empty.
        """
        title = f"{month:%Y-%m} {WORDS[self.registry.language]['reading']}"
        with progress_bar(self.console, title) as update:
            report = service_report(
                self.store, self.registry, self.definitions, month, now=self.clock(),
                stations=self.stations, usage=usage,
                progress=lambda done, total: update(done, total, None),
            )  # fmt: skip
        path = write_csv(report, self.registry, csv_path(self.out_dir, report, self.stations))
        if self.write_influx:
            lines = service_lines(report, self.registry)
            self.store.write_lines(lines)
            log.info("wrote %d service_level points for %s", len(lines), f"{month:%Y-%m}")
        self.last, self.last_path = report, path
        return lambda wb: add_sheet(wb, report, self.registry, self.note_labels)


# What `report` prints of the scorecard, in the registry's language.
WORDS: dict[Language, dict[str, str]] = {
    "zh": {"title": "{month} 服务水平（可用率 %）", "operator": "运营方", "outages": "中断次数",
           "reading": "服务水平"},
    "en": {"title": "{month} service levels (availability %)", "operator": "operator",
           "outages": "outages", "reading": "service levels"},
}  # fmt: skip


def print_scorecard(console: Console, report: ServiceReport | None, language: Language) -> None:
    """Each operator's availability per service, side by side (nothing if none was made)."""
    if report is None:
        return
    words = WORDS[language]
    services = list(PROVIDERS)
    table = Table(title=words["title"].format(month=f"{report.month:%Y-%m}"))
    table.add_column(words["operator"])
    for service in services:
        table.add_column(SERVICE_ZH[service] if language == "zh" else service.value,
                         justify="right")  # fmt: skip
    table.add_column(words["outages"], justify="right")
    by: dict[str, dict[Service, ServiceLevel]] = {}
    for row in report.operators:
        by.setdefault(row.operator, {})[row.service] = row
    for operator, rows in by.items():
        cells = [str(rows[s].availability_pct) if s in rows and rows[s].availability_pct
                 is not None else "-" for s in services]  # fmt: skip
        table.add_row(operator, *cells, str(sum(r.outages for r in rows.values())))
    console.print(table)
