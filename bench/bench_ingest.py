"""Ingest throughput, latency and memory on local Mosquitto + InfluxDB.

Run: ./dev bench bench_ingest [--messages 150000] [--arrays 10000] [--rate 5000]

Everything runs on this machine: Mosquitto, InfluxDB 1.x, one `waystation
ingest` process and the publishers, so they share its cores.

1. single: N one-reading messages are queued in the broker for the worker's
   persistent session while it is offline; the worker starts and the clock runs
   until InfluxDB has accepted all of them (durable msg/s). Draining a backlog
   isolates the worker from the publisher's speed, and is the case that matters
   after an outage.
2. arrays: the same with replay arrays of 100 readings (readings/s).
3. live: a publisher at a fixed rate with the worker running; the worker's own
   histogram of reading timestamp -> durable write gives latency percentiles
   (upper bounds of its buckets).
4. conflict: a backlog of single-reading messages in which one device in
   `--conflict-every` sends a field InfluxDB holds with another type (a
   dispenser's `fault` as text where an older firmware wrote integers): how
   fast the worker stores the rest and dead-letters those (msg/s).
Honest by construction: throughput is counted in InfluxDB (`count(seq)`),
not by the worker; every publisher waits for every PUBACK and fails loudly
if one is missing; every phase has a time limit (`--phase-limit-s`) and
reports how far it got if it runs out; the worker is restarted before each
phase, so its peak RSS (VmHWM) and CPU a message (user+system from /proc)
are each phase's own; the scratch directory is deleted whatever happens.
The load average is printed with every figure.

Over 400 lines on purpose: one script, so that `./dev bench bench_ingest`
is the whole measurement (the four phases share the servers and helpers).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from app.localservers import InfluxServer, MosquittoServer, free_port
from tests.load import publish_all, wait_acked
from waystation.mqttclient import new_client
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

STATIONS = 100
DEVICES_PER_STATION = 10
ARRAY_SIZE = 100
PUBLISHERS = 2


def _device(i: int) -> tuple[str, str]:
    n = i % (STATIONS * DEVICES_PER_STATION)
    station = f"b{n // DEVICES_PER_STATION:03d}"
    return station, f"{station}-d{n % DEVICES_PER_STATION}"


# One dispenser of its own station sends the conflicting points (phase 4).
CONFLICT_STATION = "bconf"
CONFLICT_DEVICE = f"{CONFLICT_STATION}-disp"


def _registry(path: Path) -> None:
    stations: dict[str, object] = {
        f"b{s:03d}": {
            "name": f"bench {s}",
            "model": "enterprise_incubated",
            "devices": {
                f"b{s:03d}-d{d}": {"kind": "door_counter"} for d in range(DEVICES_PER_STATION)
            },
        }
        for s in range(STATIONS)
    }
    stations[CONFLICT_STATION] = {
        "name": "bench conflict",
        "model": "enterprise_incubated",
        "devices": {CONFLICT_DEVICE: {"kind": "water_dispenser"}},
    }
    path.write_text(yaml.safe_dump({"version": 1, "stations": stations}))


def _reading(i: int, ts: int) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "door_counter",
        "ts": ts,
        "seq": i,
        "data": {"in_total": i, "out_total": i},
    }


def _publish_range(
    url: str, client_id: str, start: int, stop: int, size: int, base_ts: int
) -> None:
    """Publish messages start..stop (each of `size` readings) as fast as the broker acks."""

    def messages() -> Iterator[tuple[str, str]]:
        for m in range(start, stop):
            station, device = _device(m)
            first = m * size
            body = [_reading(first + k, base_ts + first + k) for k in range(size)]
            yield (
                f"stations/{station}/{device}/telemetry",
                json.dumps(body[0] if size == 1 else body),
            )

    publish_all(url, client_id, messages())


def _faulty_dispenser(seq: int, ts: int) -> dict[str, object]:
    data = {"water_l_total": 1.0, "energy_kwh_total": 1.0, "temp_c": 90.0, "heating": True}
    return {"v": 1, "kind": "water_dispenser", "ts": ts, "seq": seq, "data": data | {"fault": "E1"}}


def _publish_conflicting(url: str, messages: int, every: int, base_ts: int) -> None:
    """Door-counter readings, and every `every`-th message the dispenser's conflicting one."""

    def mixed() -> Iterator[tuple[str, str]]:
        for m in range(messages):
            if m % every == 0:
                topic = f"stations/{CONFLICT_STATION}/{CONFLICT_DEVICE}/telemetry"
                yield topic, json.dumps(_faulty_dispenser(m, base_ts + m))
            else:
                station, device = _device(m)
                body = _reading(20_000_000 + m, base_ts + m)
                yield f"stations/{station}/{device}/telemetry", json.dumps(body)

    publish_all(url, "bench-pub-conflict", mixed())


