"""The edge agent: devices → outbox (disk) → MQTT, with nothing lost in between.

Threads, each with one job:
- one poller per device reads it on its interval, checks the reading against
  the contract and puts it in the outbox (a slow or dead device delays only
  itself);
- the publisher drains the outbox oldest first, as arrays of one device's
  readings, keeps a bounded number of messages in flight, and deletes rows
  only when the broker's PUBACK for their message arrives with a success
  code; it also writes the gateway's own readings and expires readings past
  the outbox's age bound;
- the MQTT session's network thread (`waystation.mqttsession`, the one place
  connecting and reconnecting happen) re-sends unacknowledged messages after
  a reconnect.
The network thread never touches SQLite: it hands packet ids to the publisher.

After a crash the outbox still holds every unacknowledged reading and the
publisher starts again from its oldest; the few messages that were in flight
may arrive twice, which ingest absorbs (same point, same identity).

A refusal is not a delivery (SPEC §6): MQTT 5 PUBACKs carry a reason code,
and one >= 0x80 (not authorised after a swap of SD cards, quota exceeded, ...)
leaves the message's readings in the outbox. The publisher then backs off
(doubling, capped), says why once per cause at WARNING and in the gateway's
readings, and sends again from the oldest reading still in the outbox. MQTT
3.1.1 has no reason codes: Mosquitto acknowledges a refused publish like any
other, so a 3.1.1 agent cannot tell (hence MQTT 5 by default).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, Self
from zoneinfo import ZoneInfo

from edge.config import AgentConfig, DeviceConfig
from edge.drivers import Driver, DriverError, DriverSite, build_driver
from edge.drivers.simulator.config import SimulatorConfig
from edge.drivers.simulator.driver import SharedSimulation
from edge.outbox import Outbox, OutboxRow
from edge.simulation import StationSimulation
from waystation import __version__
from waystation.contract import (
    TS_MIN_MS,
    Channel,
    ContractError,
    EventType,
    Kind,
    StatusState,
    device_topic,
    event_json,
    readings_array,
    status_json,
    validate_data,
)
from waystation.durations import format_duration
from waystation.mqttreasons import is_failure, reason_name
from waystation.mqttsession import (
    PublishRefused,
    SessionCallbacks,
    SessionOptions,
    Will,
    open_session,
)
from waystation.registry import DeviceSpec, Utility
from waystation.settings import MqttSettings, MqttVersion

__all__ = ["AGENT_NAME", "BackfillInterrupted", "BackfillTooLarge", "EdgeAgent"]

log = logging.getLogger(__name__)

AGENT_NAME = f"waystation-edge/{__version__}"
PUBLISH_TICK_S = 0.05  # the publisher's idle wake-up; it is also woken on every new reading
EXPIRE_EVERY_S = 60.0
STOP_DRAIN_S = 5.0  # on an orderly stop, time given to publish what is left
STATUS_DRAIN_S = 5.0  # then for the broker to acknowledge the `offline` status
BACKFILL_CHUNK = 10_000  # readings per outbox transaction while backfilling
# After the broker refused readings, wait this long before sending again, doubling
# up to the cap while refusals go on: a wrong credential costs little, and a fixed
# one is noticed within a minute.
REFUSED_BACKOFF_MIN_S = 1.0
REFUSED_BACKOFF_MAX_S = 60.0


class BackfillTooLarge(ValueError):
    """The outbox cannot hold the history asked for: said before anything is simulated."""


class BackfillInterrupted(Exception):
    """Stopped (Ctrl-C, SIGTERM) while simulating history; what was kept is in the message."""

    def __init__(self, message: str, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass
class AgentStats:
    readings: int = 0
    held_for_clock: int = 0
    read_failures: int = 0
    invalid_readings: int = 0
    messages_published: int = 0
    readings_acked: int = 0
    readings_refused: int = 0  # by the broker (PUBACK reason >= 0x80); kept in the outbox


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
        self._mqtt_settings = mqtt_settings
        self._started = clock()
        self.outbox = Outbox(
            config.outbox.path,
            max_readings=config.outbox.max_readings,
            max_age=config.outbox.max_age,
            clock=clock,
        )
        if backfill is not None and any(
            not isinstance(d.driver, SimulatorConfig) for d in config.devices.values()
        ):
            self.outbox.close()
            raise ValueError(
                "backfill simulates history: every device must use the simulator | "
                "回填是模拟历史数据：所有设备都必须用 simulator 驱动"
            )
        if backfill is not None:
            self._check_backfill_fits(backfill, backfill_step)
        self._backfill = backfill
        self._backfill_step = backfill_step
        self._backfill_stop = threading.Event()
        self._progress = progress
        # With a backfill, the one simulation starts before it, so the live
        # readings continue the simulated history (registers never step back).
        self.simulation = self._simulation(seed, warmup + (backfill or timedelta(0)))
        self._drivers: dict[str, Driver] = {
            device: self._driver(device, spec) for device, spec in config.devices.items()
        }
        self._states: dict[str, StatusState] = {}
        self._state_lock = threading.Lock()
        self._event_seq = int(clock() * 1000)
        # publisher state: packet id -> outbox row ids, and the acks paho handed over
        self._inflight: dict[int, list[int]] = {}
        self._acked: deque[tuple[int, int]] = deque()
        self._cursor = 0
        self._refusal = _Refusals()
        self._wake = threading.Event()
        self._stop_polling = threading.Event()
        self._stop_publishing = threading.Event()
        self._session = open_session(
            mqtt_settings,
            SessionOptions(
                client_id=f"edge-{self.agent_device}",
                label=f"agent {self.agent_device}",
                version=mqtt_version,
                will=Will(
                    topic=device_topic(self.station_id, self.agent_device, Channel.STATUS),
                    payload=self._status_payload(StatusState.OFFLINE),
                ),
            ),
            SessionCallbacks(
                on_connected=self._on_connect,
                on_disconnected=self._on_disconnect,
                on_published=self._on_publish,
            ),
        )
        self._threads = [
            threading.Thread(target=self._poll, args=(d,), name=f"poll-{d}", daemon=True)
            for d in config.devices
        ]
        self._publisher = threading.Thread(target=self._publish_loop, name="publisher", daemon=True)

    # --- construction helpers ---------------------------------------------------------

    def _simulation(self, seed: int, warmup: timedelta) -> SharedSimulation | None:
        simulated = {
            d: s for d, s in self.config.devices.items() if isinstance(s.driver, SimulatorConfig)
        }
        if not simulated:
            return None
        specs = {
            d: DeviceSpec(
                kind=s.kind,
                utility=(s.utility or Utility.ELECTRICITY) if s.kind is Kind.METER else None,
                role=s.role,
                tou_registers=s.tou_registers,
            )
            for d, s in simulated.items()
        }
        start = datetime.fromtimestamp(self._clock(), tz=UTC) - warmup
        sim = StationSimulation(specs, start, ZoneInfo(self.config.timezone), seed=seed)
        return SharedSimulation(sim)

    def _driver(self, device: str, spec: DeviceConfig) -> Driver:
        return build_driver(spec.driver, DriverSite(device, self.simulation))

    def _status_payload(self, state: StatusState) -> str:
        return status_json(state, max(int(self._clock() * 1000), TS_MIN_MS), AGENT_NAME)

    # --- session callbacks (network thread) -----------------------------------------------

    def _on_connect(self, _session_present: bool) -> None:
        self._session.publish(
            device_topic(self.station_id, self.agent_device, Channel.STATUS),
            self._status_payload(StatusState.ONLINE),
            qos=1,
            retain=True,
        )
        with self._state_lock:
            states = dict(self._states)
        for device, state in states.items():  # retained device states, in case they changed offline
            self._session.publish(
                device_topic(self.station_id, device, Channel.STATUS),
                self._status_payload(state),
                qos=1,
                retain=True,
            )
        self._wake.set()

    def _on_disconnect(self) -> None:
        if not self._stop_publishing.is_set():
            log.info("agent %s: readings wait in the outbox (%d)", self.agent_device,
                     self.outbox.depth)  # fmt: skip

    def _on_publish(self, mid: int, reason: int) -> None:
        self._acked.append((mid, reason))
        self._wake.set()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._backfill is not None:
            self._run_backfill(self._backfill)  # BackfillInterrupted: the outbox is closed
        self._session.start()
        self._publisher.start()
        for t in self._threads:
            t.start()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._session.wait_connected(timeout_s)

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

    @property
    def unreachable_devices(self) -> int:
        with self._state_lock:
            return sum(1 for s in self._states.values() if s is StatusState.OFFLINE)

    # --- what /healthz, /readyz and /metrics read (HTTP thread) ---------------------------

    @property
    def alive(self) -> bool:
        return self._publisher.is_alive()

    @property
    def ready(self) -> bool:
        return self.alive and self._session.connected

    def metrics_text(self) -> str:
        from edge.metrics import render_metrics  # noqa: PLC0415 - only with a health port

        return render_metrics(self)

    def stop(self, drain_s: float = STOP_DRAIN_S) -> None:
        """Orderly stop: stop reading, publish what is left (briefly), say offline, disconnect."""
        self._stop_polling.set()
        for t in self._threads:
            t.join()
        deadline = time.monotonic() + drain_s
        while (
            self._session.connected
            and time.monotonic() < deadline
            and (self.outbox.depth or self._inflight)
        ):
            self._wake.set()
            time.sleep(PUBLISH_TICK_S)
        self._stop_publishing.set()
        self._wake.set()
        self._publisher.join()
        if self._session.connected:
            self._session.publish(
                device_topic(self.station_id, self.agent_device, Channel.STATUS),
                self._status_payload(StatusState.OFFLINE),
                qos=1,
                retain=True,
            )
        self._session.stop(drain_s=STATUS_DRAIN_S)
        for driver in self._drivers.values():
            driver.close()
        self.outbox.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- backfill -----------------------------------------------------------------------------

    def _check_backfill_fits(self, span: timedelta, step: timedelta) -> None:
        """Refuse, before simulating anything, a history the outbox would drop part of."""
        needed = int(span / step) * len(self.devices)
        depth = self.outbox.depth
        bounds = self.config.outbox
        if needed + depth <= bounds.max_readings and span < bounds.max_age:
            return
        size = max(bounds.max_readings, needed + depth + needed // 10)
        age = max(bounds.max_age, span + timedelta(days=1))
        days = f"{math.ceil(age.total_seconds() / 86400)}d"
        self.outbox.close()
        span_, step_ = format_duration(span), format_duration(step)
        most = f"{bounds.max_readings:,} readings and {format_duration(bounds.max_age)}"
        raise BackfillTooLarge(
            f"the outbox cannot hold {span_} of history: {needed:,} readings "
            f"({len(self.devices)} devices every {step_}) on top of the {depth:,} it holds, "
            f"where it keeps at most {most}; "
            f"the oldest would be dropped. Size it: --outbox-max-readings {size} "
            f"--outbox-max-age {days} (or `outbox:` in the agent config), or backfill less "
            f"(--backfill) or more coarsely (--backfill-step) | "
            f"发件箱装不下 {span_} 的历史：需要 {needed:,} 条读数（另有已存 {depth:,} 条），"
            f"而它最多保留 {bounds.max_readings:,} 条、{format_duration(bounds.max_age)}，"
            "最早的会被丢弃。"
            f"请加大：--outbox-max-readings {size} --outbox-max-age {days}"
            "（或代理配置中的 `outbox:`），或缩短 --backfill、加大 --backfill-step"
        )

    def _run_backfill(self, span: timedelta) -> None:
        """Simulate `span` of history into the outbox; the publisher replays it as arrays."""
        assert self.simulation is not None  # noqa: S101 - checked in __init__
        sim = self.simulation.sim
        end = datetime.fromtimestamp(self._clock(), tz=UTC)
        start = t = end - span
        total = int(span / self._backfill_step)
        batch: list[tuple[str, str, int, dict[str, Any]]] = []
        before = self.outbox.depth
        try:
            for n in range(total):
                if self._backfill_stop.is_set():
                    break
                sim.advance_to(t)
                ts = int(t.timestamp() * 1000)
                batch += [(d, str(s.kind), ts, sim.data(d)) for d, s in self.devices.items()]
                if len(batch) >= BACKFILL_CHUNK:
                    self.outbox.put_many(batch)
                    batch = []
                    if self._progress is not None:
                        self._progress(n + 1, total)
                t += self._backfill_step
            self.outbox.put_many(batch)
        except KeyboardInterrupt:
            self._backfill_stop.set()  # no handler installed: Python's own Ctrl-C
        if self._backfill_stop.is_set():
            kept = self.outbox.depth - before
            raise self._interrupted(kept, total * len(self.devices), start, t)
        if self._progress is not None:
            self._progress(total, total)
        log.info(
            "backfilled %s of %s: %d readings into the outbox, which holds %d (%d dropped "
            "so far)", span, self.station_id, total * len(self.devices), self.outbox.depth,
            self.outbox.dropped_total,
        )  # fmt: skip

    def interrupt_backfill(self) -> None:
        """Stop simulating history (from a signal handler): what is stored so far stays."""
        self._backfill_stop.set()

    def _interrupted(
        self, kept: int, total: int, start: datetime, reached: datetime
    ) -> BackfillInterrupted:
        """What an interrupted backfill kept (whole chunks, in order from the start)."""
        tz = ZoneInfo(self.config.timezone)
        self.outbox.close()
        since = start.astimezone(tz).isoformat(timespec="minutes")
        until = reached.astimezone(tz).isoformat(timespec="minutes")
        return BackfillInterrupted(
            f"backfill interrupted: {kept:,} of {total:,} readings kept in the outbox "
            f"{self.config.outbox.path} (history from {since}, stopped near {until}); "
            "nothing was published. Start the agent without --backfill to publish them, "
            "or again with --backfill to simulate the whole span anew | "
            f"回填被中断：{total:,} 条中已有 {kept:,} 条存入发件箱 {self.config.outbox.path}"
            f"（从 {since} 起，停在 {until} 附近），尚未发布。"
            "不带 --backfill 启动代理即可发布它们，或带 --backfill 重新模拟整段历史",
            kept,
        )

    # --- pollers ------------------------------------------------------------------------------

    def _poll(self, device: str) -> None:
        spec = self.devices[device]
        interval = spec.interval.total_seconds()
        due = self._clock()
        clock_warned = False
        while not self._stop_polling.is_set():
            wait = due - self._clock()
            if wait > 0:
                self._stop_polling.wait(min(wait, 1.0))
                continue
            due = max(due + interval, self._clock())  # after a stall, no burst of catch-up reads
            now = self._clock()
            if now * 1000 < TS_MIN_MS:
                # No RTC and no NTP yet: a 1970 timestamp would be refused downstream.
                if not clock_warned:
                    log.warning(
                        "clock not synchronised (%s); holding readings",
                        datetime.fromtimestamp(now, UTC),
                    )
                    clock_warned = True
                self.stats.held_for_clock += 1
                continue
            try:
                self.read_device(device, now)
            except Exception:  # a task boundary: this device's thread must go on
                log.exception("device %s: unexpected error", device)

    def read_device(self, device: str, now: float) -> None:
        """Read once, check, store; on failure report the device unreachable."""
        spec = self.devices[device]
        try:
            data = validate_data(
                spec.kind, self._drivers[device].read(datetime.fromtimestamp(now, UTC))
            )
        except DriverError as exc:
            self.stats.read_failures += 1
            self._set_state(device, StatusState.OFFLINE, {"reason": str(exc)})
            return
        except ContractError as exc:
            self.stats.invalid_readings += 1
            self._set_state(
                device, StatusState.OFFLINE, {"reason": f"invalid reading: {exc.reason}"}
            )
            return
        self.outbox.put(device, str(spec.kind), int(now * 1000), data)
        self.stats.readings += 1
        self._set_state(device, StatusState.ONLINE, {})
        self._wake.set()

    def _set_state(self, device: str, state: StatusState, detail: dict[str, Any]) -> None:
        with self._state_lock:
            before = self._states.get(device)
            if before is state:
                return
            self._states[device] = state
            self._event_seq += 1
            seq = self._event_seq
        if state is StatusState.OFFLINE:
            log.warning("device %s unreachable: %s", device, detail.get("reason"))
        elif before is not None:
            log.warning("device %s is back", device)
        if not self._session.connected:
            return  # _on_connect publishes the current states
        ts = int(self._clock() * 1000)
        self._session.publish(
            device_topic(self.station_id, device, Channel.STATUS),
            self._status_payload(state),
            qos=1,
            retain=True,
        )
        kind = EventType.UNREACHABLE if state is StatusState.OFFLINE else EventType.REACHABLE
        self._session.publish(
            device_topic(self.station_id, device, Channel.EVENT),
            event_json(ts, seq, kind, detail),
            qos=1,
        )

    def device_state(self, device: str) -> StatusState | None:
        with self._state_lock:
            return self._states.get(device)

    # --- publisher ------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        next_gateway = self._clock()
        next_expire = time.monotonic() + EXPIRE_EVERY_S
        while not self._stop_publishing.is_set():
            self._wake.wait(PUBLISH_TICK_S)
            self._wake.clear()
            try:
                self._apply_acks()
                if self._clock() >= next_gateway:
                    next_gateway = self._clock() + self.config.gateway_interval.total_seconds()
                    self._gateway_reading()
                if time.monotonic() >= next_expire:
                    next_expire = time.monotonic() + EXPIRE_EVERY_S
                    self.outbox.expire()
                if self._session.connected:
                    self._publish_some()
            except Exception:  # a task boundary: the publisher must go on
                log.exception("publisher error")
        self._apply_acks()

    def _gateway_reading(self) -> None:
        now = self._clock()
        if now * 1000 < TS_MIN_MS:
            return
        data: dict[str, Any] = {
            "uptime_s": round(now - self._started, 1),
            "outbox_depth": self.outbox.depth,
            "outbox_dropped_total": self.outbox.dropped_total,
        }
        if self.stats.readings_refused:  # only then: earlier ingest versions know no such field
            data["broker_refused_total"] = self.stats.readings_refused
            if self._refusal.reason is not None:
                data["broker_refused_reason"] = self._refusal.reason
        self.outbox.put(self.agent_device, "gateway", int(now * 1000), data)

    def _apply_acks(self) -> None:
        ids: list[int] = []
        refused: list[tuple[list[int], int]] = []
        while self._acked:
            mid, rc = self._acked.popleft()
            rows = self._inflight.pop(mid, [])
            if is_failure(rc):
                if rows:
                    refused.append((rows, rc))
            else:
                ids += rows
        if ids:
            self.outbox.delete(ids)
            self.stats.readings_acked += len(ids)
        for rows, rc in refused:
            self.stats.readings_refused += len(rows)
            delay = self._refusal.refused(rc)
            if delay is not None:  # a new cause: said once, until the broker takes readings again
                log.warning(
                    "agent %s: the broker refused %d readings: %s; "
                    "they stay in the outbox, sending again in %.0f s",
                    self.agent_device, len(rows), reason_name(rc), delay,
                )  # fmt: skip
        if ids and not refused and self._refusal.accepted():
            log.warning("agent %s: the broker takes readings again", self.agent_device)

    def _publish_some(self) -> None:
        """Fill the in-flight window with the oldest unsent readings, one device per message."""
        if self._refusal.waiting():
            return
        if self._refusal.resend and not self._inflight:
            # Everything the broker took is deleted: from the oldest left, refused ones first.
            self._cursor = 0
            self._refusal.resend = False
        ob = self.config.outbox
        free = ob.inflight_messages - len(self._inflight)
        if free <= 0:
            return
        rows = self.outbox.after(self._cursor, free * ob.batch_readings)
        if not rows:
            return
        # Group by device in arrival order; a device's readings stay in order.
        by_device: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_device.setdefault(row.device, []).append(row)
        for device, device_rows in by_device.items():
            for _, chunk_iter in groupby(
                enumerate(device_rows), key=lambda e: e[0] // ob.batch_readings
            ):
                chunk = [r for _, r in chunk_iter]
                payload = readings_array([r.payload for r in chunk])
                try:
                    mid = self._session.publish(
                        device_topic(self.station_id, device, Channel.TELEMETRY), payload, qos=1
                    )
                except PublishRefused as exc:  # queued messages are sent after reconnecting
                    log.warning("publish refused (%s); retrying later", exc)
                    return
                self._inflight[mid] = [r.id for r in chunk]
                self.stats.messages_published += 1
        self._cursor = rows[-1].id


class _Refusals:
    """The publisher's view of broker refusals: backoff, causes said once, what to resend."""

    def __init__(self) -> None:
        self.delay_s = REFUSED_BACKOFF_MIN_S
        self.until = 0.0  # monotonic time before which nothing is sent
        self.resend = False  # send again from the oldest reading in the outbox
        self.reason: str | None = None  # the latest refusal's, until the broker takes readings
        self._said: set[int] = set()

    def refused(self, rc: int) -> float | None:
        """Back off; return the delay if this cause is new (to be said), else None."""
        delay = self.delay_s
        if not self.waiting():  # the first refusal of a round; the others share its wait
            self.until = time.monotonic() + delay
            self.delay_s = min(self.delay_s * 2, REFUSED_BACKOFF_MAX_S)
        self.resend = True
        self.reason = reason_name(rc)
        if rc in self._said:
            return None
        self._said.add(rc)
        return delay

    def waiting(self) -> bool:
        return time.monotonic() < self.until

    def accepted(self) -> bool:
        """The broker took readings; True when that ends a time of refusals (to be said)."""
        ended = bool(self._said)
        self._said.clear()
        self.delay_s = REFUSED_BACKOFF_MIN_S
        self.reason = None
        return ended
