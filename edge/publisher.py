"""The publisher: the outbox to the broker, oldest first, deleting only what the broker took.

One thread drains the outbox as arrays of one device's readings, keeps a
bounded number of messages in flight, and deletes rows only when the
broker's PUBACK for their message arrives with a success code. It also
writes the gateway's own readings and expires readings past the outbox's
age bound. The session's network thread never touches SQLite: it hands
packet ids over (`on_published`), and this thread alone deletes.

A refusal is not a delivery (SPEC §6): MQTT 5 PUBACKs carry a reason code,
and one >= 0x80 (not authorised after a swap of SD cards, quota exceeded, ...)
leaves the message's readings in the outbox. Refusals are per device (a
broker's ACL or quota may refuse one device's topic and take the others'):
the refused device is parked behind its own backoff (the one backoff,
`waystation.backoff`) while the other devices go on, and after its wait it is
sent again from its oldest reading still in the outbox. Each cause is said
once at WARNING and in the gateway's readings; the return is said once, when
the last refused device's own readings are taken again.

MQTT 3.1.1 has no reason codes: Mosquitto acknowledges a refused publish
like any other, so a 3.1.1 agent cannot tell (hence MQTT 5 by default).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import groupby
from typing import Any

from edge.config import AgentConfig
from edge.outbox import Outbox, OutboxRow
from edge.stats import AgentStats
from waystation.backoff import Backoff
from waystation.contract import TS_MIN_MS, Channel, Kind, device_topic, readings_array
from waystation.mqttreasons import is_failure, reason_name
from waystation.mqttsession import MqttSession, PublishRefused

__all__ = ["PUBLISH_TICK_S", "Publisher"]

log = logging.getLogger("edge.agent")

PUBLISH_TICK_S = 0.05  # the publisher's idle wake-up; it is also woken on every new reading
EXPIRE_EVERY_S = 60.0
# After the broker refused readings, wait up to this long before sending again,
# doubling up to the cap while refusals go on: a wrong credential costs little,
# and a fixed one is noticed within a minute.
REFUSED_BACKOFF_MIN_S = 1.0
REFUSED_BACKOFF_MAX_S = 60.0
REFUSED_BACKOFF_FLOOR_S = 0.5


class Publisher:
    """The outbox's one reader and deleter. Start once, stop once."""

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        session: MqttSession,
        stats: AgentStats,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.stats = stats
        self._session = session
        self._clock = clock
        self._started = clock()
        self._inflight: dict[int, tuple[str, list[int]]] = {}  # packet id -> device, row ids
        self._acked: deque[tuple[int, int]] = deque()  # (packet id, reason) from paho
        self._cursor = 0
        self._refusal = _Refusals()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="publisher", daemon=True)

    # --- from other threads --------------------------------------------------------------

    def on_published(self, mid: int, reason: int) -> None:
        """The broker's PUBACK (the session's network thread)."""
        self._acked.append((mid, reason))
        self._wake.set()

    def wake(self) -> None:
        """Something to send: a new reading, or the connection is back."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_s: float) -> None:
        """Publish what is left while connected (up to `drain_s`), then stop the thread."""
        deadline = time.monotonic() + drain_s
        while (
            self._session.connected
            and time.monotonic() < deadline
            and (self.outbox.depth or self._inflight)
        ):
            self._wake.set()
            time.sleep(PUBLISH_TICK_S)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    # --- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        next_gateway = self._clock()
        next_expire = time.monotonic() + EXPIRE_EVERY_S
        while not self._stop.is_set():
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
        self.outbox.put(self.config.agent_device, Kind.GATEWAY, int(now * 1000), data)

    def _apply_acks(self) -> None:
        ids: list[int] = []
        taken: set[str] = set()
        refused: list[tuple[str, list[int], int]] = []
        while self._acked:
            mid, rc = self._acked.popleft()
            device, rows = self._inflight.pop(mid, ("", []))
            if is_failure(rc):
                if rows:
                    refused.append((device, rows, rc))
            else:
                ids += rows
                taken.add(device)
        if ids:
            self.outbox.delete(ids)
            self.stats.readings_acked += len(ids)
        agent = self.config.agent_device
        for device, rows, rc in refused:
            self.stats.readings_refused += len(rows)
            taken.discard(device)
            delay = self._refusal.refused(device, rc)
            if delay is not None:  # a new cause: said once, until the device's readings are taken
                log.warning(
                    "agent %s: the broker refused %d readings (%s first): %s; they stay in the "
                    "outbox, sending them again in %.0f s; the other devices go on",
                    agent, len(rows), device, reason_name(rc), delay,
                )  # fmt: skip
        for device in taken:
            if self._refusal.accepted(device):
                log.warning("agent %s: the broker takes readings again", agent)

    def _publish_some(self) -> None:
        """Fill the in-flight window with the oldest unsent readings, one device per message;
        a refused device's wait for its own backoff, the others go on."""
        parked = self._refusal.parked()
        if self._refusal.resend:
            # From the oldest left (what the broker took is deleted), refused ones first;
            # what is in flight now is not sent twice.
            self._cursor = 0
            self._refusal.resend = False
        ob = self.config.outbox
        free = ob.inflight_messages - len(self._inflight)
        if free <= 0:
            return
        flying = {i for _, ids in self._inflight.values() for i in ids}
        fetched = self.outbox.after(
            self._cursor, free * ob.batch_readings + len(flying), exclude=parked
        )
        if not fetched:
            return
        rows = [r for r in fetched if r.id not in flying][: free * ob.batch_readings]
        if not rows:
            self._cursor = fetched[-1].id
            return
        # Group by device in arrival order; a device's readings stay in order.
        by_device: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_device.setdefault(row.device, []).append(row)
        station = self.config.station
        for device, device_rows in by_device.items():
            for _, chunk_iter in groupby(
                enumerate(device_rows), key=lambda e: e[0] // ob.batch_readings
            ):
                chunk = [r for _, r in chunk_iter]
                try:
                    mid = self._session.publish(
                        device_topic(station, device, Channel.TELEMETRY),
                        readings_array([r.payload for r in chunk]),
                        qos=1,
                    )
                except PublishRefused as exc:  # queued messages are sent after reconnecting
                    log.warning("publish refused (%s); retrying later", exc)
                    return
                self._inflight[mid] = (device, [r.id for r in chunk])
                self.stats.messages_published += 1
        self._cursor = rows[-1].id