def _publish_rate(url: str, client_id: str, total: int, rate: float) -> None:
    client = new_client(MqttSettings.from_url(url), client_id)
    client.max_inflight_messages_set(1000)
    settings = MqttSettings.from_url(url)
    client.connect(settings.host, settings.port)
    client.loop_start()
    t0 = time.monotonic()
    sent: deque[mqtt.MQTTMessageInfo] = deque()
    for m in range(total):
        delay = t0 + m / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        station, device = _device(m)
        payload = json.dumps(_reading(10_000_000 + m, int(time.time() * 1000)))
        sent.append(client.publish(f"stations/{station}/{device}/telemetry", payload, qos=1))
    wait_acked(sent, client_id)  # disconnecting earlier would drop what paho has not sent yet
    client.disconnect()
    client.loop_stop()


def _publish_parallel(url: str, messages: int, size: int, base_ts: int, tag: str) -> float:
    chunk = -(-messages // PUBLISHERS)
    procs = [
        mp.Process(
            target=_publish_range,
            args=(
                url,
                f"bench-pub-{tag}-{p}",
                p * chunk,
                min((p + 1) * chunk, messages),
                size,
                base_ts,
            ),
        )
        for p in range(PUBLISHERS)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.monotonic() - t0


class Worker:
    def __init__(
        self,
        mqtt_url: str,
        influx_url: str,
        registry: Path,
        log: Path,
        mqtt_version: str,
        client_id: str = "bench-ingest",
        group: str | None = None,
    ) -> None:
        self.port = free_port()
        self.args = [sys.executable, "-m", "app.cli", "ingest", "--mqtt", mqtt_url,
                     "--influx", influx_url, "--database", "bench", "--registry", str(registry),
                     "--client-id", client_id, "--health-port", str(self.port),
                     "--log-level", "WARNING", "--mqtt-version", mqtt_version]  # fmt: skip
        if group:
            self.args += ["--group", group]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        while not self.metrics():
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        return {
            line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
        assert self.proc is not None
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(60)


class Pool:
    """Several workers in one shared-subscription group, seen as one."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    def metrics(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for w in self.workers:
            for k, v in w.metrics().items():
                total[k] = total.get(k, 0) + v
        return total

    def peak_rss_mb(self) -> float:
        return max(w.peak_rss_mb() for w in self.workers)

    def cpu_s(self) -> float:
        return sum(w.cpu_s() for w in self.workers)


class PhaseTimeout(Exception):
    pass


def _within(limit_s: float, what: str, progress: Callable[[], str]) -> Callable[[], None]:
    """A check to call while waiting: raises PhaseTimeout, saying how far it got."""
    deadline = time.monotonic() + limit_s

    def check() -> None:
        if time.monotonic() > deadline:
            raise PhaseTimeout(f"{what}: gave up after {limit_s:.0f} s ({progress()})")

    return check


def _drain_acked(worker: Worker | Pool, messages: int, limit_s: float) -> float:
    """Seconds until a freshly started worker acknowledged `messages` (stored or dead-lettered)."""
    t0 = time.monotonic()
    acked = lambda: worker.metrics().get("waystation_ingest_acked_total", 0)  # noqa: E731
    check = _within(limit_s, "conflict", lambda: f"{acked():,.0f} of {messages:,} acked")
    while acked() < messages:
        check()
        time.sleep(0.1)
    return time.monotonic() - t0


def _stored(store: InfluxStore) -> int:
    """Points in InfluxDB, counted there (not the worker's own counter)."""
    rows = store.query('SELECT count("seq") FROM "door_counter"')
    return int(rows[0].values[0][1]) if rows else 0


def _drain(store: InfluxStore, expected: int, already: int, limit_s: float, what: str) -> float:
    """Seconds until InfluxDB holds `expected` door-counter points beyond `already`."""
    t0 = time.monotonic()
    check = _within(limit_s, what, lambda: f"{_stored(store) - already:,} of {expected:,} stored")
    while _stored(store) < already + expected:
        check()
        time.sleep(0.2)
    return time.monotonic() - t0


def _phase_figures(worker: Worker | Pool, cpu0: float, messages: int) -> str:
    cpu = worker.cpu_s() - cpu0
    return (
        f"; worker CPU {cpu * 1e6 / messages:.1f} µs a message, peak RSS "
        f"{worker.peak_rss_mb():.0f} MB; load average {os.getloadavg()[0]:.2f}"
    )


def _quantile(m: dict[str, float], name: str, q: float) -> str:
    buckets = sorted(
        (float(k.split('le="')[1].rstrip('"}')), v)
        for k, v in m.items()
        if k.startswith(f"{name}_bucket") and "+Inf" not in k
    )
    total = m.get(f"{name}_count", 0)
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return f"<= {bound * 1000:g} ms"
    return "> last bucket"


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--messages", type=int, default=150_000, help="single-reading messages to drain"
    )
    ap.add_argument(
        "--arrays", type=int, default=10_000, help=f"array messages of {ARRAY_SIZE} readings"
    )
    ap.add_argument("--rate", type=float, default=5000, help="live phase rate, msg/s")
    ap.add_argument("--live-seconds", type=float, default=20)
    ap.add_argument("--mqtt-version", choices=["5", "3.1.1"], default="5", help="the worker's")
    ap.add_argument("--workers", type=int, default=1, help="workers in one shared group")
    ap.add_argument(
        "--conflict-messages", type=int, default=50_000, help="phase 4 backlog (0: skip)"
    )
    ap.add_argument(
        "--conflict-every", type=int, default=100, help="one message in this many conflicts"
    )
    ap.add_argument("--phase-limit-s", type=float, default=600, help="time limit of each phase")
    return ap.parse_args()


def main() -> None:
    args = _args()
    root = Path(tempfile.mkdtemp(prefix="waystation-bench-"))
    try:
        _run(args, root)
    except PhaseTimeout as exc:
        raise SystemExit(str(exc)) from None
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(args: argparse.Namespace, root: Path) -> None:
    registry = root / "stations.yaml"
    _registry(registry)
    limit = args.phase_limit_s
    with MosquittoServer(root / "mosquitto") as broker, InfluxServer(root / "influxdb") as influx:
        store = InfluxStore(influx.url, "bench")
        store.create_database()
        if args.workers == 1:
            worker: Worker | Pool = Worker(
                broker.url, influx.url, registry, root / "ingest.log", args.mqtt_version
            )
        else:
            worker = Pool([
                Worker(broker.url, influx.url, registry, root / f"ingest-{n}.log",
                       args.mqtt_version, f"bench-ingest-{n}", "bench")
                for n in range(args.workers)
            ])  # fmt: skip
        worker.start()  # creates the persistent session and its subscription
        worker.stop()
        base_ts = int(time.time() * 1000) - 3_600_000
        print(
            f"cpus: {os.cpu_count()}; Mosquitto, InfluxDB, ingest and publishers share them; "
            f"{args.workers} worker(s) speaking MQTT {args.mqtt_version}"
        )

        # 1. single-reading messages
        pub_s = _publish_parallel(broker.url, args.messages, 1, base_ts, "s")
        print(f"queued {args.messages:,} single-reading messages in {pub_s:.1f} s")
        worker.start()
        cpu0 = worker.cpu_s()
        took = _drain(store, args.messages, 0, limit, "single")
        print(
            f"single:  {args.messages:,} messages durable in {took:.1f} s = "
            f"{args.messages / took:,.0f} msg/s" + _phase_figures(worker, cpu0, args.messages)
        )

        # 2. replay arrays
        worker.stop()
        readings = args.arrays * ARRAY_SIZE
        pub_s = _publish_parallel(broker.url, args.arrays, ARRAY_SIZE, base_ts + 10**6, "a")
        print(f"queued {args.arrays:,} arrays ({readings:,} readings) in {pub_s:.1f} s")
        already = _stored(store)
        worker.start()
        cpu0 = worker.cpu_s()
        took = _drain(store, readings, already, limit, "arrays")
        print(
            f"arrays:  {readings:,} readings durable in {took:.1f} s = "
            f"{readings / took:,.0f} readings/s" + _phase_figures(worker, cpu0, args.arrays)
        )

        # 3. live, fixed rate (a fresh worker: this phase's own RSS)
        worker.stop()
        worker.start()
        total = int(args.rate * args.live_seconds)
        already = _stored(store)
        cpu0 = worker.cpu_s()
        before = worker.metrics()
        publisher = mp.Process(
            target=_publish_rate, args=(broker.url, "bench-live", total, args.rate)
        )
        t0 = time.monotonic()
        publisher.start()
        publisher.join(limit)
        if publisher.exitcode != 0:
            raise PhaseTimeout(f"live: the publisher did not finish ({publisher.exitcode})")
        sent_s = time.monotonic() - t0
        _drain(store, total, already, limit, "live")
        m = worker.metrics()
        # The age histogram also holds the backlog phases; subtract them.
        live = {k: v - before.get(k, 0) for k, v in m.items() if "reading_age" in k}
        name = "waystation_ingest_reading_age_seconds"
        print(
            f"live:    {total:,} messages at {total / sent_s:,.0f} msg/s; "
            "publish -> durable latency "
            f"p50 {_quantile(live, name, 0.5)}, p99 {_quantile(live, name, 0.99)}"
            + _phase_figures(worker, cpu0, total)
        )
        worker.stop()

        # 4. one device's points conflict with the field types InfluxDB holds
        _conflict_phase(worker, broker.url, influx.url, args, base_ts + 2 * 10**6)


def _conflict_phase(
    worker: Worker | Pool, mqtt_url: str, influx_url: str, args: argparse.Namespace, ts: int
) -> None:
    if not args.conflict_messages:
        return
    # An older firmware wrote the dispenser's fault codes as integers in this shard.
    InfluxStore(influx_url, "bench").write_lines(
        [f"water_dispenser,device=old,station={CONFLICT_STATION} fault=3i {ts - 1}"]
    )
    messages, every = args.conflict_messages, args.conflict_every
    _publish_conflicting(mqtt_url, messages, every, ts)
    worker.start()
    took = _drain_acked(worker, messages, args.phase_limit_s)
    dead = worker.metrics().get('waystation_ingest_deadletters_total{reason="rejected_by_store"}')
    print(
        f"conflict: {messages:,} messages, 1 in {every} with a field-type conflict, "
        f"stored or dead-lettered in {took:.1f} s = {messages / took:,.0f} msg/s "
        f"({dead or 0:,.0f} dead-lettered)"
    )
    worker.stop()


if __name__ == "__main__":
    main()
