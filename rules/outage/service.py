"""`waystation rules`: the MQTT stream in, alerts out.

Threads: paho's network thread only parses messages and updates the
observations (under a lock); APScheduler runs the passes (detect → lifecycle
→ persist → notify) every `scan_every`, at once when an agent's will says it
died, and when a group's timer is due; each channel sends from its own
thread. The subscription is the service's own, not a shared one: every rules
instance sees every station.

On start: alerts and group timers come back from the state file, last-seen
times from InfluxDB, and the brokers' retained status messages say which
agents are offline. The first pass waits a moment for those retained
messages, so a restart raises no false alert and misses no outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as mqtt
from apscheduler.schedulers.background import BackgroundScheduler
from paho.mqtt.reasoncodes import ReasonCode

from rules.outage.alerts import AlertBook, AlertState, Transition
from rules.outage.channels.base import ChannelSender
from rules.outage.channels.factory import build_senders
from rules.outage.config import RulesConfig
from rules.outage.detect import Rule, detect
from rules.outage.messages import Renderer
from rules.outage.observations import Observations
from rules.outage.restore import restore_beliefs
from rules.outage.statedb import RulesState
from waystation.contract import (
    Channel,
    ContractError,
    parse_event,
    parse_readings,
    parse_status,
)
from waystation.contract import parse_topic as parse_contract_topic
from waystation.lineprotocol import encode_line
from waystation.mqttclient import new_client
from waystation.registry import Registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore, StoreError

__all__ = ["RulesService"]

log = logging.getLogger("waystation.rules")

SETTLE_S = 1.0  # after subscribing: time for the retained statuses to arrive
WARM_WINDOW = "72h"  # how far back warm-up looks (InfluxDB 3 reads at most ~72 h a query)
MAX_UNWRITTEN = 10_000  # alert points kept for InfluxDB while it is down


class RulesService:
    def __init__(
        self,
        mqtt_settings: MqttSettings,
        registry: Registry,
        config: RulesConfig,
        state_path: Path,
        *,
        store: InfluxStore | None = None,
        client_id: str = "waystation-rules",
        topic_filter: str = "stations/+/+/+",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.topic_filter = topic_filter
        self.clock = clock
        self.state = RulesState(state_path)
        self.renderer = Renderer(registry, config.language)
        self._mqtt_settings = mqtt_settings
        self._lock = threading.Lock()  # observations and the book
        self._pass_lock = threading.Lock()
        self._subscribed = threading.Event()
        self._unwritten: list[str] = []
        self.invalid_messages = 0
        self.passes = 0
        th = config.thresholds
        self.started_ms = self._now_ms()
        self.obs = Observations.from_registry(
            registry, th.silent_intervals, th.dispenser_min_temp_c, self.started_ms
        )
        self.book = AlertBook()
        self._client = new_client(mqtt_settings, client_id)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self.senders: list[ChannelSender] = build_senders(
            config.channels, self.renderer, self._client
        )
        self.scheduler = BackgroundScheduler(timezone=UTC)
        timing = config.timing
        self._pending_ms = {
            Rule.DEVICE_SILENT.value: _ms(th.station_window),
            **{rule: _ms(d) for rule, d in timing.pending_for.items()},
        }

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.book = self.state.load_book()
        self._warm_up()
        with self._lock:
            restore_beliefs(self.obs, self.book, self.config.thresholds)
        for sender in self.senders:
            sender.start()
        s = self._mqtt_settings
        self._client.connect_async(s.host, s.port, keepalive=15, clean_start=True)
        self._client.loop_start()
        every = self.config.timing.scan_every.total_seconds()
        self.scheduler.add_job(
            self.run_pass,
            "interval",
            seconds=every,
            id="scan",
            next_run_time=datetime.now(UTC) + timedelta(seconds=SETTLE_S + 1),
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self.record_stations,
            "interval",
            hours=1,
            id="stations",
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()

    def record_stations(self) -> None:
        """`station_info` (name, model, position) for the district map, refreshed hourly."""
        if self.store is None:
            return
        now = self._now_ms()
        lines = []
        for station_id, spec in self.registry.stations.items():
            fields: dict[str, str | float] = {"name": spec.name, "model": spec.model.value}
            if spec.location is not None:
                fields |= {"lat": spec.location.lat, "lon": spec.location.lon}
            lines.append(encode_line("station_info", {"station": station_id}, fields, now))
        try:
            self.store.write_lines(lines)
        except StoreError as exc:
            log.warning("station_info not written (%s); next hour", exc)

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)
        for sender in self.senders:
            sender.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self.state.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _warm_up(self) -> None:
        """Last-seen times from InfluxDB: a device silent since before the restart stays silent."""
        if self.store is None:
            return
        kinds = sorted({spec.kind.value for st in self.registry.stations.values()
                        for spec in st.devices.values()})  # fmt: skip
        last: dict[str, int] = {}
        try:
            for kind in kinds:
                query = (  # kinds come from the contract's enum
                    f'SELECT last("seq") FROM "{kind}" '  # noqa: S608
                    f'WHERE time > now() - {WARM_WINDOW} GROUP BY "device"'
                )
                for series in self.store.query(query):
                    device = series.tags.get("device")
                    if device and series.values:
                        last[device] = int(series.values[0][0])
        except StoreError as exc:
            log.warning("warm-up from InfluxDB failed (%s); devices count as seen now", exc)
            return
        with self._lock:
            self.obs.warm(last)
        log.info("warm-up: last-seen times of %d devices from InfluxDB", len(last))

    # --- MQTT (paho's thread: parse and record, nothing more) ----------------------------

    def _on_connect(
        self, client: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode, _props: Any
    ) -> None:
        if rc.is_failure:
            log.error("broker %s refused the rules service: %s", self._mqtt_settings, rc)
            return
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = parse_contract_topic(msg.topic)
            now = self._now_ms()
            if topic.channel is Channel.TELEMETRY:
                readings = parse_readings(bytes(msg.payload))
                with self._lock:
                    for r in readings:
                        self.obs.reading(topic.device, r.ts, r.data.model_dump())
            elif topic.channel is Channel.STATUS:
                if not msg.payload:
                    return  # a cleared retained status
                status = parse_status(bytes(msg.payload))
                online = status.state.value == "online"
                with self._lock:
                    self.obs.status(topic.device, online, now)
                if not online:
                    self._pass_now()  # an agent's will: at once, not at the next scan
            else:
                event = parse_event(bytes(msg.payload))
                with self._lock:
                    self.obs.event(topic.device, event.type, event.detail)
        except ContractError as exc:
            self.invalid_messages += 1  # ingest dead-letters these; rules only skip them
            log.debug("skipping %s: %s", msg.topic, exc)

    def _pass_now(self) -> None:
        if self.scheduler.running:
            self.scheduler.add_job(
                self.run_pass, "date", id="now", replace_existing=True, misfire_grace_time=60
            )

    # --- a pass ------------------------------------------------------------------------

    def run_pass(self) -> None:
        """Detect, update the alerts, persist, notify; schedule the next group that falls due."""
        with self._pass_lock:
            now = self._now_ms()
            timing = self.config.timing
            wait, interval, repeat = (
                _ms(timing.group_wait),
                _ms(timing.group_interval),
                _ms(timing.repeat_interval),
            )
            silenced = self.state.silenced_stations(now)
            with self._lock:
                conditions = detect(self.obs, self.registry, self.config.thresholds, now)
                transitions = self.book.update(
                    conditions, now, self._pending_ms, silenced.__contains__
                )
                notices = self.book.due(now, wait, interval, repeat)
                self.state.save(self.book)
                next_due = self.book.next_due_ms(wait, interval, repeat)
            self.passes += 1
            for sender in self.senders:
                sender.submit(notices)
            self._record(transitions)
            if next_due is not None and next_due - now < _ms(timing.scan_every):
                at = datetime.fromtimestamp(max(next_due, now + 10) / 1000, UTC)
                self.scheduler.add_job(
                    self.run_pass, "date", run_date=at, id="due", replace_existing=True
                )

    def _record(self, transitions: list[Transition]) -> None:
        """The `alert` measurement, for Grafana's annotations and history."""
        for t in transitions:
            a = t.alert
            self._unwritten.append(
                encode_line(
                    "alert",
                    {"station": a.station, "device": a.device or "-", "rule": a.rule.value},
                    {
                        "state": t.state.value,
                        "active": int(t.state is AlertState.FIRING),
                        "severity": a.severity,
                        "message": self.renderer.alert_line(a),
                    },
                    t.at_ms,
                )
            )
        if not self._unwritten or self.store is None:
            self._unwritten.clear()
            return
        try:
            self.store.write_lines(self._unwritten)
            self._unwritten.clear()
        except StoreError as exc:
            del self._unwritten[:-MAX_UNWRITTEN]
            log.warning("alert history not written yet (%s); will retry", exc)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)
