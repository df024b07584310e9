"""Outage rules: the cost of a detection pass, and how soon an agent's death is notified.

Run: ./dev bench bench_rules [--devices 100000] [--passes 300] [--trials 20]

1. A registry of --devices devices (stations of six), all reporting, then 1 %
   of them silent: the time of one `detect` pass (the scan every second walks
   every device), as percentiles over --passes passes, and the memory the
   observations take.
2. A local Mosquitto, the rules service with a webhook channel to a local
   HTTP server, and an edge agent process per trial: SIGKILL the agent and
   time until the webhook receives the station's alert, as percentiles over
   --trials trials. The will counts once the rules' probe sent after it is back,
   and the group waits 1 s of it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from app.localservers import MosquittoServer
from rules.outage.config import RulesConfig, Thresholds, Timing, WebhookChannel
from rules.outage.detect import detect
from rules.outage.observations import Observations
from rules.outage.service import RulesService
from tests.helpers import STATION_DEVICES, station_devices, wait_for
from tests.rules_peers import EdgeProcess, HookServer
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings


def district(devices: int) -> Registry:
    stations = max(1, devices // len(STATION_DEVICES))
    return parse_registry({
        "version": 1,
        "stations": {
            f"st{n:06d}": {
                "name": f"驿站 {n}",
                "model": "industry_managed",
                "devices": station_devices(f"st{n:06d}"),
            }
            for n in range(stations)
        },
    })  # fmt: skip


def percentiles(values: list[float], unit: str = "ms") -> str:
    """p50 / p90 / p99 / max of a sample, for a benchmark's line."""
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {at(0.5):.1f} {unit}, p90 {at(0.9):.1f} {unit}, p99 {at(0.99):.1f} {unit}, "
        f"max {ordered[-1]:.1f} {unit} ({len(ordered)} samples)"
    )


def scan_cost(devices: int, passes: int) -> None:
    t0 = time.monotonic()
    registry = district(devices)
    built = time.monotonic() - t0
    th = Thresholds()
    now = int(time.time() * 1000)
    tracemalloc.start()
    obs = Observations.from_registry(registry, th.silent_intervals, th.dispenser_min_temp_c, now)
    for n, device in enumerate(obs.devices):
        data = {"energy_kwh_total": 100.0 + n, "in_total": n, "temp_c": 92.0}
        obs.reading(device, now, data)
    memory_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    for n, device in enumerate(obs.devices):  # 1 % fall silent: they have conditions to build
        if n % 100 == 0:
            obs.devices[device].deadline_ms = now - 1
    times = []
    conditions = 0
    for _ in range(passes):
        t = time.perf_counter()
        conditions = len(detect(obs, registry, th, now + 1000))
        times.append((time.perf_counter() - t) * 1000)
    print(
        f"scan of {len(obs.devices):,} devices ({len(registry.stations):,} stations, registry "
        f"parsed in {built:.1f} s), {conditions:,} conditions: {percentiles(times)}; "
        f"observations {memory_mb:.0f} MB"
    )


def _seen_lately(service: RulesService) -> bool:
    return service.obs.devices["bench-gw"].last_seen_ms > time.time() * 1000 - 2000


def notification_latency(trials: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-rules-"))
    broker = MosquittoServer(work / "mosquitto")
    broker.start()
    settings = MqttSettings.from_url(broker.url)
    registry = parse_registry({"version": 1, "stations": {"bench": {
        "name": "基准站", "model": "industry_managed",
        "devices": {"bench-gw": {"kind": "gateway", "interval": "1s"},
                    "bench-door": {"kind": "door_counter", "interval": "1s"}},
    }}})  # fmt: skip
    latencies = []
    with HookServer() as hooks:
        config = RulesConfig(
            thresholds=Thresholds(),
            timing=Timing(group_interval=timedelta(seconds=1), scan_every=timedelta(seconds=1)),
            channels=[WebhookChannel(type="webhook", url=hooks.url("/hook"))],
        )
        service = RulesService(settings, registry, config, work / "state.db")
        agent = EdgeProcess(
            work, broker.url, "bench", "bench-gw", {"bench-door": {"kind": "door_counter"}}, "1s"
        )
        with service:
            for _ in range(trials):
                agent.start()
                # Up, calm (the last trial's alert resolved and its notice sent), and steady.
                wait_for(lambda: not service.book.alerts and _seen_lately(service), "calm", 30)
                time.sleep(1.5)
                before = len(hooks.on("/hook"))
                killed = time.monotonic()
                agent.kill9()
                wait_for(lambda: len(hooks.on("/hook")) > before, "the notice", 10)  # noqa: B023
                latencies.append(hooks.on("/hook")[before].at - killed)
            agent.kill9()
    broker.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"agent SIGKILL → webhook notice: {percentiles([x * 1000 for x in latencies])} "
        f"(median {statistics.median(latencies) * 1000:.0f} ms; group_wait 1 s of it, the "
        "probe that confirms the will a round trip)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--passes", type=int, default=300)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    scan_cost(args.devices, args.passes)
    sys.stdout.flush()
    notification_latency(args.trials)


if __name__ == "__main__":
    main()
