"""The pollers: a thread per device reads it on its interval, checks the reading, stores it.

A slow or dead device delays only its own thread. A reading is checked
against the contract before it enters the outbox, so a misconfigured
register map is caught at the station. Whether a device answers is its
status (retained, `online` / `offline`) and each change an event
(`unreachable` / `reachable`), published at once when connected and again
after every (re)connect, in case they changed while offline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge.config import AgentConfig
from edge.drivers import Driver, DriverError
from edge.outbox import Outbox
from edge.stats import AgentStats
from edge.status import status_payload
from waystation.contract import (
    TS_MIN_MS,
    Channel,
    ContractError,
    EventType,
    StatusState,
    device_topic,
    event_json,
    validate_data,
)
from waystation.logthrottle import Repeats
from waystation.mqttsession import MqttSession

__all__ = ["Pollers"]

log = logging.getLogger("edge.agent")


class Pollers:
    """One thread per device, and the devices' statuses. Start once, stop once."""

    def __init__(
        self,
        config: AgentConfig,
        drivers: dict[str, Driver],
        outbox: Outbox,
        session: MqttSession,
        stats: AgentStats,
        *,
        clock: Callable[[], float],
        on_reading: Callable[[], None],
    ) -> None:
        self.config = config
        self._repeats = Repeats(log)
        self._said_down: set[str] = set()  # unreachable said: its return will be too
        self.outbox = outbox
        self.stats = stats
        self._drivers = drivers
        self._session = session
        self._clock = clock
        self._on_reading = on_reading
        self._states: dict[str, StatusState] = {}
        self._state_lock = threading.Lock()
        self._event_seq = int(clock() * 1000)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(d,), name=f"poll-{d}", daemon=True)
            for d in config.devices
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop reading (each thread ends within a second) and close the drivers."""
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join()
        for driver in self._drivers.values():
            driver.close()

    def device_state(self, device: str) -> StatusState | None:
        with self._state_lock:
            return self._states.get(device)

    @property
    def unreachable(self) -> int:
        with self._state_lock:
            return sum(1 for s in self._states.values() if s is StatusState.OFFLINE)

    def publish_states(self) -> None:
        """After a (re)connect: the retained device states, in case they changed offline."""
        with self._state_lock:
            states = dict(self._states)
        for device, state in states.items():
            self._session.publish(
                device_topic(self.config.station, device, Channel.STATUS),
                status_payload(state, self._clock),
                qos=1,
                retain=True,
            )

    # --- a device's thread -------------------------------------------------------------------

    def _poll(self, device: str) -> None:
        interval = self.config.devices[device].interval.total_seconds()
        due = self._clock()
        clock_warned = False
        while not self._stop.is_set():
            wait = due - self._clock()
            if wait > 0:
                self._stop.wait(min(wait, 1.0))
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
        kind = self.config.devices[device].kind
        try:
            data = validate_data(kind, self._drivers[device].read(datetime.fromtimestamp(now, UTC)))
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
        self.outbox.put(device, kind, int(now * 1000), data)
        self.stats.readings += 1
        self._set_state(device, StatusState.ONLINE, {})
        self._on_reading()

    def _set_state(self, device: str, state: StatusState, detail: dict[str, Any]) -> None:
        with self._state_lock:
            before = self._states.get(device)
            if before is state:
                return
            self._states[device] = state
            self._event_seq += 1
            seq = self._event_seq
        if state is StatusState.OFFLINE:
            # A device that comes and goes is said once per 5 min, with a count.
            said = self._repeats.warning(
                f"unreachable {device}", "device %s unreachable: %s", device, detail.get("reason")
            )
            if said:
                self._said_down.add(device)
        elif before is not None and device in self._said_down:
            self._said_down.discard(device)
            log.warning("device %s is back", device)
        if not self._session.connected:
            return  # publish_states() sends the current states after the connect
        ts = int(self._clock() * 1000)
        station = self.config.station
        self._session.publish(
            device_topic(station, device, Channel.STATUS),
            status_payload(state, self._clock),
            qos=1,
            retain=True,
        )
        kind = EventType.UNREACHABLE if state is StatusState.OFFLINE else EventType.REACHABLE
        self._session.publish(
            device_topic(station, device, Channel.EVENT), event_json(ts, seq, kind, detail), qos=1
        )
