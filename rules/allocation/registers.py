"""Consumption of a cumulative register over a month (SPEC §8).

The readings of a `_total` register are turned into a clean, growing series
first: a drop to near zero is a counter reset (counted from the new value), a
drop that fits a wrap past the register's maximum is a rollover, a single
reading implying impossible consumption that the next reading contradicts is
a spike (ignored), and a jump that stays is a meter replacement (the interval
across it is estimated from the rate before). The series is the consumption
since the first reading, at each reading's own time, and between two
readings it grows evenly: consumption is spread over the time it happened.
Each slot's (hour's) consumption for time-of-use pricing is the series at
the slot's end minus at its start, and the month's edges (local midnight)
interpolate between the readings either side, so consecutive months share
their edges exactly; gaps are bridged by the register itself. A register
silent at the month's end is extrapolated at its recent daily rate, and that
part is marked estimated.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from rules.allocation.findings import Code, Finding

__all__ = ["HOUR_MS", "Usage", "Window", "measure"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# DL/T 645 energy registers count to 999999.99 and wrap to zero.
REGISTER_MODULUS = 1_000_000.0
# An interval longer than this is reported as a gap.
GAP_MS = 3 * HOUR_MS
# How far back a silent register's daily average looks.
RECENT_MS = 7 * DAY_MS
# Slack on the plausibility limit: clock jitter of about a minute.
JITTER_H = 1 / 60


@dataclass(frozen=True)
class Window:
    """The month, as epoch-ms bounds, divided into slots (hours) for time-of-use."""

    start_ms: int
    end_ms: int
    slot_ms: int = HOUR_MS

    @property
    def slots(self) -> int:
        return -(-(self.end_ms - self.start_ms) // self.slot_ms)


@dataclass
class Usage:
    """What one register consumed in the window."""

    total: float
    slots: list[float]
    estimated: float = 0.0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class _Interval:
    t0: int
    t1: int
    delta: float
    estimated: bool = False

    def inside(self, window: Window) -> float:
        """The part of its consumption that falls in the window (spread evenly in time)."""
        overlap = min(self.t1, window.end_ms) - max(self.t0, window.start_ms)
        return self.delta * overlap / (self.t1 - self.t0) if overlap > 0 and self.delta else 0.0


@dataclass
class _Clean:
    """A register made into a growing series: consumption counted since its first reading.

    `times[i]` is a reading's time and `used[i]` what the register consumed from the first
    reading to it; between two readings consumption is spread evenly. Intervals that were
    estimated, or long enough to be gaps, are kept whole for what the report says of them.
    """

    times: list[int]
    used: list[float]
    estimated: list[_Interval] = field(default_factory=list)
    gaps: list[_Interval] = field(default_factory=list)

    def extend(self, interval: _Interval) -> None:
        self.times.append(interval.t1)
        self.used.append(self.used[-1] + interval.delta)
        if interval.estimated:
            self.estimated.append(interval)

    def at(self, t_ms: int) -> float:
        """Consumption from the first reading to `t_ms`, held flat outside the readings."""
        i = bisect_right(self.times, t_ms)
        if i == 0:
            return self.used[0]
        if i == len(self.times):
            return self.used[-1]
        t0, u0 = self.times[i - 1], self.used[i - 1]
        return u0 + (self.used[i] - u0) * (t_ms - t0) / (self.times[i] - t0)

    def recent_rate(self, until_ms: int, span_ms: int) -> float:
        """Average consumption per ms over the `span_ms` of readings before `until_ms`."""
        since = max(until_ms - span_ms, self.times[0])
        return (
            (self.at(until_ms) - self.at(since)) / (until_ms - since) if until_ms > since else 0.0
        )

    def slots(self, window: Window) -> list[float]:
        """Consumption in each slot of the window: the series at each slot edge, differenced."""
        edges = range(window.start_ms, window.end_ms, window.slot_ms)
        values = [self.at(x) for x in (*edges, window.end_ms)]
        return [b - a for a, b in pairwise(values)]


class _Cleaner:
    """Walks sorted readings and keeps the plausible consumption, noting what it had to do."""

    def __init__(self, max_rate: float, station: str, device: str, unit: str) -> None:
        self.max_rate = max_rate
        self.station = station
        self.device = device
        self.unit = unit
        self.findings: list[Finding] = []

    def note(
        self, code: Code, at_ms: int, quantity: float | None = None, **args: str | float
    ) -> None:
        """A finding at `at_ms`; `args` fill its wording (rules.allocation.wording)."""
        self.findings.append(
            Finding(code, self.station, self.device, at_ms, quantity, tuple(sorted(args.items())))
        )

    def plausible(self, delta: float, dt_ms: int) -> bool:
        return -self._noise(delta) <= delta <= self.max_rate * (dt_ms / HOUR_MS + JITTER_H)

    @staticmethod
    def _noise(value: float) -> float:
        return 1e-9 * max(1.0, abs(value))

    def clean(self, points: list[tuple[int, float]]) -> _Clean:
        t_a, v_a = points[0]
        series = _Clean([t_a], [0.0])
        times, used = series.times, series.used
        # The common case (the register grew, and not impossibly) inline: a month of
        # one-minute data passes here some ten million times.
        max_rate = self.max_rate
        total = 0.0
        n = len(points)
        i = 1
        while i < n:
            t_b, v_b = points[i]
            d = v_b - v_a
            dt = t_b - t_a
            if 0 <= d <= max_rate * (dt / HOUR_MS + JITTER_H) or self.plausible(d, dt):
                d = max(d, 0.0)  # a drop within rounding noise is no consumption
                total += d
                times.append(t_b)
                used.append(total)
                if dt > GAP_MS:
                    series.gaps.append(_Interval(t_a, t_b, d))
            elif i + 1 < n and self.plausible(points[i + 1][1] - v_a, points[i + 1][0] - t_a):
                # The next reading continues from before: this one was a glitch.
                self.note(Code.SPIKE_REJECTED, t_b, value=v_b, unit=self.unit)
                i += 1
                continue
            else:
                interval = self._discontinuity(series, t_a, v_a, t_b, v_b)
                if dt > GAP_MS and not interval.estimated:
                    series.gaps.append(interval)
                series.extend(interval)
                total = used[-1]
            t_a, v_a = t_b, v_b
            i += 1
        return series

    def _discontinuity(
        self, before: _Clean, t_a: int, v_a: float, t_b: int, v_b: float
    ) -> _Interval:
        dt = t_b - t_a
        if v_b < v_a and self.plausible(v_b + REGISTER_MODULUS - v_a, dt):
            delta = v_b + REGISTER_MODULUS - v_a
            self.note(Code.REGISTER_ROLLOVER, t_b, delta, before=v_a, after=v_b)
            return _Interval(t_a, t_b, delta)
        if v_b < v_a and self.plausible(v_b, dt):
            self.note(Code.COUNTER_RESET, t_b, v_b, before=v_a, after=v_b)
            return _Interval(t_a, t_b, v_b)
        delta = before.recent_rate(t_a, DAY_MS) * dt
        self.note(
            Code.METER_REPLACED, t_b, delta, before=v_a, after=v_b, delta=delta, unit=self.unit
        )
        return _Interval(t_a, t_b, delta, estimated=True)


def _unique_sorted(points: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Sorted by time; of two readings at one instant the larger wins, whatever their order."""
    out: list[tuple[int, float]] = []
    for point in sorted(points):  # by time, then value: of one instant the largest last
        if out and out[-1][0] == point[0]:
            out[-1] = point
        else:
            out.append(point)
    return out


