"""Issue 14: the bill is exact at every meter reading interval, through a real InfluxDB.

The main meter draws 3 kWh in each peak (and critical-peak) hour, 2 in each
flat hour and 1 in each valley hour, station local time, and is read every
60, 15 or 1 minutes. Worked by hand with the example prices (peak 0.9890,
flat 0.6180, valley 0.2470, critical peak 1.1870 yuan/kWh):

    October (31 days; peak 8 h, flat 8 h, valley 8 h a day)
        peak   3 × 8 × 31 = 744 kWh × 0.989 = 735.816
        flat   2 × 8 × 31 = 496 kWh × 0.618 = 306.528
        valley 1 × 8 × 31 = 248 kWh × 0.247 =  61.256
        1,488 kWh, 1,103.600 → ¥1,103.60
    September (30 days): peak 720, flat 480, valley 240 = 1,440 kWh;
        712.080 + 296.640 + 59.280 = ¥1,068.00
    August (31 days; 15-17 is critical peak, so peak is 6 h a day)
        sharp 3 × 2 × 31 = 186 kWh × 1.187 = 220.782
        peak  3 × 6 × 31 = 558 kWh × 0.989 = 551.862
        flat 496 × 0.618 = 306.528, valley 248 × 0.247 = 61.256
        1,488 kWh, 1,140.428 → ¥1,140.43

Before the fix the hourly meter billed October 682 / 527 / 279.5 kWh
(¥1,069.22) and August's critical peak 155 kWh, and with a constant draw
three months came to 3 kWh more than the register moved.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from rules.allocation.findings import Code
from rules.allocation.registers import HOUR_MS
from rules.allocation.report import month_window
from rules.allocation.source import RAW_FROM
from rules.allocation.tariff import Period
from tests.allocation_intervals import (
    SHANGHAI,
    TARIFF,
    Load,
    Meter,
    Register,
    by_hand,
    by_period,
    constant,
    electricity,
    interpolate,
    jitter_bound,
    meter_station,
    month_row,
    months_span,
    random_jitter,
    report,
    write_readings,
)
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

D = Decimal
AUG, SEP, OCT = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)
HOURLY, QUARTER, MINUTE = timedelta(minutes=60), timedelta(minutes=15), timedelta(minutes=1)
INTERVALS = pytest.mark.parametrize(
    "interval", [HOURLY, QUARTER, MINUTE], ids=["60min", "15min", "1min"]
)
# month: (kWh, kWh per period, cost), as worked above.
HAND = {
    OCT: ("1488", {"peak": "744", "flat": "496", "valley": "248"}, "1103.60"),
    SEP: ("1440", {"peak": "720", "flat": "480", "valley": "240"}, "1068.00"),
    AUG: ("1488", {"sharp": "186", "peak": "558", "flat": "496", "valley": "248"}, "1140.43"),
}


def three_months(store: InfluxStore, interval: timedelta, load: Load) -> Meter:
    """A meter drawing `load`, read every `interval` from a day before August to after October."""
    meter = Meter(months_span(AUG, OCT), load)
    write_readings(store, meter.value, meter.span, "st-meter", interval)
    return meter


@INTERVALS
def test_hand_worked_months_at_every_reading_interval(
    store: InfluxStore, interval: timedelta
) -> None:
    three_months(store, interval, by_period)
    registry = meter_station("st", interval)
    for month, (kwh, tou, cost) in HAND.items():
        row = month_row(store, registry, month, str(interval))
        assert (row.kwh, row.tou, row.cost) == (
            D(kwh),
            {p: D(q) for p, q in tou.items()},
            D(cost),
        ), month
        hand = by_hand(month)  # the same, worked from the load hour by hour
        assert (row.kwh, row.tou, row.cost) == (hand.kwh, hand.tou, hand.cost)


@INTERVALS
def test_consecutive_months_add_up_to_the_register(store: InfluxStore, interval: timedelta) -> None:
    # A constant 2 kWh an hour: before, each month billed half a reading interval twice.
    meter = three_months(store, interval, constant(2.0))
    registry = meter_station("st", interval)
    quantities = [electricity(report(store, registry, m)).quantity for m in (AUG, SEP, OCT)]
    assert quantities == [D(1488), D(1440), D(1488)]
    moved = meter.value(month_window(OCT, SHANGHAI).end_ms) - meter.value(
        month_window(AUG, SHANGHAI).start_ms
    )
    assert sum(quantities) == D(repr(moved)) == D(4416)


@pytest.mark.parametrize(
    ("interval", "most"),
    [
        (HOURLY, timedelta(minutes=5)),
        (QUARTER, timedelta(minutes=3)),
        (MINUTE, timedelta(seconds=20)),
    ],
    ids=["60min-5min", "15min-3min", "1min-20s"],
)
def test_jittered_readings_stay_within_the_stated_bound(
    store: InfluxStore, interval: timedelta, most: timedelta
) -> None:
    meter = Meter(months_span(AUG, OCT), by_period)
    jitter = random_jitter(most, seed=14)
    written = write_readings(store, meter.value, meter.span, "st-meter", interval, jitter=jitter)
    registry = meter_station("st", interval)
    rows = {m: month_row(store, registry, m, str(interval)) for m in (AUG, SEP, OCT)}
    for month, row in rows.items():
        hand, bound = by_hand(month), jitter_bound(month, interval, most)
        prices = TARIFF.version_for(month).electricity.prices
        for period, kwh in hand.tou.items():
            # Quantities are kept to 0.0001 kWh.
            assert abs(row.tou[period] - kwh) <= D(repr(bound[period])) + D("0.0001"), (
                month,
                period,
            )
        cost_bound = sum(D(repr(bound[p])) * price for p, price in prices.items() if p in bound)
        assert abs(row.cost - hand.cost) <= cost_bound + D("0.01"), month
        assert abs(row.kwh - hand.kwh) <= D(repr(bound["total"])) + D("0.0005"), month
    # Consecutive months share their edges: together they bill exactly what the register
    # moved between the first's start and the last's end, each interpolated between the
    # readings either side.
    moved = interpolate(written, month_window(OCT, SHANGHAI).end_ms) - interpolate(
        written, month_window(AUG, SHANGHAI).start_ms
    )
    assert abs(sum(r.kwh for r in rows.values()) - D(repr(moved))) <= D("0.0006")


def _periods(period: Period) -> Load:
    """The draw counted by the meter's own register for `period` (zero outside it)."""

    def load(hour: datetime) -> float:
        table = TARIFF.version_for(date(hour.year, hour.month, 1)).electricity.table(hour.month)
        return by_period(hour) if table[hour.hour] is period else 0.0

    return load


