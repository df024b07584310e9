"""The scorecard's screen against the definitions themselves, on random readings in a real InfluxDB.

The scorecard asks the server for the gaps (`elapsed()` filtered) and reads
reading by reading only the devices flagged cold or faulty; the definitions
look at every pair of consecutive readings, every run of cold or faulty ones. On random timestamps —
bunched, sparse, exactly at the timeout or at the cell's width, around
query windows' edges, devices of one kind with different timeouts, a device
silent for more than a whole query window, cold and faulty runs of every
length across all of these — both must give the same spans to the millisecond.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.localservers import InfluxServer
from rules.servicelevel.definitions import Definitions, timeout_ms
from rules.servicelevel.runs import flag_runs
from rules.servicelevel.source import EDGE_MS, read_month
from rules.servicelevel.spans import Span, clip, union
from waystation.lineprotocol import encode_line
from waystation.registry import Registry, parse_registry
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

START = 1_790_000_000_000 // 60_000 * 60_000  # a minute's start, in 2026
END = START + 4 * 24 * 3_600_000  # four days: two query windows
MINUTE = 60_000


def registry(timeouts: list[int | None]) -> Registry:
    """One station, a gateway per timeout (None: three intervals of a minute)."""
    return station({
        f"gw{i}": {"kind": "gateway", "interval": "60s"}
        | ({} if t is None else {"timeout": f"{t // 1000}s"})
        for i, t in enumerate(timeouts)
    })  # fmt: skip


def station(devices: dict[str, dict[str, str]]) -> Registry:
    return parse_registry({
        "version": 1,
        "stations": {"s1": {"name": "站", "model": "enterprise_incubated", "operator": "ent",
                          "devices": devices}},
        "parties": {"union": {"name": "总工会", "type": "union"},
                    "ent": {"name": "甲", "type": "enterprise"}},
    })  # fmt: skip


def by_definition(times: list[int], timeout: int) -> list[Span]:
    """Every pair of consecutive readings more than the timeout apart; the month's edges."""
    inside = sorted(t for t in times if START <= t < END)
    if not inside:
        return [(START, END)]
    before = max((t for t in times if START - EDGE_MS <= t < START), default=START)
    after = min((t for t in times if END <= t < END + EDGE_MS), default=END)
    seq = [before, *inside, after]
    spans = [(a, b) for a, b in itertools.pairwise(seq) if b - a > timeout]
    return clip(union(spans), START, END)


# Steps between readings: around half the timeout (3 minutes by default) and the timeout.
STEPS_S = [15, 30, 60, 60, 60, 60, 89, 90, 91, 179, 180, 181, 600, 7200]


@st.composite
def readings(draw: st.DrawFn) -> list[int]:
    """A device's reading times from a day before the span to a day after it."""
    t = START - 24 * 3_600_000 + draw(st.integers(0, 120_000))
    out: list[int] = []
    steps = draw(st.lists(st.sampled_from(STEPS_S), min_size=1, max_size=40))
    silences = draw(st.lists(st.tuples(st.integers(0, 6 * 24 * 60), st.integers(1, 4 * 24 * 60)),
                             max_size=3))  # fmt: skip
    k = 0
    while t < END + 24 * 3_600_000:
        quiet = any(a * MINUTE <= t - START + 24 * 3_600_000 < (a + n) * MINUTE
                    for a, n in silences)  # fmt: skip
        if not quiet:
            out.append(t)
        t += steps[k % len(steps)] * 1000
        k += 1
    return out


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(
    devices=st.lists(
        st.tuples(readings(), st.sampled_from([None, 120_000, 180_000, 181_000, 600_000])),
        min_size=1, max_size=3,
    ),
    some_stations=st.booleans(),
)  # fmt: skip
def test_the_screen_finds_every_gap_the_definition_does(
    influxdb: InfluxServer, devices: list[tuple[list[int], int | None]], some_stations: bool
) -> None:
    store = InfluxStore(influxdb.url, f"gaps_{uuid.uuid4().hex[:8]}")
    store.create_database()
    try:
        reg = registry([t for _, t in devices])
        lines = [
            encode_line("gateway", {"station": "s1", "device": f"gw{i}"}, {"seq": k}, t)
            for i, (times, _) in enumerate(devices)
            for k, t in enumerate(times)
        ]
        for i in range(0, len(lines), 10_000):
            store.write_lines(lines[i : i + 10_000])
        defs = Definitions()
        got = read_month(store, reg, defs, START, END, now_ms=END + 1,
                         stations=["s1"] if some_stations else None)  # fmt: skip
        for i, (times, _) in enumerate(devices):
            spec = reg.stations["s1"].devices[f"gw{i}"]
            want = by_definition(times, timeout_ms(spec, defs))
            assert got[f"gw{i}"].unreachable == want, f"gw{i}"
    finally:
        store.drop_database()
        store.close()


