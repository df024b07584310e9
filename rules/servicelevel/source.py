"""What the scorecard reads, and how, without pulling every reading of a district's month.

A month of one-minute data is some 45,000 readings a device; what the
definitions need is far less, and the server can find where it lies:

- **Cells.** Each device's time is cut into cells of at most half its
  timeout (aligned to the epoch; cells at a query window's edge are
  shorter). Two consecutive readings more than the timeout apart leave at
  least one whole cell empty between them. So per 72-hour window and kind
  the server counts each device's readings per cell (a subquery with
  `fill(0)`), and returns only the **troubled** cells: empty ones, and for
  dispensers those with a reading below the minimum temperature or with a
  fault, for lockers those with faulty slots. A window in which a device
  has no reading at all is troubled through.
- **Stretches.** Around each run of troubled cells the readings are read one
  by one, from the cell before the run to the cell after it. The cell before
  holds the earlier reading of every gap through the run, the cell after it
  the later one, and every cold or faulty run lies in troubled cells with
  its first good reading at the latest in the cell after: inside a
  stretch, every reading is known, so gaps, cold and faulty runs come out
  exactly as the definitions say, while a healthy device costs one count
  per cell. A stretch at the month's edge reaches 72 hours beyond it, for a
  run that began before the month or ends after it.
- **Edges.** Each window's first and last reading per device (`first`/`last`
  keep the reading's own time), the last reading before the month and the
  first after it (within 72 hours).

Windows are at most 72 hours (InfluxDB 3 Core's limit per query); two
queries run at once, as the allocation's do. (Subqueries are InfluxQL of 1.x
and 2.x; InfluxDB 3's InfluxQL lacks them, so there the cells would have to
be counted client-side: not done here.)
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from rules.servicelevel.definitions import Definitions, timeout_ms
from rules.servicelevel.runs import flag_runs, gaps
from rules.servicelevel.spans import Span, clip, union
from waystation.contract import Kind
from waystation.registry import Registry
from waystation.store import InfluxStore, Series

__all__ = ["DeviceHistory", "cell_ms", "read_month"]

WINDOW_MS = 72 * 3_600_000
EDGE_MS = 72 * 3_600_000  # how far beyond the month to look for the readings next to it
QUERY_CONCURRENCY = 2
QUERY_TIMEOUT_S = 300.0
DEVICES_PER_QUERY = 200
STATEMENTS_PER_REQUEST = 50  # the stretches' reads, sent together

# The kinds whose devices provide a service (meters provide none).
KINDS = (Kind.GATEWAY, Kind.WATER_DISPENSER, Kind.CHARGING_LOCKER, Kind.DOOR_COUNTER)

Progress = Callable[[int, int], None]


@dataclass
class DeviceHistory:
    """One device's month: when it was unreachable, cold or faulty (spans inside the month)."""

    device: str
    kind: Kind
    unreachable: list[Span] = field(default_factory=list)
    cold: list[Span] = field(default_factory=list)
    faulty: list[Span] = field(default_factory=list)

    @property
    def bad(self) -> list[Span]:
        return union([*self.unreachable, *self.cold, *self.faulty])


@dataclass
class _Seen:
    """What the screen said of one device, then its readings in the stretches around trouble."""

    cell_ms: int  # at most half its timeout: a longer gap empties a whole cell
    troubled: list[Span] = field(default_factory=list)  # cells empty, cold or with a fault
    firsts: list[int] = field(default_factory=list)  # first reading of each window with one
    lasts: list[int] = field(default_factory=list)
    before: int | None = None  # the last reading before the month (within EDGE_MS)
    after: int | None = None  # the first after it
    read: list[Span] = field(default_factory=list)  # stretches read reading by reading
    rows: list[list[object]] = field(default_factory=list)  # their readings: time, fields


