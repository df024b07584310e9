"""The edge agent: devices → outbox (disk) → MQTT, with nothing lost in between.

The agent composes three parts, each with its own thread(s):
- the pollers (`edge.pollers`): one thread per device reads it, checks the
  reading against the contract and puts it in the outbox; they report each
  device's status and reachability events;
- the publisher (`edge.publisher`): drains the outbox oldest first, keeps a
  bounded window of messages in flight, and deletes readings only on the
  broker's successful PUBACK; a refusal keeps them;
- the backfill (`edge.backfill`): the station's simulation, and the history a
  `--backfill` simulates into the outbox before the agent starts;
and the MQTT session (`waystation.mqttsession`, the one place connecting and
reconnecting happen), whose network thread re-sends unacknowledged messages
after a reconnect and hands acknowledgements to the publisher. The agent
itself publishes its own status: `online` on each connect, `offline` on an
orderly stop and, as its will, when the broker loses it.

After a crash the outbox still holds every unacknowledged reading and the
publisher starts again from its oldest; the few messages that were in flight
may arrive twice, which ingest absorbs (same point, same identity).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Self

from edge.backfill import Backfill, BackfillInterrupted, BackfillTooLarge, station_simulation
from edge.config import AgentConfig
from edge.drivers import DriverSite, build_driver
from edge.outbox import Outbox
from edge.pollers import Pollers
from edge.publisher import Publisher
from edge.stats import AgentStats
from edge.status import AGENT_NAME, status_payload
from waystation.contract import Channel, StatusState, device_topic
from waystation.mqttsession import SessionCallbacks, SessionOptions, Will, open_session
from waystation.settings import MqttSettings, MqttVersion

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

__all__ = ["AGENT_NAME", "BackfillInterrupted", "BackfillTooLarge", "EdgeAgent"]

log = logging.getLogger(__name__)

STOP_DRAIN_S = 5.0  # on an orderly stop, time given to publish what is left
STATUS_DRAIN_S = 5.0  # then for the broker to acknowledge the `offline` status


class EdgeAgent:
    """One station's agent. A context manager: enter connects and starts, exit stops cleanly."""

    def __init__(
        self,
        config: AgentConfig,
        mqtt_settings: MqttSettings,
        *,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        warmup: timedelta = timedelta(days=1),
        backfill: timedelta | None = None,
        backfill_step: timedelta = timedelta(minutes=1),
        progress: Callable[[int, int], None] | None = None,
        mqtt_version: MqttVersion = MqttVersion.V5,
    ) -> None:
        self.config = config
        self.station_id = config.station
        self.agent_device = config.agent_device
        self.devices = config.devices
        self.stats = AgentStats()
        self._clock = clock
        self._progress = progress
        self.outbox = Outbox(
            config.outbox.path,
            max_readings=config.outbox.max_readings,
            max_age=config.outbox.max_age,
            clock=clock,
        )
        try:
            self._backfill = (
                None
                if backfill is None
                else Backfill(config, self.outbox, backfill, backfill_step, clock)
            )
        except ValueError:  # BackfillTooLarge among them: nothing was started
            self.outbox.close()
            raise
        start = datetime.fromtimestamp(clock(), tz=UTC) - warmup - (backfill or timedelta(0))
        self.simulation = station_simulation(config, start, seed)
        drivers = {
            device: build_driver(spec.driver, DriverSite(device, self.simulation))
            for device, spec in config.devices.items()
        }
        self._session = open_session(
            mqtt_settings,
            SessionOptions(
                client_id=f"edge-{self.agent_device}",
                label=f"agent {self.agent_device}",
                version=mqtt_version,
                will=Will(topic=self._status_topic, payload=self._status(StatusState.OFFLINE)),
            ),
            SessionCallbacks(
                on_connected=self._on_connect,
                on_disconnected=self._on_disconnect,
                on_published=self._on_published,
            ),
        )
        self._publisher = Publisher(config, self.outbox, self._session, self.stats, clock)
        self._pollers = Pollers(
            config, drivers, self.outbox, self._session, self.stats,
            clock=clock, on_reading=self._publisher.wake,
        )  # fmt: skip

    @property
    def _status_topic(self) -> str:
        return device_topic(self.station_id, self.agent_device, Channel.STATUS)

    def _status(self, state: StatusState) -> str:
        return status_payload(state, self._clock)

    # --- session callbacks (network thread) -----------------------------------------------

    def _on_connect(self, _session_present: bool) -> None:
        self._session.publish(
            self._status_topic, self._status(StatusState.ONLINE), qos=1, retain=True
        )
        self._pollers.publish_states()
        self._publisher.wake()

    def _on_disconnect(self) -> None:
        if not self._publisher.stopping:
            log.info("agent %s: readings wait in the outbox (%d)", self.agent_device,
                     self.outbox.depth)  # fmt: skip

    def _on_published(self, mid: int, reason: int) -> None:
        self._publisher.on_published(mid, reason)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._backfill is not None:
            assert self.simulation is not None  # noqa: S101 - every device is simulated
            try:
                self._backfill.run(self.simulation, self._progress)
            except BackfillInterrupted:
                self.outbox.close()
                raise
        self._session.start()
        self._publisher.start()
        self._pollers.start()

    def interrupt_backfill(self) -> None:
        """Stop simulating history (from a signal handler): what is stored so far stays."""
        if self._backfill is not None:
            self._backfill.interrupt()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._session.wait_connected(timeout_s)

    def stop(self, drain_s: float = STOP_DRAIN_S) -> None:
        """Orderly stop: stop reading, publish what is left (briefly), say offline, disconnect."""
        self._pollers.stop()
        self._publisher.stop(drain_s)
        if self._session.connected:
            self._session.publish(
                self._status_topic, self._status(StatusState.OFFLINE), qos=1, retain=True
            )
        self._session.stop(drain_s=STATUS_DRAIN_S)
        self.outbox.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what tests, /healthz, /readyz and /metrics read (any thread) ----------------------

    @property
    def connected(self) -> bool:
        return self._session.connected

    @property
    def last_connected_at(self) -> float | None:
        """Epoch seconds of the last (re)connect to the broker, None before the first."""
        return self._session.last_connected_at

    @property
    def connects(self) -> int:
        return self._session.connects

    def device_state(self, device: str) -> StatusState | None:
        return self._pollers.device_state(device)

    @property
    def unreachable_devices(self) -> int:
        return self._pollers.unreachable

    @property
    def alive(self) -> bool:
        return self._publisher.alive

    @property
    def ready(self) -> bool:
        return self.alive and self._session.connected

    @property
    def collector(self) -> Collector:
        from edge.metrics import AgentCollector  # noqa: PLC0415 - only with a health port

        return AgentCollector(self)
