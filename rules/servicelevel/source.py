"""What the scorecard reads, and how, without pulling every reading of a district's month.

A month of one-minute data is some 45,000 readings a device; what the
definitions need is far less, and InfluxQL can find it on the server:

- **Gaps, screened exactly.** A device with timeout T is cut into cells of
  at most T/2 (its timeout's half, aligned to the epoch; cells at a query
  window's edge are shorter). Two consecutive readings more than T apart
  leave at least one whole cell empty between them, so a device whose cells
  all hold a reading has no gap; per 72-hour window, a count per cell in a
  subquery (`fill(0)`) returns only the empty cells. Around each run of empty
  cells the readings are then read one by one, from a cell before the run to
  a cell after it, which holds both readings of every gap through the run:
  the gaps come out exact, and only troubled stretches are read. A window in
  which a device has no reading at all is one empty run. Devices of one kind
  with different timeouts are screened apart (cells of their own size).
  The month's first and last reading per device (per window, `first`/`last`
  keep the reading's own time) and the last reading before the month and the
  first after it (within 72 hours) close its edges.
- **Cold and faulty runs.** Per window, a count of the readings below the
  minimum temperature (dispensers), with a fault (dispensers' `fault`) or
  with faulty slots (lockers), per device; and the last reading before the
  month, in case a run began before it. Only the devices flagged are read
  reading by reading (the month and 72 hours either side), and their runs
  worked out exactly.

Windows are at most 72 hours (InfluxDB 3 Core's limit per query); two
queries run at once, as the allocation's do. (Subqueries are InfluxQL of 1.x
and 2.x; InfluxDB 3's InfluxQL lacks them, so there the gap screen would
have to count cells client-side: not done here.)
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
STATEMENTS_PER_REQUEST = 50  # the reads around empty cells, sent together

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
    """What the aggregate queries said about one device, then its readings around empty cells."""

    cell_ms: int  # at most half its timeout: a longer gap empties a whole cell
    empty: list[Span] = field(default_factory=list)  # cells without a reading
    firsts: list[int] = field(default_factory=list)  # first reading of each window with one
    lasts: list[int] = field(default_factory=list)
    before: int | None = None  # the last reading before the month (within EDGE_MS)
    after: int | None = None  # the first after it
    flagged: set[str] = field(default_factory=set)  # "cold", "fault"
    read: list[Span] = field(default_factory=list)  # stretches read reading by reading
    times: list[int] = field(default_factory=list)  # the readings there


def cell_ms(timeout: int) -> int:
    """The widest cell that a gap longer than `timeout` is sure to leave empty."""
    return max(timeout // 2, 1)


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


def _aggregate_queries(
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
    if kind is Kind.WATER_DISPENSER:
        out += [
            f'SELECT last("temp_c") AS "temp_before" FROM {m} WHERE {before} GROUP BY "device"',
            f'SELECT last("fault") AS "fault_before" FROM {m} WHERE {before} GROUP BY "device"',
        ]
    if kind is Kind.CHARGING_LOCKER:
        out.append(
            f'SELECT last("fault_slots") AS "slots_before" FROM {m} WHERE {before} '
            'GROUP BY "device"'
        )
    screens = [
        (cell, where)
        for cell, devices in sorted(cells.items())
        for where in _device_filters(devices, every=every and len(cells) == 1)
    ]
    for a, b in _windows(start, end):
        span = _span(a, b)
        for cell, where in screens:
            counted = (
                f'SELECT count("seq") AS "c" FROM {m} WHERE {where}{span} '
                f'GROUP BY time({cell}ms), "device" fill(0)'
            )
            out.append(f'SELECT "c" AS "empty" FROM ({counted}) WHERE "c" = 0 GROUP BY "device"')
        out += [
            f'SELECT first("seq") AS "first" FROM {m} WHERE {span} GROUP BY "device"',
            f'SELECT last("seq") AS "last" FROM {m} WHERE {span} GROUP BY "device"',
        ]
        if kind is Kind.WATER_DISPENSER:
            cold = f'"temp_c" < {defs.min_temp_c!r}'
            out += [
                (
                    f'SELECT count("temp_c") AS "cold" FROM {m} WHERE {cold} AND {span} '
                    'GROUP BY "device"'
                ),
                f'SELECT count("fault") AS "fault" FROM {m} WHERE {span} GROUP BY "device"',
            ]
        if kind is Kind.CHARGING_LOCKER:
            out.append(f'SELECT count("fault_slots") AS "fault" FROM {m} WHERE "fault_slots" > 0 '
                       f'AND {span} GROUP BY "device"')  # fmt: skip
    return out


def _flag_before(s: _Seen, column: str, time: int, value: object, defs: Definitions) -> None:
    """The last reading before the month began a run (cold, or with a fault)?"""
    if value is None or time != s.before:
        return  # that field's last value is not the last reading's
    if column == "temp_before" and float(value) < defs.min_temp_c:  # type: ignore[arg-type]
        s.flagged.add("cold")
    elif column in ("fault_before", "slots_before") and value:
        s.flagged.add("fault")


def _collect(result: list[Series], seen: dict[str, _Seen], defs: Definitions) -> None:
    """Answers of several statements: each aliases its one column, which says which it is."""
    before: list[tuple[_Seen, str, int, object]] = []
    for series in result:
        s = seen.get(series.tags.get("device", ""))
        if s is None or not series.values:
            continue  # a device not in the registry
        column, rows = series.columns[1], series.values
        t, value = int(rows[0][0]), rows[0][1]
        if column == "empty":
            s.empty += [(int(t), int(t) + s.cell_ms) for t, _ in rows]
        elif column in ("first", "last"):
            (s.firsts if column == "first" else s.lasts).append(t)
        elif column == "before":
            s.before = t
        elif column == "after":
            s.after = t
        elif column in ("cold", "fault"):
            if value:
                s.flagged.add(column)
        else:
            before.append((s, column, t, value))
    for s, column, t, value in before:  # once `before` of every device is known
        _flag_before(s, column, t, value, defs)


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


def _raw_queries(kind: Kind, devices: list[str], start: int, end: int) -> list[str]:
    fields = '"temp_c", "fault"' if kind is Kind.WATER_DISPENSER else '"fault_slots"'
    return [
        f'SELECT {fields} FROM "{kind.value}" WHERE {where}{_span(a, b)} GROUP BY "device"'
        for where in _device_filters(devices, every=False)
        for a, b in _windows(start - EDGE_MS, end + EDGE_MS)
    ]


def _stretches(s: _Seen, start: int, end: int) -> list[Span]:
    """Where to read the device reading by reading: each run of empty cells, a cell either side.

    A window without a reading of the device is one run; runs that touch
    (across a window's edge, too) are one. The cell before a run holds the
    earlier reading of every gap through it, the cell after it the later one.
    """
    if not s.firsts:
        return []  # no reading in the month at all
    firsts = sorted(s.firsts)
    runs = list(s.empty)
    for a, b in _windows(start, end):
        i = bisect.bisect_left(firsts, a)
        if i == len(firsts) or firsts[i] >= b:
            runs.append((a, b))
    c = s.cell_ms
    return clip(union((a - c, b + c) for a, b in union(runs)), start, end)


def _stretch_queries(kind: Kind, device: str, stretches: list[Span]) -> list[str]:
    where = f'"device" = {_literal(device)}'
    return [
        f'SELECT "seq" FROM "{kind.value}" WHERE {where} AND {_span(a, b)} GROUP BY "device"'
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
    """Every service-providing device's month, per the definitions, from the stored readings."""
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
        queries += _aggregate_queries(kind, start_ms, end_ms, cells, defs,
                                      every=stations is None)  # fmt: skip
    done = _run(store, queries, lambda r: _collect(r, seen, defs), progress=progress, done0=0,
                total=len(queries))  # fmt: skip

    # Reading by reading: around the empty cells, and the flagged devices' month.
    statements: list[str] = []
    flagged_by_kind: dict[Kind, list[str]] = {}
    for d, s in seen.items():
        s.read = _stretches(s, start_ms, end_ms)
        statements += _stretch_queries(devices[d].kind, d, s.read)
        if s.flagged:
            flagged_by_kind.setdefault(devices[d].kind, []).append(d)
    more = _batched(statements) + [
        q for kind, ds in flagged_by_kind.items() for q in _raw_queries(kind, ds, start_ms, end_ms)
    ]
    raw: dict[str, list[list[object]]] = {}

    def keep(result: list[Series]) -> None:
        for series in result:
            d = series.tags.get("device", "")
            if series.columns[1:] == ["seq"]:
                if d in seen:
                    seen[d].times += [int(row[0]) for row in series.values]
            else:
                raw.setdefault(d, []).extend(series.values)

    _run(store, more, keep, progress=progress, done0=done, total=done + len(more))
    window = (start_ms, min(end_ms, now_ms))
    return {
        d: _history(
            DeviceHistory(d, devices[d].kind, _unreachable(seen[d], timeouts[d], *window)),
            raw.get(d, []), window, defs,
        )
        for d in devices
    }  # fmt: skip


def _unreachable(s: _Seen, timeout: int, start: int, end: int) -> list[Span]:
    if not s.firsts:
        return [(start, end)]  # no reading in the month: unreachable all month
    # Inside each stretch read, every reading is known: neighbours there are consecutive.
    times = sorted(set(s.times))
    spans = [
        g
        for a, b in s.read
        for g in gaps(times[bisect.bisect_left(times, a) : bisect.bisect_left(times, b)], timeout)
    ]
    # Without a reading before (or after) the month, its edge stands in for one.
    spans.append((s.before if s.before is not None else start, min(s.firsts)))
    spans.append((max(s.lasts), s.after if s.after is not None else end))
    return clip(union(sp for sp in spans if sp[1] - sp[0] > timeout), start, end)


def _history(
    h: DeviceHistory, rows: list[list[object]], window: Span, defs: Definitions
) -> DeviceHistory:
    """Its cold and faulty runs, from its raw readings (read only when it was flagged)."""
    start, end = window
    kind = h.kind
    if not rows:
        return h
    rows = sorted(rows, key=lambda r: int(r[0]))  # type: ignore[call-overload]
    last_t = max(int(r[0]) for r in rows)  # type: ignore[call-overload]
    open_end = max(last_t, end)
    if kind is Kind.WATER_DISPENSER:
        temps = [(int(r[0]), float(r[1]) < defs.min_temp_c)  # type: ignore[call-overload, arg-type]
                 for r in rows if r[1] is not None]  # fmt: skip
        h.cold = clip(flag_runs(temps, open_end, defs.cold_for_ms), start, end)
        faults = [(int(r[0]), r[2] is not None) for r in rows]  # type: ignore[call-overload]
        h.faulty = clip(flag_runs(faults, open_end), start, end)
    else:
        slots = [(int(r[0]), bool(r[1])) for r in rows]  # type: ignore[call-overload]
        h.faulty = clip(flag_runs(slots, open_end), start, end)
    return h
