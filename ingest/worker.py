"""The ingest worker: MQTT in, InfluxDB out, acknowledged only after the write.

Threading model: the session's network thread (the socket engine by default)
hands each read's messages to an inbox at once; one writer thread takes
batches out, decodes them (the fast path, `ingest.fastdecode`), writes to
InfluxDB and only then acknowledges the batch, in one write per connection
(`ack_many`; messages of a connection since lost are written but not acked:
the broker re-sends them and the re-write is idempotent). The broker never
sends more unacknowledged messages than the receive window (MQTT 5: our
receive-maximum; 3.1.1: the broker's max_inflight_messages), which bounds
the inbox: a slow database slows the broker down instead of filling memory.

Delivery: a persistent session (stable client id; MQTT 5 adds an expiry)
keeps the broker queueing while the worker is down. With a `partition`
(i of N), the worker subscribes to each of its stations (`stations/{id}/+/+`
for the stations whose stable hash falls in i), a plain subscription that
Mosquitto restores after a restart. With a `group`, a shared subscription
splits the stream across the workers of the group (see IngestConfig.group
for what that costs on Mosquitto). InfluxDB unavailable:
the batch is retried with capped, jittered backoff and its acks are held —
nothing is dropped. A message that cannot be stored is dead-lettered, then
acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from prometheus_client.registry import Collector

from ingest.deadletter import DeadLetterSink, DeadLetterTally, printable
from ingest.decode import DeadLetter, Decoded, TimeWindow
from ingest.fastdecode import FastDecoder
from ingest.inbox import Inbox
from ingest.metrics import IngestCollector, IngestStats
from ingest.partition import Partition
from waystation.backoff import Backoff
from waystation.contract import STATIONS_FILTER, DeadLetterCode
from waystation.logthrottle import Repeats
from waystation.mqttsession import (
    Engine,
    InboundMessage,
    SessionCallbacks,
    SessionOptions,
    open_session,
)
from waystation.registry import Registry
from waystation.settings import MqttSettings, MqttVersion
from waystation.store import (
    BatchTooLarge,
    InfluxStore,
    PointsRejected,
    StoreFatal,
    StoreUnavailable,
)

__all__ = ["IngestConfig", "IngestWorker"]

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.5
RETRY_MAX_S = 30.0
RETRY_FLOOR_S = 0.1  # even when InfluxDB says Retry-After: 0


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestConfig:
    client_id: str = "waystation-ingest-1"
    # None: a plain subscription, which Mosquitto restores with the session after
    # a restart. A name: `$share/{group}/…`, so workers of the group split the
    # stream; Mosquitto 2.0 does not restore shared subscriptions after a
    # restart, so readings arriving before the workers reconnect are lost.
    group: str | None = None
    # What to subscribe to; narrower filters split a deployment by hand.
    topic_filter: str = STATIONS_FILTER
    # This worker's share of the stations (i of N): one subscription a station
    # instead of `topic_filter`; None: every station.
    partition: Partition | None = None
    # MQTT 5 sets the session expiry and the receive window from here. 3.1.1
    # leaves the window to the broker's max_inflight_messages (Mosquitto's
    # default is 20; the shipped config sets 1000) and sessions never expire.
    mqtt_version: MqttVersion = MqttVersion.V5
    # The socket engine reads in large chunks and acknowledges a batch in one
    # write; paho costs about 10 times the CPU a message (issue 17).
    engine: Engine = Engine.SOCKET
    batch_max_messages: int = 5000
    batch_max_wait_s: float = 0.1
    # A pause this long in the stream closes a batch early (see Inbox.take).
    batch_gap_s: float = 0.01
    receive_maximum: int = 1000
    session_expiry_s: int = 7 * 24 * 3600
    deadletter_path: Path | None = None
    window: TimeWindow = field(default_factory=TimeWindow)

    def __post_init__(self) -> None:
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1..65535 (an MQTT 5 limit)")
        if self.batch_max_messages < 1 or self.batch_max_wait_s <= 0:
            raise ValueError("batch_max_messages must be >= 1 and batch_max_wait_s > 0")
        if self.partition is not None and self.group is not None:
            raise ValueError("a partition and a shared-subscription group do not mix")


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    lines: list[str] = field(default_factory=list)
    newest_ts_ms: int = 0
    carrier: bool = False  # carries the dead-letter counts, not a message of the broker's


class IngestWorker:
    """A context manager: enter connects and starts writing, exit flushes, acks and disconnects."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        store: InfluxStore,
        registry: Registry,
        config: IngestConfig | None = None,
    ) -> None:
        self.config = config or IngestConfig()
        self.stats = IngestStats()
        self._mqtt_settings = mqtt_settings
        self._store = store
        self._decoder = FastDecoder(registry, self.config.window)
        self._registry = registry
        self._inbox: Inbox[_Message] = Inbox()
        # A batch closes at half the receive window, so the broker always has
        # room to send the next one while this one is being written.
        self._flush_at = min(
            self.config.batch_max_messages, max(1, self.config.receive_maximum // 2)
        )
        self._stop = threading.Event()
        self._store_ok = True
        self._store_repeats = Repeats(log)
        self.fatal: BaseException | None = None
        c = self.config
        self._session = open_session(
            mqtt_settings,
            SessionOptions(
                client_id=c.client_id,
                label="ingest",
                version=c.mqtt_version,
                subscriptions=self.subscriptions,
                session_expiry_s=c.session_expiry_s,
                receive_maximum=c.receive_maximum,
                manual_ack=True,
                engine=c.engine,
            ),
            SessionCallbacks(on_batch=self._on_batch, on_published=self._on_published),
        )
        self.deadletters = DeadLetterSink(self._session, self.config.deadletter_path)
        self._tally = DeadLetterTally(self.config.client_id)
        self._decode_failures: set[type[BaseException]] = set()
        self._counts_refused = False  # logged once
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    # --- session callbacks (network thread) -------------------------------------------

    def _on_batch(self, msgs: Sequence[InboundMessage], generation: int) -> None:
        self._inbox.put_many(
            [_Message(m.topic, bytes(m.payload), m.mid, m.qos, generation) for m in msgs]
        )

    def _on_published(self, _mid: int, code: int) -> None:
        # The only messages this session publishes are dead letters.
        self.deadletters.published(code)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        c = self.config
        if c.partition is not None:
            return c.partition.filters(self._registry)
        return (f"$share/{c.group}/{c.topic_filter}" if c.group else c.topic_filter,)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._session.start()
        self._writer.start()

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        return self._session.wait_subscribed(timeout_s)

    def stop(self) -> None:
        """Write and acknowledge what has arrived, then disconnect (the session stays)."""
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join()
        self._session.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._writer.is_alive()

    # --- what the health endpoint reads (HTTP thread) ------------------------------------

    @property
    def alive(self) -> bool:
        return self._writer.is_alive() and self.fatal is None

    @property
    def ready(self) -> bool:
        return self.alive and self._session.subscribed and self._store_ok

    @property
    def backlog(self) -> int:
        return len(self._inbox)

    @property
    def subscribed(self) -> bool:
        return self._session.subscribed

    @property
    def collector(self) -> Collector:
        return IngestCollector(self)

    # --- writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while not (self._stop.is_set() and not self._inbox):
                batch = self._inbox.take(
                    self._flush_at, self.config.batch_max_wait_s, self.config.batch_gap_s
                )
                if batch:
                    self._process(batch)
        except StoreFatal as exc:
            log.error("ingest stops: %s", exc)  # noqa: TRY400 - the message is the whole story
            self.fatal = exc
        except Exception as exc:
            log.exception("ingest writer failed")
            self.fatal = exc

    def _process(self, batch: list[_Message]) -> None:
        started = time.monotonic()
        self.stats.received += len(batch)
        now_ms = int(time.time() * 1000)
        for msg in batch:
            result = self._decode(msg, now_ms)
            if isinstance(result, DeadLetter):
                self._dead_letter(msg, result.code, result.reason, now_ms)
            else:
                if result.refused is not None:  # some readings of an array: letter, keep the rest
                    r = result.refused
                    self.deadletters.record(r.code, r.reason, msg.topic, msg.payload, now_ms)
                    self._tally.add(r.code, msg.topic, r.reason)
                msg.lines = result.lines
                msg.newest_ts_ms = result.newest_ts_ms
        # Counted in InfluxDB too, for the device-health dashboard, in the same write.
        to_write = [*batch, *self._tally_carrier(now_ms)]
        if not self._write_with_retry(to_write):
            return  # stopping during an outage: no ack, the broker keeps them
        # Messages the database refused were dead-lettered while writing; count them too.
        refused = self._tally_carrier(int(time.time() * 1000))
        if refused and not self._write_with_retry(refused):
            return
        self.stats.batches += 1
        self.stats.messages_written += len(batch)
        self.stats.points_written += sum(len(m.lines) for m in to_write)
        written_ms = time.time() * 1000
        for msg in batch:
            self.stats.reading_age_seconds.observe(max(written_ms - msg.newest_ts_ms, 0) / 1000)
        self._ack(batch)
        self.stats.batch_seconds.observe(time.monotonic() - started)

    def _ack(self, batch: list[_Message]) -> None:
        """One write per connection the batch came on; a lost connection's are not acked."""
        by_generation: dict[int, list[int]] = {}
        for msg in batch:
            if msg.qos > 0:
                by_generation.setdefault(msg.generation, []).append(msg.mid)
        for generation, mids in by_generation.items():
            if self._session.ack_many(generation, mids):
                self.stats.acked += len(mids)

    def _decode(self, msg: _Message, now_ms: int) -> Decoded | DeadLetter:
        try:
            return self._decoder.decode(msg.topic, msg.payload, now_ms)
        except Exception as exc:  # a task boundary: one message never stops the worker
            if type(exc) not in self._decode_failures:
                self._decode_failures.add(type(exc))
                log.exception("decoding a message on %s failed", printable(msg.topic, 256))
            return DeadLetter(DeadLetterCode.DECODE_FAILED, f"{type(exc).__name__}: {exc}")

    def _dead_letter(self, msg: _Message, code: DeadLetterCode, reason: str, now_ms: int) -> None:
        self.deadletters.record(code, reason, msg.topic, msg.payload, now_ms)
        self._tally.add(code, msg.topic, reason)
        msg.lines = []
        msg.newest_ts_ms = now_ms

    def _tally_carrier(self, now_ms: int) -> list[_Message]:
        """The dead letters counted since the last write, as points riding with the batch."""
        if not self._tally:
            return []
        lines = self._tally.take_lines(now_ms)
        return [_Message("", b"", 0, 0, -1, lines, now_ms, carrier=True)]

    def _write_with_retry(self, msgs: list[_Message]) -> bool:
        backoff = Backoff(RETRY_MIN_S, RETRY_MAX_S, RETRY_FLOOR_S)
        while True:
            try:
                self._write_isolating(msgs)
            except StoreUnavailable as exc:
                self._store_ok = False  # the change of state is logged once, the rest counted
                self._store_repeats.warning(
                    "influxdb", "InfluxDB unavailable (%s); holding acks and retrying", exc
                )
                if self._stop.is_set():
                    log.warning(
                        "stopping while InfluxDB is unavailable; %d messages stay "
                        "unacknowledged in the broker session",
                        len(msgs),
                    )
                    return False
                self.stats.write_retries += 1
                self._stop.wait(backoff.next_delay(exc.retry_after))
            else:
                if self._store_repeats.clear("influxdb") is not None:
                    log.warning("InfluxDB is back; %d retries so far", self.stats.write_retries)
                self._store_ok = True
                return True

    def _write_isolating(self, msgs: Sequence[_Message]) -> None:
        """Write; on refused points, dead-letter the messages that hold them and write the rest.

        A field-type conflict names its measurement and field (and InfluxDB
        1.x/2.x name the first conflict of a batch), so the messages with such
        a field of that type are taken out and the rest written again: two
        writes, not a bisection of the whole batch. Other refusals bisect.
        Either way is safe because writes are idempotent: re-writing the good
        part stores the same points again.
        """
        msgs = [m for m in msgs if m.lines]
        try:
            self._write_split(_lines(msgs))
        except PointsRejected as exc:
            conflicts = exc.conflicts
            bad = [m for m in msgs if any(c.matches(ln) for c in conflicts for ln in m.lines)]
            if bad:
                for msg in bad:
                    self._refused(msg, exc)
                self._write_isolating([m for m in msgs if m.lines])
                return
            if len(msgs) == 1:
                self._refused(msgs[0], exc)
                return
            mid = len(msgs) // 2
            self._write_isolating(msgs[:mid])
            self._write_isolating(msgs[mid:])

    def _refused(self, msg: _Message, exc: PointsRejected) -> None:
        if msg.carrier:  # the dead-letter counts themselves: never a dead letter of their own
            if not self._counts_refused:
                self._counts_refused = True
                log.error("InfluxDB refused the dead-letter counts: %s", exc)
            msg.lines = []
            return
        self._dead_letter(msg, DeadLetterCode.REJECTED_BY_STORE, str(exc), int(time.time() * 1000))

    def _write_split(self, lines: list[str]) -> None:
        try:
            self._store.write_lines(lines)
        except BatchTooLarge:
            self.stats.batch_splits += 1
            if len(lines) == 1:
                raise PointsRejected("a single point is larger than the server accepts") from None
            mid = len(lines) // 2
            self._write_split(lines[:mid])
            self._write_split(lines[mid:])


def _lines(msgs: Sequence[_Message]) -> list[str]:
    return [line for m in msgs for line in m.lines]
