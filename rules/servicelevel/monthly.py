"""A month's scorecard from InfluxDB: the stations' rows, the operators', with their alerts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from rules.servicelevel.definitions import Definitions
from rules.servicelevel.scorecard import (
    AlertStats,
    ServiceLevel,
    alert_stats,
    operator_levels,
    station_levels,
)
from rules.servicelevel.source import DeviceHistory, read_month
from rules.servicelevel.usage import RegisterMonth
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["ServiceReport", "month_span", "service_report"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ServiceReport:
    month: date
    stations: list[ServiceLevel]
    operators: list[ServiceLevel]

    @property
    def rows(self) -> list[ServiceLevel]:
        return [*self.stations, *self.operators]


def month_span(month: date, tz: ZoneInfo) -> tuple[int, int]:
    """Local midnight on the 1st to local midnight on the next 1st, in epoch ms."""
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return tuple(  # type: ignore[return-value]
        int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000) for d in (month, nxt)
    )


AlertPoints = dict[tuple[str, str, str], list[tuple[int, bool]]]


def _alerts(store: InfluxStore, span: tuple[int, int]) -> AlertPoints:
    """The `alert` measurement's firings and resolutions in the month, per alert."""
    start, end = span
    out: AlertPoints = {}
    query = (  # times are integers
        f'SELECT "active" FROM "alert" WHERE time >= {start}ms AND time < {end}ms '  # noqa: S608
        'GROUP BY "station", "device", "rule"'
    )
    for series in store.query(query):
        key = (series.tags.get("station", ""), series.tags.get("device", ""),
               series.tags.get("rule", ""))  # fmt: skip
        out.setdefault(key, []).extend((int(t), bool(a)) for t, a in series.values)
    return out


def service_report(
    store: InfluxStore,
    registry: Registry,
    defs: Definitions,
    month: date,
    *,
    now: datetime,
    stations: list[str] | None = None,
    progress: Progress | None = None,
    usage: Mapping[tuple[str, str], RegisterMonth] | None = None,
) -> ServiceReport:
    """Each station's and operator's service levels for `month` (cut in each station's zone).

    `usage`: the allocation's registers of the month, keyed (device, field), for the
    usage beside the levels (`rules.servicelevel.usage`); without it, the rows have none.
    """
    chosen = sorted(stations or registry.stations)
    by_zone: dict[str, list[str]] = {}
    for sid in chosen:
        by_zone.setdefault(str(registry.station_timezone(sid)), []).append(sid)
    now_ms = int(now.timestamp() * 1000)
    rows: list[ServiceLevel] = []
    histories: dict[str, DeviceHistory] = {}
    widest = (2**62, 0)
    for zone, sids in sorted(by_zone.items()):
        span = month_span(month, ZoneInfo(zone))
        widest = (min(widest[0], span[0]), max(widest[1], span[1]))
        # The whole district in one zone is read without naming its devices.
        whole = stations is None and len(by_zone) == 1
        histories |= read_month(store, registry, defs, *span, now_ms=now_ms,
                                stations=None if whole else sids, progress=progress)  # fmt: skip
        rows += station_levels(registry, histories, month, window=span, stations=sids,
                               usage=usage)  # fmt: skip
    rows.sort(key=lambda r: r.station)
    operator_of = {sid: registry.stations[sid].operator or "" for sid in chosen}
    stats = alert_stats(_alerts(store, widest), operator_of)
    operators = operator_levels(rows, lambda op: stats.get(op, AlertStats(0, None)))
    return ServiceReport(month, rows, operators)
