"""MQTT 3.1.1 and 5 packets as bytes, both ways: the codec under the socket session engine.

Pure: bytes in, packets out, and the packets a client sends as bytes; no
sockets, no threads, so every corner is tested without a broker. Only what
a client needs: CONNECT, SUBSCRIBE, PUBLISH (QoS 0 and 1), PUBACK,
PINGREQ, DISCONNECT out; CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP and
DISCONNECT in. A client that subscribes at QoS 1 never receives QoS 2, and
one that advertises no Topic Alias Maximum never receives an alias, so
PUBLISH properties are skipped whole.

`Parser.feed` takes whatever the socket gave (any number of packets, or
part of one), returns every complete packet in one pass and keeps the rest;
a packet larger than `max_packet_bytes` or a malformed header is a
`ProtocolError` (the session drops the connection).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "DISCONNECT",
    "PINGREQ",
    "Connect",
    "Control",
    "Parser",
    "ProtocolError",
    "Received",
    "connack",
    "connect_packet",
    "disconnect_reason",
    "puback",
    "puback_in",
    "pubacks",
    "publish_packet",
    "suback",
    "subscribe_packet",
]

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ_TYPE, PINGRESP, DISCONNECT_TYPE = 12, 13, 14

PINGREQ: Final = b"\xc0\x00"
DISCONNECT: Final = b"\xe0\x00"  # normal disconnection (reason 0): the broker drops the will
MAX_REMAINING_LENGTH = 268_435_455  # the variable byte integer's limit

# One 4-byte PUBACK per packet id, made once: MQTT 5 allows the short form
# (reason 0, no properties), which is also the 3.1.1 packet.
_PUBACK: Final = [b""] + [struct.pack(">BBH", 0x40, 2, i) for i in range(1, 65536)]

# MQTT 5 property identifiers used here.
_SESSION_EXPIRY, _RECEIVE_MAXIMUM = 0x11, 0x21


class ProtocolError(Exception):
    """The peer sent something that is not MQTT as this client speaks it."""


class Received(NamedTuple):
    """An incoming PUBLISH; `mid` is 0 for QoS 0."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool


