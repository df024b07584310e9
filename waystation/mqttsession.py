"""The one MQTT session adapter: edge, ingest and rules connect through it.

It owns the connection: the first connect, every reconnect (with the one
backoff, `waystation.backoff`), re-subscribing after each connect, and the
log of what happened to the connection, named with the standard's reason
codes (`waystation.mqttreasons`):

- refused (CONNACK >= 0x80), unreachable (refused, timed out, TLS), lost,
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
import threading
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
from waystation.logthrottle import Repeats, format_duration
from waystation.mqttclient import SessionClient, new_client
from waystation.mqttreasons import (
    KEEPALIVE_TIMEOUT,
    SESSION_TAKEN_OVER,
    UNSPECIFIED_ERROR,
    Packet,
    hint,
    reason_name,
)
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
# A connection that lasted this long was healthy: the next failure starts the
# backoff again from the beginning (a broker restarted twice in a minute must
# not find its clients 30 s away). Shorter ones (a takeover ping-pong, a broker
# that drops us at once) keep backing off, and a broker that closes the
# connection this soon after accepting it, this many times in a row, is most
# likely handing our session to another client.
STABLE_S = 10.0
FLAPS_FOR_TAKEOVER = 2
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


class _PahoSession:
    def __init__(
        self, settings: MqttSettings, options: SessionOptions, callbacks: SessionCallbacks
    ) -> None:
        self._settings = settings
        self._options = options
        self._callbacks = callbacks
        self._who = f"{options.label} ({settings}, client id {options.client_id})"
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
        self._backoff = Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S, RECONNECT_FLOOR_S)
        self._repeats = Repeats(log)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = False
        self._connected_mono: float | None = None
        self._down_since: float | None = None  # monotonic; None while up or before the first try
        self._refused = False  # the current attempt's CONNACK said no
        self._said_down = False  # the current outage was logged, so its end will be too
        self._flaps = 0
        self._last_info: mqtt.MQTTMessageInfo | None = None
        self._last_connected_at: float | None = None
        self._connects = 0

    # --- what it says about itself -------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    @property
    def last_connected_at(self) -> float | None:
        return self._last_connected_at

    @property
    def connects(self) -> int:
        return self._connects

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        o, s = self._options, self._settings
        self._down_since = time.monotonic()
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

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

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
        if generation != self._connects or not self.connected:
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
            self._said_down = True
            code = int(rc.value)
            self._repeats.warning(
                "refused",
                "%s: the broker refused the connection: %s%s",
                self._who,
                reason_name(code, Packet.CONNACK),
                _hint(code),
            )
            return
        self._refused = False
        now = time.monotonic()
        self._connected_mono = now
        self._last_connected_at = time.time()
        self._connects += 1
        down_for = now - self._down_since if self._down_since is not None else 0.0
        self._down_since = None
        for key in ("refused", "unreachable"):
            self._repeats.clear(key)
        if self._said_down:  # the loss (or the failed attempts) were logged: so is the return
            self._said_down = False
            log.warning(
                "%s connected again after %s (session present: %s)",
                self._who,
                format_duration(down_for),
                flags.session_present,
            )
        elif self._connects == 1:
            log.info("%s connected", self._who)
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
        self._said_down = True
        self._repeats.warning(
            "unreachable",
            "%s: broker unreachable (%s); retrying with backoff, next in %.1f s",
            self._who,
            _describe(error),
            delay,
        )

    def _on_disconnect(
        self, _c: mqtt.Client, _ud: Any, flags: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        was_up = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        now = time.monotonic()
        lasted = now - self._connected_mono if was_up and self._connected_mono else 0.0
        if was_up:
            self._down_since = now
        try:
            if not self._stopping:
                self._after_loss(flags, rc, lasted, was_up=was_up)
        finally:
            if was_up:
                self._call(self._callbacks.on_disconnected)

    def _after_loss(self, flags: Any, rc: ReasonCode, lasted: float, *, was_up: bool) -> None:
        """The next attempt's delay, and what to say about the loss."""
        if lasted >= STABLE_S:
            self._backoff.reset()
        delay = self._backoff.next_delay()
        self._retry_in(delay)
        if self._refused or not was_up:
            return  # said in _on_connect; paho closes the socket after a refusal
        code = int(rc.value)
        from_broker = bool(flags.is_disconnect_packet_from_server)
        if lasted >= STABLE_S:  # a healthy connection ended: a change of state, said each time
            self._flaps = 0
            self._repeats.clear("flapping")
            self._repeats.clear("takeover")
            self._said_down = True
            log.warning(
                "%s lost the broker after %s: %s; reconnecting in %.1f s",
                self._who,
                format_duration(lasted),
                _loss(code, from_broker=from_broker),
                delay,
            )
            return
        # Dropped soon after connecting, again and again: said once, then counted.
        self._flaps += 1
        taken = reason_name(SESSION_TAKEN_OVER, Packet.DISCONNECT)
        if from_broker and code == SESSION_TAKEN_OVER:
            key, what = "takeover", f"session taken over: {hint(code)} ({taken})"
        elif self._flaps >= FLAPS_FOR_TAKEOVER and code == UNSPECIFIED_ERROR:
            key, what = (
                "takeover",
                (
                    f"the broker closed the connection {lasted:.1f} s after accepting it, "
                    f"{self._flaps} times in a row: most likely another client is connecting "
                    f"with the same client id (session takeover, {taken}); give each its own id"
                ),
            )
        else:
            loss = _loss(code, from_broker=from_broker)
            key, what = "flapping", f"lost the broker {lasted:.1f} s after connecting: {loss}"
        if self._repeats.warning(key, "%s: %s; reconnecting with backoff", self._who, what):
            self._said_down = True

    def _on_subscribe(
        self, _c: mqtt.Client, _ud: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        refused = [
            (topic, int(rc.value))
            for topic, rc in zip(self._options.subscriptions, codes, strict=False)
            if rc.is_failure
        ]
        for topic, code in refused:
            self._repeats.warning(
                f"suback {topic}",
                "%s: the broker refused the subscription to %s: %s%s",
                self._who,
                topic,
                reason_name(code, Packet.SUBACK),
                _hint(code),
            )
        if not refused:
            self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if self._callbacks.on_batch is not None:
            self._call(self._callbacks.on_batch, [msg], self._connects)
        else:
            self._call(self._callbacks.on_message, msg)

    def _on_publish(
        self, _c: mqtt.Client, _ud: Any, mid: int, rc: ReasonCode, _p: Properties
    ) -> None:
        self._call(self._callbacks.on_published, mid, int(rc.value))

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a task boundary: the network thread must go on
            log.exception("%s: error in a session callback", self._options.label)


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


def _hint(code: int) -> str:
    text = hint(code)
    return f" ({text})" if text else ""


def _describe(error: OSError | None) -> str:
    if error is None:
        return "no answer"
    text = error.strerror or str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _loss(code: int, *, from_broker: bool) -> str:
    if from_broker:  # the broker said why (0x8E: "session taken over" and its hint)
        return f"{reason_name(code, Packet.DISCONNECT)}{_hint(code)}"
    if code == KEEPALIVE_TIMEOUT:  # paho's code for our own keepalive running out
        return "no answer within the keepalive (Keep Alive timeout, 0x8D)"
    return "the connection was closed"
