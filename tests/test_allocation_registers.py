"""Register arithmetic, worked by hand: boundaries, resets, rollovers, swaps, spikes, gaps, silence."""

from __future__ import annotations

import random
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from rules.allocation.findings import Code
from rules.allocation.registers import HOUR_MS, Usage, Window, measure
from rules.allocation.report import month_window

SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = month_window(date(2026, 10, 1), SHANGHAI)  # 744 hours


def run(points: list[tuple[int, float]], window: Window = OCTOBER, max_rate: float = 5.0) -> Usage:
    return measure(points, window, max_rate=max_rate, station="s", device="d", unit="kWh")


def at(hour: float) -> int:
    """Epoch ms of an hour counted from the window's start (local midnight, 1 October)."""
    return OCTOBER.start_ms + int(hour * HOUR_MS)


def codes(usage: Usage) -> list[Code]:
    return [f.code for f in usage.findings]


def test_month_starts_at_local_midnight_not_utc() -> None:
    # 2026-10-01 00:00 in Shanghai is 2026-09-30 16:00 UTC.
    assert OCTOBER.start_ms == 1790784000000
    assert OCTOBER.slots == 31 * 24
    # A reading at 23:00 local on 30 Sep (100) and one at 01:00 on 1 Oct (102): the start
    # interpolates to 101. Likewise 300 at 23:00 on 31 Oct and 304 at 01:00 on 1 Nov: 302.
    # Consumption = 302 - 101 = 201, of which the long middle interval is a bridged gap.
    usage = run([(at(-1), 100), (at(1), 102), (at(743), 300), (at(745), 304)])
    assert usage.total == pytest.approx(201)
    assert usage.slots[0] == pytest.approx(1)  # half of the first 2 over 00:00-01:00
    assert codes(usage) == [Code.GAP_BRIDGED]
    # Had the month been cut in UTC, 8 h later, it would start at 102 + 198*7/742.
    utc = Window(OCTOBER.start_ms + 8 * HOUR_MS, OCTOBER.end_ms + 8 * HOUR_MS)
    assert run([(at(-1), 100), (at(1), 102), (at(743), 300), (at(745), 304)], utc).total != (
        pytest.approx(201)
    )


def hourly(values: list[float], first_hour: int = -1) -> list[tuple[int, float]]:
    return [(at(first_hour + i), v) for i, v in enumerate(values)]


def test_steady_register_is_exact_and_in_hourly_slots() -> None:
    # 2 kWh an hour from 23:00 on 30 Sep to 01:00 on 1 Nov: 744 h * 2 = 1488.
    usage = run(hourly([1000 + 2 * i for i in range(747)]))
    assert usage.total == pytest.approx(1488)
    assert usage.slots == pytest.approx([2.0] * 744)
    assert usage.findings == []
    assert usage.estimated == 0


def test_counter_reset_counts_from_the_new_value() -> None:
    # 10, 11, 12, then 0.5 (reset), 1.5: deltas 1 + 1 + 0.5 + 1 = 3.5 inside the month.
    usage = run([*hourly([10, 11, 12, 0.5, 1.5], first_hour=0), (at(745), 1.5)])
    assert usage.total == pytest.approx(3.5)
    assert Code.COUNTER_RESET in codes(usage)


def test_rollover_at_the_dlt645_maximum() -> None:
    # 999999.50 → 0.70 an hour later wraps: 0.50 + 0.70 = 1.20.
    usage = run([(at(0), 999999.5), (at(1), 0.7), (at(744), 0.7)])
    assert usage.total == pytest.approx(1.2)
    assert Code.REGISTER_ROLLOVER in codes(usage)
    assert Code.COUNTER_RESET not in codes(usage)


