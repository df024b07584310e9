"""The socket engine of the MQTT session adapter: our own small client, for the busy readers.

paho's per-packet Python path (a `select`, three `recv` and a property
decode a message, a lock and a socket-pair wake a PUBACK) costs more CPU a
message than the whole of a low-code peer's pipeline (issue 17). This engine
reads the socket in large chunks, parses every complete packet of a chunk in
one pass (`waystation.mqttwire`), hands them to `on_batch` at once and sends
a batch's PUBACKs in one write. It keeps the adapter's promises: reconnect
with the one backoff, refusals, losses and takeovers logged with the
standard's reason names (`ConnectionReport`), will, TLS, user and password,
MQTT 5 (session expiry, receive maximum) and 3.1.1, subscriptions re-made
at every connect and their refusals named. `tests/test_mqtt_session.py`
runs the same tests against both engines.

One network thread does all socket I/O (an `ssl.SSLSocket` must not be read
and written from two threads); `publish`, `ack` and `ack_many` queue bytes
and wake it through a socket pair. Acknowledgements are tied to the
connection they came on: `ack_many` with an old generation sends nothing,
and the queued acknowledgements of a lost connection are dropped with it, so
an old packet id never acknowledges a new message (the broker re-sends the
old ones, and writing them again is idempotent).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING

from waystation.mqttreasons import KEEPALIVE_TIMEOUT, UNSPECIFIED_ERROR
from waystation.mqttwire import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_TYPE,
    PINGREQ,
    PUBACK,
    SUBACK,
    Connect,
    Control,
    Parser,
    ProtocolError,
    Received,
    connack,
    connect_packet,
    disconnect_reason,
    puback,
    puback_in,
    pubacks,
    publish_packet,
    suback,
    subscribe_packet,
)
from waystation.sessionstate import SessionState
from waystation.settings import MqttSettings, MqttVersion

if TYPE_CHECKING:
    from waystation.mqttsession import SessionCallbacks, SessionOptions

__all__ = ["SocketSession"]

log = logging.getLogger("waystation.mqtt")

READ_CHUNK = 256 * 1024
CONNECT_TIMEOUT_S = 10.0  # TCP, TLS and the CONNACK, each
# Filters a SUBSCRIBE carries: a partition's thousands of stations go in several,
# each well under Mosquitto's shipped max_packet_size.
FILTERS_A_SUBSCRIBE = 1000
MAX_PACKET_BYTES = 16 * 1024 * 1024  # what we accept from the broker
CLOSE_READ_S = 2.0  # reading to EOF after our DISCONNECT, so our last PUBACKs arrive


class _Lost(Exception):
    """The connection ended: the reason code and whether the broker said it."""

    def __init__(self, code: int, *, from_broker: bool) -> None:
        super().__init__(code)
        self.code = code
        self.from_broker = from_broker


class SocketSession(SessionState):
    """An `MqttSession` on a plain (or TLS) socket; see the module's docstring."""

    def __init__(
        self, settings: MqttSettings, options: SessionOptions, callbacks: SessionCallbacks
    ) -> None:
        from waystation import mqttsession  # noqa: PLC0415 - the adapter imports this module

        super().__init__(settings, options, callbacks, mqttsession.reconnect_backoff())
        self._v5 = options.version is MqttVersion.V5
        self._parser = Parser(v5=self._v5, max_packet_bytes=MAX_PACKET_BYTES)
        self._lock = threading.Lock()  # the connection, its generation and what waits to be sent
        self._sock: socket.socket | None = None
        self._generation = 0
        self._acks: list[bytes] = []  # for the current connection only
        self._outgoing: dict[int, bytes] = {}  # our QoS 1 publishes awaiting PUBACK, by id
        self._unsent: list[int] = []  # ids in `_outgoing` not yet written to this connection
        self._qos0: list[bytes] = []
        self._next_pid = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)  # noqa: FBT003 - the socket API
        self._wake_w.setblocking(False)  # noqa: FBT003
        self._stopping = threading.Event()
        self._drained = threading.Condition(self._lock)
        self._pending_subacks: dict[int, tuple[str, ...]] = {}
        self._sub_refused = False
        self._last_sent = 0.0
        self._last_received = 0.0
        self._ping_sent_at: float | None = None
        # Messages handed over and not yet acknowledged (with manual_ack): past the
        # receive window the socket is not read, so memory stays bounded even when a
        # broker sends more than the window allows (Mosquitto 2.0.11 does, after a
        # resumed session's acknowledgements).
        self._unacked = 0
        self._window = options.receive_maximum if options.manual_ack else None
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{options.label}", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._report.starting()
        self._thread.start()

    def stop(self, drain_s: float = 0.0) -> None:
        if drain_s > 0 and self.connected:
            deadline = time.monotonic() + drain_s
            with self._lock:
                while self._outgoing and self.connected and time.monotonic() < deadline:
                    self._drained.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        self._wake_r.close()
        self._wake_w.close()

    # --- traffic (any thread) -------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int:
        from waystation.mqttsession import PublishRefused  # noqa: PLC0415

        if qos not in (0, 1):
            raise PublishRefused(f"{topic}: QoS {qos} is not supported by this engine")
        if self._stopping.is_set():
            raise PublishRefused(f"{topic}: the session is stopping")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        with self._lock:
            if qos == 0:
                if self._sock is not None:
                    self._qos0.append(
                        publish_packet(topic, data, qos=0, retain=retain, pid=0, v5=self._v5)
                    )
                pid = 0
            else:
                if len(self._outgoing) >= 65535:
                    raise PublishRefused(f"{topic}: 65535 messages await their PUBACK")
                pid = self._new_pid()
                self._outgoing[pid] = publish_packet(
                    topic, data, qos=1, retain=retain, pid=pid, v5=self._v5
                )
                self._unsent.append(pid)
        self._wake()
        return pid

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            with self._lock:
                self._acks.append(puback(mid))
                self._unacked = max(0, self._unacked - 1)
            self._wake()

    def ack_many(self, generation: int, mids: list[int]) -> bool:
        """Acknowledge these messages of connection `generation`; False if it is gone."""
        data = pubacks(mids)
        with self._lock:
            if generation != self._generation or self._sock is None:
                return False
            self._acks.append(data)
            self._unacked = max(0, self._unacked - len(mids))
        self._wake()
        return True

    def _new_pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self._outgoing:
                return self._next_pid
        raise AssertionError("no free packet id")  # pragma: no cover - guarded by the caller

    def _wake(self) -> None:
        # Already woken (the pair is full), or closed while stopping: nothing to do.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # --- the network thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            sock = self._open()
            if sock is None:
                continue
            try:
                self._serve(sock)
            except _Lost as lost:
                self._close(sock, polite=False)
                self._after_loss(lost)
            except Exception:  # a task boundary: the session must come back
                log.exception("%s: the MQTT connection failed", self._options.label)
                self._close(sock, polite=False)
                self._after_loss(_Lost(UNSPECIFIED_ERROR, from_broker=False))
            else:
                self._close(sock, polite=True)
                self._report.lost_after()
                self._call(self._callbacks.on_disconnected)

    def _wait_retry(self, delay: float) -> None:
        self._stopping.wait(delay)

    def _open(self) -> socket.socket | None:
        """Connect and get a CONNACK; None after a failure (said, and waited out)."""
        s = self._settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.tls:
                context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
                sock = context.wrap_socket(sock, server_hostname=s.host)
        except OSError as exc:
            delay = self._backoff.next_delay()
            self._report.unreachable(exc, delay)
            self._wait_retry(delay)
            return None
        packet = self._connect_packet()
        self._parser.reset()
        try:
            sock.sendall(packet)
            present, code, after = self._await_connack(sock)
        except (OSError, ProtocolError) as exc:
            self._close(sock, polite=False)
            delay = self._backoff.next_delay()
            error = exc if isinstance(exc, OSError) else OSError(str(exc))
            self._report.unreachable(error, delay)
            self._wait_retry(delay)
            return None
        if code >= 0x80 or (not self._v5 and code != 0):
            self._close(sock, polite=False)
            self._report.refused(code, v5=self._v5)
            delay = self._backoff.next_delay()
            self._wait_retry(delay)
            return None
        sock.settimeout(None)
        with self._lock:
            self._sock = sock
            self._generation += 1
            self._acks.clear()
            self._unacked = 0
            # A session the broker kept has our unacknowledged publishes; MQTT says
            # re-send them (DUP), and a new session needs them sent anyway.
            self._unsent = sorted(self._outgoing)
        now = time.monotonic()
        self._last_sent = self._last_received = now
        self._ping_sent_at = None
        self._report.connected(present)
        self._connected.set()
        self._subscribe(sock)
        self._call(self._callbacks.on_connected, present)
        # A resumed session's messages often share the CONNACK's read.
        publishes, controls = after
        try:
            for control in controls:
                self._control(control.type, control.body)
        except (_Lost, ProtocolError):
            self._close(sock, polite=False)
            self._after_loss(_Lost(UNSPECIFIED_ERROR, from_broker=False))
            return None
        if publishes:
            self._deliver(publishes)
        return sock

    def _connect_packet(self) -> bytes:
        s, o, will = self._settings, self._options, self._options.will
        return connect_packet(
            Connect(
                client_id=o.client_id,
                v5=self._v5,
                keepalive_s=o.keepalive_s,
                clean_start=o.session_expiry_s is None,
                session_expiry_s=o.session_expiry_s if self._v5 else None,
                receive_maximum=o.receive_maximum if self._v5 else None,
                username=s.username,
                password=s.password,
                will_topic=will.topic if will else None,
                will_payload=will.payload.encode() if will else b"",
                will_qos=will.qos if will else 0,
                will_retain=will.retain if will else False,
            )
        )

    def _await_connack(
        self, sock: socket.socket
    ) -> tuple[bool, int, tuple[list[Received], list[Control]]]:
        """The CONNACK's (session present, code), and whatever came after it in the same read."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no CONNACK")
            sock.settimeout(remaining)
            data = sock.recv(READ_CHUNK)
            if not data:
                raise ConnectionResetError("the broker closed the connection before its CONNACK")
            publishes, controls = self._parser.feed(data)
            if not controls:
                if publishes:
                    raise ProtocolError("a PUBLISH before the CONNACK")
                continue
            first, rest = controls[0], controls[1:]
            if first.type != CONNACK:
                raise ProtocolError(f"packet type {first.type} before the CONNACK")
            present, code = connack(first.body)
            return present, code, (publishes, rest)

    def _subscribe(self, sock: socket.socket) -> None:
        filters = self._options.subscriptions
        self._pending_subacks.clear()
        self._sub_refused = False
        if not filters:
            self._subscribed.set()
            return
        for start in range(0, len(filters), FILTERS_A_SUBSCRIBE):
            part = filters[start : start + FILTERS_A_SUBSCRIBE]
            pid = self._new_subscribe_pid()
            self._pending_subacks[pid] = part
            sock.sendall(subscribe_packet(pid, part, v5=self._v5))
        self._last_sent = time.monotonic()

    def _new_subscribe_pid(self) -> int:
        with self._lock:
            pid = self._new_pid()
            self._outgoing.setdefault(pid, b"")  # reserved while its SUBACK is due
            return pid

    def _serve(self, sock: socket.socket) -> None:
        keepalive = self._options.keepalive_s
        window = self._window
        while not self._stopping.is_set():
            self._flush(sock)
            now = time.monotonic()
            full = window is not None and self._unacked >= window
            if full:  # not reading: the broker's answers wait in the socket, not lost
                self._ping_sent_at = None
            if keepalive:
                if self._ping_sent_at is not None and now - self._ping_sent_at > keepalive:
                    raise _Lost(KEEPALIVE_TIMEOUT, from_broker=False)
                if now - self._last_sent >= keepalive / 2 and self._ping_sent_at is None:
                    sock.sendall(PINGREQ)
                    self._last_sent = self._ping_sent_at = now
                wait = max(0.0, self._last_sent + keepalive / 2 - now)
                if self._ping_sent_at is not None:
                    wait = min(wait, max(0.0, self._ping_sent_at + keepalive - now)) or 0.1
            else:
                wait = 1.0
            watch = [self._wake_r] if full else [sock, self._wake_r]
            ready, _, _ = select.select(watch, [], [], wait)
            if self._wake_r in ready:
                self._drain_wake()
            if sock in ready:
                self._read(sock)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _flush(self, sock: socket.socket) -> None:
        """Write what other threads queued: acknowledgements, then publishes."""
        with self._lock:
            parts = self._acks + self._qos0 + [self._outgoing[p] for p in self._unsent]
            self._acks, self._qos0, self._unsent = [], [], []
        if parts:
            try:
                sock.sendall(b"".join(parts))
            except OSError as exc:
                raise _Lost(UNSPECIFIED_ERROR, from_broker=False) from exc
            self._last_sent = time.monotonic()

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(READ_CHUNK)
            if isinstance(sock, ssl.SSLSocket):  # one TLS record a recv: take what is decrypted
                while sock.pending():
                    data += sock.recv(READ_CHUNK)
        except ssl.SSLWantReadError:
            return
        except OSError as exc:
            raise _Lost(UNSPECIFIED_ERROR, from_broker=False) from exc
        if not data:
            raise _Lost(UNSPECIFIED_ERROR, from_broker=False)
        self._last_received = time.monotonic()
        self._ping_sent_at = None  # anything from the broker shows it is there
        try:
            publishes, controls = self._parser.feed(data)
        except ProtocolError:
            log.exception("%s: the broker sent something that is not MQTT", self._options.label)
            raise _Lost(UNSPECIFIED_ERROR, from_broker=False) from None
        for control in controls:
            self._control(control.type, control.body)
        if publishes:
            self._deliver(publishes)

    def _deliver(self, publishes: list[Received]) -> None:
        cb = self._callbacks
        generation = self._generation
        if self._window is not None:
            with self._lock:
                self._unacked += sum(1 for m in publishes if m.qos)
        if cb.on_batch is not None:
            self._call(cb.on_batch, publishes, generation)
        elif cb.on_message is not None:
            for msg in publishes:
                self._call(cb.on_message, msg)
        if not self._options.manual_ack:
            mids = [m.mid for m in publishes if m.qos]
            if mids:
                with self._lock:
                    self._acks.append(pubacks(mids))

    def _control(self, kind: int, body: bytes) -> None:
        if kind == PUBACK:
            pid, code = puback_in(body)
            with self._lock:
                known = self._outgoing.pop(pid, None) is not None
                if not self._outgoing:
                    self._drained.notify_all()
            if known:
                self._waiter.arrived(pid, code)
                self._call(self._callbacks.on_published, pid, code)
        elif kind == SUBACK:
            pid, codes = suback(body, v5=self._v5)
            filters = self._pending_subacks.pop(pid, ())
            with self._lock:
                self._outgoing.pop(pid, None)
            for topic_filter, code in zip(filters, codes, strict=False):
                if code >= 0x80:
                    self._sub_refused = True
                    self._report.subscription_refused(topic_filter, code)
            if not self._pending_subacks and not self._sub_refused:
                self._subscribed.set()
        elif kind == DISCONNECT_TYPE:
            raise _Lost(disconnect_reason(body) or UNSPECIFIED_ERROR, from_broker=True)
        elif kind == CONNACK:
            raise ProtocolError("a second CONNACK")
        # PINGRESP: the read itself showed the broker is there.

    def _close(self, sock: socket.socket, *, polite: bool) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
                self._acks.clear()
                self._qos0.clear()
                for pid in list(self._pending_subacks):
                    self._outgoing.pop(pid, None)
                self._pending_subacks.clear()
        self._connected.clear()
        self._subscribed.clear()
        try:
            if polite:
                # DISCONNECT, half-close and read to EOF: closing with unread input sends
                # an RST, and the broker's kernel may then drop our last PUBACKs.
                sock.sendall(DISCONNECT)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(CLOSE_READ_S)
                while sock.recv(READ_CHUNK):
                    pass
        except OSError:
            pass
        finally:
            sock.close()

    def _after_loss(self, lost: _Lost) -> None:
        lasted = self._report.lost_after() or 0.0
        if self._report.stable(lasted):
            self._backoff.reset()
        delay = self._backoff.next_delay()
        if not self._stopping.is_set():
            self._report.lost(lasted, lost.code, from_broker=lost.from_broker, delay=delay)
        self._call(self._callbacks.on_disconnected)
        self._wait_retry(delay)
