"""The one MQTT session adapter: edge, ingest and rules connect through it.

It owns the connection: the first connect, every reconnect (with the one
backoff, `waystation.backoff`), re-subscribing after each connect, and the
log of what happened to the connection, named with the standard's reason
codes (`waystation.mqttreasons`):

- refused (CONNACK >= 0x80), unreachable (refused, timed out, TLS, or
  something that is not a broker listening: closed or silent before a CONNACK), lost,
  and session taken over (DISCONNECT 0x8E; Mosquitto 2.0 closes the socket
  without it, so repeated closes right after connecting are reported as a
  likely takeover) are WARNINGs with the reason's name; repeats are
  rate-limited ("still ... after 5 min", with a count) and the return is
  logged once, with how long it took;
- `connected`, `subscribed`, `last_connected_at` and `connects` say where it
  stands, for health endpoints, metrics and the rules' no-data-no-verdict.

Two engines under the one surface (`SessionOptions.engine`): paho-mqtt's
network thread (the default; only this module and `waystation.mqttclient`
import paho), and `waystation.socketsession`, a small client of our own that
reads in large chunks and acknowledges a batch in one write, for the readers
of the whole stream (ingest, rules). Both keep every promise above; the
session tests run against each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from waystation.backoff import Backoff
from waystation.mqttclient import SessionClient, new_client
from waystation.sessionstate import SessionState
from waystation.settings import MqttSettings, MqttVersion

__all__ = [
    "RECONNECT_MAX_S",
    "Engine",
    "InboundMessage",
    "MqttSession",
    "PublishRefused",
    "SessionCallbacks",
    "SessionOptions",
    "Will",
    "open_session",
]

log = logging.getLogger("waystation.mqtt")

# Reconnect delays: fully jittered below a ceiling that doubles from 1 s to
# 30 s, never under half a second. Short enough that a broker restart costs
# seconds, long enough that a dead broker is not hammered by every station,
# and jittered so a district's agents cut off together do not return together.
RECONNECT_INITIAL_S = 1.0
RECONNECT_MAX_S = 30.0
RECONNECT_FLOOR_S = 0.5


def reconnect_backoff() -> Backoff:
    """Both engines' reconnect delays (read at each session's start: tests shorten them)."""
    return Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S, RECONNECT_FLOOR_S)


SUBSCRIBE_QOS = 1


class Engine(StrEnum):
    PAHO = "paho"  # paho-mqtt: the edge agent's, proven by its tests
    SOCKET = "socket"  # waystation.socketsession: batches, for the readers of the whole stream


class PublishRefused(Exception):
    """The client would not queue the message (its queue is full, or it is stopping)."""


class InboundMessage(Protocol):
    """A received PUBLISH, valid during the `on_message` call."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def mid(self) -> int: ...

    @property
    def qos(self) -> int: ...

    @property
    def retain(self) -> bool: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Will:
    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionOptions:
    client_id: str
    label: str  # who is connecting, for the log: "rules", "ingest", "agent st-01-gw"
    version: MqttVersion = MqttVersion.V5
    subscriptions: tuple[str, ...] = ()  # subscribed (QoS 1) after every connect
    # None: a clean session at every connect. Seconds: a persistent session the
    # broker keeps that long while we are away (MQTT 3.1.1 keeps it forever).
    session_expiry_s: int | None = None
    receive_maximum: int | None = None  # MQTT 5: unacknowledged messages the broker may send
    manual_ack: bool = False  # acknowledge received QoS 1 messages with `ack`
    keepalive_s: int = 15
    will: Will | None = None
    engine: Engine = Engine.PAHO

    def __post_init__(self) -> None:
        for topic_filter in self.subscriptions:
            _check_filter(topic_filter)


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionCallbacks:
    """Called on the session's network thread, one at a time; none may block."""

    on_message: Callable[[InboundMessage], None] | None = None
    # Instead of on_message: every message of a read at once, with the generation
    # of the connection they came on (for `ack_many`).
    on_batch: Callable[[Sequence[InboundMessage], int], None] | None = None
    on_connected: Callable[[bool], None] | None = None  # session present
    on_disconnected: Callable[[], None] | None = None
    on_published: Callable[[int, int], None] | None = None  # packet id, PUBACK reason code


