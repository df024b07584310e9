"""A main meter read at any interval, through a real InfluxDB into the monthly report (issue 14).

The meter draws a known load in each local hour, so its register has an exact
value at every instant; `write_readings` stores what a meter read every
`interval` (optionally off the grid) would have sent, and `october_table` is
the issue's table: what the report bills for a month at each interval.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules.allocation.compute import UtilityResult
from rules.allocation.registers import HOUR_MS
from rules.allocation.report import MonthReport, month_window, run_report
from rules.allocation.source import RAW_FROM
from rules.allocation.tariff import Period, shipped_tariffs
from tests.allocation_helpers import district
from waystation.registry import Registry, Utility
from waystation.store import InfluxStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
TARIFF = shipped_tariffs()["sichuan-general-commercial"]
# The load: kWh drawn in each local hour, by the hour's period in the base table
# (the critical-peak hours are peak hours there, so they draw 3 kWh too).
BY_PERIOD = {Period.SHARP: 3, Period.PEAK: 3, Period.FLAT: 2, Period.VALLEY: 1}
START_VALUE = 1000.0
# Readings go from a day before the first month to a day after the last.
MARGIN_MS = 24 * HOUR_MS

Load = Callable[[datetime], float]  # local hour start → kWh drawn in that hour
Jitter = Callable[[int], int]  # reading number → ms off the grid
Register = Callable[[int], float | None]  # epoch ms → the register's reading, None: no reading


def by_period(hour: datetime) -> float:
    """3 kWh in a peak (or critical-peak) hour, 2 in a flat one, 1 in a valley one."""
    table = TARIFF.version_for(date(hour.year, hour.month, 1)).electricity.table(hour.month)
    return BY_PERIOD[table[hour.hour]]


def constant(kwh_per_hour: float) -> Load:
    return lambda _hour: kwh_per_hour


class Meter:
    """A register drawing `load` evenly within each hour, from `start_ms` (an hour boundary)."""

    def __init__(self, span: tuple[int, int], load: Load, tz: ZoneInfo = SHANGHAI) -> None:
        self.span = span
        self.start_ms = span[0]
        self._rates = [
            load(datetime.fromtimestamp(t / 1000, UTC).astimezone(tz))
            for t in range(span[0], span[1], HOUR_MS)
        ]
        self._cumulative = [START_VALUE]
        for rate in self._rates:
            self._cumulative.append(self._cumulative[-1] + rate)

    def value(self, t_ms: int) -> float:
        """The register at `t_ms`, exactly (the load is even within each hour)."""
        k, into = divmod(t_ms - self.start_ms, HOUR_MS)
        if k == len(self._rates):
            return self._cumulative[k]
        return self._cumulative[k] + self._rates[k] * into / HOUR_MS

    def rate(self, t_ms: int) -> float:
        """kWh per hour drawn at `t_ms`."""
        return self._rates[(t_ms - self.start_ms) // HOUR_MS]


def months_span(first: date, last: date, tz: ZoneInfo = SHANGHAI) -> tuple[int, int]:
    """From a day before `first` starts to a day after `last` ends, epoch ms."""
    return month_window(first, tz).start_ms - MARGIN_MS, month_window(last, tz).end_ms + MARGIN_MS


def write_readings(
    store: InfluxStore,
    register: Register,
    span: tuple[int, int],
    device: str,
    interval: timedelta,
    *,
    jitter: Jitter | None = None,
    field: str = "energy_kwh_total",
) -> list[tuple[int, float]]:
    """Store what a meter read every `interval` (plus `jitter`) over `span`, and return it.

    `register` gives the value read at an instant, or None where the meter sent nothing.
    """
    step = int(interval.total_seconds() * 1000)
    station = device.rsplit("-", 1)[0]
    head = f"meter,device={device},station={station} {field}="
    written = []
    for n, grid in enumerate(range(span[0], span[1] + 1, step)):
        t = grid + (jitter(n) if jitter else 0)
        value = register(t) if span[0] <= t <= span[1] else None
        if value is not None:
            written.append((t, value))
    lines = [f"{head}{value!r} {t}" for t, value in written]
    for i in range(0, len(lines), 20_000):
        store.write_lines(lines[i : i + 20_000])
    return written


def interpolate(readings: list[tuple[int, float]], at_ms: int) -> float:
    """The register at `at_ms`, on the straight line between the readings either side."""
    after = next(i for i, (t, _v) in enumerate(readings) if t >= at_ms)
    (t0, v0), (t1, v1) = readings[after - 1], readings[after]
    return v0 + (v1 - v0) * (at_ms - t0) / (t1 - t0)


def meter_station(
    station: str, interval: timedelta, *, tou_registers: bool = False, timezone: str | None = None
) -> Registry:
    """A station with only its main electricity meter, read every `interval`."""
    spec = {
        "kind": "meter",
        "utility": "electricity",
        "role": "main",
        "interval": f"{int(interval.total_seconds())}s",
        "tou_registers": tou_registers,
    }
    entry = {
        "name": f"驿站 {station}",
        "model": "enterprise_incubated",
        "operator": "xiaoge",
        "devices": {f"{station}-meter": spec},
    }
    return district(**{station: entry | ({"timezone": timezone} if timezone else {})})


def random_jitter(most: timedelta, seed: int) -> Jitter:
    """Each reading off the grid by up to `most` either way, the same for a seed."""
    rng = random.Random(seed)
    most_ms = int(most.total_seconds() * 1000)
    offsets: list[int] = []

    def jitter(n: int) -> int:
        while len(offsets) <= n:
            offsets.append(rng.randint(-most_ms, most_ms))
        return offsets[n]

    return jitter


def report(store: InfluxStore, registry: Registry, month: date) -> MonthReport:
    return run_report(
        registry, {TARIFF.id: TARIFF}, store, month, now=datetime(2027, 1, 1, tzinfo=UTC)
    )


def electricity(result: MonthReport) -> UtilityResult:
    (station,) = result.stations
    return next(u for u in station.utilities if u.utility is Utility.ELECTRICITY)


@dataclass(frozen=True)
class Row:
    """One row of the issue's table: what a month bills at one reading interval."""

    interval: str
    kwh: Decimal
    tou: dict[str, Decimal]
    cost: Decimal

    def __str__(self) -> str:
        tou = " | ".join(f"{self.tou.get(p, Decimal(0)):f}" for p in Period)
        return f"| {self.interval} | {self.kwh:f} | {tou} | {self.cost:f} |"


