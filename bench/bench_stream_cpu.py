"""CPU a message of ingest and of the rules service, reading the same stream at once.

Run: ./dev bench bench_stream_cpu [--messages 100000] [--mqtt-engine socket|paho]

Mosquitto and InfluxDB on free loopback ports in a scratch directory (deleted
at the end, whatever happens); one `waystation ingest` and one `waystation
rules` process, both subscribed to every station; two publisher processes
send `--messages` single-reading messages (100 stations, 10 meters each) as fast
as the broker acknowledges them. Ingest is done when InfluxDB holds every
point (counted there), the rules when their `messages` counter has them all.
Prints each process's user+system CPU over the stream, per message, its peak
RSS, and the load average. Every wait has a time limit (`--limit-s`).
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
from collections.abc import Iterator
from pathlib import Path

import yaml

from app.localservers import InfluxServer, MosquittoServer, free_port
from tests.load import publish_all, scrape_metrics
from waystation.store import InfluxStore

STATIONS, DEVICES = 100, 10
LIMITS = Path(__file__).resolve().parent.parent / "app" / "data" / "mosquitto-limits.conf"


def _registry(path: Path) -> None:
    stations = {
        f"m{s:03d}": {
            "name": f"bench {s}",
            "model": "enterprise_incubated",
            "devices": {  # one main meter and sub-meters (two mains are refused)
                f"m{s:03d}-e{d}": {
                    "kind": "meter",
                    "utility": "electricity",
                    "role": "main" if d == 0 else "sub",
                }
                for d in range(DEVICES)
            },
        }
        for s in range(STATIONS)
    }
    path.write_text(yaml.safe_dump({"version": 1, "stations": stations}))


def _publish(url: str, client_id: str, start: int, stop: int, base_ts: int) -> None:
    def messages() -> Iterator[tuple[str, str]]:
        for i in range(start, stop):
            n = i % (STATIONS * DEVICES)
            station, device = f"m{n // DEVICES:03d}", f"m{n // DEVICES:03d}-e{n % DEVICES}"
            body = {"v": 1, "kind": "meter", "ts": base_ts + i, "seq": i,
                    "data": {"energy_kwh_total": i / 100, "power_w": 1000 + i % 500}}  # fmt: skip
            yield f"stations/{station}/{device}/telemetry", json.dumps(body)

    publish_all(url, client_id, messages())


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _until(what: str, done: object, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {limit_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def _stored(store: InfluxStore) -> int:
    rows = store.query('SELECT count("seq") FROM "meter"')
    return int(rows[0].values[0][1]) if rows else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--mqtt-engine", choices=["socket", "paho"], default="socket",
                    help="ingest's engine (the rules always use the socket engine)")  # fmt: skip
    ap.add_argument("--limit-s", type=float, default=300)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="waystation-bench-stream-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _registry(root / "stations.yaml")
        (root / "rules.yaml").write_text("language: en\n")
        with (
            MosquittoServer(root / "mosquitto", LIMITS.read_text()) as broker,
            InfluxServer(root / "influxdb") as influx,
        ):
            _measure(a, root, broker.url, influx.url, procs)
    except SystemExit:
        for log in sorted(root.glob("*.log")):  # why a process was not ready
            print(f"--- {log.name}:\n{log.read_text()[-2000:]}")
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


def _start(
    root: Path, name: str, args: list[str], port: int, procs: list[subprocess.Popen[bytes]]
) -> int:
    cmd = [sys.executable, "-m", "app.cli", *args, "--health-port", str(port)]
    log = (root / f"{name}.log").open("ab")
    procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    return procs[-1].pid


def _all_ready(procs: list[subprocess.Popen[bytes]], ports: list[int]) -> bool:
    if any(p.poll() is not None for p in procs):
        raise SystemExit("ingest or the rules exited at start")
    return all(_ready(port) for port in ports)


def _measure(
    a: argparse.Namespace,
    root: Path,
    mqtt_url: str,
    influx_url: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    store = InfluxStore(influx_url, "bench")
    store.create_database()
    common = ["--mqtt", mqtt_url, "--influx", influx_url, "--database", "bench",
              "--registry", str(root / "stations.yaml"), "--log-level", "WARNING"]  # fmt: skip
    ports = {"ingest": free_port(), "rules": free_port()}
    argv = {
        "ingest": ["ingest", *common, "--mqtt-engine", a.mqtt_engine],
        "rules": ["rules", *common, "--no-allocation", "--state", str(root / "s.db"),
                  "--rules-config", str(root / "rules.yaml")],
    }  # fmt: skip
    pids = {name: _start(root, name, args, ports[name], procs) for name, args in argv.items()}
    _until("ingest and rules ready", lambda: _all_ready(procs, list(ports.values())), a.limit_s)
    cpu0 = {n: _cpu_s(p) for n, p in pids.items()}
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    half = a.messages // 2
    base_ts = int(time.time() * 1000) - 3_600_000
    pubs = [
        mp.Process(target=_publish, args=(mqtt_url, f"pub-{k}", lo, hi, base_ts))
        for k, (lo, hi) in enumerate(((0, half), (half, a.messages)))
    ]
    for pub in pubs:
        pub.start()
    for pub in pubs:
        pub.join(a.limit_s)
    _until("every point in InfluxDB", lambda: _stored(store) >= a.messages, a.limit_s)
    rules_read = lambda: scrape_metrics(ports["rules"], 2).get("waystation_rules_messages_total", 0)  # noqa: E731
    _until("the rules to read every message", lambda: rules_read() >= a.messages, a.limit_s)
    took = time.monotonic() - t0
    print(f"{a.messages:,} messages through ingest ({a.mqtt_engine} engine) and the "
          f"rules in {took:.1f} s; load average {load0:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")  # fmt: skip
    for name, pid in pids.items():
        cpu = _cpu_s(pid) - cpu0[name]
        print(f"  {name:7s} CPU {cpu:6.2f} s = {cpu * 1e6 / a.messages:5.1f} µs a message; "
              f"peak RSS {_hwm_mb(pid):.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
