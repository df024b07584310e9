"""The monthly allocation report: read, measure, price, share, and record (SPEC §8).

`run_report` is what `waystation report --month` and the scheduled job call.
Stations are grouped by time zone, since a month starts at local midnight.
The result is plain data; `export` writes the files and `write_allocation`
the `allocation` measurement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules.allocation.compute import (
    Register,
    StationResult,
    allocate_station,
    slot_periods,
    station_registers,
)
from rules.allocation.registers import Usage, Window, measure
from rules.allocation.source import Points, fetch_readings
from rules.allocation.tariff import Period, Tariff, TariffError
from waystation.configerror import Text
from waystation.language import Language
from waystation.lineprotocol import encode_line
from waystation.registry import Registry, Utility
from waystation.store import InfluxStore

__all__ = [
    "AllocationError",
    "MonthReport",
    "NoReadings",
    "PartyTotal",
    "example_tariffs",
    "measure_station",
    "month_window",
    "parse_month",
    "previous_month",
    "run_report",
    "write_allocation",
]

# (step done, steps, what) for a progress bar.
Progress = Callable[[int, int, str], None]


class AllocationError(ValueError):
    """The report cannot be made as asked: a clear message for the operator, zh and en."""

    def __init__(self, en: str, zh: str) -> None:
        self.text = Text(en, zh)
        super().__init__(str(self.text))


class NoReadings(AllocationError):
    """Not one reading for any station of the month: nothing to bill (a wrong database?)."""


def parse_month(text: str) -> date:
    """`2026-10` → the first day of that month."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise AllocationError(
            f"{text!r} is not a month like 2026-10", f"{text!r} 不是月份，应写成 2026-10 这样"
        )
    return date(int(m.group(1)), int(m.group(2)), 1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(today: date) -> date:
    return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)


def month_window(month: date, tz: ZoneInfo) -> Window:
    """From local midnight on the 1st to local midnight on the 1st of the next month."""

    def ms(d: date) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)

    return Window(ms(month), ms(_next_month(month)))


@dataclass(frozen=True)
class PartyTotal:
    party: str
    name: str
    type: str
    cost: dict[str, Decimal]  # per utility

    @property
    def total(self) -> Decimal:
        return sum(self.cost.values(), Decimal(0))


@dataclass
class MonthReport:
    month: date
    stations: list[StationResult] = field(default_factory=list)
    tariffs: dict[str, Tariff] = field(default_factory=dict)  # by station
    # Register readings inside the month, all stations (a register bridging it counts one):
    # readings only before or after it bill nothing.
    readings: int = 0
    language: Language = "zh"  # of the exports and the summary: the registry's
    timezone: str = "Asia/Shanghai"  # the registry's: the statements' month is read in it

    @property
    def example_prices(self) -> bool:
        """Some station was priced with a tariff whose data says its prices are examples."""
        return any(t.example for t in self.tariffs.values())

    def party_totals(self) -> list[PartyTotal]:
        totals: dict[str, PartyTotal] = {}
        for station in self.stations:
            for util in station.utilities:
                for line in util.lines:
                    t = totals.setdefault(
                        line.party, PartyTotal(line.party, line.party_name, line.party_type, {})
                    )
                    t.cost[util.utility] = t.cost.get(util.utility, Decimal(0)) + line.cost
        return sorted(totals.values(), key=lambda t: (-t.total, t.party))

    @property
    def total_cost(self) -> Decimal:
        return sum((u.cost for s in self.stations for u in s.utilities), Decimal(0))

    @property
    def union_saving(self) -> Decimal:
        """What the union saves against paying every station's bills itself."""
        return sum((u.union_saving for s in self.stations for u in s.utilities), Decimal(0))


def example_tariffs(
    registry: Registry, tariffs: dict[str, Tariff], stations: Sequence[str] | None = None
) -> list[str]:
    """The example tariffs the given stations (default all) would be billed with."""
    found = set()
    for station in stations or registry.stations:
        if station in registry.stations:
            try:
                tariff = _tariff_for(registry, station, tariffs)
            except AllocationError:
                continue  # refused, with its reason, when the month runs
            if tariff.example:
                found.add(tariff.id)
    return sorted(found)


def _tariff_for(registry: Registry, station: str, tariffs: dict[str, Tariff]) -> Tariff:
    wanted = registry.stations[station].tariff or registry.tariff
    if wanted is None:
        if len(tariffs) == 1:
            return next(iter(tariffs.values()))
        raise AllocationError(
            f"station {station!r}: name its `tariff` (or the registry's); "
            f"loaded: {', '.join(tariffs)}",
            f"站点 {station!r}：请写明它（或登记文件）的 `tariff`；已加载：{', '.join(tariffs)}",
        )
    if wanted not in tariffs:
        raise AllocationError(
            f"station {station!r}: tariff {wanted!r} is not loaded (have {', '.join(tariffs)}); "
            "give its file with --tariffs",
            f"站点 {station!r}：电价 {wanted!r} 没有加载（已加载 {', '.join(tariffs)}）；"
            "请用 --tariffs 给出它的文件",
        )
    return tariffs[wanted]