@pytest.mark.parametrize("interval", [QUARTER, MINUTE], ids=["15min", "1min"])
def test_a_meters_own_period_registers_agree_with_the_computed_split(
    store: InfluxStore, interval: timedelta
) -> None:
    span = months_span(AUG, OCT)
    total = Meter(span, by_period)
    write_readings(store, total.value, span, "st-meter", interval)
    for period in Period:
        register = Meter(span, _periods(period))
        write_readings(
            store, register.value, span, "st-meter", interval, field=f"energy_kwh_{period}_total"
        )
    by_meter = meter_station("st", interval, tou_registers=True)
    computed = meter_station("st", interval)
    for month in (AUG, OCT):
        from_registers = report(store, by_meter, month)
        assert [f.code for f in from_registers.stations[0].findings] == [Code.METER_TOU]
        split = electricity(report(store, computed, month))
        own = electricity(from_registers)
        assert own.tou == split.tou == by_hand(month).tou
        assert own.cost == split.cost == D(HAND[month][2])


def _at(hours: float) -> int:
    """Epoch ms `hours` after October starts (local midnight)."""
    return month_window(OCT, SHANGHAI).start_ms + int(hours * HOUR_MS)


STEADY = Meter(months_span(OCT, OCT), constant(2.0))
HOUR_4 = _at(4 * 24 + 4)  # 5 October 04:00
SILENT_FROM = _at(24 * 24 + 10)  # 25 October 10:00


def _steady(t: int) -> float:
    return STEADY.value(t)


