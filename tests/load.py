"""Load and process helpers for the ingest fault tests and the ingest benchmarks.

`LoadPublisher` sends door-counter readings with known (device, seq) pairs at a
steady rate from its own thread, so a test can compare exactly what was
published with what InfluxDB holds. `IngestProcess` runs `waystation ingest`
as a child process that can be SIGKILLed like a real one. `publish_all` sends
as fast as the broker acknowledges, failing loudly on a message never acknowledged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from app.localservers import free_port
from waystation.mqttclient import new_client
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

PUBLISHER_INFLIGHT = 1000
PUBLISH_WINDOW = 20_000  # unacknowledged messages a bench publisher lets paho hold


def door_counter_registry(station: str, devices: int) -> dict[str, object]:
    return {
        "version": 1,
        "stations": {
            station: {
                "name": f"负载 {station}",
                "model": "industry_managed",
                "devices": {f"{station}-d{n}": {"kind": "door_counter"} for n in range(devices)},
            }
        },
    }


def write_registry(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def scrape_metrics(port: int, timeout_s: float = 1.0) -> dict[str, float]:
    """A service's samples from its /metrics endpoint on `port` ({} while it is not up)."""
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class LoadPublisher:
    """Publishes `total` readings spread over the station's devices at `rate` a second.

    A persistent session and paho's own resend keep its QoS 1 messages alive
    across a broker restart; `published` lists what the broker acknowledged.
    """

    def __init__(
        self,
        settings: MqttSettings,
        station: str,
        devices: int,
        total: int,
        rate: float,
        uid: str,
        *,
        first_seq: int = 0,
    ) -> None:
        self.station, self.devices, self.total, self.rate = station, devices, total, rate
        self.seqs = range(first_seq, first_seq + total)
        self.expected = {(f"{station}-d{i % devices}", i) for i in self.seqs}
        self.acked = 0
        self._lock = threading.Lock()
        self._client = new_client(settings, f"load-{uid}")
        self._client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
        self._client.max_queued_messages_set(0)  # unbounded: the test owns the volume
        self._client.on_publish = self._on_publish
        self._settings = settings
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started_ms = int(time.time() * 1000)

    def _on_publish(self, *_: object) -> None:
        with self._lock:
            self.acked += 1

    def payload(self, i: int) -> tuple[str, str]:
        device = f"{self.station}-d{i % self.devices}"
        reading = {
            "v": 1,
            "kind": "door_counter",
            "ts": self.started_ms + i,
            "seq": i,
            "data": {"in_total": i, "out_total": i},
        }
        return f"stations/{self.station}/{device}/telemetry", json.dumps(reading)

    def _run(self) -> None:
        start = time.monotonic()
        for n, i in enumerate(self.seqs):
            delay = start + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            topic, body = self.payload(i)
            self._client.publish(topic, body, qos=1)

    def start(self) -> LoadPublisher:
        s = self._settings
        self._client.connect_async(s.host, s.port, clean_start=False)
        self._client.loop_start()
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self.acked >= self.total

    def stop(self) -> None:
        self._thread.join()
        self._client.disconnect()
        self._client.loop_stop()


def publish_all(url: str, client_id: str, messages: Iterable[tuple[str, str]]) -> None:
    """Publish (topic, payload) pairs at QoS 1 as fast as the broker acks them."""
    settings = MqttSettings.from_url(url)
    client = new_client(settings, client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(settings.host, settings.port)
    client.loop_start()
    # paho can hold at most 65,535 unacknowledged messages (packet ids are 16
    # bits), so the publisher waits on the message WINDOW back before going on.
    sent: deque[mqtt.MQTTMessageInfo] = deque()
    for topic, payload in messages:
        sent.append(client.publish(topic, payload, qos=1))
        if len(sent) > PUBLISH_WINDOW:
            sent.popleft().wait_for_publish(120)
    wait_acked(sent, client_id)
    client.disconnect()
    client.loop_stop()


def wait_acked(sent: Iterable[mqtt.MQTTMessageInfo], who: str) -> None:
    """Every message's PUBACK, or a loud failure: a figure over lost messages is no figure."""
    missing = 0
    for info in sent:
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(120)
        missing += not info.is_published()
    if missing:
        raise SystemExit(f"{who}: {missing} messages never acknowledged by the broker")


def stored_seqs(store: InfluxStore) -> set[tuple[str, int]]:
    out = set()
    for series in store.query('SELECT "seq" FROM "door_counter" GROUP BY "device"'):
        out |= {(series.tags["device"], row[1]) for row in series.values}
    return out


def stored_count(store: InfluxStore) -> int:
    rows = store.query('SELECT count("seq") FROM "door_counter"')
    return int(rows[0].values[0][1]) if rows else 0


_started: list[IngestProcess] = []


def reap_ingest_processes() -> None:
    """Kill whatever worker a test started and left running (a failed test, say)."""
    while _started:
        proc = _started.pop()
        if proc.running:
            proc.kill9()


class IngestProcess:
    """`waystation ingest` in a child process, with its health port."""

    def __init__(
        self,
        mqtt_url: str,
        store: InfluxStore,
        registry: Path,
        client_id: str,
        station: str,
        log_path: Path,
        group: str | None = None,
        mqtt_version: str = "5",
    ) -> None:
        self.health_port = free_port()
        self.args = [
            sys.executable, "-m", "app.cli", "ingest",
            "--mqtt", mqtt_url, "--influx", store.url, "--database", store.database,
            "--registry", str(registry), "--client-id", client_id,
            "--topic", f"stations/{station}/+/+",
            "--health-port", str(self.health_port), "--log-level", "INFO",
            "--mqtt-version", mqtt_version,
        ]  # fmt: skip
        if group:
            self.args += ["--group", group]
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IngestProcess:
        _started.append(self)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def metrics(self) -> dict[str, float]:
        """The worker's counters from its /metrics endpoint ({} while it is not up)."""
        return scrape_metrics(self.health_port)

    def written(self) -> int:
        return int(self.metrics().get("waystation_ingest_messages_written_total", 0))

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def kill9(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait()

    def terminate(self) -> int:
        assert self._proc is not None
        self._proc.terminate()
        return self._proc.wait(30)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