def _plan(
    registry: Registry,
    tariffs: dict[str, Tariff],
    month: date,
    chosen: list[str],
    now: datetime,
) -> tuple[dict[str, Tariff], dict[str, list[str]]]:
    """Each station's tariff, and the stations grouped by time zone; refuse what cannot run."""
    unknown = [s for s in chosen if s not in registry.stations]
    if unknown:
        raise AllocationError(
            f"not in the registry: {', '.join(unknown)}",
            f"不在站点登记文件中：{', '.join(unknown)}",
        )
    by_station: dict[str, Tariff] = {}
    by_zone: dict[str, list[str]] = {}
    for station in chosen:
        tz = registry.station_timezone(station)
        if month_window(month, tz).end_ms > now.timestamp() * 1000:
            raise AllocationError(
                f"{month:%Y-%m} is not over yet at station {station!r}",
                f"站点 {station!r} 的 {month:%Y-%m} 还没有结束",
            )
        tariff = _tariff_for(registry, station, tariffs)
        try:
            tariff.version_for(month)
        except TariffError as exc:
            what = exc.problems[0].what
            raise AllocationError(
                f"station {station!r}: {what.en}", f"站点 {station!r}：{what.zh}"
            ) from exc
        by_station[station] = tariff
        by_zone.setdefault(tz.key, []).append(station)
    return by_station, by_zone


def measure_station(
    registers: list[Register],
    readings: Mapping[tuple[str, str], Iterable[tuple[int, float]]],
    window: Window,
    station: str,
) -> dict[tuple[str, str], Usage]:
    """Each register's usage in the window, keyed (device, field)."""
    return {
        (r.device, r.field): measure(
            readings.get((r.device, r.field), []),
            window,
            max_rate=r.max_rate,
            station=station,
            device=r.device,
            unit=r.unit,
        )
        for r in registers
    }


def _month_readings(points: Points, window: Window) -> int:
    """Readings inside the window; 1 for a register that has none but bridges it."""
    s, e = window.start_ms, window.end_ms
    inside = sum(1 for t in points.times if s <= t < e) + len(points.hourly_times)
    if inside == 0 and points.times and min(points.times) < s and max(points.times) >= e:
        return 1  # read before and after a month-long silence: the register moved across it
    return inside


def _allocate_zone(
    registry: Registry,
    store: InfluxStore,
    report: MonthReport,
    zone: str,
    group: list[str],
    *,
    only: bool,
    progress: Progress | None,
) -> None:
    tz = ZoneInfo(zone)
    window = month_window(report.month, tz)
    registers = {s: station_registers(registry, s) for s in group}

    def fetched(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total, f"reading {zone}")

    readings = fetch_readings(
        store,
        [r for regs in registers.values() for r in regs],
        window,
        stations=group if only else None,
        progress=fetched,
    )
    report.readings += sum(_month_readings(points, window) for points in readings.values())
    periods: dict[str, list[Period]] = {}  # by tariff id: one table for many stations
    for i, station in enumerate(sorted(group), start=1):
        usages = measure_station(registers[station], readings, window, station)
        tariff = report.tariffs[station]
        version = tariff.version_for(report.month)
        if tariff.id not in periods:
            periods[tariff.id] = slot_periods(window, tz, version)
        report.stations.append(
            allocate_station(registry, station, usages, version, periods[tariff.id])
        )
        if progress is not None:
            progress(i, len(group), "allocating")


def run_report(
    registry: Registry,
    tariffs: dict[str, Tariff],
    store: InfluxStore,
    month: date,
    *,
    stations: Sequence[str] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> MonthReport:
    """Allocate `month` for the given stations (default all) from what InfluxDB holds."""
    if not registry.parties:
        raise AllocationError(
            "the registry names no parties: add `parties:` and each station's `union` and "
            "`operator` (see `waystation sample-registry`)",
            "站点登记文件没有 parties（承担方）：请加上 `parties:` 以及各站点的 `union` 和 "
            "`operator`（参见 `waystation sample-registry`）",
        )
    # A station named twice (`--station a --station a`) is billed once.
    chosen = list(dict.fromkeys(stations or registry.stations))
    by_station, by_zone = _plan(registry, tariffs, month, chosen, now or datetime.now(UTC))
    report = MonthReport(
        month, tariffs=by_station, language=registry.language, timezone=registry.timezone
    )
    for zone, group in sorted(by_zone.items()):
        _allocate_zone(
            registry, store, report, zone, group, only=stations is not None, progress=progress
        )
    report.stations.sort(key=lambda s: s.station)
    if report.readings == 0:
        raise NoReadings(
            f"no readings at all for {month:%Y-%m} at {len(chosen)} station(s) in database "
            f"{store.database!r}: nothing to bill, no file written (check --influx and "
            "--database, and that ingest was running)",
            f"{len(chosen)} 个站点在数据库 {store.database!r} 中没有 {month:%Y-%m} 的任何读数："
            "无法出账，未写任何文件（请检查 --influx、--database 以及 ingest 是否在运行）",
        )
    return report


def write_allocation(store: InfluxStore, report: MonthReport, registry: Registry) -> int:
    """Write the `allocation` measurement, stamped at the month's start; a re-run overwrites."""
    lines = []
    for station in report.stations:
        stamp = month_window(report.month, registry.station_timezone(station.station)).start_ms
        for util in station.utilities:
            for line in util.lines:
                # Every period of electricity, 0 where the month has none: a panel summing
                # critical-peak energy shows 0 for October, not "no data".
                tou = (
                    {f"{p}_kwh": float(line.tou.get(p, 0)) for p in Period}
                    if util.utility is Utility.ELECTRICITY
                    else {}
                )
                lines.append(
                    encode_line(
                        "allocation",
                        {"station": line.station, "party": line.party, "utility": util.utility},
                        {
                            "quantity": float(line.quantity),
                            "cost": float(line.cost),
                            "share": float(line.share),
                            "estimated_fraction": float(line.estimated_fraction),
                            **tou,
                        },
                        stamp,
                    )
                )
    for i in range(0, len(lines), 5000):
        store.write_lines(lines[i : i + 5000])
    return len(lines)
