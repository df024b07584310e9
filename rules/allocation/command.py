"""`waystation report`: one month on demand, or every month on schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from openpyxl import Workbook
from rich.console import Console
from rich.table import Table

from rules.allocation.export import export_paths, write_csv, write_xlsx
from rules.allocation.labels import PARTY_TYPES, label
from rules.allocation.pdf import write_pdfs
from rules.allocation.report import (
    AllocationError,
    MonthReport,
    example_tariffs,
    month_window,
    run_report,
    write_allocation,
)
from rules.allocation.schedule import add_catch_up, add_monthly_job
from rules.allocation.tariff import Tariff
from rules.allocation.wording import finding_label, finding_text
from rules.progressbar import progress_bar
from waystation.registry import Registry
from waystation.store import InfluxStore, StoreError

__all__ = ["MonthlyExtra", "ReportJob", "print_summary", "run_scheduled", "schedule_allocation"]

log = logging.getLogger("waystation.report")


class MonthlyExtra(Protocol):
    """Another part of the monthly report: runs for a month after the allocation, given its
    result (each station's register usage, `StationResult.usage`), and returns what adds
    its sheet to the workbook."""

    def run(self, month: date, allocation: MonthReport) -> Callable[[Workbook], None]: ...


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
    # Told to use example prices: no mark on the exports, written to InfluxDB as any month.
    allow_example_prices: bool = False
    # The monthly job: it never bills with example prices.
    scheduled: bool = False
    # The file being written, if any (an interrupted run says which may be incomplete).
    writing: Path | None = field(default=None, init=False)
    # What else the month's report makes (the service-level scorecard, wired by `app`):
    # each runs after the allocation and returns what adds its sheet to the workbook.
    extras: Sequence[MonthlyExtra] = ()

    def refuse_example_prices(self) -> None:
        examples = example_tariffs(self.registry, self.tariffs, self.stations)
        if examples:
            names = ", ".join(examples)
            raise AllocationError(
                f"tariff {names} holds EXAMPLE prices: the monthly allocation job does not "
                "bill with them; give your own with --tariffs (copy the shipped file, put in "
                "the prices on your utility bills, remove `example: true`)",
                f"电价 {names} 是示例价格：每月自动分摊不按示例价格出账；请用 --tariffs 给出"
                "你们自己的电价（复制随附文件，填入电费单上的价格，删掉 `example: true`）",
            )

    def zones(self) -> set[ZoneInfo]:
        """The time zones of the stations this job bills."""
        return {self.registry.station_timezone(s) for s in self.stations or self.registry.stations}

    def recorded(self, month: date) -> str | None:
        """Where `month`'s allocation is already recorded (its export, or InfluxDB), if it is."""
        csv_path, _ = export_paths(self.out_dir, MonthReport(month), self.stations)
        if csv_path.exists():
            return str(csv_path)
        if not self.write_influx:
            return None
        starts = [
            month_window(month, self.registry.station_timezone(s)).start_ms
            for s in self.stations or self.registry.stations
        ]
        where = f"time >= {min(starts)}ms AND time <= {max(starts)}ms"
        if self.stations:
            where += f' AND "station" =~ /^({"|".join(sorted(set(self.stations)))})$/'
        query = f'SELECT count("cost") FROM "allocation" WHERE {where}'  # noqa: S608 - ms, ids
        found = self.store.query(query)
        if any(row[1] for series in found for row in series.values):
            return f"InfluxDB {self.store.database!r} `allocation`"
        return None

    def run(self, month: date) -> tuple[MonthReport, Path, Path]:
        if self.scheduled:
            self.refuse_example_prices()
        with progress_bar(self.console, f"{month:%Y-%m}") as progress:
            report = run_report(
                self.registry,
                self.tariffs,
                self.store,
                month,
                stations=self.stations,
                progress=progress,
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        csv_path, xlsx_path = export_paths(self.out_dir, report, self.stations)
        mark = not self.allow_example_prices
        sheets = [extra.run(month, report) for extra in self.extras]
        self.writing = csv_path
        write_csv(report, csv_path, mark_examples=mark)
        self.writing = xlsx_path
        write_xlsx(report, xlsx_path, mark_examples=mark, extra_sheets=sheets)
        self.writing = None
        if self.write_influx and report.example_prices and mark:
            # Grafana would show these as the month's costs: keep them out of InfluxDB.
            log.warning(
                "%s: not written to InfluxDB `allocation` (example prices); "
                "--allow-example-prices writes them | 示例价格的结果未写入 InfluxDB",
                f"{month:%Y-%m}",
            )
        elif self.write_influx:
            n = write_allocation(self.store, report, self.registry)
            log.info("wrote %d allocation points for %s", n, f"{month:%Y-%m}")
        return report, csv_path, xlsx_path

    def write_pdfs(self, report: MonthReport, font: Path) -> list[Path]:
        """Each party's statement as a PDF beside the month's CSV and XLSX (`report --pdf`)."""
        csv_path, _ = export_paths(self.out_dir, report, self.stations)
        mark = report.example_prices and not self.allow_example_prices
        return write_pdfs(report, self.out_dir, csv_path.stem, font, mark=mark)


def print_summary(console: Console, report: MonthReport, registry: Registry) -> None:
    """The summary by party, the union's saving and every finding, in the registry's language."""
    lang = report.language
    table = Table(title=label(lang, "summary_title", year=report.month.year,
                              month=report.month.month))  # fmt: skip
    for key in ("party_id", "party", "party_type", "electricity_cost", "water_cost", "total_cost"):
        table.add_column(label(lang, key), justify="right" if key.endswith("cost") else "left")
    for t in report.party_totals():
        table.add_row(
            t.party,
            t.name,
            PARTY_TYPES[lang].get(t.type, t.type),
            f"{t.cost.get('electricity', 0):,.2f}",
            f"{t.cost.get('water', 0):,.2f}",
            f"{t.total:,.2f}",
        )
    console.print(table)
    total, saving = f"{report.total_cost:,.2f}", f"{report.union_saving:,.2f}"
    console.print(
        label(lang, "report_line", stations=len(report.stations), total=total, saving=saving)
    )
    if report.example_prices:
        console.print(f"[bold red]{label(lang, 'example')}[/bold red]")
    findings = [(s, f) for s in report.stations for f in s.findings]
    if findings:
        listed = Table(title=label(lang, "findings_count", count=len(findings)))
        for key in ("station", "device", "finding", "detail"):
            listed.add_column(label(lang, key))
        for station, f in findings[:50]:
            tz = ZoneInfo(station.timezone)
            listed.add_row(registry.stations[f.station].name, f.device or "",
                           finding_label(f.code, lang), finding_text(f, lang, tz))  # fmt: skip
        console.print(listed)
        if len(findings) > 50:
            console.print(label(lang, "more_findings", count=len(findings) - 50))


def schedule_allocation(
    scheduler: BaseScheduler,
    job: ReportJob,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Job:
    """The monthly job: the one way `rules` and `report --schedule` bill each month.

    Refused up front (AllocationError) when any station would be billed at example prices.
    On start, the month due by now is allocated at once unless it already is (a service
    restarted after 02:00 on the 1st would otherwise skip it for good).
    """
    job = replace(job, scheduled=True, allow_example_prices=False)
    job.refuse_example_prices()

    def allocate(month: date) -> None:
        try:
            job.run(month)
        except AllocationError as exc:  # said plainly: no readings, a month not over, ...
            log.error("allocation of %s failed: %s", f"{month:%Y-%m}", exc)  # noqa: TRY400
        except Exception:  # logged; next month's run still comes
            log.exception(
                "allocation of %s failed | %s 分摊失败", f"{month:%Y-%m}", f"{month:%Y-%m}"
            )

    def catch_up(month: date) -> None:
        name = f"{month:%Y-%m}"
        try:
            where = job.recorded(month)
        except StoreError as exc:
            log.warning("cannot tell whether %s was allocated (%s): allocating it | "
                        "无法确认 %s 是否已分摊，现在分摊", name, exc, name)  # fmt: skip
            where = None
        if where is not None:
            log.info("%s already allocated (%s): not redone | %s 已分摊（%s），不重做",
                     name, where, name, where)  # fmt: skip
            return
        log.warning("%s was not allocated (the service was not running at its time): "
                    "allocating it now | %s 尚未分摊（到时服务未运行），现在补做",
                    name, name)  # fmt: skip
        allocate(month)

    zones = job.zones()
    scheduled = add_monthly_job(scheduler, allocate, zones, clock)
    add_catch_up(scheduler, catch_up, zones, clock)
    return scheduled


def run_scheduled(job: ReportJob, wait: Callable[[], None]) -> None:
    """Allocate the month before on every 1st until `wait` returns (a signal)."""
    scheduler = BackgroundScheduler()
    scheduled = schedule_allocation(scheduler, job)
    scheduler.start()
    log.info("allocation scheduled; next run %s", scheduled.next_run_time)
    try:
        wait()
    finally:
        scheduler.shutdown()
