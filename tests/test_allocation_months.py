"""Hand-worked months, one per operating model and one per register mishap.

Every station uses, each hour of October 2026 (31 days, 744 h): main meter 2 kWh,
dispenser 0.5 kWh and 20 l, locker 0.25 kWh, main water meter 0.1 m³. Sichuan's
October table gives peak, flat and valley 8 h a day each, so per period:

    main      2 × 8 × 31 = 496 kWh     dispenser 124 kWh     locker 62 kWh
    residual  496 - 124 - 62 = 310 kWh

Example prices (yuan/kWh): peak 0.9890, flat 0.6180, valley 0.2470; they sum to 1.854.

    main      496 × 1.854 = 919.584    dispenser 124 × 1.854 = 229.896
    locker     62 × 1.854 = 114.948    residual  310 × 1.854 = 574.740

Water at 2.60 + 0.95 + 0.20 = 3.75 yuan/m³: main 74.4 m³ = 279.00, dispenser
14.88 m³ = 55.80, residual 59.52 m³ = 223.20.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules.allocation.compute import StationResult, UtilityResult
from rules.allocation.findings import Code
from rules.allocation.report import month_window
from rules.allocation.wording import finding_label, finding_text
from tests.allocation_helpers import Shape, allocate, district, readings, station_entry, steady
from waystation.registry import Registry, Utility

OCT = date(2026, 10, 1)
JUL = date(2026, 7, 1)
D = Decimal


def costs(result: StationResult, utility: Utility) -> dict[str, Decimal]:
    return {line.party: line.cost for line in util(result, utility).lines}


def util(result: StationResult, utility: Utility) -> UtilityResult:
    return next(u for u in result.utilities if u.utility is utility)


def test_enterprise_incubated_pays_everything() -> None:
    reg = district(a=station_entry("a", "enterprise_incubated"))
    result = allocate(reg, "a", OCT)
    elec = util(result, Utility.ELECTRICITY)
    assert elec.cost == D("919.58")  # 919.584 rounded
    assert costs(result, Utility.ELECTRICITY) == {"xiaoge": D("919.58")}
    assert costs(result, Utility.WATER) == {"xiaoge": D("279.00")}
    assert elec.tou == {"peak": D(496), "flat": D(496), "valley": D(496)}
    assert elec.union_saving == D("919.58")
    (line,) = elec.lines
    assert (line.quantity, line.share, line.estimated_fraction) == (D(1488), D(1), D(0))
    assert result.findings == []


def test_department_guided_union_pays_the_public_services() -> None:
    reg = district(a=station_entry("a", "department_guided"))
    result = allocate(reg, "a", OCT)
    # Union: dispenser + locker = 229.896 + 114.948 = 344.844 → 344.84 (remainder 0.004);
    # operator: residual 574.740. 344.84 + 574.74 = 919.58: no fen left to hand out.
    assert costs(result, Utility.ELECTRICITY) == {
        "dachuan-union": D("344.84"),
        "xiaoge": D("574.74"),
    }
    # Water: the dispenser's 14.88 m³ to the union (55.80), the residual 59.52 m³ (223.20).
    assert costs(result, Utility.WATER) == {"dachuan-union": D("55.80"), "xiaoge": D("223.20")}
    assert util(result, Utility.ELECTRICITY).union_saving == D("574.74")


def test_industry_managed_industry_union_pays() -> None:
    reg = district(s=station_entry("s", "industry_managed"))
    result = allocate(reg, "s", OCT)
    assert costs(result, Utility.ELECTRICITY) == {"sanitation-union": D("919.58")}
    assert costs(result, Utility.WATER) == {"sanitation-union": D("279.00")}


def test_community_integrated_default_halves_the_residual() -> None:
    reg = district(c=station_entry("c", "community_integrated"))
    result = allocate(reg, "c", OCT)
    # Union: loads 344.844 + half the residual 287.370 = 632.214 → 632.21; community 287.37.
    assert costs(result, Utility.ELECTRICITY) == {
        "cuiping": D("287.37"),
        "dachuan-union": D("632.21"),
    }
    # Water: union 55.80 + 111.60 = 167.40, community 111.60.
    assert costs(result, Utility.WATER) == {"cuiping": D("111.60"), "dachuan-union": D("167.40")}
    union_line = next(
        x for x in util(result, Utility.ELECTRICITY).lines if x.party == "dachuan-union"
    )
    # 124 + 62 + 310/2 = 341 kWh of peak, flat and valley each.
    assert union_line.tou == {"peak": D(341), "flat": D(341), "valley": D(341)}


def test_floor_area_share_and_the_largest_remainder() -> None:
    policy = {
        "loads": "union",
        "residual": {"by": "floor_area", "shares": {"union": 30, "operator": 90}},
    }
    reg = district(c=station_entry("c", "community_integrated", policy=policy))
    result = allocate(reg, "c", OCT)
    # Residual 574.740 by 30:90 m²: union 143.685, community 431.055.
    # Union 344.844 + 143.685 = 488.529; community 431.055; total 919.584 → 919.58.
    # Floors 488.52 + 431.05 = 919.57; the fen left goes to the larger remainder (union 0.009).
    assert costs(result, Utility.ELECTRICITY) == {
        "cuiping": D("431.05"),
        "dachuan-union": D("488.53"),
    }


def test_visits_share_from_the_door_counters() -> None:
    policy = {
        "loads": "union",
        "residual": {"by": "visits", "shares": {"union": "c-door", "operator": "c-door2"}},
    }
    reg = district(c=station_entry("c", "community_integrated", policy=policy))
    result = allocate(reg, "c", OCT)
    # Visits 3/h and 1/h: 3:1. Residual 574.740 → union 431.055, community 143.685.
    # Union 344.844 + 431.055 = 775.899; floors 775.89 + 143.68 = 919.57; the fen to the union.
    assert costs(result, Utility.ELECTRICITY) == {
        "cuiping": D("143.68"),
        "dachuan-union": D("775.90"),
    }


def test_july_has_critical_peak_hours() -> None:
    reg = district(a=station_entry("a", "enterprise_incubated"))
    elec = util(allocate(reg, "a", JUL), Utility.ELECTRICITY)
    # July: 15-17 is sharp instead of peak. 31 days × 2 kWh: sharp 2 h → 124, peak 6 h → 372.
    assert elec.tou == {"sharp": D(124), "peak": D(372), "flat": D(496), "valley": D(496)}
    # 124 × 1.187 + 372 × 0.989 + 496 × 0.618 + 496 × 0.247
    # = 147.188 + 367.908 + 306.528 + 122.512 = 944.136 → 944.14
    assert elec.cost == D("944.14")
    (line,) = elec.lines
    assert line.tou == {"sharp": D(124), "peak": D(372), "flat": D(496), "valley": D(496)}


def _main_meter(shape: Shape) -> dict[tuple[str, str], Shape]:
    return {("meter", "energy_kwh_total"): shape}


@pytest.mark.parametrize(
    ("shape", "code", "estimated"),
    [
        # Reset exactly at hour 100: 1198 at 99, then 2 at 100 counts from zero: nothing lost.
        (lambda h: 1000 + 2 * h if h < 100 else 2 * (h - 99), Code.COUNTER_RESET, 0),
        # No readings for hours 200-260: the register bridges the gap, 2 kWh an hour.
        (lambda h: None if 200 <= h <= 260 else 1000 + 2 * h, Code.GAP_BRIDGED, 0),
        # New meter from hour 300 reading 8000 + 2 per hour: the swap hour is estimated at
        # the day's rate, 2 kWh, so nothing is lost and 2 kWh are marked estimated.
        (lambda h: 90000 + 2 * h if h < 300 else 8000 + 2 * (h - 300), Code.METER_REPLACED, 2),
        # Silent from hour 600: 144 h at the recent 48 kWh/day = 288 kWh estimated.
        (lambda h: None if h > 600 else 1000 + 2 * h, Code.EXTRAPOLATED_END, 288),
        # DL/T 645 wrap at hour 400: 999999.99 → 0 (the register counts 0.00 after 999999.99).
        (lambda h: (999200 + 2 * h) % 1_000_000, Code.REGISTER_ROLLOVER, 0),
    ],
    ids=["reset", "gap", "replacement", "silent-at-end", "rollover"],
)
def test_register_mishaps_still_bill_the_month(shape: Shape, code: Code, estimated: int) -> None:
    reg = district(a=station_entry("a", "enterprise_incubated"))
    data = readings(reg, "a", month_window(OCT, reg.station_timezone("a")), _main_meter(shape))
    result = allocate(reg, "a", OCT, data)
    elec = util(result, Utility.ELECTRICITY)
    assert elec.quantity == D(1488)  # 744 h × 2 kWh, whatever happened to the register
    assert elec.cost == D("919.58")
    assert code in [f.code for f in result.findings]
    (line,) = elec.lines
    # The residual carries the main meter's estimate: estimated / 1488 kWh.
    assert line.estimated_fraction == (D(estimated) / D(1488)).quantize(D("0.0001"))
    assert code.value in [f.code.value for f in result.findings if f.device == "a-meter"]


def test_loads_above_the_main_meter_are_a_finding_not_a_negative_bill() -> None:
    reg = district(d=station_entry("d", "department_guided"))
    # The main meter reads 0.5 kWh an hour, less than dispenser + locker (0.75).
    window = month_window(OCT, reg.station_timezone("d"))
    data = readings(reg, "d", window, _main_meter(steady(0.5)))
    result = allocate(reg, "d", OCT, data)
    assert Code.RESIDUAL_NEGATIVE in [f.code for f in result.findings]
    elec = util(result, Utility.ELECTRICITY)
    # The bill is the main meter's: 0.5 × 8 × 31 = 124 kWh a period, 124 × 1.854 = 229.896.
    assert elec.cost == D("229.90")
    assert all(line.cost >= 0 for line in elec.lines)
    assert sum(line.cost for line in elec.lines) == elec.cost
    assert costs(result, Utility.ELECTRICITY) == {"dachuan-union": D("229.90"), "xiaoge": D(0)}


def test_a_main_meter_without_any_reading_falls_back_to_the_measured_loads() -> None:
    reg = district(d=station_entry("d", "department_guided"))
    window = month_window(OCT, reg.station_timezone("d"))
    data = readings(reg, "d", window, _main_meter(lambda _h: None))
    result = allocate(reg, "d", OCT, data)
    codes = [f.code for f in result.findings]
    assert Code.NO_DATA in codes
    # Its own finding, not "no main meter": the meter exists and said nothing.
    assert Code.NO_MAIN_METER not in codes
    (silent,) = [f for f in result.findings if f.code is Code.MAIN_METER_SILENT]
    assert silent.device == "d-meter"
    assert finding_label(silent.code, "zh") == "总表本月无读数(按分表合计)"
    # The bill is the dispenser and the locker: 229.896 + 114.948 = 344.844 → 344.84, the union's;
    # the finding says what was billed instead: 0.75 kWh an hour for 744 hours = 558 kWh.
    tz = reg.station_timezone("d")
    assert "billed the measured loads instead, 558.000 kWh" in finding_text(silent, "en", tz)
    assert "按各分路合计 558.000 千瓦时计费" in finding_text(silent, "zh", tz)
    assert costs(result, Utility.ELECTRICITY) == {"dachuan-union": D("344.84")}


def _tou_meter_station() -> Registry:
    entry = station_entry("t", "enterprise_incubated")
    entry["devices"]["t-meter"]["tou_registers"] = True
    return district(t=entry)


def _periods(peak: float, flat: float, valley: float) -> dict[tuple[str, str], Shape]:
    """The meter's own period registers, each growing evenly over the month."""
    return {
        ("meter", "energy_kwh_peak_total"): steady(peak / 744, start=10),
        ("meter", "energy_kwh_flat_total"): steady(flat / 744, start=20),
        ("meter", "energy_kwh_valley_total"): steady(valley / 744, start=30),
    }


