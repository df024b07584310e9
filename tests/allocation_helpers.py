"""A district with one station per operating model, and steady readings to allocate by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.agent import EdgeAgent
from edge.config import AgentConfig
from rules.allocation.compute import (
    StationResult,
    allocate_station,
    slot_periods,
    station_registers,
)
from rules.allocation.registers import HOUR_MS, Window
from rules.allocation.report import measure_station, month_window
from rules.allocation.source import Readings
from rules.allocation.tariff import SHIPPED_DIR, Tariff, load_tariffs, shipped_tariffs
from tests.helpers import station_devices, wait_for
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

PARTIES = {
    "dachuan-union": {"name": "达川区总工会", "type": "union"},
    "xiaoge": {"name": "小哥咖啡", "type": "enterprise"},
    "sanitation-union": {"name": "环卫工会", "type": "industry_union"},
    "cuiping": {"name": "翠屏社区服务中心", "type": "community"},
}
OPERATORS = {
    "enterprise_incubated": "xiaoge",
    "department_guided": "xiaoge",
    "industry_managed": "sanitation-union",
    "community_integrated": "cuiping",
}
# Steady use per hour: main meter 2 kWh, dispenser 0.5 kWh and 20 l, locker 0.25 kWh,
# main water meter 0.1 m³, door counters 3 and 1 visits.
RATES = {
    ("meter", "energy_kwh_total"): 2.0,
    ("disp", "energy_kwh_total"): 0.5,
    ("disp", "water_l_total"): 20.0,
    ("locker", "energy_kwh_total"): 0.25,
    ("water", "water_m3_total"): 0.1,
    ("door", "in_total"): 3.0,
    ("door2", "in_total"): 1.0,
}


def station_entry(station: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"驿站 {station}",
        "model": model,
        "operator": OPERATORS[model],
        # Every kind, and a second door counter for residuals shared by visits.
        "devices": station_devices(station) | {f"{station}-door2": {"kind": "door_counter"}},
        **extra,
    }


def district(**stations: dict[str, Any]) -> Registry:
    return parse_registry(
        {
            "version": 1,
            "tariff": "sichuan-general-commercial",
            "parties": PARTIES,
            "stations": stations,
        }
    )


Shape = Callable[[float], float | None]  # hour → register value, or None for no reading


def steady(rate: float, start: float = 1000.0) -> Shape:
    return lambda h: start + rate * h


def _silent(_hour: float) -> float | None:
    return None


def readings(
    registry: Registry,
    station: str,
    window: Window,
    shapes: dict[tuple[str, str], Shape] | None = None,
) -> Readings:
    """Hourly readings from an hour before the window to an hour after; `shapes` override."""
    shapes = shapes or {}
    hours = range(-1, window.slots + 2)
    out: Readings = {}
    for reg in station_registers(registry, station):
        suffix = reg.device.removeprefix(f"{station}-")
        key = (suffix, reg.field)
        # A meter's period registers have no readings unless the test gives them.
        shape = shapes.get(key) or (steady(RATES[key]) if key in RATES else _silent)
        points = [(window.start_ms + h * HOUR_MS, shape(h)) for h in hours]
        out[(reg.device, reg.field)] = [(t, v) for t, v in points if v is not None]
    return out


def allocate(
    registry: Registry, station: str, month: date, data: Readings | None = None
) -> StationResult:
    tz = registry.station_timezone(station)
    window = month_window(month, tz)
    data = readings(registry, station, window) if data is None else data
    version = shipped_tariffs()["sichuan-general-commercial"].version_for(month)
    usages = measure_station(station_registers(registry, station), data, window, station)
    return allocate_station(registry, station, usages, version, slot_periods(window, tz, version))


def backfill_month(
    registry: Registry, station: str, settings: MqttSettings, outbox: Path, days: float
) -> int:
    """Publish `days` of the station's simulated history; the number of readings acked."""
    config = AgentConfig.from_registry(registry, station, outbox=outbox)
    # Sized for the history, as the agent asks: past 45 days the default would drop some.
    sized = config.outbox.model_copy(update={"max_age": timedelta(days=days + 1)})
    config = config.model_copy(update={"outbox": sized})
    agent = EdgeAgent(
        config, settings, backfill=timedelta(days=days), backfill_step=timedelta(minutes=10)
    )
    with agent:
        wait_for(lambda: agent.outbox.depth == 0, f"{station}'s month to be published", 120)
    return agent.stats.readings_acked


def two_station_district(ent: str, com: str) -> dict[str, Any]:
    """An enterprise-incubated and a community-integrated station, ready to allocate and map."""
    return {
        "version": 1,
        "tariff": "sichuan-general-commercial",
        "parties": PARTIES,
        "stations": {
            ent: station_entry(ent, "enterprise_incubated", location={"lat": 31.2, "lon": 107.5}),
            com: station_entry(com, "community_integrated", location={"lat": 31.1, "lon": 107.4}),
        },
    }


def days_of_history(window: Window, now: datetime) -> float:
    """From three days before the month to now: its boundaries have readings either side."""
    return (now.timestamp() * 1000 - window.start_ms) / 86_400_000 + 3


def own_tariff_dir(directory: Path) -> Path:
    """The shipped tariff as an operator adopts it: copied, `example: true` deleted."""
    shipped = (SHIPPED_DIR / "sichuan-general-commercial.yaml").read_text("utf-8")
    assert "example: true\n" in shipped
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ours.yaml").write_text(shipped.replace("example: true\n", ""), "utf-8")
    return directory


def own_tariffs(tmp_path: Path) -> dict[str, Tariff]:
    return load_tariffs([own_tariff_dir(tmp_path / "tariffs")])
