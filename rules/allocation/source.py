"""Register readings for a month from InfluxDB, in windows every InfluxDB can serve.

Per register field, one query per window of at most 72 hours (InfluxDB 3
Core reads at most about that much per query) returns every device's last
value of each hour; two more fetch the true last reading before the month and
the first after it, so both boundaries interpolate between real readings.
Hourly values are stamped at the end of their hour: the last reading of an
hour of one-minute data is at most a minute older than that, which moves a
minute's consumption across an hour boundary and changes no total.
InfluxQL only, so the same report runs on InfluxDB 1.x, 2.x and 3.x.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from rules.allocation.compute import Register
from rules.allocation.registers import HOUR_MS, Window
from waystation.store import InfluxStore, Series

__all__ = ["MAX_QUERY_MS", "Readings", "fetch_readings"]

MAX_QUERY_MS = 72 * HOUR_MS
# Queries in flight at once: InfluxDB runs each mostly on one core, and this
# process parses one answer while the server computes the next.
QUERY_CONCURRENCY = 2
# How far beyond each boundary to look for the reading next to it.
BOUNDARY_MS = 72 * HOUR_MS

# Readings of each register, keyed (device, field): (epoch ms, value).
Readings = dict[tuple[str, str], list[tuple[int, float]]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Query:
    measurement: str
    field: str
    influxql: str
    stamp_offset_ms: int  # added to each returned time


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
    """Every query the month needs: hourly values in ≤72 h windows, and the two boundaries."""
    where = _station_filter(stations)
    fields = sorted({(r.measurement, r.field) for r in registers})
    queries = []
    for measurement, field in fields:
        src = f'"{measurement}"'
        before = window.start_ms - BOUNDARY_MS
        after = window.end_ms + BOUNDARY_MS
        queries.append(
            _Query(
                measurement,
                field,
                f'SELECT last("{field}") FROM {src} WHERE time >= {before}ms '
                f'AND time < {window.start_ms}ms{where} GROUP BY "device"',
                0,
            )
        )
        queries.extend(
            _Query(
                measurement,
                field,
                f'SELECT last("{field}") FROM {src} WHERE time >= {a}ms AND time < {b}ms{where} '
                f'GROUP BY time(1h), "device" fill(none)',
                HOUR_MS,
            )
            for a, b in _windows(window.start_ms, window.end_ms)
        )
        queries.append(
            _Query(
                measurement,
                field,
                f'SELECT first("{field}") FROM {src} WHERE time >= {window.end_ms}ms '
                f'AND time < {after}ms{where} GROUP BY "device"',
                0,
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
) -> Readings:
    """Readings around and inside `window` of every register listed."""
    wanted = {(r.device, r.field) for r in registers}
    out: Readings = {key: [] for key in wanted}
    queries = plan_queries(registers, window, stations)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="report-query") as pool:
        running = {pool.submit(store.query, q.influxql): q for q in queries}
        for done, future in enumerate(as_completed(running), start=1):
            # Popped, so each answer is freed once collected rather than at the end.
            _collect(future.result(), running.pop(future), wanted, out)
            if progress is not None:
                progress(done, len(queries))
    return out


def _collect(
    result: list[Series], query: _Query, wanted: set[tuple[str, str]], out: Readings
) -> None:
    for series in result:
        key = (series.tags.get("device", ""), query.field)
        if key not in wanted:
            continue  # a device not in the registry, or not of this report
        points = out[key]
        for t, value in series.values:
            if value is not None:
                points.append((int(t) + query.stamp_offset_ms, float(value)))
