"""`waystation report`: one month on demand, or every month on schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rules.allocation.export import export_paths, write_csv, write_xlsx
from rules.allocation.report import MonthReport, run_report, write_allocation
from rules.allocation.schedule import add_monthly_job
from rules.allocation.tariff import Tariff
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["ReportJob", "print_summary", "run_scheduled"]

log = logging.getLogger("waystation.report")


@dataclass
class ReportJob:
    """Everything one month's report needs; `run` makes it and writes its outputs."""

    registry: Registry
    tariffs: dict[str, Tariff]
    store: InfluxStore
    out_dir: Path
    stations: list[str] | None = None
    write_influx: bool = True
    console: Console | None = None

    def run(self, month: date) -> tuple[MonthReport, Path, Path]:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=self.console is None,
        ) as bar:
            task = bar.add_task(f"{month:%Y-%m}", total=None)

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=f"{month:%Y-%m} {what}")

            report = run_report(
                self.registry,
                self.tariffs,
                self.store,
                month,
                stations=self.stations,
                progress=progress,
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        csv_path, xlsx_path = export_paths(self.out_dir, report)
        write_csv(report, csv_path)
        write_xlsx(report, xlsx_path)
        if self.write_influx:
            n = write_allocation(self.store, report, self.registry)
            log.info("wrote %d allocation points for %s", n, f"{month:%Y-%m}")
        return report, csv_path, xlsx_path


def print_summary(console: Console, report: MonthReport, registry: Registry) -> None:
    """The summary by party, the union's saving and every finding, readable at a glance."""
    table = Table(title=f"{report.month:%Y-%m} 分摊汇总 allocation by party")
    for header in ("party", "name", "type", "electricity ¥", "water ¥", "total ¥"):
        table.add_column(header, justify="right" if "¥" in header else "left")
    for t in report.party_totals():
        table.add_row(
            t.party,
            t.name,
            t.type,
            f"{t.cost.get('electricity', 0):.2f}",
            f"{t.cost.get('water', 0):.2f}",
            f"{t.total:.2f}",
        )
    console.print(table)
    console.print(
        f"{len(report.stations)} stations, total ¥{report.total_cost:.2f}; "
        f"union saving 工会节省 ¥{report.union_saving:.2f}"
    )
    findings = [f for s in report.stations for f in s.findings]
    if findings:
        listed = Table(title=f"{len(findings)} findings")
        for header in ("station", "device", "code", "message"):
            listed.add_column(header)
        for f in findings[:50]:
            listed.add_row(registry.stations[f.station].name, f.device or "", f.code, f.message)
        console.print(listed)
        if len(findings) > 50:
            console.print(f"… {len(findings) - 50} more in the XLSX's findings sheet")


def run_scheduled(job: ReportJob, tz: ZoneInfo, wait: Callable[[], None]) -> None:
    """Allocate the month before on every 1st until `wait` returns (a signal)."""

    def allocate(month: date) -> None:
        try:
            job.run(month)
        except Exception:  # logged; next month's run still comes
            log.exception("allocation of %s failed", f"{month:%Y-%m}")

    scheduler = BackgroundScheduler()
    scheduled = add_monthly_job(scheduler, allocate, tz)
    scheduler.start()
    log.info("allocation scheduled; next run %s", scheduled.next_run_time)
    try:
        wait()
    finally:
        scheduler.shutdown()