def _mishap(kind: str, step: timedelta) -> tuple[Register, Code, float]:
    """A register that misbehaves at the third reading after 04:00 (inside the hour), what
    the report finds, and the kWh it estimates when it has every reading."""
    at = HOUR_4 + 3 * int(step.total_seconds() * 1000)
    before = at - int(step.total_seconds() * 1000)
    swap = 2 * step.total_seconds() / 3600  # the swap interval at the day's 2 kWh/h
    return {
        # Reset to zero right after the previous reading: counted from zero, nothing lost.
        "reset": (
            lambda t: _steady(t) - (_steady(before) if t >= at else 0),
            Code.COUNTER_RESET,
            0.0,
        ),
        # The 05:00 reading ten times too high.
        "spike": (
            lambda t: _steady(t) * (10 if t == HOUR_4 + HOUR_MS else 1),
            Code.SPIKE_REJECTED,
            0.0,
        ),
        # DL/T 645 wrap past 999999.99 on 21 October.
        "rollover": (lambda t: (_steady(t) + 998_000) % 1_000_000, Code.REGISTER_ROLLOVER, 0.0),
        # A new meter reading 8000 and up: the swap interval at the day's rate.
        "replacement": (
            lambda t: _steady(t) + 89_000 if t < at else 8000 + _steady(t) - _steady(at),
            Code.METER_REPLACED,
            swap,
        ),
        # Six hours without readings, across the 07:00 and 10:00 period changes.
        "gap": (
            lambda t: None if at <= t < at + 6 * HOUR_MS else _steady(t),
            Code.GAP_BRIDGED,
            0.0,
        ),
        # Silent from 25 October 10:00: 158 h at the last week's 2 kWh/h = 316 kWh estimated.
        "silent-at-end": (
            lambda t: None if t > SILENT_FROM else _steady(t),
            Code.EXTRAPOLATED_END,
            316.0,
        ),
    }[kind]


@pytest.mark.parametrize("interval", [QUARTER, MINUTE], ids=["15min", "1min"])
@pytest.mark.parametrize(
    "kind", ["reset", "spike", "rollover", "replacement", "gap", "silent-at-end"]
)
def test_register_mishaps_at_each_interval(
    store: InfluxStore, interval: timedelta, kind: str
) -> None:
    register, code, estimated = _mishap(kind, interval)
    write_readings(store, register, STEADY.span, "st-meter", interval)
    result = report(store, meter_station("st", interval), OCT)
    assert code in [f.code for f in result.stations[0].findings]
    elec = electricity(result)
    (line,) = elec.lines
    if interval >= RAW_FROM:
        # Every reading at its own time: 2 kWh in every hour whatever happened, to the fen.
        assert elec.quantity == D(1488)
        assert elec.tou == {"peak": D(496), "flat": D(496), "valley": D(496)}
        assert elec.cost == D("919.58")
        assert line.estimated_fraction == (D(estimated) / D(1488)).quantize(D("0.0001"))
    else:
        # A one-minute meter is read by the hour: what happens inside an hour is placed at
        # the hour's resolution, as before (a reset loses the part of its hour before it, a
        # swap estimates its hour, a gap's end is taken at its hour's start).
        assert abs(elec.quantity - D(1488)) <= 2
        assert all(abs(q - D(496)) <= 2 for q in elec.tou.values())
        assert abs(line.estimated_fraction * 1488 - D(estimated)) <= D("2.1")


def test_a_station_whose_hours_start_on_the_half_hour(store: InfluxStore) -> None:
    # India is UTC+5:30: local hours, and so the periods, begin at hh:30 UTC. Readings
    # every 15 minutes on the local grid bill exactly as in Shanghai.
    kolkata = ZoneInfo("Asia/Kolkata")
    meter = Meter(months_span(OCT, OCT, kolkata), by_period, kolkata)
    write_readings(store, meter.value, meter.span, "st-meter", QUARTER)
    row = month_row(store, meter_station("st", QUARTER, timezone="Asia/Kolkata"), OCT, "15 min")
    kwh, tou, cost = HAND[OCT]
    assert (row.kwh, row.tou, row.cost) == (D(kwh), {p: D(q) for p, q in tou.items()}, D(cost))