class MqttSession(Protocol):
    """A broker connection that keeps itself up.

    Lifecycle: built idle; `start()` returns at once and connects in the
    background, reconnecting with backoff after every failure or loss until
    `stop()`; `stop()` waits (up to `drain_s`) for the last QoS 1 message's
    acknowledgement, disconnects cleanly (the broker does not send the will)
    and joins the network thread. A session is started and stopped once.

    Threading: the callbacks run on the session's own network thread, in the
    order things happen, one at a time; they must not block (hand work to a
    thread of your own). `publish` and `ack` may be called from any thread;
    the properties may be read from any thread.
    """

    @property
    def connected(self) -> bool: ...

    @property
    def subscribed(self) -> bool:
        """Connected, and the broker granted every subscription."""

    @property
    def last_connected_at(self) -> float | None:
        """Epoch seconds of the last successful (re)connect, None before the first."""

    @property
    def connects(self) -> int:
        """Successful connects so far (the first one included)."""

    def start(self) -> None: ...

    def stop(self, drain_s: float = 0.0) -> None: ...

    def wait_connected(self, timeout_s: float) -> bool: ...

    def wait_subscribed(self, timeout_s: float) -> bool: ...

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns its packet id. Queued while disconnected (QoS >= 1),
        sent after the next connect. Raises PublishRefused if the client will not queue it."""

    def publish_acked(
        self, topic: str, payload: str | bytes, timeout_s: float, *, retain: bool = False
    ) -> int | None:
        """Publish at QoS 1 and wait for the broker's PUBACK: its reason code (>= 0x80: the
        broker refused it), or None if none came within `timeout_s`. Raises PublishRefused
        like `publish`."""

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (with `manual_ack`)."""

    def ack_many(self, generation: int, mids: list[int]) -> bool:
        """Acknowledge QoS 1 messages that came on connection `generation` (from `on_batch`).

        False, and nothing sent, when that connection is gone: the broker re-sends them.
        """


def open_session(
    settings: MqttSettings, options: SessionOptions, callbacks: SessionCallbacks | None = None
) -> MqttSession:
    """The session for these settings, on the engine the options name."""
    if options.engine is Engine.SOCKET:
        from waystation.socketsession import SocketSession  # noqa: PLC0415

        return SocketSession(settings, options, callbacks or SessionCallbacks())
    return _PahoSession(settings, options, callbacks or SessionCallbacks())