def measure(
    points: Iterable[tuple[int, float]],
    window: Window,
    *,
    max_rate: float,
    station: str,
    device: str,
    unit: str,
) -> Usage:
    """Consumption of one register in `window` from readings around it (epoch ms, value)."""
    readings = _unique_sorted(points)
    cleaner = _Cleaner(max_rate, station, device, unit)
    if not readings:
        cleaner.note(Code.NO_DATA, window.start_ms)
        return Usage(0.0, [0.0] * window.slots, 0.0, cleaner.findings)
    if readings[0][0] >= window.end_ms:
        # The first reading came after the month: nothing measured in it.
        cleaner.note(Code.NO_DATA, window.end_ms, first_at=readings[0][0])
        return Usage(0.0, [0.0] * window.slots, 0.0, cleaner.findings)
    series = cleaner.clean(readings)
    first_t, last_t = series.times[0], series.times[-1]
    if first_t > window.start_ms:
        cleaner.note(Code.STARTED_IN_MONTH, first_t, first_at=first_t)
    if last_t < window.end_ms:
        rate = series.recent_rate(last_t, RECENT_MS)
        extra = _Interval(last_t, window.end_ms, rate * (window.end_ms - last_t), estimated=True)
        series.extend(extra)
        cleaner.note(
            Code.EXTRAPOLATED_END,
            last_t,
            extra.delta,
            since_at=last_t,
            delta=extra.delta,
            per_day=rate * DAY_MS,
            unit=unit,
        )
    for gap in series.gaps:
        if gap.inside(window) > 0:
            hours = (gap.t1 - gap.t0) / HOUR_MS
            cleaner.note(
                Code.GAP_BRIDGED,
                gap.t0,
                gap.delta,
                since_at=gap.t0,
                hours=hours,
                delta=gap.delta,
                unit=unit,
            )
    slots = series.slots(window)
    estimated = sum(iv.inside(window) for iv in series.estimated)
    return Usage(sum(slots), slots, estimated, cleaner.findings)