def test_meter_replacement_estimates_the_swap_interval() -> None:
    # 500, 501, 502 then a new meter at 20000, 20001: the jump (19498 in an hour at most 5)
    # stays, so it is a swap. The hour across it is estimated at the day's rate, 1/h.
    # Total = 1 + 1 + 1 (estimated) + 1 = 4 over hours 0-4; the rest of the month is flat.
    usage = run([*hourly([500, 501, 502, 20000, 20001], first_hour=0), (at(745), 20001)])
    assert usage.total == pytest.approx(4)
    assert usage.estimated == pytest.approx(1)
    assert Code.METER_REPLACED in codes(usage)


def test_single_spike_is_rejected() -> None:
    # 10, 11, 9999 (impossible), 13: the spike is dropped; 10→11→13 gives 3.
    usage = run([*hourly([10, 11, 9999, 13], first_hour=0), (at(745), 13)])
    assert usage.total == pytest.approx(3)
    assert Code.SPIKE_REJECTED in codes(usage)
    assert usage.estimated == 0


def test_silent_at_month_end_is_extrapolated_from_the_recent_daily_average() -> None:
    # 2 kWh an hour for the first 20 days (hours -1..480), then silence: the last 7 days
    # averaged 48 kWh/day, so the last 264 h (11 days) are estimated at 2/h = 528.
    usage = run(hourly([2 * i for i in range(482)]))
    assert usage.total == pytest.approx(480 * 2 + 264 * 2)
    assert usage.estimated == pytest.approx(528)
    assert Code.EXTRAPOLATED_END in codes(usage)


def test_meter_installed_mid_month_counts_from_its_first_reading() -> None:
    usage = run(hourly([50 + i for i in range(100)], first_hour=645))
    assert usage.total == pytest.approx(744 - 645)
    assert codes(usage)[0] is Code.STARTED_IN_MONTH


def test_no_readings_at_all() -> None:
    usage = run([])
    assert (usage.total, codes(usage)) == (0, [Code.NO_DATA])


def test_order_and_duplicates_do_not_matter() -> None:
    points = hourly([2 * i + (i % 3) * 0.1 for i in range(747)])
    dup = points + points[::7]
    assert run(points[::-1]).total == run(dup).total == run(points).total


def test_adjacent_months_share_their_edge_exactly() -> None:
    # Readings every 1 to 90 minutes, a reset among them: September and October together
    # measure exactly what one window spanning both does; neither counts its edge twice.
    september = month_window(date(2026, 9, 1), SHANGHAI)
    rng = random.Random(14)
    points = []
    t, value = september.start_ms - 2 * HOUR_MS, 500.0
    while t < OCTOBER.end_ms + 2 * HOUR_MS:
        points.append((t, value))
        step = rng.randint(1, 90) * 60_000
        t += step
        value = 0.001 if len(points) == 700 else value + rng.uniform(0, 4) * step / HOUR_MS
    sep, octo = run(points, september), run(points)
    whole = run(points, Window(september.start_ms, OCTOBER.end_ms))
    assert Code.COUNTER_RESET in codes(whole)
    assert sep.total + octo.total == pytest.approx(whole.total, abs=1e-9)
    assert sep.slots + octo.slots == pytest.approx(whole.slots, abs=1e-9)


def test_readings_only_after_the_month_are_no_data() -> None:
    """A meter installed after the month bills nothing in it, and says so (not "started")."""
    usage = run([(at(744), 50.0), (at(745), 52.0), (at(760), 70.0)])
    assert (usage.total, usage.estimated) == (0.0, 0.0)
    assert codes(usage) == [Code.NO_DATA]
    assert usage.findings[0].values["first_at"] == at(744)  # the first reading, at the month end
    # Its first reading exactly at the month's end is after it too; one a minute before is in.
    assert codes(run([(at(744), 50.0), (at(745), 52.0)])) == [Code.NO_DATA]
    inside = run([(at(744) - 60_000, 50.0), (at(745), 52.0)])
    assert codes(inside) == [Code.STARTED_IN_MONTH]
    assert inside.total == pytest.approx(2 / 61)
