"""Edge agent: backlog replay rate and memory.

Run: ./dev bench bench_edge [--readings 1000000]

Fills an outbox with N readings of a station's six devices (as after a long
outage), starts `waystation edge` on it against a local Mosquitto and times
until the outbox is empty, i.e. until the broker acknowledged every reading.
Prints readings/s and the agent's peak RSS (VmHWM from /proc).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

from app.localservers import MosquittoServer
from edge.outbox import Outbox

STATION = "bench-01"
DEVICES = {f"{STATION}-d{i}": "door_counter" for i in range(6)}
FILL_CHUNK = 100_000


def _fill(path: Path, readings: int) -> float:
    t0 = time.monotonic()
    base = int(time.time() * 1000) - readings * 10
    devices = list(DEVICES)
    with Outbox(path, max_readings=readings + 1000, max_age=timedelta(days=400)) as ob:
        for start in range(0, readings, FILL_CHUNK):
            ob.put_many([
                (devices[i % 6], "door_counter", base + i * 10, {"in_total": i, "out_total": i})
                for i in range(start, min(start + FILL_CHUNK, readings))
            ])  # fmt: skip
    return time.monotonic() - t0


def _depth(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--readings", type=int, default=1_000_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="waystation-bench-edge-"))
    try:
        _run(args.readings, root)
    finally:  # the outbox of a million readings is about 150 MB
        shutil.rmtree(root, ignore_errors=True)


def _run(readings: int, root: Path) -> None:
    outbox = root / "outbox.db"
    fill_s = _fill(outbox, readings)
    print(
        f"filled the outbox with {readings:,} readings in {fill_s:.1f} s "
        f"({outbox.stat().st_size / 2**20:.0f} MB)"
    )
    config = root / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "station": STATION, "agent_device": f"{STATION}-gw",
        "outbox": {"path": str(outbox), "max_readings": readings + 1000, "max_age": "400d"},
        "devices": {d: {"kind": k, "interval": "1h"} for d, k in DEVICES.items()},
    }))  # fmt: skip
    with MosquittoServer(root / "mosquitto") as broker:
        agent = subprocess.Popen([
            sys.executable, "-m", "app.cli", "edge", "--agent-config", str(config),
            "--mqtt", broker.url, "--log-level", "WARNING",
        ])  # fmt: skip
        t0 = time.monotonic()
        peak = 0.0
        while (left := _depth(outbox)) > 0:
            peak = max(peak, _peak_rss_mb(agent.pid))
            if time.monotonic() - t0 > 600:
                print(f"gave up with {left:,} readings left")
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        peak = max(peak, _peak_rss_mb(agent.pid))
        agent.terminate()
        agent.wait(30)
    print(
        f"replayed {readings:,} readings in {took:.1f} s = "
        f"{readings / took:,.0f} readings/s "
        "(arrays of 100, 20 messages in flight, deleted on PUBACK)"
    )
    print(f"agent peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
