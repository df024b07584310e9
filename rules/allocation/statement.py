"""A party's statement (对账单) of one month: what the workbook's sheet and the PDF print.

Its lines are the party's allocation lines, each utility broken into its
time-of-use periods with the tariff's price; a line's amount is the
allocation's, shown by period in proportion to quantity times price and rounded
once (largest remainder), so the periods add up to the allocation's figure
to the fen and the statement's total is the party's total in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rules.allocation.compute import PartyLine, StationResult
from rules.allocation.findings import Finding
from rules.allocation.money import split_by_weight
from rules.allocation.report import MonthReport
from rules.allocation.tariff import Period, TariffVersion
from waystation.registry import Utility

__all__ = ["Statement", "StatementLine", "statements"]


@dataclass(frozen=True)
class StatementLine:
    station: str
    station_name: str
    utility: Utility
    period: Period | None  # None: water, or electricity without a period breakdown
    quantity: Decimal
    unit: str
    price: Decimal | None  # CNY per unit; None where one price does not apply
    amount: Decimal


@dataclass(frozen=True)
class Statement:
    party: str
    party_name: str
    party_type: str
    lines: tuple[StatementLine, ...]
    findings: tuple[Finding, ...]  # the findings that touched this party's lines
    zone_of: dict[str, str]  # station → its time zone, for the findings' times

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def _breakdown(line: PartyLine, version: TariffVersion) -> list[StatementLine]:
    def one(
        period: Period | None, qty: Decimal, price: Decimal | None, amount: Decimal
    ) -> StatementLine:
        return StatementLine(
            line.station, line.station_name, line.utility, period, qty, line.unit, price, amount
        )

    if line.utility is Utility.WATER:
        return [one(None, line.quantity, version.water.price, line.cost)]
    prices = version.electricity.prices
    periods = [Period(p) for p in line.tou if Period(p) in prices and line.tou[p] != 0]
    if not periods:
        return [one(None, line.quantity, None, line.cost)]
    order = list(Period)
    periods.sort(key=order.index)
    amounts = split_by_weight(line.cost, {p.value: line.tou[p] * prices[p] for p in periods})
    return [one(p, line.tou[p], prices[p], amounts[p.value]) for p in periods]


def _touched(station: StationResult, line: PartyLine) -> list[Finding]:
    wanted = set(line.notes)
    return [f for f in station.findings if (f.code, f.device) in wanted]


def statements(report: MonthReport) -> list[Statement]:
    """One statement per party that has a line this month, in the summary's order."""
    lines: dict[str, list[StatementLine]] = {}
    found: dict[str, list[Finding]] = {}
    zones: dict[str, dict[str, str]] = {}
    for station in report.stations:
        version = report.tariffs[station.station].version_for(report.month)
        for util in station.utilities:
            for line in util.lines:
                lines.setdefault(line.party, []).extend(_breakdown(line, version))
                here = found.setdefault(line.party, [])
                here.extend(f for f in _touched(station, line) if f not in here)
                zones.setdefault(line.party, {})[station.station] = station.timezone
    return [
        Statement(
            t.party, t.name, t.type, tuple(lines[t.party]), tuple(found[t.party]), zones[t.party]
        )
        for t in report.party_totals()
    ]
