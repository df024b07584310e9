"""The demo's tables: what landed in InfluxDB per station, and the alerts as they came."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["notice_panel", "station_table"]


def _last_by_device(store: InfluxStore, measurement: str) -> dict[str, dict[str, object]]:
    out = {}
    query = f'SELECT last(*) FROM "{measurement}" GROUP BY "device"'  # noqa: S608 - our own names
    for series in store.query(query):
        rec = series.records()[0]
        out[series.tags["device"]] = {k.removeprefix("last_"): v for k, v in rec.items()}
    return out


def station_table(console: Console, store: InfluxStore, registry: Registry) -> None:
    """One row per station, every figure read back from InfluxDB."""
    last = {
        m: _last_by_device(store, m)
        for m in ("door_counter", "water_dispenser", "charging_locker", "meter", "device_status")
    }
    counts: dict[str, int] = {}
    for s in store.query(
        'SELECT count("seq") FROM /^(door_counter|water_dispenser|'
        'charging_locker|meter|gateway)$/ GROUP BY "station"'
    ):
        counts[s.tags["station"]] = counts.get(s.tags["station"], 0) + s.values[0][1]
    table = Table(title="What landed in InfluxDB, per station (last values)")
    for col, justify in (
        ("station", "left"),
        ("model", "left"),
        ("agent", "left"),
        ("visits", "right"),
        ("hot water L", "right"),
        ("dispenser °C", "right"),
        ("lockers in use", "right"),
        ("electricity kWh", "right"),
        ("water m³", "right"),
        ("points", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for sid, station in registry.stations.items():
        row: dict[str, object] = {}
        for device, spec in station.devices.items():
            for values in (last[m].get(device) for m in last):
                if values:
                    row.update({f"{spec.kind}.{k}": v for k, v in values.items() if v is not None})
        online = row.get("gateway.online")
        table.add_row(
            station.name,
            station.model.value,
            "[green]online[/green]" if online == 1 else "[red]offline[/red]",
            _fmt(row.get("door_counter.in_total")),
            _fmt(row.get("water_dispenser.water_l_total")),
            _fmt(row.get("water_dispenser.temp_c")),
            _fmt(row.get("charging_locker.slots_in_use")),
            _fmt(row.get("meter.energy_kwh_total")),
            _fmt(row.get("meter.water_m3_total")),
            _fmt(counts.get(sid)),
        )
    console.print(table)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value}"


def notice_panel(body: dict[str, Any]) -> Panel:
    """A notification as the chat group would read it."""
    firing = any(n["firing"] for n in body["notices"])
    return Panel(
        body["text"],
        title=body["title"],
        border_style="red" if firing else "green",
        expand=False,
    )
