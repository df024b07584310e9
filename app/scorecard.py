"""The service-level scorecard wired next to the allocation in the monthly report.

Its thresholds are the rules config's (`thresholds`), so the scorecard and
the alerts judge a dispenser cold and a device silent alike; `report` and
the monthly job of `rules` and `report --schedule` all build it here. The
usage beside the levels is the allocation's: `MonthlyScorecard` hands each
register's month (`StationResult.usage`) to the scorecard as plain data, so
neither part imports the other for it and the registers are read once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from openpyxl import Workbook
from rich.console import Console

from rules.allocation.report import MonthReport
from rules.allocation.wording import LABELS
from rules.outage.config import RulesConfig
from rules.servicelevel.command import ScorecardJob
from rules.servicelevel.definitions import Definitions
from rules.servicelevel.usage import RegisterMonth
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["MonthlyScorecard", "definitions", "registers_of", "scorecard_job"]


def definitions(config: RulesConfig | None) -> Definitions:
    th = (config or RulesConfig()).thresholds
    return Definitions(
        min_temp_c=th.dispenser_min_temp_c,
        cold_for_ms=int(th.dispenser_cold_for.total_seconds() * 1000),
        silent_intervals=th.silent_intervals,
    )


def registers_of(report: MonthReport) -> dict[tuple[str, str], RegisterMonth]:
    """Every register's month the allocation measured, keyed (device, field)."""
    return {
        (u.device, u.field): RegisterMonth(
            u.device, u.field, u.quantity, u.estimated, tuple(code.value for code in u.notes)
        )
        for station in report.stations
        for u in station.usage
    }


@dataclass
class MonthlyScorecard:
    """The scorecard as a part of the monthly report (`MonthlyExtra`): after the allocation,
    with its usage."""

    job: ScorecardJob

    def run(self, month: date, allocation: MonthReport) -> Callable[[Workbook], None]:
        return self.job.run(month, usage=registers_of(allocation))


def scorecard_job(
    registry: Registry,
    store: InfluxStore,
    out_dir: Path,
    config: RulesConfig | None,
    *,
    stations: list[str] | None = None,
    write_influx: bool = True,
    console: Console | None = None,
) -> MonthlyScorecard:
    """`console`: where the scorecard shows its progress (none for the monthly job)."""
    job = ScorecardJob(registry, store, out_dir, definitions(config), stations, write_influx,
                       console=console)  # fmt: skip
    job.note_labels = {code.value: text for code, text in LABELS[registry.language].items()}
    return MonthlyScorecard(job)
