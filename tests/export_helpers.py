"""A month of four stations with the register mishaps a clerk meets, as a report to export."""

from __future__ import annotations

from datetime import date

from rules.allocation.report import MonthReport, month_window
from rules.allocation.tariff import Tariff
from tests.allocation_helpers import Shape, allocate, district, readings, station_entry
from waystation.language import Language
from waystation.registry import Registry

OCT = date(2026, 10, 1)
METER = ("meter", "energy_kwh_total")
WATER = ("water", "water_m3_total")


def _reset(h: float) -> float:
    return 1000 + 2 * h if h < 300 else 0.5 + 2 * (h - 300)


def _gap_then_silent(h: float) -> float | None:
    return None if 100 < h < 120 or h > 700 else 1000 + 2 * h


def _spike(h: float) -> float:
    return 99999.0 if h == 50 else 500 + 0.1 * h


def sample_registry() -> Registry:
    return district(
        a=station_entry("a", "community_integrated"),
        b=station_entry("b", "department_guided"),
        c=station_entry("c", "enterprise_incubated"),
        d=station_entry("d", "industry_managed"),
    )


def sample_report(tariff: Tariff, language: Language = "zh") -> MonthReport:
    """October 2026: a reset (a), a silent main meter (b), a gap, a silent end and a spike (c),
    loads above the main meter (d); every station priced with `tariff`."""
    reg = sample_registry()
    window = month_window(OCT, reg.station_timezone("a"))
    shapes: dict[str, dict[tuple[str, str], Shape]] = {
        "a": {METER: _reset},
        "b": {METER: lambda _h: None},
        "c": {METER: _gap_then_silent, WATER: _spike},
        "d": {METER: lambda h: 1000 + 0.3 * h},
    }
    results = [allocate(reg, s, OCT, readings(reg, s, window, shapes[s])) for s in sorted(shapes)]
    return MonthReport(OCT, results, dict.fromkeys(shapes, tariff), language=language)