def month_row(store: InfluxStore, registry: Registry, month: date, interval: str) -> Row:
    util = electricity(report(store, registry, month))
    return Row(interval, util.quantity, util.tou, util.cost)


def by_hand(month: date, load: Load = by_period) -> Row:
    """The month worked from the load alone: kWh per period and the cost at the example prices."""
    version = TARIFF.version_for(month)
    table_month = version.electricity
    window = month_window(month, SHANGHAI)
    tou: dict[str, Decimal] = {}
    for t in range(window.start_ms, window.end_ms, HOUR_MS):
        hour = datetime.fromtimestamp(t / 1000, UTC).astimezone(SHANGHAI)
        period = table_month.table(hour.month)[hour.hour]
        tou[period] = tou.get(period, Decimal(0)) + Decimal(repr(load(hour)))
    cost = sum((q * table_month.prices[Period(p)] for p, q in tou.items()), Decimal(0))
    return Row("by hand", sum(tou.values(), Decimal(0)), tou, cost.quantize(Decimal("0.01")))


def jitter_bound(
    month: date, interval: timedelta, jitter: timedelta, load: Load = by_period
) -> dict[str, float]:
    """How far each period's kWh, and under "total" the month's, may be off with readings
    up to `jitter` off their grid every `interval` (README, "Time of use").

    The load steps only at hour boundaries. Where the report has the readings at their own
    times (the month's edges; every reading of a meter read every `RAW_FROM` or less often),
    spreading an interval's consumption evenly errs only where the draw changes inside it,
    and each such step lies within `jitter` of the interval's nearer end (the reading due at
    the step's hour): the register at an hour boundary is off by at most `jitter` × the steps
    within a reading interval (plus jitter) of it. A denser meter's hour starts at its first
    reading at or after the hour, at most `interval` + `jitter` late: off by at most that
    long at the hour's draw. A period's kWh telescopes to the errors at the edges of its
    runs of hours, the month's to those at its two edges.
    """
    version = TARIFF.version_for(month)
    window = month_window(month, SHANGHAI)
    reach_ms = (interval + jitter).total_seconds() * 1000

    def local(t: int) -> datetime:
        return datetime.fromtimestamp(t / 1000, UTC).astimezone(SHANGHAI)

    def period(t: int) -> Period:
        return version.electricity.table(local(t).month)[local(t).hour]

    def own_times(h: int) -> float:
        near = range(h - HOUR_MS * 12, h + HOUR_MS * 12 + 1, HOUR_MS)
        steps = [
            abs(load(local(k)) - load(local(k - HOUR_MS))) for k in near if abs(k - h) < reach_ms
        ]
        return jitter.total_seconds() / 3600 * sum(steps)

    def error_at(h: int) -> float:
        if interval >= RAW_FROM or h in (window.start_ms, window.end_ms):
            return own_times(h)
        return load(local(h)) * (interval + jitter).total_seconds() / 3600

    bound = {"total": error_at(window.start_ms) + error_at(window.end_ms)}
    for h in range(window.start_ms, window.end_ms + 1, HOUR_MS):
        edge = h in (window.start_ms, window.end_ms)
        if edge or period(h - HOUR_MS) != period(h):
            if h > window.start_ms:
                bound[period(h - HOUR_MS)] = bound.get(period(h - HOUR_MS), 0.0) + error_at(h)
            if h < window.end_ms:
                bound[period(h)] = bound.get(period(h), 0.0) + error_at(h)
    return bound
