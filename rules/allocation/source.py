"""A month of register readings from InfluxDB, each at its own time, in windows any InfluxDB serves.

The hourly split needs, at every hour boundary, the readings either side of
it with their own timestamps. InfluxQL's `first()` and `last()` with `GROUP
BY time()` stamp a value at the start of its bucket, which is up to an hour
away from when it was read; `bottom()` and `top()` keep the reading's own
time. So, per register field and per window of at most 72 hours (InfluxDB 3
Core reads at most about that much per query), two queries return every
device's smallest and largest reading of each local hour. For a register
that only grows they are the hour's first and last reading (of equal
readings, the earliest): a meter read every 30 minutes or less often yields
all its readings, a denser one the two that bound each hour, which is all
the hourly split uses, since the consumption between them is the same
whatever readings lie in between. A drop inside an hour (reset, rollover,
new meter) shows as the largest reading before the smallest, so it is still
seen where it happened. Two more queries fetch the last reading before the
month and the first after it, so both month edges interpolate between the
readings either side of local midnight. InfluxQL only, so the same report
runs on InfluxDB 1.x, 2.x and 3.x (whose `bottom()`/`top()` keep timestamps
the same way).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from rules.allocation.compute import Register
from rules.allocation.registers import HOUR_MS, Window
from waystation.store import InfluxStore, Series

__all__ = ["MAX_QUERY_MS", "Points", "Readings", "fetch_readings", "plan_queries"]

MAX_QUERY_MS = 72 * HOUR_MS
# Queries in flight at once: InfluxDB runs each mostly on one core, and this
# process parses one answer while the server computes the next.
QUERY_CONCURRENCY = 2
# How far beyond each boundary to look for the reading next to it.
BOUNDARY_MS = 72 * HOUR_MS
# Selectors that keep each reading's own timestamp under GROUP BY time().
HOURLY_SELECTORS = ("bottom", "top")


@dataclass(slots=True)
class Points:
    """One register's readings, 16 bytes each (a list of tuples takes about 120)."""

    times: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.times, self.values, strict=True)

    def __len__(self) -> int:
        return len(self.times)


# Readings of each register, keyed (device, field): (epoch ms, value), as lists.
Readings = dict[tuple[str, str], list[tuple[int, float]]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Query:
    measurement: str
    field: str
    influxql: str


def _windows(start_ms: int, end_ms: int) -> Iterable[tuple[int, int]]:
    a = start_ms
    while a < end_ms:
        b = min(a + MAX_QUERY_MS, end_ms)
        yield a, b
        a = b


def _station_filter(stations: list[str] | None) -> str:
    if not stations:
        return ""
    # Station ids are [a-z0-9_-]: safe inside a regex literal as they are.
    return f' AND "station" =~ /^({"|".join(sorted(stations))})$/'


def plan_queries(
    registers: Iterable[Register], window: Window, stations: list[str] | None = None
) -> list[_Query]:
    """Every query the month needs: each local hour's bounding readings in ≤72 h windows,
    and the readings next to the month's two edges."""
    where = _station_filter(stations)
    fields = sorted({(r.measurement, r.field) for r in registers})
    # Buckets start on the window's local hours, also in zones offset by half an hour.
    offset = f", {window.start_ms % HOUR_MS}ms" if window.start_ms % HOUR_MS else ""
    queries = []
    for measurement, name in fields:
        src = f'"{measurement}"'
        before = window.start_ms - BOUNDARY_MS
        after = window.end_ms + BOUNDARY_MS
        queries.append(
            _Query(
                measurement,
                name,
                f'SELECT last("{name}") FROM {src} WHERE time >= {before}ms '
                f'AND time < {window.start_ms}ms{where} GROUP BY "device"',
            )
        )
        queries.extend(
            _Query(
                measurement,
                name,
                f'SELECT {selector}("{name}", 1) FROM {src} WHERE time >= {a}ms '
                f'AND time < {b}ms{where} GROUP BY time(1h{offset}), "device" fill(none)',
            )
            for a, b in _windows(window.start_ms, window.end_ms)
            for selector in HOURLY_SELECTORS
        )
        queries.append(
            _Query(
                measurement,
                name,
                f'SELECT first("{name}") FROM {src} WHERE time >= {window.end_ms}ms '
                f'AND time < {after}ms{where} GROUP BY "device"',
            )
        )
    return queries


def fetch_readings(
    store: InfluxStore,
    registers: list[Register],
    window: Window,
    *,
    stations: list[str] | None = None,
    progress: Progress | None = None,
    concurrency: int = QUERY_CONCURRENCY,
) -> dict[tuple[str, str], Points]:
    """Readings around and inside `window` of every register listed, each at its own time."""
    out = {(r.device, r.field): Points() for r in registers}
    queries = plan_queries(registers, window, stations)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="report-query") as pool:
        running = {pool.submit(store.query, q.influxql): q for q in queries}
        for done, future in enumerate(as_completed(running), start=1):
            # Popped, so each answer is freed once collected rather than at the end.
            _collect(future.result(), running.pop(future).field, out)
            if progress is not None:
                progress(done, len(queries))
    return out


def _collect(result: list[Series], field_name: str, out: dict[tuple[str, str], Points]) -> None:
    for series in result:
        points = out.get((series.tags.get("device", ""), field_name))
        if points is None:
            continue  # a device not in the registry, or not of this report
        for t, value in series.values:
            if value is not None:
                points.times.append(int(t))
                points.values.append(float(value))