class _PahoSession(SessionState):
    def __init__(
        self, settings: MqttSettings, options: SessionOptions, callbacks: SessionCallbacks
    ) -> None:
        super().__init__(settings, options, callbacks, reconnect_backoff())
        self._client: SessionClient = new_client(
            settings, options.client_id, manual_ack=options.manual_ack, version=options.version
        )
        if options.will is not None:
            w = options.will
            self._client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        if callbacks.on_message is not None or callbacks.on_batch is not None:
            self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._stopping = False
        self._refused = False  # the current attempt's CONNACK said no
        self._last_info: mqtt.MQTTMessageInfo | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        o, s = self._options, self._settings
        self._report.starting()
        if o.version is MqttVersion.V5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if o.session_expiry_s is not None:
                props.SessionExpiryInterval = o.session_expiry_s
            if o.receive_maximum is not None:
                props.ReceiveMaximum = o.receive_maximum
            self._client.connect_async(
                s.host,
                s.port,
                keepalive=o.keepalive_s,
                clean_start=o.session_expiry_s is None,
                properties=props,
            )
        else:  # persistent through clean_session=False (new_client); the broker sets the window
            self._client.connect_async(s.host, s.port, keepalive=o.keepalive_s)
        self._client.loop_start()

    def stop(self, drain_s: float = 0.0) -> None:
        info = self._last_info
        if info is not None and self.connected and drain_s > 0:
            deadline = time.monotonic() + drain_s
            while not info.is_published() and self.connected and time.monotonic() < deadline:
                time.sleep(0.02)
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()

    # --- traffic -------------------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        # NO_CONN: paho keeps a QoS >= 1 message and sends it after reconnecting.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishRefused(f"{topic}: {mqtt.error_string(info.rc)}")
        if qos > 0:
            self._last_info = info
        return int(info.mid)

    def ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)

    def ack_many(self, generation: int, mids: list[int]) -> bool:
        if generation != self.connects or not self.connected:
            return False
        for mid in mids:
            self._client.ack(mid, 1)
        return True

    # --- paho callbacks (network thread) ---------------------------------------------------

    def _retry_in(self, delay: float) -> None:
        # paho's loop waits this long before its next attempt; the delay is ours.
        self._client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]

    def _on_connect(
        self, client: mqtt.Client, _ud: Any, flags: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        if rc.is_failure:
            self._refused = True
            self._report.refused(int(rc.value), v5=True)  # paho gives 3.1.1's codes as 5's
            return
        self._refused = False
        self._report.connected(flags.session_present)
        self._connected.set()
        if self._options.subscriptions:
            client.subscribe([(f, SUBSCRIBE_QOS) for f in self._options.subscriptions])
        else:
            self._subscribed.set()
        self._call(self._callbacks.on_connected, flags.session_present)

    def _on_connect_fail(self, _c: mqtt.Client, _ud: Any) -> None:
        error = self._client.last_connect_error
        delay = self._backoff.next_delay()
        self._retry_in(delay)
        self._report.unreachable(error, delay)

    def _on_disconnect(
        self, _c: mqtt.Client, _ud: Any, flags: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        was_up = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        lasted = (self._report.lost_after() if was_up else None) or 0.0
        try:
            if not self._stopping:
                self._after_loss(flags, rc, lasted, was_up=was_up)
        finally:
            if was_up:
                self._call(self._callbacks.on_disconnected)

    def _after_loss(self, flags: Any, rc: ReasonCode, lasted: float, *, was_up: bool) -> None:
        """The next attempt's delay, and what to say about the loss."""
        if self._report.stable(lasted):
            self._backoff.reset()
        delay = self._backoff.next_delay()
        self._retry_in(delay)
        if self._refused:
            return  # said in _on_connect; paho closes the socket after a refusal
        if not was_up:  # closed before any CONNACK: something listens there, but no broker
            self._report.no_connack(int(rc.value), self._options.keepalive_s, delay)
            return
        self._report.lost(
            lasted,
            int(rc.value),
            from_broker=bool(flags.is_disconnect_packet_from_server),
            delay=delay,
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _ud: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        refused = [
            (topic, int(rc.value))
            for topic, rc in zip(self._options.subscriptions, codes, strict=False)
            if rc.is_failure
        ]
        for topic, code in refused:
            self._report.subscription_refused(topic, code)
        if not refused:
            self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if self._callbacks.on_batch is not None:
            self._call(self._callbacks.on_batch, [msg], self.connects)
        else:
            self._call(self._callbacks.on_message, msg)

    def _on_publish(
        self, _c: mqtt.Client, _ud: Any, mid: int, rc: ReasonCode, _p: Properties
    ) -> None:
        self._waiter.arrived(mid, int(rc.value))
        self._call(self._callbacks.on_published, mid, int(rc.value))


def _check_filter(topic_filter: str) -> None:
    """A wildcard fills a whole level, and `#` only the last one (MQTT 5.0, 4.7.1)."""
    levels = topic_filter.split("/")
    for n, level in enumerate(levels):
        if ("+" in level or "#" in level) and level not in ("+", "#"):
            raise ValueError(f"topic filter {topic_filter!r}: a wildcard must fill a whole level")
        if level == "#" and n != len(levels) - 1:
            raise ValueError(f"topic filter {topic_filter!r}: '#' must be the last level")
    if not topic_filter:
        raise ValueError("empty topic filter")
