"""Helpers shared by the tests: a one-station registry, waiting, an MQTT spy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from waystation.mqttclient import new_client
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

DEFAULT_TIMEOUT_S = 15.0


# A station with a device of every kind, by id suffix: the tests' and benchmarks' layout.
STATION_DEVICES: dict[str, dict[str, str]] = {
    "meter": {"kind": "meter", "utility": "electricity"},
    "water": {"kind": "meter", "utility": "water"},
    "disp": {"kind": "water_dispenser"},
    "locker": {"kind": "charging_locker"},
    "door": {"kind": "door_counter"},
    "gw": {"kind": "gateway"},
}


def station_devices(station: str) -> dict[str, dict[str, str]]:
    """STATION_DEVICES with ids that carry the station id (`{station}-meter`, …)."""
    return {f"{station}-{suffix}": dict(spec) for suffix, spec in STATION_DEVICES.items()}


def station_registry(station: str, model: str = "enterprise_incubated") -> Registry:
    """One station with a device of every kind; device ids carry the station id."""
    return parse_registry({"version": 1, "stations": station_data(station, model)})


def station_data(station: str, model: str = "enterprise_incubated") -> dict[str, object]:
    """The registry entry of such a station, to combine several into one registry."""
    return {
        station: {
            "name": f"测试驿站 {station}",
            "model": model,
            "devices": station_devices(station),
        }
    }


def wait_for(
    predicate: Callable[[], object], what: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> None:
    """Poll `predicate` until true; fail naming `what` at the deadline. No bare sleeps."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class MqttSpy:
    """A plain subscriber that records everything on its topic filters, and can publish."""

    settings: MqttSettings
    client_id: str
    filters: list[str]
    messages: list[Received] = field(default_factory=list)
    # A persistent session: the broker keeps the spy's messages across its own restart.
    persistent: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = new_client(self.settings, self.client_id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        if self.filters:
            client.subscribe([(f, 1) for f in self.filters])
        else:  # a publisher only
            self._ready.set()

    def _on_subscribe(self, *_: object) -> None:
        self._ready.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def __enter__(self) -> Self:
        if self.persistent:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 600
            self.client.connect(
                self.settings.host, self.settings.port, clean_start=False, properties=props
            )
        else:
            self.client.connect(self.settings.host, self.settings.port)
        self.client.loop_start()
        assert self._ready.wait(10), "spy did not get its SUBACK"
        return self

    def __exit__(self, *_: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, suffix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def caught_up(self, topic: str) -> None:
        """Publish a probe on `topic` (under the spy's filters) and wait until it arrives.

        The broker sends a subscriber its messages in order, so whatever it held for
        the spy before the probe (retained messages among them) has arrived too.
        """
        probe = f"probe-{uuid.uuid4().hex}".encode()
        self.publish(topic, probe)
        wait_for(lambda: any(m.payload == probe for m in self.on(topic)), f"the probe on {topic}")
        with self._lock:
            self.messages = [m for m in self.messages if m.payload != probe]


def readings_by_device(messages: list[Received]) -> dict[str, list[dict[str, object]]]:
    """Telemetry readings in arrival order per device, arrays flattened."""
    out: dict[str, list[dict[str, object]]] = {}
    for m in messages:
        if not m.topic.endswith("/telemetry"):
            continue
        body = json.loads(m.payload)
        out.setdefault(m.topic.split("/")[2], []).extend(body if isinstance(body, list) else [body])
    return out


def connack(settings: MqttSettings) -> ReasonCode:
    """The broker's answer to a connection attempt."""
    answers: list[ReasonCode] = []
    client = new_client(settings, "connack-probe")
    client.on_connect = lambda _c, _u, _f, rc, _p: answers.append(rc)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        wait_for(lambda: answers, "the CONNACK")
    finally:
        client.loop_stop()
        client.disconnect()
    return answers[0]


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET a loopback endpoint (health, metrics): its status and body, errors included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# Run from a background job of a shell (nohup, CI runners), a process starts with SIGINT
# ignored, and Python then never turns Ctrl-C into KeyboardInterrupt: restore it, then exec.
SIGINT_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def interrupted(
    argv: list[str], log: Path, ready: Callable[[], object], what: str, exit_within_s: float
) -> tuple[int, str]:
    """Run a command, Ctrl-C it once `ready`, and give its exit status and stderr.

    Killed (and the test failed by the timeout) when it does not exit within `exit_within_s`.
    """
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SIGINT_DEFAULT, *argv], stderr=err,
                                stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for(ready, what, 60)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(exit_within_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, log.read_text("utf-8")


def fill_disk(path: Path, leave: int) -> None:
    """Write a file that leaves `leave` bytes free (what is free may shrink meanwhile)."""
    st = os.statvfs(path.parent)
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    # The outbox may take some meanwhile: the disk is full all the same.
    with path.open("wb") as f, contextlib.suppress(OSError):
        f.write(b"\xff" * size)