def cell_ms(timeout: int) -> int:
    """The widest cell that a gap longer than `timeout` is sure to leave empty."""
    return max(timeout // 2, 1)


def _screen(kind: Kind, defs: Definitions) -> tuple[str, str]:
    """Per cell: the aggregates, and the condition of a troubled cell (fill(0) for empty)."""
    if kind is Kind.WATER_DISPENSER:  # temp_c is in every reading, fault only while faulty
        return (
            'count("temp_c") AS "n", min("temp_c") AS "low", count("fault") AS "faults"',
            f'"n" = 0 OR "low" < {defs.min_temp_c!r} OR "faults" > 0',
        )
    if kind is Kind.CHARGING_LOCKER:
        return 'count("fault_slots") AS "n", max("fault_slots") AS "high"', '"n" = 0 OR "high" > 0'
    return 'count("seq") AS "n"', '"n" = 0'


def _fields(kind: Kind) -> str:
    """What a stretch reads of each reading."""
    extra = {Kind.WATER_DISPENSER: ', "temp_c", "fault"', Kind.CHARGING_LOCKER: ', "fault_slots"'}
    return '"seq"' + extra.get(kind, "")


def _windows(start: int, end: int) -> Iterable[tuple[int, int]]:
    a = start
    while a < end:
        yield a, min(a + WINDOW_MS, end)
        a = min(a + WINDOW_MS, end)


def _span(a: int, b: int) -> str:
    return f"time >= {a}ms AND time < {b}ms"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _regex(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "\\" + c for c in text)


def _device_filters(devices: list[str], *, every: bool) -> list[str]:
    """`WHERE` clauses (each ending in AND) picking the devices; none when `every` is stored."""
    if every:
        return [""]
    ids = sorted(devices)
    return [
        '"device" =~ /^(' + "|".join(_regex(d) for d in ids[i : i + DEVICES_PER_QUERY]) + ")$/ AND "
        for i in range(0, len(ids), DEVICES_PER_QUERY)
    ]


def _screen_queries(
    kind: Kind, start: int, end: int, cells: dict[int, list[str]], defs: Definitions, *,
    every: bool,
) -> list[str]:  # fmt: skip
    """`cells`: the kind's devices by cell size; `every`: they are all the kind's devices.

    With one cell size for every device of the kind, the screen needs no device filter.
    """
    m = f'"{kind.value}"'
    before, after = _span(start - EDGE_MS, start), _span(end, end + EDGE_MS)
    out = [
        f'SELECT last("seq") AS "before" FROM {m} WHERE {before} GROUP BY "device"',
        f'SELECT first("seq") AS "after" FROM {m} WHERE {after} GROUP BY "device"',
    ]
    aggregates, troubled = _screen(kind, defs)
    screens = [
        (cell, where)
        for cell, devices in sorted(cells.items())
        for where in _device_filters(devices, every=every and len(cells) == 1)
    ]
    for a, b in _windows(start, end):
        span = _span(a, b)
        for cell, where in screens:
            counted = (
                f"SELECT {aggregates} FROM {m} WHERE {where}{span} "
                f'GROUP BY time({cell}ms), "device" fill(0)'
            )
            out.append(f'SELECT "n" AS "troubled" FROM ({counted}) WHERE {troubled} '
                       'GROUP BY "device"')  # fmt: skip
        out += [
            f'SELECT first("seq") AS "first" FROM {m} WHERE {span} GROUP BY "device"',
            f'SELECT last("seq") AS "last" FROM {m} WHERE {span} GROUP BY "device"',
        ]
    return out


def _collect(result: list[Series], seen: dict[str, _Seen]) -> None:
    """Answers of several statements: each aliases its one column, which says which it is."""
    for series in result:
        s = seen.get(series.tags.get("device", ""))
        if s is None or not series.values:
            continue  # a device not in the registry
        column, rows = series.columns[1], series.values
        t = int(rows[0][0])
        if column == "troubled":
            s.troubled += [(int(row[0]), int(row[0]) + s.cell_ms) for row in rows]
        elif column == "first":
            s.firsts.append(t)
        elif column == "last":
            s.lasts.append(t)
        elif column == "before":
            s.before = t
        elif column == "after":
            s.after = t


def _run(store: InfluxStore, queries: list[str], sink: Callable[[list[Series]], None], *,
         progress: Progress | None, done0: int, total: int) -> int:  # fmt: skip
    done = done0
    with ThreadPoolExecutor(QUERY_CONCURRENCY, thread_name_prefix="scorecard-query") as pool:
        running = {pool.submit(store.query, q, timeout_s=QUERY_TIMEOUT_S): q for q in queries}
        for future in as_completed(running):
            running.pop(future)
            sink(future.result())
            done += 1
            if progress is not None:
                progress(done, total)
    return done


def _stretches(s: _Seen, start: int, end: int) -> list[Span]:
    """Where to read the device reading by reading: each troubled run, a cell either side.

    A window without a reading of the device is troubled through; runs that
    touch (across a window's edge, too) are one; a stretch at the month's
    edge reaches EDGE_MS beyond it.
    """
    if not s.firsts:
        return []  # no reading in the month at all
    firsts = sorted(s.firsts)
    runs = list(s.troubled)
    for a, b in _windows(start, end):
        i = bisect.bisect_left(firsts, a)
        if i == len(firsts) or firsts[i] >= b:
            runs.append((a, b))
    c = s.cell_ms
    out = clip(union((a - c, b + c) for a, b in union(runs)), start, end)
    return [(a - EDGE_MS if a == start else a, b + EDGE_MS if b == end else b) for a, b in out]


def _stretch_queries(kind: Kind, device: str, stretches: list[Span]) -> list[str]:
    where = f'"device" = {_literal(device)}'
    return [
        f'SELECT {_fields(kind)} FROM "{kind.value}" WHERE {where} AND {_span(a, b)} '
        'GROUP BY "device"'
        for start, end in stretches
        for a, b in _windows(start, end)
    ]


def _batched(statements: list[str]) -> list[str]:
    return [
        ";".join(statements[i : i + STATEMENTS_PER_REQUEST])
        for i in range(0, len(statements), STATEMENTS_PER_REQUEST)
    ]


def read_month(
    store: InfluxStore,
    registry: Registry,
    defs: Definitions,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    stations: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, DeviceHistory]:
    """Every service-providing device's month, per the definitions, from the stored readings.

    A month not over yet is read up to `now_ms`.
    """
    end_ms = max(start_ms, min(end_ms, now_ms))
    devices = {
        device: spec
        for sid, station in registry.stations.items()
        if stations is None or sid in stations
        for device, spec in station.devices.items()
        if spec.kind in KINDS
    }
    timeouts = {d: timeout_ms(spec, defs) for d, spec in devices.items()}
    seen = {d: _Seen(cell_ms(timeouts[d])) for d in devices}
    queries = []
    for kind in sorted({spec.kind for spec in devices.values()}, key=lambda k: k.value):
        cells: dict[int, list[str]] = {}
        for d, spec in devices.items():
            if spec.kind is kind:
                cells.setdefault(seen[d].cell_ms, []).append(d)
        queries += _screen_queries(kind, start_ms, end_ms, cells, defs,
                                   every=stations is None)  # fmt: skip
    done = _run(store, queries, lambda r: _collect(r, seen), progress=progress, done0=0,
                total=len(queries))  # fmt: skip

    statements: list[str] = []
    for d, s in seen.items():
        s.read = _stretches(s, start_ms, end_ms)
        statements += _stretch_queries(devices[d].kind, d, s.read)
    more = _batched(statements)

    def keep(result: list[Series]) -> None:
        for series in result:
            s = seen.get(series.tags.get("device", ""))
            if s is not None:
                s.rows += series.values

    _run(store, more, keep, progress=progress, done0=done, total=done + len(more))
    window = (start_ms, end_ms)
    return {
        d: _history(d, devices[d].kind, seen[d], timeout=timeouts[d], window=window, defs=defs)
        for d in devices
    }


def _history(device: str, kind: Kind, s: _Seen, *, timeout: int, window: Span,
             defs: Definitions) -> DeviceHistory:  # fmt: skip
    start, end = window
    h = DeviceHistory(device, kind)
    if not s.firsts:
        h.unreachable = [(start, end)]  # no reading in the month: unreachable all month
        return h
    rows = sorted({int(r[0]): r for r in s.rows}.values(), key=lambda r: int(r[0]))  # type: ignore[call-overload]
    times = [int(r[0]) for r in rows]  # type: ignore[call-overload]
    unreachable, cold, faulty = [], [], []
    # Inside each stretch every reading is known: neighbours there are consecutive.
    for a, b in s.read:
        part = rows[bisect.bisect_left(times, a) : bisect.bisect_left(times, b)]
        if not part:
            continue
        ts = [int(r[0]) for r in part]  # type: ignore[call-overload]
        unreachable += gaps(ts, timeout)
        open_end = max(ts[-1], end)  # a run still open at the stretch's last reading
        if kind is Kind.WATER_DISPENSER:
            temps = [(int(r[0]), float(r[2]) < defs.min_temp_c)  # type: ignore[call-overload, arg-type]
                     for r in part if r[2] is not None]  # fmt: skip
            cold += flag_runs(temps, open_end, defs.cold_for_ms)
            faulty += flag_runs([(t, r[3] is not None) for t, r in zip(ts, part, strict=True)],
                                open_end)  # fmt: skip
        elif kind is Kind.CHARGING_LOCKER:
            faulty += flag_runs([(t, bool(r[2])) for t, r in zip(ts, part, strict=True)],
                                open_end)  # fmt: skip
    # Without a reading before (or after) the month, its edge stands in for one.
    unreachable.append((s.before if s.before is not None else start, min(s.firsts)))
    unreachable.append((max(s.lasts), s.after if s.after is not None else end))
    h.unreachable = clip(union(g for g in unreachable if g[1] - g[0] > timeout), start, end)
    h.cold, h.faulty = clip(union(cold), start, end), clip(union(faulty), start, end)
    return h
