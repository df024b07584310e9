"""False notices across orderly broker restarts, counted for real.

Run: ./dev bench bench_broker_restart [--stations 5] [--restarts 10] [--grace SECONDS]

A local Mosquitto and InfluxDB, an edge agent process per station (one-second
readings), the ingest worker and the rules service (default thresholds: the
grace after reconnecting is the agents' longest backoff, plus each device's
own interval for its silence) with a webhook to a local HTTP server. Then,
--restarts times: restart the broker as an operator would (SIGTERM, start),
wait until the rules service and every agent are back, the grace period is
over and verdicts have held 10 s (three restarts closer together are a crash
loop, rightly `monitoring_lost`), and count what the webhook received. Every
notice is false: nothing was down. Prints per restart how long each part took
to return and how many agents' wills the service held, then the total.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from app.localservers import InfluxServer, MosquittoServer
from ingest.worker import IngestConfig, IngestWorker
from rules.outage.config import RulesConfig, Thresholds, WebhookChannel
from rules.outage.service import RulesService
from tests.helpers import station_devices, wait_for
from tests.rules_peers import EdgeProcess, HookServer
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

DEADLINE_S = 180.0  # any one wait longer than this ends the benchmark with an error


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--stations", type=int, default=5)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--grace", type=float, help="reconnect_grace in s (default: the service's)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    broker = MosquittoServer(work / "mosquitto")
    influx = InfluxServer(work / "influxdb")
    procs: list[EdgeProcess] = []
    try:
        broker.start()
        influx.start()
        return run(args, work, broker, influx, procs)
    finally:
        for p in procs:
            p.kill9()
        broker.stop()
        influx.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(
    args: argparse.Namespace,
    work: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    procs: list[EdgeProcess],
) -> int:
    settings = MqttSettings.from_url(broker.url)
    names = [f"st{n:03d}" for n in range(args.stations)]
    registry = parse_registry({"version": 1, "stations": {s: {
        "name": f"驿站 {s}", "model": "industry_managed",
        "devices": {d: {**spec, "interval": "1s"} for d, spec in station_devices(s).items()},
    } for s in names}})  # fmt: skip
    store = InfluxStore(influx.url, "bench")
    store.create_database()
    for s in names:
        read = {d: spec for d, spec in station_devices(s).items() if spec["kind"] != "gateway"}
        procs.append(EdgeProcess(work / s, broker.url, s, f"{s}-gw", read, "1s").start())
    with HookServer() as hooks:
        th = Thresholds() if args.grace is None else Thresholds(
            reconnect_grace=timedelta(seconds=args.grace))  # fmt: skip
        config = RulesConfig(
            thresholds=th, channels=[WebhookChannel(type="webhook", url=hooks.url("/hook"))]
        )
        service = RulesService(settings, registry, config, work / "state.db", store=store)
        ingest = IngestWorker(settings, store, registry, IngestConfig(client_id="bench-ingest"))
        with ingest, service:
            devices = list(service.obs.devices.values())
            print(f"{args.stations} stations, {len(devices)} devices; grace "
                  f"{service.grace_ms / 1000:.0f} s after each reconnect")  # fmt: skip
            sys.stdout.flush()
            wait_for(lambda: all(d.last_seen_ms > service.started_ms for d in devices)
                     and service.giving_verdicts, "everything up", DEADLINE_S)  # fmt: skip
            false_firing = false_resolved = 0
            for n in range(1, args.restarts + 1):
                connects = service.session.connects
                held = service.wills_held
                t0 = time.monotonic()
                stamp = int(time.time() * 1000)
                broker.restart()
                up = time.monotonic() - t0
                wait_for(lambda: service.session.connects > connects,  # noqa: B023
                         "rules back", DEADLINE_S)  # fmt: skip
                rules_back = time.monotonic() - t0
                wait_for(lambda: all(d.last_seen_ms > stamp for d in devices),  # noqa: B023
                         "every device back", DEADLINE_S)  # fmt: skip
                agents_back = time.monotonic() - t0
                wait_for(lambda: service.giving_verdicts, "the grace over", DEADLINE_S)
                passes = service.passes
                wait_for(lambda: service.passes >= passes + 3, "three passes", 30)  # noqa: B023
                # Orderly restarts: verdicts hold 10 s before the next one (three restarts
                # closer than that are a crash loop, and rightly monitoring_lost).
                wait_for(lambda: not service.watch.in_spell, "verdicts for 10 s", DEADLINE_S)
                notices = [x for h in hooks.on("/hook") for x in h.body["notices"]]
                false_firing = sum(len(x["firing"]) for x in notices)
                false_resolved = sum(len(x["resolved"]) for x in notices)
                print(
                    f"restart {n:2d}: broker up in {up:.1f} s, rules back in {rules_back:.1f} s, "
                    f"every device reporting in {agents_back:.1f} s, wills held "
                    f"{service.wills_held - held}, false notices so far: {false_firing} firing, "
                    f"{false_resolved} resolved"
                )
                sys.stdout.flush()
        print(
            f"false notices across {args.restarts} broker restarts: {false_firing + false_resolved}"
            f" ({false_firing} firing, {false_resolved} resolved)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
