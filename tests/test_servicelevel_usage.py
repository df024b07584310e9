"""The usage beside the service levels: the allocation's figures per register, summed per service.

The month is October 2026 (744 hours) of the allocation's steady hourly
readings (tests.allocation_helpers): dispenser 20 l an hour, locker 0.25 kWh,
door counter 3 visits.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.scorecard import registers_of
from rules.allocation.findings import Code
from rules.allocation.report import MonthReport, month_window
from rules.allocation.usage import RegisterUsage
from rules.servicelevel.definitions import Service
from rules.servicelevel.usage import RegisterMonth, ServiceUsage, service_usage, total_usage
from tests.allocation_helpers import allocate, district, readings, station_entry
from waystation.contract import Kind

MONTH = date(2026, 10, 1)
d = Decimal


def test_the_allocation_keeps_each_registers_month_in_its_own_unit() -> None:
    reg = district(a=station_entry("a", "enterprise_incubated"))

    def door(h: float) -> float | None:  # silent from hour 400: the rest is estimated
        return 1000 + 3 * h if h <= 400 else None

    result = allocate(reg, "a", MONTH, None)
    usage = {(u.device, u.field): u for u in result.usage}
    # Litres as the dispenser counts them (billed as m³), kWh, visits.
    assert usage[("a-disp", "water_l_total")] == RegisterUsage(
        "a-disp", Kind.WATER_DISPENSER, "water_l_total", "l", d("14880.0000"), d(0), ()
    )
    assert usage[("a-locker", "energy_kwh_total")].quantity == d("186.0000")
    assert usage[("a-door", "in_total")].quantity == d("2232.0000")

    data = readings(
        reg,
        "a",
        month_window(MONTH, reg.station_timezone("a")),
        {("door", "in_total"): door, ("locker", "energy_kwh_total"): lambda _h: None},
    )
    result = allocate(reg, "a", MONTH, data)
    usage = {(u.device, u.field): u for u in result.usage}
    # 3 visits an hour, measured to hour 400, then its recent rate for the 344 hours left.
    assert usage[("a-door", "in_total")] == RegisterUsage(
        "a-door", Kind.DOOR_COUNTER, "in_total", "visits", d("2232.0000"), d("1032.0000"),
        (Code.EXTRAPOLATED_END,),
    )  # fmt: skip
    # No reading at all: no figure, the allocation's no_data.
    assert usage[("a-locker", "energy_kwh_total")] == RegisterUsage(
        "a-locker", Kind.CHARGING_LOCKER, "energy_kwh_total", "kWh", None, d(0), (Code.NO_DATA,)
    )
    handed = registers_of(MonthReport(MONTH, [result]))
    assert handed[("a-locker", "energy_kwh_total")] == RegisterMonth(
        "a-locker", "energy_kwh_total", None, d(0), ("no_data",)
    )
    assert handed[("a-door", "in_total")].estimated == d("1032.0000")


REGISTERS = {
    ("d1", "water_l_total"): RegisterMonth("d1", "water_l_total", d("10.5"), d("1.5"),
                                           ("counter_reset",)),
    ("d2", "water_l_total"): RegisterMonth("d2", "water_l_total", d("2.25")),
    ("d3", "water_l_total"): RegisterMonth("d3", "water_l_total", None, notes=("no_data",)),
    ("l1", "energy_kwh_total"): RegisterMonth("l1", "energy_kwh_total", None, notes=("no_data",)),
}  # fmt: skip


def test_a_service_sums_its_devices_and_names_those_without_data() -> None:
    assert service_usage(Service.HOT_WATER, ["d1", "d2"], REGISTERS) == ServiceUsage(
        d("12.75"), "l", d("1.5"), (("counter_reset", "d1"),)
    )
    assert service_usage(Service.HOT_WATER, ["d1", "d3"], REGISTERS) == ServiceUsage(
        d("10.5"), "l", d("1.5"), (("counter_reset", "d1"), ("no_data", "d3"))
    )
    # No device with data: no figure (never 0), and why.
    assert service_usage(Service.CHARGING, ["l1"], REGISTERS) == ServiceUsage(
        None, "kWh", d(0), (("no_data", "l1"),)
    )
    # A device the allocation said nothing of is as one without data.
    assert service_usage(Service.VISITS, ["door"], REGISTERS) == ServiceUsage(
        None, "visits", d(0), (("no_data", "door"),)
    )
    assert service_usage(Service.STATION, ["gw"], REGISTERS) is None  # a gateway counts nothing


def test_an_operator_sums_its_stations() -> None:
    a = service_usage(Service.HOT_WATER, ["d1"], REGISTERS)
    b = service_usage(Service.HOT_WATER, ["d3"], REGISTERS)
    c = service_usage(Service.HOT_WATER, ["d2"], REGISTERS)
    assert total_usage([a, b, c]) == ServiceUsage(
        d("12.75"), "l", d("1.5"), (("counter_reset", "d1"), ("no_data", "d3"))
    )
    assert total_usage([b]) == ServiceUsage(None, "l", d(0), (("no_data", "d3"),))
    assert total_usage([None, None]) is None