class Control(NamedTuple):
    """Any other incoming packet: its type and body (see `connack`, `suback`, ...)."""

    type: int
    body: bytes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, b = divmod(n, 128)
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _utf8(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    if len(b) > 0xFFFF:
        raise ValueError(f"{len(b)} bytes is too long for an MQTT string")
    return struct.pack(">H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    if len(body) > MAX_REMAINING_LENGTH:
        raise ValueError("packet too large for MQTT")
    return bytes([first]) + _varint(len(body)) + body


@dataclass(frozen=True, kw_only=True, slots=True)
class Connect:
    client_id: str
    v5: bool
    keepalive_s: int
    clean_start: bool
    session_expiry_s: int | None = None  # MQTT 5
    receive_maximum: int | None = None  # MQTT 5
    username: str | None = None
    password: str | None = None
    will_topic: str | None = None
    will_payload: bytes = b""
    will_qos: int = 0
    will_retain: bool = False


def _connect_flags(c: Connect) -> int:
    flags = 0x02 if c.clean_start else 0
    if c.will_topic is not None:
        flags |= 0x04 | (c.will_qos << 3) | (0x20 if c.will_retain else 0)
    if c.username is not None:
        flags |= 0x80
        if c.password is not None:
            flags |= 0x40
    return flags


def connect_packet(c: Connect) -> bytes:
    flags = _connect_flags(c)
    body = _utf8("MQTT") + bytes([5 if c.v5 else 4, flags]) + struct.pack(">H", c.keepalive_s)
    if c.v5:
        props = b""
        if c.session_expiry_s is not None:
            props += bytes([_SESSION_EXPIRY]) + struct.pack(">I", c.session_expiry_s)
        if c.receive_maximum is not None:
            props += bytes([_RECEIVE_MAXIMUM]) + struct.pack(">H", c.receive_maximum)
        body += _varint(len(props)) + props
    body += _utf8(c.client_id)
    if c.will_topic is not None:
        if c.v5:
            body += b"\x00"  # no will properties
        body += _utf8(c.will_topic) + _utf8(c.will_payload)
    if c.username is not None:
        body += _utf8(c.username)
        if c.password is not None:
            body += _utf8(c.password)
    return _packet(0x10, body)


def subscribe_packet(pid: int, filters: tuple[str, ...] | list[str], *, v5: bool) -> bytes:
    """SUBSCRIBE at QoS 1 (MQTT 5 options: retained messages sent at subscribe, as 3.1.1 does)."""
    body = struct.pack(">H", pid) + (b"\x00" if v5 else b"")
    body += b"".join(_utf8(f) + b"\x01" for f in filters)
    return _packet(0x82, body)


def publish_packet(
    topic: str, payload: bytes, *, qos: int, retain: bool, pid: int, v5: bool, dup: bool = False
) -> bytes:
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup and qos else 0)
    body = _utf8(topic) + (struct.pack(">H", pid) if qos else b"") + (b"\x00" if v5 else b"")
    return _packet(first, body + payload)


def puback(pid: int) -> bytes:
    return _PUBACK[pid]


def pubacks(mids: list[int]) -> bytes:
    """The PUBACKs of many messages, as one write."""
    table = _PUBACK
    return b"".join([table[m] for m in mids])


def connack(body: bytes) -> tuple[bool, int]:
    """(session present, return or reason code)."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    return bool(body[0] & 1), body[1]


def suback(body: bytes, *, v5: bool) -> tuple[int, list[int]]:
    """(packet id, a granted QoS or reason code per filter)."""
    if len(body) < 3:
        raise ProtocolError("SUBACK too short")
    pid = (body[0] << 8) | body[1]
    i = 2
    if v5:
        length, i = _read_varint(body, i)
        i += length
    return pid, list(body[i:])


def puback_in(body: bytes) -> tuple[int, int]:
    """(packet id, reason code; 0 when the short form leaves it out)."""
    if len(body) < 2:
        raise ProtocolError("PUBACK too short")
    return (body[0] << 8) | body[1], body[2] if len(body) > 2 else 0


def disconnect_reason(body: bytes) -> int:
    return body[0] if body else 0


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf):
            raise ProtocolError("truncated variable byte integer")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")


_KNOWN_IN = frozenset({CONNACK, PUBACK, SUBACK, PINGRESP, DISCONNECT_TYPE})


class Parser:
    """Incoming bytes to packets; keeps a partial packet for the next `feed`."""

    def __init__(self, *, v5: bool, max_packet_bytes: int = MAX_REMAINING_LENGTH) -> None:
        self.v5 = v5
        self.max_packet_bytes = max_packet_bytes
        self._rest = b""

    def reset(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> tuple[list[Received], list[Control]]:
        buf = self._rest + data if self._rest else data
        publishes: list[Received] = []
        controls: list[Control] = []
        n, pos, v5 = len(buf), 0, self.v5
        while pos + 2 <= n:
            first = buf[pos]
            length, i = buf[pos + 1], pos + 2
            if length & 0x80:
                try:
                    length, i = _read_varint(buf, pos + 1)
                except ProtocolError:
                    if n - pos < 5:  # the length itself is not all here yet
                        break
                    raise
            if length > self.max_packet_bytes:
                raise ProtocolError(f"a packet of {length} bytes exceeds {self.max_packet_bytes}")
            end = i + length
            if end > n:
                break
            kind = first >> 4
            if kind == PUBLISH:
                publishes.append(self._publish(first, buf, i, end, v5=v5))
            elif kind in _KNOWN_IN:
                controls.append(Control(kind, buf[i:end]))
            else:
                raise ProtocolError(f"unexpected packet type {kind} from the broker")
            pos = end
        self._rest = buf[pos:]
        return publishes, controls

    @staticmethod
    def _publish(first: int, buf: bytes, i: int, end: int, *, v5: bool) -> Received:
        qos = (first >> 1) & 3
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        if qos == 2:
            raise ProtocolError("PUBLISH with QoS 2 on a QoS 1 subscription")
        if i + 2 > end:
            raise ProtocolError("PUBLISH too short")
        j = i + 2 + ((buf[i] << 8) | buf[i + 1])
        try:
            topic = buf[i + 2 : j].decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("PUBLISH topic is not UTF-8") from exc
        mid = 0
        if qos:
            mid = (buf[j] << 8) | buf[j + 1]
            j += 2
        if v5:
            if buf[j] == 0:
                j += 1
            else:
                length, j = _read_varint(buf, j)
                j += length
        if j > end:
            raise ProtocolError("PUBLISH header longer than the packet")
        return Received(topic, buf[j:end], mid, qos, bool(first & 1))
