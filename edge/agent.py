"""The edge agent: reads a station's devices on their intervals and publishes them.

Threading model: paho's network thread (connect, reconnect, PUBACKs) plus one
loop thread here that wakes when the next device is due. The loop never blocks
on the network: `publish` only queues the message in paho; paho keeps QoS 1
messages that were not acknowledged and re-sends them after a reconnect.
(The disk outbox that survives a power cut sits in front of this; see SPEC §6.)
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.simulation import StationSimulation
from waystation import __version__
from waystation.contract import CONTRACT_VERSION, TS_MIN_MS, Channel
from waystation.mqttclient import new_client
from waystation.registry import Registry
from waystation.settings import MqttSettings

__all__ = ["AgentError", "EdgeAgent", "agent_device_of"]

log = logging.getLogger(__name__)

AGENT_NAME = f"waystation-edge/{__version__}"
# paho holds at most this many unacknowledged messages in memory; past it
# `publish` reports the queue full and the reading is counted as dropped.
MAX_QUEUED_MESSAGES = 10_000


class AgentError(RuntimeError):
    """The agent cannot run with this configuration."""


def agent_device_of(registry: Registry, station_id: str) -> str:
    """The station's gateway device: the agent's own identity on the broker."""
    station = registry.stations.get(station_id)
    if station is None:
        raise AgentError(f"station {station_id!r} is not in the registry")
    gateways = [d for d, s in station.devices.items() if s.kind == "gateway"]
    if len(gateways) != 1:
        raise AgentError(
            f"station {station_id!r} needs exactly one `kind: gateway` device for the agent "
            f"(found {len(gateways)})"
        )
    return gateways[0]


@dataclass
class AgentStats:
    published: int = 0
    acked: int = 0
    dropped: int = 0
    held_for_clock: int = 0


def _topic(station: str, device: str, channel: Channel) -> str:
    return f"stations/{station}/{device}/{channel}"


class EdgeAgent:
    """Publishes one station's simulated devices.

    A context manager: enter connects, exit says `offline` and disconnects.
    """

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        registry: Registry,
        station_id: str,
        *,
        interval_override: timedelta | None = None,
        seed: int = 0,
        warmup: timedelta = timedelta(days=1),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.station_id = station_id
        self.agent_device = agent_device_of(registry, station_id)
        station = registry.stations[station_id]
        self.devices = station.devices
        self._intervals = {
            d: (interval_override or s.interval).total_seconds() for d, s in self.devices.items()
        }
        self._clock = clock
        # The simulation starts `warmup` ago, so the first readings already carry
        # a day's worth of visits, water and energy rather than zeros.
        self.sim = StationSimulation(
            dict(self.devices),
            self._now() - warmup,
            registry.station_timezone(station_id),
            seed=seed,
        )
        # seq must grow strictly across restarts: start from the clock in ms.
        # A device reports at most once a second, so a later start always begins
        # above everything an earlier run can have used.
        self._seq = {d: int(clock() * 1000) for d in self.devices}
        self.stats = AgentStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._client = new_client(mqtt_settings, client_id=f"edge-{self.agent_device}")
        self._client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        self._client.will_set(
            self._status_topic, self._status_payload("offline"), qos=1, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._mqtt_settings = mqtt_settings

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    @property
    def _status_topic(self) -> str:
        return _topic(self.station_id, self.agent_device, Channel.STATUS)

    def _status_payload(self, state: str) -> str:
        ts = max(int(self._clock() * 1000), TS_MIN_MS)
        return json.dumps({"v": CONTRACT_VERSION, "ts": ts, "state": state, "agent": AGENT_NAME})

    # --- paho callbacks (network thread) -------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode, _props: Properties | None
    ) -> None:
        if rc.is_failure:
            log.warning("broker %s refused the agent: %s", self._mqtt_settings, rc)
            return
        log.info("agent %s connected to %s", self.agent_device, self._mqtt_settings)
        client.publish(self._status_topic, self._status_payload("online"), qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode, _props: Properties | None
    ) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("agent %s lost the broker (%s); paho reconnects", self.agent_device, rc)
        self._connected.clear()

    def _on_publish(
        self, _c: mqtt.Client, _ud: Any, _mid: int, _rc: ReasonCode, _props: Properties
    ) -> None:
        self.stats.acked += 1

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        s = self._mqtt_settings
        self._client.connect_async(s.host, s.port, keepalive=15)
        self._client.loop_start()
        self._thread = threading.Thread(
            target=self._run, name=f"edge-{self.station_id}", daemon=True
        )
        self._thread.start()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        """Orderly shutdown: stop reading, say `offline` (retained), disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._connected.is_set():
            info = self._client.publish(
                self._status_topic, self._status_payload("offline"), qos=1, retain=True
            )
            info.wait_for_publish(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- reading loop ---------------------------------------------------------------

    def _run(self) -> None:
        start = self._clock()
        due = [(start, device) for device in sorted(self.devices)]
        heapq.heapify(due)
        clock_warned = False
        while not self._stop.is_set():
            at, device = due[0]
            wait = at - self._clock()
            if wait > 0:
                self._stop.wait(min(wait, 1.0))
                continue
            heapq.heapreplace(due, (at + self._intervals[device], device))
            if self._clock() * 1000 < TS_MIN_MS:
                # No RTC and no NTP yet: a 1970 timestamp would be dead-lettered
                # by ingest anyway. Skip until the clock is plausible.
                if not clock_warned:
                    log.warning("clock not synchronised (%s); holding readings", self._now())
                    clock_warned = True
                self.stats.held_for_clock += 1
                continue
            try:
                self.publish_reading(device)
            except Exception:
                # A task boundary: one failing device must not stop the others.
                log.exception("reading device %s failed", device)

    def publish_reading(self, device: str) -> None:
        now = self._now()
        self.sim.advance_to(now)
        self._seq[device] += 1
        reading = {
            "v": CONTRACT_VERSION,
            "kind": str(self.devices[device].kind),
            "ts": int(now.timestamp() * 1000),
            "seq": self._seq[device],
            "data": self.sim.data(device, outbox_dropped=self.stats.dropped),
        }
        info = self._client.publish(
            _topic(self.station_id, device, Channel.TELEMETRY), json.dumps(reading), qos=1
        )
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.stats.dropped += 1
        else:
            self.stats.published += 1