class _Parked:
    """One refused device: its own backoff, and the causes said for it."""

    def __init__(self) -> None:
        self.backoff = Backoff(
            REFUSED_BACKOFF_MIN_S, REFUSED_BACKOFF_MAX_S, REFUSED_BACKOFF_FLOOR_S
        )
        self.until = 0.0  # monotonic time before which its readings are not sent
        self.released = True  # its wait ended and its old readings were sent for again


class _Refusals:
    """The publisher's view of broker refusals, per device: backoff, causes said once,
    what to resend."""

    def __init__(self) -> None:
        self._devices: dict[str, _Parked] = {}
        self._said: set[int] = set()  # causes said, until no device is refused
        self.resend = False  # send again from the oldest reading in the outbox
        self.reason: str | None = None  # the latest refusal's, until no device is refused

    def refused(self, device: str, rc: int) -> float | None:
        """Park the device; return the delay if this cause is new (to be said)."""
        parked = self._devices.setdefault(device, _Parked())
        now = time.monotonic()
        if now >= parked.until:  # the first refusal of a round; the others share its wait
            parked.until = now + parked.backoff.next_delay()
        parked.released = False
        self.reason = reason_name(rc)
        if rc in self._said:
            return None
        self._said.add(rc)
        return max(parked.until - now, 0.0)

    def parked(self) -> list[str]:
        """The devices waiting now; one whose wait just ended has its readings sent again."""
        now = time.monotonic()
        out = []
        for device, p in self._devices.items():
            if now < p.until:
                out.append(device)
            elif not p.released:
                p.released = True
                self.resend = True
        return out

    def accepted(self, device: str) -> bool:
        """The broker took the device's own readings; True when that ends the last refused
        device's refusals (to be said)."""
        parked = self._devices.pop(device, None)
        if parked is None:
            return False
        if not parked.released:
            self.resend = True  # its refused readings, behind the cursor, are sent again
        if self._devices:
            return False
        self.reason = None
        ended = bool(self._said)
        self._said.clear()
        return ended
