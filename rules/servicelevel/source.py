"""What the scorecard reads, and how, without pulling every reading of a district's month.

A month of one-minute data is some 45,000 readings a device; what the
definitions need is far less, and InfluxQL can find it on the server:

- **Gaps.** Per 72-hour window and kind, `elapsed("seq")` in a subquery,
  filtered in the outer query to the intervals longer than the kind's
  shortest timeout: only the gaps come back (the later reading's time and
  the gap's length), exactly. Each window's first and last reading per
  device (`first`/`last`, which keep the reading's own time) join the
  windows, and the last reading before the month and the first after it
  (within 72 hours) close its edges. Python then keeps the gaps longer than
  each device's own timeout.
- **Cold and faulty runs.** Per window, a count of the readings below the
  minimum temperature (dispensers), with a fault (dispensers' `fault`) or
  with faulty slots (lockers), per device; and the last reading before the
  month, in case a run began before it. Only the devices flagged are read
  reading by reading (the month and 72 hours either side), and their runs
  worked out exactly.

Windows are at most 72 hours (InfluxDB 3 Core's limit per query); two
queries run at once, as the allocation's do. (`elapsed()` and subqueries are
InfluxQL of 1.x and 2.x; InfluxDB 3's InfluxQL lacks subqueries, so there the
gap query would have to read `seq` reading by reading: not done here.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rules.servicelevel.definitions import Definitions, timeout_ms
from rules.servicelevel.runs import flag_runs
from rules.servicelevel.spans import Span, clip, union
from waystation.concurrentqueries import each_answer
from waystation.contract import Kind
from waystation.registry import Registry
from waystation.store import InfluxStore, Series

__all__ = ["DeviceHistory", "read_month"]

WINDOW_MS = 72 * 3_600_000
EDGE_MS = 72 * 3_600_000  # how far beyond the month to look for the readings next to it
QUERY_CONCURRENCY = 2
QUERY_TIMEOUT_S = 300.0
DEVICES_PER_QUERY = 200

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
    """What the aggregate queries said about one device."""

    gaps: list[Span] = field(default_factory=list)
    firsts: list[int] = field(default_factory=list)
    lasts: list[int] = field(default_factory=list)
    before: int | None = None  # the last reading before the month (within EDGE_MS)
    after: int | None = None  # the first after it
    flagged: set[str] = field(default_factory=set)  # "cold", "fault"


def _windows(start: int, end: int) -> Iterable[tuple[int, int]]:
    a = start
    while a < end:
        yield a, min(a + WINDOW_MS, end)
        a = min(a + WINDOW_MS, end)


def _span(a: int, b: int) -> str:
    return f"time >= {a}ms AND time < {b}ms"


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


def _aggregate_queries(kind: Kind, start: int, end: int, shortest_ms: int, defs: Definitions, *,
                       where: str) -> list[str]:  # fmt: skip
    """`where`: the device filter (ending in AND), or empty for every device of the kind."""
    m = f'"{kind.value}"'
    before, after = where + _span(start - EDGE_MS, start), where + _span(end, end + EDGE_MS)
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
    for a, b in _windows(start, end):
        span = where + _span(a, b)
        elapsed = f'SELECT elapsed("seq", 1ms) AS "e" FROM {m} WHERE {span} GROUP BY "device"'
        out += [
            f'SELECT "e" FROM ({elapsed}) WHERE "e" > {shortest_ms} GROUP BY "device"',
            f'SELECT first("seq") AS "first" FROM {m} WHERE {span} GROUP BY "device"',
            f'SELECT last("seq") AS "last" FROM {m} WHERE {span} GROUP BY "device"',
        ]
        if kind is Kind.WATER_DISPENSER:
            cold = f'"temp_c" < {defs.min_temp_c!r}'
            out += [
                (
                    f'SELECT count("temp_c") AS "cold" FROM {m} WHERE {span} AND {cold} '
                    'GROUP BY "device"'
                ),
                f'SELECT count("fault") AS "fault" FROM {m} WHERE {span} GROUP BY "device"',
            ]
        if kind is Kind.CHARGING_LOCKER:
            out.append(f'SELECT count("fault_slots") AS "fault" FROM {m} WHERE {span} '
                       'AND "fault_slots" > 0 GROUP BY "device"')  # fmt: skip
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
        if column == "e":
            s.gaps += [(int(t) - int(e), int(t)) for t, e in rows]
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
    """Two at once; Ctrl-C (or a failed query) ends the report at once, not when they time out."""
    done = done0

    def ask(q: str) -> list[Series]:
        return store.query(q, timeout_s=QUERY_TIMEOUT_S)

    for _query, answer in each_answer(ask, queries, QUERY_CONCURRENCY, name="scorecard-query"):
        sink(answer)
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
    seen = {d: _Seen() for d in devices}
    timeouts = {d: timeout_ms(spec, defs) for d, spec in devices.items()}
    queries = []
    for kind in sorted({spec.kind for spec in devices.values()}, key=lambda k: k.value):
        ids = [d for d, spec in devices.items() if spec.kind is kind]
        shortest = min(timeouts[d] for d in ids)
        for where in _device_filters(ids, every=stations is None):
            queries += _aggregate_queries(kind, start_ms, end_ms, shortest, defs, where=where)
    raw: dict[str, list[list[object]]] = {}
    flagged_by_kind: dict[Kind, list[str]] = {}
    total = len(queries)
    done = _run(store, queries, lambda r: _collect(r, seen, defs), progress=progress, done0=0,
                total=total)  # fmt: skip
    for d, s in seen.items():
        if s.flagged:
            flagged_by_kind.setdefault(devices[d].kind, []).append(d)
    raw_queries = [q for kind, ds in flagged_by_kind.items()
                   for q in _raw_queries(kind, ds, start_ms, end_ms)]  # fmt: skip

    def keep_raw(result: list[Series]) -> None:
        for series in result:
            raw.setdefault(series.tags.get("device", ""), []).extend(series.values)

    _run(store, raw_queries, keep_raw, progress=progress, done0=done,
         total=total + len(raw_queries))  # fmt: skip
    window = (start_ms, end_ms)
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
    # Windows are disjoint: the i-th first and the i-th last are one window's.
    firsts, lasts = sorted(s.firsts), sorted(s.lasts)
    spans = [g for g in s.gaps if g[1] - g[0] > timeout]
    spans += [(lasts[i], firsts[i + 1]) for i in range(len(firsts) - 1)]  # between windows
    # Without a reading before (or after) the month, its edge stands in for one.
    spans.append((s.before if s.before is not None else start, firsts[0]))
    spans.append((lasts[-1], s.after if s.after is not None else end))
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
