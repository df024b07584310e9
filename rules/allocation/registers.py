"""Consumption of a cumulative register over a month (SPEC §8).

The readings of a `_total` register are turned into a clean, growing series
first: a drop to near zero is a counter reset (counted from the new value), a
drop that fits a wrap past the register's maximum is a rollover, a single
reading implying impossible consumption that the next reading contradicts is
a spike (ignored), and a jump that stays is a meter replacement (the interval
across it is estimated from the rate before). Consumption between two
readings is spread evenly over the time between them, which is the linear
interpolation the month boundaries need, bridges gaps by the register itself,
and yields per-slot (hourly) consumption for time-of-use pricing. A register
silent at the month's end is extrapolated at its recent daily rate, and that
part is marked estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Cleaner:
    """Walks sorted readings and emits plausible intervals, noting what it had to do."""

    def __init__(self, max_rate: float, station: str, device: str, unit: str) -> None:
        self.max_rate = max_rate
        self.station = station
        self.device = device
        self.unit = unit
        self.findings: list[Finding] = []

    def note(self, code: Code, message: str, at_ms: int, quantity: float | None = None) -> None:
        self.findings.append(Finding(code, self.station, self.device, message, at_ms, quantity))

    def plausible(self, delta: float, dt_ms: int) -> bool:
        return -self._noise(delta) <= delta <= self.max_rate * (dt_ms / HOUR_MS + JITTER_H)

    @staticmethod
    def _noise(value: float) -> float:
        return 1e-9 * max(1.0, abs(value))

    def intervals(self, points: list[tuple[int, float]]) -> list[_Interval]:
        out: list[_Interval] = []
        t_a, v_a = points[0]
        i = 1
        while i < len(points):
            t_b, v_b = points[i]
            d = v_b - v_a
            if self.plausible(d, t_b - t_a):
                out.append(_Interval(t_a, t_b, max(d, 0.0)))
            elif i + 1 < len(points) and self.plausible(
                points[i + 1][1] - v_a, points[i + 1][0] - t_a
            ):
                # The next reading continues from before: this one was a glitch.
                self.note(Code.SPIKE_REJECTED, f"reading {v_b:g} {self.unit} ignored", t_b)
                i += 1
                continue
            else:
                out.append(self._discontinuity(out, t_a, v_a, t_b, v_b))
            t_a, v_a = t_b, v_b
            i += 1
        return out

    def _discontinuity(
        self, before: list[_Interval], t_a: int, v_a: float, t_b: int, v_b: float
    ) -> _Interval:
        dt = t_b - t_a
        if v_b < v_a and self.plausible(v_b + REGISTER_MODULUS - v_a, dt):
            delta = v_b + REGISTER_MODULUS - v_a
            self.note(Code.REGISTER_ROLLOVER, f"register wrapped {v_a:g} → {v_b:g}", t_b, delta)
            return _Interval(t_a, t_b, delta)
        if v_b < v_a and self.plausible(v_b, dt):
            self.note(
                Code.COUNTER_RESET, f"register reset {v_a:g} → {v_b:g}; counted from zero", t_b, v_b
            )
            return _Interval(t_a, t_b, v_b)
        delta = _recent_rate(before, t_a, DAY_MS) * dt
        self.note(
            Code.METER_REPLACED,
            f"register {v_a:g} → {v_b:g}: new meter; {delta:.3f} {self.unit} across the swap "
            "estimated from the day before",
            t_b,
            delta,
        )
        return _Interval(t_a, t_b, delta, estimated=True)


def _recent_rate(intervals: list[_Interval], until_ms: int, span_ms: int) -> float:
    """Average consumption per ms over the `span_ms` of intervals before `until_ms`."""
    since = until_ms - span_ms
    used = 0.0
    covered = 0
    for iv in reversed(intervals):
        if iv.t1 <= since:
            break
        part = min(iv.t1, until_ms) - max(iv.t0, since)
        if part > 0:
            used += iv.delta * part / (iv.t1 - iv.t0)
            covered += part
    return used / covered if covered else 0.0


def _unique_sorted(points: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Sorted by time; of two readings at one instant the larger wins, whatever their order."""
    best: dict[int, float] = {}
    for t, v in points:
        if t not in best or v > best[t]:
            best[t] = v
    return sorted(best.items())


def _spread(iv: _Interval, window: Window, slots: list[float]) -> float:
    """Add the interval's consumption inside the window to the slots, evenly in time."""
    a, b = max(iv.t0, window.start_ms), min(iv.t1, window.end_ms)
    if a >= b or iv.delta == 0:
        return 0.0
    per_ms = iv.delta / (iv.t1 - iv.t0)
    slot = window.slot_ms
    k = (a - window.start_ms) // slot
    while a < b:
        edge = min(b, window.start_ms + (k + 1) * slot)
        slots[k] += per_ms * (edge - a)
        a = edge
        k += 1
    return per_ms * (min(iv.t1, window.end_ms) - max(iv.t0, window.start_ms))


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
    slots = [0.0] * window.slots
    if not readings:
        cleaner.note(Code.NO_DATA, "no readings around the month", window.start_ms)
        return Usage(0.0, slots, 0.0, cleaner.findings)
    intervals = cleaner.intervals(readings)
    first_t, last_t = readings[0][0], intervals[-1].t1 if intervals else readings[0][0]
    if first_t > window.start_ms:
        cleaner.note(
            Code.STARTED_IN_MONTH,
            f"no reading before the month; counted from the first, at {_stamp(first_t)}",
            first_t,
        )
    if last_t < window.end_ms:
        rate = _recent_rate(intervals, last_t, RECENT_MS)
        extra = _Interval(last_t, window.end_ms, rate * (window.end_ms - last_t), estimated=True)
        intervals.append(extra)
        cleaner.note(
            Code.EXTRAPOLATED_END,
            f"silent since {_stamp(last_t)}; {extra.delta:.3f} {unit} estimated "
            f"at {rate * DAY_MS:.3f} {unit}/day",
            last_t,
            extra.delta,
        )
    estimated = 0.0
    for iv in intervals:
        inside = _spread(iv, window, slots)
        if iv.estimated:
            estimated += inside
        if iv.t1 - iv.t0 > GAP_MS and inside > 0 and not iv.estimated:
            hours = (iv.t1 - iv.t0) / HOUR_MS
            cleaner.note(
                Code.GAP_BRIDGED,
                f"no readings for {hours:.1f} h from {_stamp(iv.t0)}; "
                f"{iv.delta:.3f} {unit} spread over the gap",
                iv.t0,
                iv.delta,
            )
    return Usage(sum(slots), slots, estimated, cleaner.findings)
