"""A month of register readings from InfluxDB, placed at the time they were read.

The time-of-use split needs each register's value at every local hour, and
the month's edges need the readings either side of local midnight. How each
is read depends on how often the device reports (its registry `interval`):

- The edges, for every register: four cheap queries per field (no `GROUP BY
  time()`, so each answer carries the reading's own time) fetch the last
  reading before the month, the first in it, the last in it and the first
  after it. Both months that share an edge interpolate it between the same two
  readings, so consecutive months add up exactly to what the register moved.
- Devices reporting every `RAW_FROM` or less often (meters read every 15
  minutes or hourly): every reading, at its own time, in windows of at most
  72 hours. The report then spreads each interval's consumption evenly between
  its two readings, exactly as they were taken, on the grid or off it.
- Denser devices (one reading a minute): reading every point of a district's
  month costs too much, and InfluxQL stamps an aggregate of `GROUP BY
  time(1h)` at its bucket's start (`bottom()`/`top()` keep the reading's own
  time, but cost four times as much as `first()` on InfluxDB 1.6). So each
  local hour is represented by its first reading, which is the register's
  value at the hour's start when readings are on the grid (exact), and
  otherwise the value at most one reading interval (plus the clock's jitter)
  later. One aggregate per window, as cheap as the old `last()`.

Windows are at most 72 hours (InfluxDB 3 Core reads at most about that much
per query), and every query is InfluxQL, so the same report runs on InfluxDB
1.x, 2.x and 3.x. Hour buckets start on the station's local hours, also in
zones offset by half an hour.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from rules.allocation.compute import Register
from rules.allocation.registers import HOUR_MS, Window
from waystation.concurrentqueries import each_answer
from waystation.store import InfluxStore, Series

__all__ = ["MAX_QUERY_MS", "RAW_FROM", "Points", "Readings", "fetch_readings", "plan_queries"]

MAX_QUERY_MS = 72 * HOUR_MS
# Devices reporting this often or less are read reading by reading; denser ones by the hour.
RAW_FROM = timedelta(minutes=5)
# Queries in flight at once: InfluxDB runs each mostly on one core, and this
# process parses one answer while the server computes the next.
QUERY_CONCURRENCY = 2
# How far beyond each edge of the month to look for the reading next to it.
BOUNDARY_MS = 72 * HOUR_MS
# Devices named in one raw query's regular expression (keeps the query a few kB).
DEVICES_PER_QUERY = 200
# A window's query reads a few million points: on a busy server it takes well over the
# store's default timeout, which suits writes and small reads, so the report waits longer.
QUERY_TIMEOUT_S = 300.0


@dataclass(slots=True)
class Points:
    """One register's readings, 16 bytes each (a list of tuples takes about 120).

    `times`/`values` are readings at their own times; `hourly_*` a dense device's first
    reading of each hour, stamped at the hour's start. The month's first reading is known
    at its own time (`first_in`), so iterating leaves out the stamp of its hour, before it.
    """

    times: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    hourly_times: array[int] = field(default_factory=lambda: array("q"))
    hourly_values: array[float] = field(default_factory=lambda: array("d"))
    first_in: int | None = None

    def __iter__(self) -> Iterator[tuple[int, float]]:
        yield from zip(self.times, self.values, strict=True)
        since = self.first_in
        hourly = zip(self.hourly_times, self.hourly_values, strict=True)
        if since is None:
            yield from hourly
        else:
            yield from ((t, v) for t, v in hourly if t > since)

    def __len__(self) -> int:
        """Readings fetched (each hour's first counted once, even where left out)."""
        return len(self.times) + len(self.hourly_times)


# Readings of each register, keyed (device, field): (epoch ms, value), as lists.
Readings = dict[tuple[str, str], list[tuple[int, float]]]
Progress = Callable[[int, int], None]


class _Shape(Enum):
    EDGE = "edge"  # a reading next to an edge of the month, at its own time
    FIRST_IN = "first_in"  # the month's first reading, at its own time
    RAW = "raw"  # every reading, at its own time
    HOURLY = "hourly"  # each hour's first reading, stamped at the hour's start


@dataclass(frozen=True)
class _Query:
    field: str
    shape: _Shape
    influxql: str


def _windows(start_ms: int, end_ms: int) -> Iterable[tuple[int, int]]:
    a = start_ms
    while a < end_ms:
        b = min(a + MAX_QUERY_MS, end_ms)
        yield a, b
        a = b


def _any_of(tag: str, values: Iterable[str]) -> str:
    # Station and device ids are [a-z0-9_-]: safe inside a regex literal as they are.
    return f' AND "{tag}" =~ /^({"|".join(sorted(values))})$/'


def _edges(source: str, name: str, window: Window, where: str) -> list[_Query]:
    """The last reading before the month, its first and last, and the first after it."""
    s, e = window.start_ms, window.end_ms
    spans = [
        ("last", s - BOUNDARY_MS, s, _Shape.EDGE),
        ("first", s, e, _Shape.FIRST_IN),
        ("last", s, e, _Shape.EDGE),
        ("first", e, e + BOUNDARY_MS, _Shape.EDGE),
    ]
    return [
        _Query(
            name,
            shape,
            f'SELECT {fn}("{name}") FROM {source} WHERE time >= {a}ms AND time < {b}ms{where} '
            'GROUP BY "device"',
        )
        for fn, a, b, shape in spans
    ]


def plan_queries(
    registers: Iterable[Register], window: Window, stations: list[str] | None = None
) -> list[_Query]:
    """Every query the month needs: its edges, and inside it raw or hourly readings."""
    where = _any_of("station", stations) if stations else ""
    by_field: dict[tuple[str, str], list[Register]] = {}
    for reg in registers:
        by_field.setdefault((reg.measurement, reg.field), []).append(reg)
    offset = f", {window.start_ms % HOUR_MS}ms" if window.start_ms % HOUR_MS else ""
    queries = []
    for (measurement, name), regs in sorted(by_field.items()):
        source = f'"{measurement}"'
        queries.extend(_edges(source, name, window, where))
        sparse = sorted({r.device for r in regs if r.interval >= RAW_FROM})
        dense = len(sparse) < len({r.device for r in regs})
        for a, b in _windows(window.start_ms, window.end_ms):
            span = f"time >= {a}ms AND time < {b}ms"
            if dense:
                queries.append(
                    _Query(
                        name,
                        _Shape.HOURLY,
                        f'SELECT first("{name}") FROM {source} WHERE {span}{where} '
                        f'GROUP BY time(1h{offset}), "device" fill(none)',
                    )
                )
            for i in range(0, len(sparse), DEVICES_PER_QUERY):
                devices = _any_of("device", sparse[i : i + DEVICES_PER_QUERY])
                queries.append(
                    _Query(
                        name,
                        _Shape.RAW,
                        f'SELECT "{name}" FROM {source} WHERE {span}{devices} GROUP BY "device"',
                    )
                )
    return queries


def _collect(
    result: list[Series], query: _Query, out: dict[tuple[str, str], Points], dense: set[str]
) -> None:
    for series in result:
        device = series.tags.get("device", "")
        points = out.get((device, query.field))
        if points is None:
            continue  # a device not in the registry, or not of this report
        hourly = query.shape is _Shape.HOURLY
        if hourly and device not in dense:
            continue  # a sparse device: its raw readings say more
        stamps = [row[0] for row in series.values]
        readings = [row[1] for row in series.values]
        if None in readings:
            stamps = [t for t, v in zip(stamps, readings, strict=True) if v is not None]
            readings = [v for v in readings if v is not None]
        if not stamps:
            continue
        if hourly:
            points.hourly_times.extend(stamps)
            points.hourly_values.extend(readings)
            continue
        if query.shape is _Shape.FIRST_IN:
            points.first_in = stamps[0]
        points.times.extend(stamps)
        points.values.extend(readings)


def fetch_readings(
    store: InfluxStore,
    registers: list[Register],
    window: Window,
    *,
    stations: list[str] | None = None,
    progress: Progress | None = None,
    concurrency: int = QUERY_CONCURRENCY,
) -> dict[tuple[str, str], Points]:
    """Readings around and inside `window` of every register listed (epoch ms, value)."""
    out = {(r.device, r.field): Points() for r in registers}
    dense = {r.device for r in registers if r.interval < RAW_FROM}
    queries = plan_queries(registers, window, stations)

    def ask(q: _Query) -> list[Series]:
        return store.query(q.influxql, timeout_s=QUERY_TIMEOUT_S)

    for done, (query, answer) in enumerate(
        each_answer(ask, queries, concurrency, name="report-query"), start=1
    ):
        _collect(answer, query, out, dense)  # then freed, rather than held to the end
        if progress is not None:
            progress(done, len(queries))
    return out
