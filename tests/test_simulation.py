"""The simulated station behaves like a real one, so downstream rules and reports see sane data."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from edge.simulation import StationSimulation, visitor_rate_per_hour
from tests.helpers import station_registry
from waystation.contract import parse_readings

TZ = ZoneInfo("Asia/Shanghai")
ST = "st-sim"
REG = station_registry(ST)
START = datetime(2026, 7, 1, tzinfo=TZ).astimezone(UTC)


def run_week(
    step: timedelta = timedelta(minutes=10),
) -> list[tuple[datetime, dict[str, dict[str, object]]]]:
    sim = StationSimulation(dict(REG.stations[ST].devices), START, TZ, seed=1)
    out = []
    t = START
    while t < START + timedelta(days=7):
        t += step
        sim.advance_to(t)
        out.append((t, {d: sim.data(d) for d in REG.stations[ST].devices}))
    return out


WEEK = run_week()


def test_every_reading_satisfies_the_contract() -> None:
    for t, by_device in WEEK[::50]:
        for device, data in by_device.items():
            kind = REG.stations[ST].devices[device].kind
            payload = {
                "v": 1,
                "kind": str(kind),
                "ts": int(t.timestamp() * 1000),
                "seq": 1,
                "data": data,
            }
            assert parse_readings(json.dumps(payload))


def test_registers_only_grow() -> None:
    registers = [
        ("door", "in_total"),
        ("door", "out_total"),
        ("disp", "water_l_total"),
        ("disp", "energy_kwh_total"),
        ("locker", "energy_kwh_total"),
        ("meter", "energy_kwh_total"),
        ("water", "water_m3_total"),
    ]
    for suffix, name in registers:
        values = [float(by_device[f"{ST}-{suffix}"][name]) for _, by_device in WEEK]  # type: ignore[arg-type]
        assert all(b >= a for a, b in pairwise(values)), f"{suffix}.{name} fell"
        assert values[-1] > values[0], f"{suffix}.{name} never moved in a week"


def test_main_meter_covers_the_measured_loads() -> None:
    def energy(by_device: dict[str, dict[str, object]], suffix: str) -> float:
        return float(by_device[f"{ST}-{suffix}"]["energy_kwh_total"])  # type: ignore[arg-type]

    first, last = WEEK[0][1], WEEK[-1][1]
    main = energy(last, "meter") - energy(first, "meter")
    subs = sum(energy(last, s) - energy(first, s) for s in ("disp", "locker"))
    assert main > subs > 0


def test_meal_times_are_busier_than_the_night() -> None:
    noon = visitor_rate_per_hour(datetime(2026, 7, 1, 12, 15, tzinfo=TZ))
    night = visitor_rate_per_hour(datetime(2026, 7, 1, 3, 0, tzinfo=TZ))
    assert noon > 5 * night
    by_hour = dict.fromkeys(range(24), 0)
    prev = None
    for t, by_device in WEEK:
        visits = int(by_device[f"{ST}-door"]["in_total"])  # type: ignore[call-overload]
        if prev is not None:
            by_hour[t.astimezone(TZ).hour] += visits - prev
        prev = visits
    assert by_hour[12] > 3 * by_hour[3]


def test_dispenser_keeps_hot_and_locker_within_slots() -> None:
    temps = [float(d[f"{ST}-disp"]["temp_c"]) for _, d in WEEK]  # type: ignore[arg-type]
    assert min(temps) > 80
    assert max(temps) < 100
    in_use = [int(d[f"{ST}-locker"]["slots_in_use"]) for _, d in WEEK]  # type: ignore[call-overload]
    assert min(in_use) >= 0
    assert max(in_use) <= 12
    assert max(in_use) > min(in_use)


def test_a_broken_heater_goes_cold() -> None:
    sim = StationSimulation(dict(REG.stations[ST].devices), START, TZ, seed=1)
    sim.set_dispenser_cold(f"{ST}-disp", cold=True)
    sim.advance_to(START + timedelta(hours=6))
    assert float(sim.data(f"{ST}-disp")["temp_c"]) < 60


def test_same_seed_same_readings() -> None:
    assert run_week(timedelta(hours=6)) == run_week(timedelta(hours=6))


def test_a_clock_jump_is_skipped_not_integrated() -> None:
    """A box that booted in 1970 and then got NTP must not simulate 55 years."""
    sim = StationSimulation(dict(REG.stations[ST].devices), datetime(1970, 1, 2, tzinfo=UTC), TZ)
    t0 = time.monotonic()
    sim.advance_to(START)
    assert time.monotonic() - t0 < 5
    assert sim.now == START
    assert 0 < int(sim.data(f"{ST}-door")["in_total"]) < 2000
