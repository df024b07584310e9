"""`waystation demo`: a simulated district through the real pipeline.

Starts Mosquitto and InfluxDB on free loopback ports in a scratch directory,
an ingest worker, and one edge agent per station of the embedded Dachuan
registry; runs live for a while, slips in one malformed message to show that
it is dead-lettered without harm, then prints what landed in InfluxDB.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import timedelta
from importlib.resources import as_file, files
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edge.agent import EdgeAgent
from edge.config import AgentConfig
from ingest.worker import IngestConfig, IngestWorker
from waystation.localservers import InfluxServer, MosquittoServer
from waystation.registry import Registry, load_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

__all__ = ["run_demo"]

DATABASE = "waystation"


def _registry() -> Registry:
    with as_file(files("waystation").joinpath("data/demo-stations.yaml")) as path:
        return load_registry(path)


def run_demo(*, duration: timedelta, interval: timedelta, workdir: Path | None = None) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a pipe or a CI log: do not squeeze the tables
    keep = workdir is not None
    root = workdir or Path(tempfile.mkdtemp(prefix="waystation-demo-"))
    registry = _registry()
    console.rule("[bold]Waystation demo[/bold]")
    console.print(
        f"District: {len(registry.stations)} stations, {registry.device_count} devices "
        f"(达川区 model: enterprise, department, industry union, community)"
    )
    broker = MosquittoServer(root / "mosquitto")
    influx = InfluxServer(root / "influxdb")
    try:
        broker.start()
        influx.start()
        console.print(f"Mosquitto  {broker.url}    InfluxDB  {influx.url}  (database {DATABASE})")
        return _run(
            console=console,
            registry=registry,
            broker=broker,
            influx=influx,
            root=root,
            duration=duration,
            interval=interval,
        )
    finally:
        broker.stop()
        influx.stop()
        if keep:
            console.print(f"Data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _run(
    *,
    console: Console,
    registry: Registry,
    broker: MosquittoServer,
    influx: InfluxServer,
    root: Path,
    duration: timedelta,
    interval: timedelta,
) -> int:
    mqtt = MqttSettings.from_url(broker.url)
    store = InfluxStore(influx.url, DATABASE)
    store.create_database()
    config = IngestConfig(client_id="demo-ingest", deadletter_path=root / "deadletter.jsonl")
    agents = [
        EdgeAgent(
            AgentConfig.from_registry(
                registry, sid, outbox=root / "outbox" / f"{sid}.db", interval=interval
            ),
            mqtt,
            seed=n,
        )
        for n, sid in enumerate(registry.stations)
    ]
    with IngestWorker(mqtt, store, registry, config) as worker:
        worker.wait_subscribed()
        for agent in agents:
            agent.start()
        console.print(
            f"Running live for {duration.total_seconds():.0f} s, "
            f"one reading per device every {interval.total_seconds():g} s. Ctrl-C stops."
        )
        end = time.monotonic() + duration.total_seconds()
        injected = False
        try:
            while time.monotonic() < end:
                time.sleep(min(2.0, max(end - time.monotonic(), 0)))
                if not injected:
                    _inject_malformed(console, agents[0])
                    injected = True
                acked = sum(a.stats.readings_acked for a in agents)
                console.print(
                    f"  acked by the broker {acked:6d}   stored {worker.stats.points_written:6d}"
                    f"   dead letters {sum(worker.deadletters.counts.values())}"
                )
        except KeyboardInterrupt:
            console.print("Interrupted; stopping.")
        _report(console, store, registry)
        console.print(f"Dead letters by reason: {dict(worker.deadletters.counts) or 'none'}")
        for agent in agents:
            agent.stop()
    return 0


def _inject_malformed(console: Console, agent: EdgeAgent) -> None:
    """What a faulty device might send: a reading with a NaN temperature (a string)."""
    device = next(d for d, spec in agent.devices.items() if spec.kind == "water_dispenser")
    topic = f"stations/{agent.station_id}/{device}/telemetry"
    bad = json.dumps(
        {
            "v": 1,
            "kind": "water_dispenser",
            "ts": int(time.time() * 1000),
            "seq": 1,
            "data": {
                "water_l_total": 1.0,
                "energy_kwh_total": 1.0,
                "temp_c": "NaN",
                "heating": True,
            },
        }
    )
    agent._client.publish(topic, bad, qos=1)  # noqa: SLF001 - the demo plays a faulty device
    console.print(f"  [yellow]injected a malformed message on {topic}[/yellow]")


def _last_by_device(store: InfluxStore, measurement: str) -> dict[str, dict[str, object]]:
    out = {}
    query = f'SELECT last(*) FROM "{measurement}" GROUP BY "device"'  # noqa: S608 - our own names
    for series in store.query(query):
        rec = series.records()[0]
        out[series.tags["device"]] = {k.removeprefix("last_"): v for k, v in rec.items()}
    return out


def _report(console: Console, store: InfluxStore, registry: Registry) -> None:
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