def test_a_meter_with_its_own_period_registers_is_billed_by_them() -> None:
    reg = _tou_meter_station()
    window = month_window(OCT, reg.station_timezone("t"))
    # The meter counted 400 kWh peak, 500 flat, 588 valley: 1488 in all, as its total says.
    data = readings(reg, "t", window, _periods(400, 500, 588))
    result = allocate(reg, "t", OCT, data)
    elec = util(result, Utility.ELECTRICITY)
    # 400 × 0.989 + 500 × 0.618 + 588 × 0.247 = 395.6 + 309 + 145.236 = 849.836 → 849.84
    assert elec.cost == D("849.84")
    assert elec.tou == {"peak": D(400), "flat": D(500), "valley": D(588)}
    assert [f.code for f in result.findings] == [Code.METER_TOU]


def test_period_registers_that_disagree_with_the_total_are_reported() -> None:
    reg = _tou_meter_station()
    window = month_window(OCT, reg.station_timezone("t"))
    data = readings(reg, "t", window, _periods(400, 500, 500))  # 1400 against a total of 1488
    result = allocate(reg, "t", OCT, data)
    assert Code.METER_TOU_MISMATCH in [f.code for f in result.findings]


def test_a_meter_without_period_readings_falls_back_to_the_hourly_split() -> None:
    reg = _tou_meter_station()
    result = allocate(reg, "t", OCT)  # no period registers in the data
    assert util(result, Utility.ELECTRICITY).cost == D("919.58")
    assert result.findings == []
