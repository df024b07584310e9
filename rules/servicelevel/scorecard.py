"""Each station's and each operator's service levels for a month, from the devices' histories.

- A service is down while every device that provides it at the station is
  unreachable, cold or faulty (a station without such a device has no row
  for that service).
- Availability = 1 - down minutes inside opening hours / opening minutes.
- An outage is a maximal down interval; one that runs through a closed night
  is one outage; its minutes are those inside opening hours, and one wholly
  outside them is not counted. So `down_minutes` is the sum of the outages'
  minutes and the mean time to restore is `down_minutes / outages`.
- Per operator: the same over all its stations (availability weighted by
  opening minutes), with the alerts that fired at its stations (count,
  median time to resolve).
- Beside them, each service's usage in the month (`usage`): the allocation's
  figures for visits, hot-water litres and charging kWh, summed per station
  and per operator.

Figures are exact in ms; what is shown is rounded once, to two decimals.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from rules.servicelevel.definitions import PROVIDERS, Service
from rules.servicelevel.opening import opening_spans
from rules.servicelevel.source import DeviceHistory
from rules.servicelevel.spans import Span, intersect, length, union
from rules.servicelevel.usage import RegisterMonth, ServiceUsage, service_usage, total_usage
from waystation.registry import Registry

__all__ = [
    "ALL_STATIONS",
    "AlertStats",
    "ServiceLevel",
    "minutes",
    "operator_levels",
    "station_levels",
    "two",
]

ALL_STATIONS = "*"  # an operator's row
CENT = Decimal("0.01")


def two(value: Decimal) -> Decimal:
    """Rounded once, half up, to the two decimals every figure is shown with."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def minutes(ms: int) -> Decimal:
    return two(Decimal(ms) / 60_000)


@dataclass(frozen=True, slots=True)
class AlertStats:
    fired: int
    median_resolve_ms: int | None


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    month: date
    station: str  # ALL_STATIONS on an operator's row
    operator: str
    service: Service
    opening_ms: int
    down_ms: int
    outages: int
    longest_ms: int
    alerts: AlertStats | None = None  # on operators' rows
    usage: ServiceUsage | None = None  # None: `station`, or the allocation gave no usage

    @property
    def availability_pct(self) -> Decimal | None:
        """0-100, two decimals; None when the station was never open."""
        if self.opening_ms == 0:
            return None
        return two(100 * (1 - Decimal(self.down_ms) / Decimal(self.opening_ms)))

    @property
    def mttr_ms(self) -> Decimal | None:
        return Decimal(self.down_ms) / self.outages if self.outages else None


def _down(histories: list[DeviceHistory]) -> list[Span]:
    down = histories[0].bad
    for h in histories[1:]:
        down = intersect(down, h.bad)
    return down


def station_levels(
    registry: Registry,
    histories: Mapping[str, DeviceHistory],
    month: date,
    *,
    window: Span,
    stations: list[str] | None = None,
    usage: Mapping[tuple[str, str], RegisterMonth] | None = None,
) -> list[ServiceLevel]:
    """A row per station and service it has, sorted by station, then service.

    With `usage` (the allocation's registers, keyed (device, field)) each row carries
    its service's usage too.
    """
    out = []
    last = _month_end(month)
    for sid in sorted(stations or registry.stations):
        spec = registry.stations[sid]
        tz = registry.station_timezone(sid)
        opening = opening_spans(spec.opening_hours, tz, (month, last), window)
        for service, kind in PROVIDERS.items():
            ids = [d for d, dev in spec.devices.items() if dev.kind is kind and d in histories]
            if not ids:
                continue
            providers = [histories[d] for d in ids]
            counted = [length(intersect([span], opening)) for span in union(_down(providers))]
            counted = [ms for ms in counted if ms > 0]
            out.append(ServiceLevel(
                month, sid, spec.operator or "", service, length(opening),
                sum(counted), len(counted), max(counted, default=0),
                usage=None if usage is None else service_usage(service, ids, usage),
            ))  # fmt: skip
    return out


def operator_levels(
    rows: list[ServiceLevel], alerts: Callable[[str], AlertStats] | None = None
) -> list[ServiceLevel]:
    """Each operator's figures over its stations, a row per service."""
    by: dict[tuple[str, Service], list[ServiceLevel]] = {}
    for row in rows:
        if row.operator:
            by.setdefault((row.operator, row.service), []).append(row)
    out = []
    order = list(PROVIDERS)
    for (operator, service), group in sorted(
        by.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))
    ):
        out.append(ServiceLevel(
            group[0].month, ALL_STATIONS, operator, service,
            sum(r.opening_ms for r in group), sum(r.down_ms for r in group),
            sum(r.outages for r in group), max(r.longest_ms for r in group),
            alerts(operator) if alerts is not None else None,
            total_usage(r.usage for r in group),
        ))  # fmt: skip
    return out


def alert_stats(
    transitions: Mapping[tuple[str, str, str], list[tuple[int, bool]]],
    operator_of: Mapping[str, str],
) -> dict[str, AlertStats]:
    """From the `alert` measurement's points per (station, device, rule): (time, active)."""
    fired: dict[str, int] = {}
    resolve: dict[str, list[int]] = {}
    for (station, _device, _rule), points in transitions.items():
        operator = operator_of.get(station)
        if not operator:
            continue
        since: int | None = None
        for t, active in sorted(points):
            if active and since is None:
                since = t
                fired[operator] = fired.get(operator, 0) + 1
            elif not active and since is not None:
                resolve.setdefault(operator, []).append(t - since)
                since = None
    return {
        op: AlertStats(fired.get(op, 0),
                       int(statistics.median(resolve[op])) if resolve.get(op) else None)
        for op in set(fired) | set(resolve)
    }  # fmt: skip


def _month_end(month: date) -> date:
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return nxt - timedelta(days=1)