@st.composite
def states(draw: st.DrawFn) -> list[str]:
    """Each reading's state in turn, repeating: runs of good, cold, faulty, both."""
    runs = draw(st.lists(st.tuples(st.sampled_from(["ok", "ok", "cold", "fault", "both"]),
                                   st.integers(1, 300)), min_size=1, max_size=10))  # fmt: skip
    return [state for state, n in runs for _ in range(n)]


def runs_by_definition(times: list[int], flags: list[bool], min_ms: int = 0) -> list[Span]:
    """From every reading within the look-around, as the definitions say."""
    near = [
        (t, f) for t, f in zip(times, flags, strict=True) if START - EDGE_MS <= t < END + EDGE_MS
    ]
    open_end = max(near[-1][0], END) if near else END
    return clip(flag_runs(near, open_end, min_ms), START, END)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(disp=readings(), disp_states=states(), locker=readings(), locker_states=states())
def test_the_screen_finds_every_cold_and_faulty_run_the_definition_does(
    influxdb: InfluxServer, disp: list[int], disp_states: list[str], locker: list[int],
    locker_states: list[str],
) -> None:  # fmt: skip
    store = InfluxStore(influxdb.url, f"runs_{uuid.uuid4().hex[:8]}")
    store.create_database()
    try:
        reg = station({"disp": {"kind": "water_dispenser", "interval": "60s"},
                       "locker": {"kind": "charging_locker", "interval": "60s"}})  # fmt: skip
        d_state = [disp_states[k % len(disp_states)] for k in range(len(disp))]
        l_state = [locker_states[k % len(locker_states)] for k in range(len(locker))]
        lines = [
            encode_line("water_dispenser", {"station": "s1", "device": "disp"},
                        {"seq": k, "temp_c": 61.0 if state in ("cold", "both") else 92.5}
                        | ({"fault": "E3"} if state in ("fault", "both") else {}), t)
            for k, (t, state) in enumerate(zip(disp, d_state, strict=True))
        ] + [
            encode_line("charging_locker", {"station": "s1", "device": "locker"},
                        {"seq": k, "fault_slots": 2 if state in ("fault", "both") else 0}, t)
            for k, (t, state) in enumerate(zip(locker, l_state, strict=True))
        ]  # fmt: skip
        for i in range(0, len(lines), 10_000):
            store.write_lines(lines[i : i + 10_000])
        defs = Definitions()
        got = read_month(store, reg, defs, START, END, now_ms=END + 1)
        assert got["disp"].unreachable == by_definition(disp, 180_000)
        assert got["locker"].unreachable == by_definition(locker, 180_000)
        if any(START <= t < END for t in disp):  # else unreachable all month, nothing more
            cold = [s in ("cold", "both") for s in d_state]
            assert got["disp"].cold == runs_by_definition(disp, cold, defs.cold_for_ms)
            faulty = [s in ("fault", "both") for s in d_state]
            assert got["disp"].faulty == runs_by_definition(disp, faulty)
        if any(START <= t < END for t in locker):
            faulty = [s in ("fault", "both") for s in l_state]
            assert got["locker"].faulty == runs_by_definition(locker, faulty)
    finally:
        store.drop_database()
        store.close()


def test_a_month_not_over_is_read_up_to_now(store: InfluxStore) -> None:
    """Silent since two days in, asked an hour later: unreachable that hour, not to the end."""
    last = START + 2 * 24 * 3_600_000 - MINUTE
    store.write_lines([
        encode_line("gateway", {"station": "s1", "device": "gw0"}, {"seq": k}, t)
        for k, t in enumerate(range(START - 3_600_000, last + 1, MINUTE))
    ])  # fmt: skip
    now = last + MINUTE + 3_600_000
    got = read_month(store, registry([None]), Definitions(), START, END, now_ms=now)
    assert got["gw0"].unreachable == [(last, now)]
